/* Classic pcap: one file header (magic, version 2.4, snaplen, link type)
 * and records. A file holds one link type and one precision (micro- or
 * nanoseconds), written in the host's byte order, as libpcap writes. */
#include "config.h"

#include "ps_fmt.h"
#include "ps_pcapfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- byte layout ---------------- */

static void put32h(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4);
}
static void put16h(uint8_t *p, uint16_t v) {
  memcpy(p, &v, 2);
}

int ps__pcap_file_header(ps__buf *out, uint32_t linktype, uint32_t snaplen,
                         int nano) {
  uint8_t *p = ps__buf_reserve(out, PS_PCAP_FILE_HDR);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put32h(p, nano ? PS_PCAP_MAGIC_NSEC : PS_PCAP_MAGIC_USEC);
  put16h(p + 4, 2);
  put16h(p + 6, 4);
  put32h(p + 8, 0);
  put32h(p + 12, 0);
  put32h(p + 16, snaplen);
  put32h(p + 20, linktype);
  out->len += PS_PCAP_FILE_HDR;
  return 0;
}

int ps__pcap_record(ps__buf *out, const ps_packet *pkt, uint8_t tsres,
                    int nano) {
  uint32_t sec, frac;
  if (pkt->caplen > PS_MAX_CAPLEN || (pkt->caplen > 0 && pkt->data == NULL) ||
      ps__pcap_ts(&sec, &frac, pkt->ts_sec, pkt->ts_frac, tsres, nano) != 0) {
    return PS_ERR_INVALID;
  }
  uint8_t *p = ps__buf_reserve(out, PS_PCAP_REC_HDR + (size_t)pkt->caplen);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put32h(p, sec);
  put32h(p + 4, frac);
  put32h(p + 8, pkt->caplen);
  put32h(p + 12, pkt->len);
  if (pkt->caplen > 0) {
    memcpy(p + PS_PCAP_REC_HDR, pkt->data, pkt->caplen);
  }
  out->len += PS_PCAP_REC_HDR + (size_t)pkt->caplen;
  return 0;
}

static uint32_t get32h(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint16_t get16h(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

int ps__pcap_check_header(const uint8_t *hdr, uint32_t linktype, int nano,
                          char *why, size_t whylen) {
  uint32_t magic = get32h(hdr);
  uint32_t want = nano ? PS_PCAP_MAGIC_NSEC : PS_PCAP_MAGIC_USEC;
  if (magic == (nano ? PS_PCAP_MAGIC_USEC : PS_PCAP_MAGIC_NSEC)) {
    snprintf(why, whylen, "it has %s time stamps, this output %s",
             nano ? "microsecond" : "nanosecond",
             nano ? "nanosecond" : "microsecond");
    return -1;
  }
  if (magic != want) {
    /* Byte-swapped files are valid pcap, but appending host-order records
     * to them would not be. */
    snprintf(why, whylen, "it is not a pcap file in this host's byte order");
    return -1;
  }
  if (get16h(hdr + 4) != 2 || get16h(hdr + 6) != 4) {
    snprintf(why, whylen, "it is pcap version %u.%u, not 2.4", get16h(hdr + 4),
             get16h(hdr + 6));
    return -1;
  }
  if (get32h(hdr + 20) != linktype) {
    snprintf(why, whylen, "it has link type %u, this output %u",
             get32h(hdr + 20), linktype);
    return -1;
  }
  return 0;
}

uint64_t ps__pcap_record_size(const uint8_t *rh) {
  uint32_t caplen = get32h(rh + 8);
  if (caplen > PS_MAX_CAPLEN) {
    return 0;
  }
  return PS_PCAP_REC_HDR + (uint64_t)caplen;
}

/* ---------------- the writer ---------------- */

typedef struct pcap_writer {
  ps__fmtw base;
  int has_linktype; /* the first interface set it */
  uint32_t linktype;
} pcap_writer;

static ps__fmtw *pcap_create(const ps__fmt *fmt, const ps__fmt_params *p) {
  pcap_writer *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return NULL;
  }
  w->base.fmt = fmt;
  w->base.params = p;
  return &w->base;
}

static void pcap_destroy(ps__fmtw *w) {
  free(w);
}

static int pcap_accepts(const ps__fmtw *fw, uint32_t linktype) {
  const pcap_writer *w = (const pcap_writer *)fw;
  return !w->has_linktype || w->linktype == linktype;
}

static int pcap_header(ps__fmtw *fw, ps__buf *out, int final) {
  pcap_writer *w = (pcap_writer *)fw;
  if (!w->has_linktype) {
    if (!final) {
      return 0;
    }
    /* An output no interface came to is still a valid, empty capture
     * (Ethernet, as tcpdump writes for an empty capture of an Ethernet
     * device). */
    w->linktype = 1;
    w->has_linktype = 1;
  }
  if (ps__pcap_file_header(out, w->linktype, PS_MAX_CAPLEN, fw->params->nano) !=
      0) {
    return PS_ERR_NOMEM;
  }
  return 1;
}

static int pcap_join(ps__fmtw *fw, const ps_session_info *s,
                     const ps_interface_info *ifc, const struct timespec *now,
                     ps__buf *out, void **slot, char *note, size_t notelen) {
  pcap_writer *w = (pcap_writer *)fw;
  (void)now;
  (void)out; /* records need nothing per interface */
  if (!w->has_linktype) {
    w->linktype = ifc->linktype;
    w->has_linktype = 1;
  }
  *slot = NULL;
  note[0] = '\0';
  if (ifc->tsres == PS_TSRES_NSEC && !fw->params->nano) {
    snprintf(note, notelen,
             "sensor %s interface %s has nanosecond timestamps but the pcap "
             "output is microsecond: sub-microsecond digits are dropped (use "
             "--time-stamp-precision nano or pcapng to keep them)",
             s->sensor, ifc->name);
  }
  return 0;
}

static int pcap_stats(ps__fmtw *w, void *slot, const ps_capture_stats *st,
                      const struct timespec *now, ps__buf *out) {
  (void)w;
  (void)slot;
  (void)st;
  (void)now;
  (void)out;
  return 0; /* classic pcap has no place for counters */
}

static void pcap_leave(ps__fmtw *w, void *slot) {
  (void)w;
  (void)slot;
}

static const char *tsres_unit(uint8_t tsres) {
  return tsres == PS_TSRES_NSEC ? "nanoseconds" : "microseconds";
}

static int pcap_check(const ps__fmt_params *p, const ps_interface_info *ifc,
                      const ps_packet *pkt, char *errmsg) {
  uint32_t s32, f32;
  if (ps__pcap_ts(&s32, &f32, pkt->ts_sec, pkt->ts_frac, ifc->tsres, p->nano) ==
      0) {
    return 0;
  }
  return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                    "interface %s: time stamp %lld s + %u %s cannot be "
                    "written: pcap output in %s holds 0 to %llu s",
                    ifc->name, (long long)pkt->ts_sec, pkt->ts_frac,
                    tsres_unit(ifc->tsres),
                    tsres_unit(p->nano ? PS_TSRES_NSEC : PS_TSRES_USEC),
                    (unsigned long long)PS_PCAP_MAX_SEC);
}

static int pcap_record(ps__fmtw *w, void *slot, const ps_interface_info *ifc,
                       const ps_packet *pkt, ps__buf *out) {
  (void)slot;
  return ps__pcap_record(out, pkt, ifc->tsres, w->params->nano);
}

static int pcap_tail_scan(const ps__fmtw *fw, ps__fmt_read_fn read, void *ud,
                          uint64_t size, ps__fmt_tail *out, char *why,
                          size_t whylen) {
  const pcap_writer *w = (const pcap_writer *)fw;
  out->good = 0;
  out->has_header = 0;
  if (size == 0) {
    return 1;
  }
  ps__fmt_reader *r = ps__fmt_reader_new(read, ud, size);
  if (r == NULL) {
    return PS_ERR_NOMEM;
  }
  const uint8_t *h;
  int ok = 1;
  if (ps__fmt_reader_get(r, 0, PS_PCAP_FILE_HDR, &h) != 0) {
    /* Shorter than a header: only a torn first write leaves that. */
    uint32_t m = 0;
    size_t k = size < 4 ? (size_t)size : 4;
    if (read(ud, 0, &m, k) < 0 ||
        (size >= 4 && m != PS_PCAP_MAGIC_USEC && m != PS_PCAP_MAGIC_NSEC)) {
      snprintf(why, whylen, "it is not a pcap file");
      ok = 0;
    }
  } else if (ps__pcap_check_header(h, w->linktype, fw->params->nano, why,
                                   whylen) != 0) {
    ok = 0;
  } else {
    uint64_t off = PS_PCAP_FILE_HDR;
    while (ps__fmt_reader_get(r, off, PS_PCAP_REC_HDR, &h) == 0) {
      uint64_t n = ps__pcap_record_size(h);
      if (n == 0 || n > size - off) {
        break;
      }
      off += n;
    }
    out->good = off;
    out->has_header = 1;
  }
  free(r);
  return ok;
}

const ps__fmt ps__fmt_pcap = {
    .name = "pcap",
    .header_once = 1,
    .create = pcap_create,
    .destroy = pcap_destroy,
    .accepts = pcap_accepts,
    .header = pcap_header,
    .join = pcap_join,
    .stats = pcap_stats,
    .leave = pcap_leave,
    .check = pcap_check,
    .record = pcap_record,
    .tail_scan = pcap_tail_scan,
};
