/* pcapng: a section header naming this application and host, an
 * Interface Description Block per interface (if_name "SENSOR/IFACE"),
 * Enhanced Packet Blocks, and an Interface Statistics Block when an
 * interface leaves. Interfaces of any link type and precision share a
 * section; their ids are numbered from 0 in each stream, so every file
 * is valid alone. */
#include "config.h"

#include "ps_fmt.h"
#include "ps_pcapfmt.h"
#include "ps_proto.h"

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

static size_t pad4(size_t n) {
  return (n + 3) & ~(size_t)3;
}

static size_t opt_size(size_t len) {
  return 4 + pad4(len);
}

static uint8_t *put_opt(uint8_t *p, uint16_t code, const void *v, size_t len) {
  put16h(p, code);
  put16h(p + 2, (uint16_t)len);
  memcpy(p + 4, v, len);
  memset(p + 4 + len, 0, pad4(len) - len);
  return p + opt_size(len);
}

static size_t str_opt_len(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n > 65000 ? 65000 : n;
}

/* Reserves a block of body size body (options included), writes its type
 * and length and returns a pointer to the body. */
static uint8_t *block_begin(ps__buf *out, uint32_t type, size_t body,
                            uint8_t **end) {
  size_t total = 12 + body;
  uint8_t *p = ps__buf_reserve(out, total);
  if (p == NULL) {
    return NULL;
  }
  put32h(p, type);
  put32h(p + 4, (uint32_t)total);
  put32h(p + total - 4, (uint32_t)total);
  out->len += total;
  *end = p + total - 4;
  return p + 8;
}

int ps__pcapng_shb(ps__buf *out, const char *userappl, const char *os,
                   const char *comment) {
  size_t la = str_opt_len(userappl), lo = str_opt_len(os),
         lc = str_opt_len(comment);
  size_t body = 16 + (la ? opt_size(la) : 0) + (lo ? opt_size(lo) : 0) +
                (lc ? opt_size(lc) : 0) + 4;
  uint8_t *end;
  uint8_t *p = block_begin(out, 0x0A0D0D0Au, body, &end);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put32h(p, 0x1A2B3C4Du);
  put16h(p + 4, 1);
  put16h(p + 6, 0);
  memset(p + 8, 0xff, 8); /* section length unknown */
  p += 16;
  if (lc) {
    p = put_opt(p, 1, comment, lc);
  }
  if (lo) {
    p = put_opt(p, 3, os, lo);
  }
  if (la) {
    p = put_opt(p, 4, userappl, la);
  }
  put32h(p, 0); /* opt_endofopt */
  return 0;
}

int ps__pcapng_idb(ps__buf *out, const ps__pcapng_idb_info *idb) {
  size_t ln = str_opt_len(idb->name), ld = str_opt_len(idb->description);
  /* Bit 26 of a pcap link-type field says that bits 28..31 hold the FCS
   * length in 16-bit words; pcapng carries that as if_fcslen. */
  int fcs = (idb->linktype & 0x04000000u) != 0;
  uint8_t fcslen = (uint8_t)(((idb->linktype >> 28) & 0xf) * 16); /* bits */
  size_t body = 8 + (ln ? opt_size(ln) : 0) + (ld ? opt_size(ld) : 0) +
                opt_size(1) + (fcs ? opt_size(1) : 0) + 4;
  for (size_t i = 0; i < idb->n_comments; i++) {
    body += opt_size(str_opt_len(idb->comments[i]));
  }
  uint8_t *end;
  uint8_t *p = block_begin(out, 1, body, &end);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put16h(p, (uint16_t)(idb->linktype & 0xffff));
  put16h(p + 2, 0);
  put32h(p + 4, idb->snaplen);
  p += 8;
  for (size_t i = 0; i < idb->n_comments; i++) {
    p = put_opt(p, 1, idb->comments[i], str_opt_len(idb->comments[i]));
  }
  if (ln) {
    p = put_opt(p, 2, idb->name, ln);
  }
  if (ld) {
    p = put_opt(p, 3, idb->description, ld);
  }
  uint8_t tsresol = idb->tsres;
  p = put_opt(p, 9, &tsresol, 1);
  if (fcs) {
    p = put_opt(p, 13, &fcslen, 1);
  }
  put32h(p, 0);
  return 0;
}

int ps__pcapng_epb(ps__buf *out, uint32_t iface, const ps_packet *pkt,
                   uint8_t tsres) {
  uint64_t ts;
  /* The caplen bound keeps the block's total length (36 + caplen padded)
   * far inside its 32-bit field. */
  if (pkt->caplen > PS_MAX_CAPLEN || (pkt->caplen > 0 && pkt->data == NULL) ||
      ps__pcapng_ts(&ts, pkt->ts_sec, pkt->ts_frac, tsres) != 0) {
    return PS_ERR_INVALID;
  }
  size_t body = 20 + pad4(pkt->caplen) + 4;
  uint8_t *end;
  uint8_t *p = block_begin(out, 6, body, &end);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put32h(p, iface);
  put32h(p + 4, (uint32_t)(ts >> 32));
  put32h(p + 8, (uint32_t)ts);
  put32h(p + 12, pkt->caplen);
  put32h(p + 16, pkt->len);
  if (pkt->caplen > 0) {
    memcpy(p + 20, pkt->data, pkt->caplen);
  }
  memset(p + 20 + pkt->caplen, 0, pad4(pkt->caplen) - pkt->caplen);
  put32h(p + 20 + pad4(pkt->caplen), 0); /* no options: opt_endofopt */
  return 0;
}

static uint8_t *put_opt64(uint8_t *p, uint16_t code, uint64_t v) {
  /* Timestamps in ISB options are two 32-bit words, high first. */
  uint32_t w[2] = {(uint32_t)(v >> 32), (uint32_t)v};
  return put_opt(p, code, w, 8);
}

static uint8_t *put_opt_u64(uint8_t *p, uint16_t code, uint64_t v) {
  return put_opt(p, code, &v, 8);
}

int ps__pcapng_isb(ps__buf *out, const ps__pcapng_isb_info *isb) {
  /* Drops pcapng has no option for go into a comment, so a reader of the
   * file sees every stage that lost packets. */
  char note[200] = "";
  if (isb->stats->overflow > 0 || isb->stats->truncated > 0) {
    snprintf(note, sizeof(note),
             "sensor: %llu packets dropped by its replay buffer (receiver "
             "unreachable or slow), %llu shortened by its file reader",
             (unsigned long long)isb->stats->overflow,
             (unsigned long long)isb->stats->truncated);
  }
  /* Sampling is neither loss nor delivery: isb_filteraccept counts what
   * the filter took, isb_usrdeliv what was sent, and since few readers
   * show either (tshark -V does, capinfos does not), a comment says it
   * in words too. */
  uint64_t sampled = isb->stats->sampled_out;
  char snote[64] = "";
  if (sampled > 0) {
    snprintf(snote, sizeof(snote), "sampled-out %llu",
             (unsigned long long)sampled);
  }
  size_t ln = strlen(note), ls = strlen(snote);
  size_t body = 12 + (isb->starttime ? opt_size(8) : 0) +
                (isb->endtime ? opt_size(8) : 0) + 5 * opt_size(8) +
                (ln ? opt_size(ln) : 0) + (ls ? opt_size(ls) : 0) + 4;
  uint8_t *end;
  uint8_t *p = block_begin(out, 5, body, &end);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put32h(p, isb->iface);
  put32h(p + 4, (uint32_t)(isb->ts >> 32));
  put32h(p + 8, (uint32_t)isb->ts);
  p += 12;
  if (isb->starttime) {
    p = put_opt64(p, 2, isb->starttime);
  }
  if (isb->endtime) {
    p = put_opt64(p, 3, isb->endtime);
  }
  p = put_opt_u64(p, 4, isb->stats->received);           /* isb_ifrecv */
  p = put_opt_u64(p, 5, isb->stats->ifdropped);          /* isb_ifdrop */
  p = put_opt_u64(p, 7, isb->stats->dropped);            /* isb_osdrop */
  p = put_opt_u64(p, 6, isb->stats->captured + sampled); /* filteraccept */
  p = put_opt_u64(p, 8, isb->stats->captured);           /* isb_usrdeliv */
  if (ln) {
    p = put_opt(p, 1, note, ln); /* opt_comment */
  }
  if (ls) {
    p = put_opt(p, 1, snote, ls);
  }
  put32h(p, 0);
  return 0;
}

static uint32_t get32h(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint32_t swap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

uint32_t ps__pcapng_block_len(const uint8_t *b, int *swapped) {
  uint32_t type = get32h(b); /* the SHB type reads the same both ways */
  if (type == PS_PCAPNG_SHB_TYPE) {
    uint32_t bom = get32h(b + 8);
    if (bom == 0x1A2B3C4Du) {
      *swapped = 0;
    } else if (bom == 0x4D3C2B1Au) {
      *swapped = 1;
    } else {
      return 0;
    }
  }
  uint32_t len = get32h(b + 4);
  if (*swapped) {
    len = swap32(len);
  }
  if (len < 12 || len % 4 != 0) {
    return 0;
  }
  if (type == PS_PCAPNG_SHB_TYPE && len < 28) {
    return 0;
  }
  return len;
}

uint32_t ps__pcapng_trailer_len(const uint8_t *t, int swapped) {
  uint32_t v = get32h(t);
  return swapped ? swap32(v) : v;
}

/* ---------------- the writer ---------------- */

typedef struct ng_iface {
  struct ng_iface *next;
  uint32_t id; /* its interface id in the current stream */
  uint32_t linktype;
  uint8_t tsres;
  uint64_t first_ts; /* when it joined, for isb_starttime */
  char *name, *desc;
  char *comments[PS_MAX_IFACE_OPTS]; /* the sensor's options, "key=value" */
  size_t n_comments;
} ng_iface;

typedef struct ng_writer {
  ps__fmtw base;
  ng_iface *ifaces; /* joined now, in id order */
  uint32_t n_ids;   /* interface blocks in the current stream */
} ng_writer;

static ps__fmtw *ng_create(const ps__fmt *fmt, const ps__fmt_params *p) {
  ng_writer *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    return NULL;
  }
  w->base.fmt = fmt;
  w->base.params = p;
  return &w->base;
}

static void iface_free(ng_iface *ni) {
  for (size_t i = 0; i < ni->n_comments; i++) {
    free(ni->comments[i]);
  }
  free(ni->name);
  free(ni->desc);
  free(ni);
}

static void ng_destroy(ps__fmtw *fw) {
  ng_writer *w = (ng_writer *)fw;
  while (w->ifaces != NULL) {
    ng_iface *ni = w->ifaces;
    w->ifaces = ni->next;
    iface_free(ni);
  }
  free(w);
}

static int ng_accepts(const ps__fmtw *w, uint32_t linktype) {
  (void)w;
  (void)linktype;
  return 1;
}

static int put_idb(ps__buf *out, const ng_iface *ni) {
  ps__pcapng_idb_info idb = {
      .linktype = ni->linktype,
      /* libpcap refuses a pcapng file whose interfaces differ in
       * snaplen, so every block says the largest; the sensor's own
       * value is in the description. */
      .snaplen = PS_MAX_CAPLEN,
      .tsres = ni->tsres,
      .name = ni->name,
      .description = ni->desc,
      .comments = ni->comments,
      .n_comments = ni->n_comments,
  };
  return ps__pcapng_idb(out, &idb);
}

static int ng_header(ps__fmtw *fw, ps__buf *out, int final) {
  ng_writer *w = (ng_writer *)fw;
  const ps__fmt_params *p = fw->params;
  (void) final;
  if (ps__pcapng_shb(out, p->appl, p->os, p->comment) != 0) {
    return PS_ERR_NOMEM;
  }
  w->n_ids = 0;
  for (ng_iface *ni = w->ifaces; ni != NULL; ni = ni->next) {
    if (put_idb(out, ni) != 0) {
      return PS_ERR_NOMEM;
    }
    ni->id = w->n_ids++;
  }
  return 1;
}

/* A clock reading as a pcapng timestamp in resolution tsres (0, meaning
 * "not written", past what pcapng holds). */
static uint64_t clock_ts(const struct timespec *now, uint8_t tsres) {
  int64_t sec = now->tv_sec;
  uint32_t frac = (uint32_t)now->tv_nsec;
  uint64_t v = 0;
  if (ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, tsres) != 0 ||
      ps__pcapng_ts(&v, sec, frac, tsres) != 0) {
    return 0;
  }
  return v;
}

static int ng_join(ps__fmtw *fw, const ps_session_info *s,
                   const ps_interface_info *ifc, const struct timespec *now,
                   ps__buf *out, void **slot, char *note, size_t notelen) {
  ng_writer *w = (ng_writer *)fw;
  (void)notelen;
  note[0] = '\0';
  ng_iface *ni = calloc(1, sizeof(*ni));
  char name[600], desc[2000];
  snprintf(name, sizeof(name), "%s/%s", s->sensor, ifc->name);
  if (ifc->description != NULL) {
    snprintf(desc, sizeof(desc),
             "%s; interface %s of sensor %s at %s, snaplen %u",
             ifc->description, ifc->name, s->sensor, s->peer, ifc->snaplen);
  } else {
    snprintf(desc, sizeof(desc), "interface %s of sensor %s at %s, snaplen %u",
             ifc->name, s->sensor, s->peer, ifc->snaplen);
  }
  if (ni == NULL || (ni->name = strdup(name)) == NULL ||
      (ni->desc = strdup(desc)) == NULL) {
    if (ni != NULL) {
      iface_free(ni);
    }
    return PS_ERR_NOMEM;
  }
  for (size_t i = 0; i < ifc->n_options && i < PS_MAX_IFACE_OPTS; i++) {
    size_t n = strlen(ifc->options[i].key) + strlen(ifc->options[i].value) + 2;
    char *c = malloc(n);
    if (c == NULL) {
      iface_free(ni);
      return PS_ERR_NOMEM;
    }
    snprintf(c, n, "%s=%s", ifc->options[i].key, ifc->options[i].value);
    ni->comments[ni->n_comments++] = c;
  }
  ni->linktype = ifc->linktype;
  ni->tsres = ifc->tsres;
  ni->first_ts = clock_ts(now, ifc->tsres);
  if (out != NULL) {
    if (put_idb(out, ni) != 0) {
      iface_free(ni);
      return PS_ERR_NOMEM;
    }
    ni->id = w->n_ids++;
  }
  ng_iface **pp = &w->ifaces;
  while (*pp != NULL) {
    pp = &(*pp)->next;
  }
  *pp = ni;
  *slot = ni;
  return 0;
}

static int ng_stats(ps__fmtw *w, void *slot, const ps_capture_stats *st,
                    const struct timespec *now, ps__buf *out) {
  ng_iface *ni = slot;
  (void)w;
  uint64_t t = clock_ts(now, ni->tsres);
  ps__pcapng_isb_info isb = {
      .iface = ni->id,
      .ts = t,
      .starttime = ni->first_ts,
      .endtime = t,
      .stats = st,
  };
  return ps__pcapng_isb(out, &isb) != 0 ? PS_ERR_NOMEM : 0;
}

static void ng_leave(ps__fmtw *fw, void *slot) {
  ng_writer *w = (ng_writer *)fw;
  for (ng_iface **pp = &w->ifaces; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == slot) {
      *pp = (*pp)->next;
      break;
    }
  }
  iface_free(slot);
}

static const char *tsres_unit(uint8_t tsres) {
  return tsres == PS_TSRES_NSEC ? "nanoseconds" : "microseconds";
}

static int ng_check(const ps__fmt_params *p, const ps_interface_info *ifc,
                    const ps_packet *pkt, char *errmsg) {
  uint64_t v;
  (void)p;
  if (ps__pcapng_ts(&v, pkt->ts_sec, pkt->ts_frac, ifc->tsres) == 0) {
    return 0;
  }
  return ps__seterr(
      errmsg, PS_ERR_PROTOCOL,
      "interface %s: time stamp %lld s + %u %s cannot be written: pcapng "
      "output in %s holds 0 to %llu s",
      ifc->name, (long long)pkt->ts_sec, pkt->ts_frac, tsres_unit(ifc->tsres),
      tsres_unit(ifc->tsres),
      (unsigned long long)ps__pcapng_max_sec(pkt->ts_frac, ifc->tsres));
}

static int ng_record(ps__fmtw *w, void *slot, const ps_interface_info *ifc,
                     const ps_packet *pkt, ps__buf *out) {
  const ng_iface *ni = slot;
  (void)w;
  (void)ifc;
  return ps__pcapng_epb(out, ni->id, pkt, ni->tsres);
}

static int ng_tail_scan(const ps__fmtw *w, ps__fmt_read_fn read, void *ud,
                        uint64_t size, ps__fmt_tail *out, char *why,
                        size_t whylen) {
  (void)w;
  ps__fmt_reader *r = ps__fmt_reader_new(read, ud, size);
  if (r == NULL) {
    return PS_ERR_NOMEM;
  }
  uint64_t off = 0;
  int swapped = 0;
  const uint8_t *h, *t;
  while (ps__fmt_reader_get(r, off, 12, &h) == 0) {
    /* A file begins with a section header: blocks before one have no
     * byte order, and no reader takes them. */
    if (off == 0 && get32h(h) != PS_PCAPNG_SHB_TYPE) {
      break;
    }
    uint32_t n = ps__pcapng_block_len(h, &swapped);
    if (n == 0 || n > size - off ||
        ps__fmt_reader_get(r, off + n - 4, 4, &t) != 0 ||
        ps__pcapng_trailer_len(t, swapped) != n) {
      break;
    }
    off += n;
  }
  free(r);
  out->good = off;
  out->has_header = off > 0;
  if (off == 0) {
    /* A torn first block is cut; anything else is not ours. */
    uint8_t first[12];
    size_t k = size < 12 ? (size_t)size : 12;
    int sw = 0;
    if (read(ud, 0, first, k) != (ssize_t)k ||
        (k >= 4 && memcmp(first, &(uint32_t){PS_PCAPNG_SHB_TYPE}, 4) != 0) ||
        (k == 12 && ps__pcapng_block_len(first, &sw) == 0)) {
      snprintf(why, whylen, "it is not a pcapng file");
      return 0;
    }
  }
  return 1;
}

const ps__fmt ps__fmt_pcapng = {
    .name = "pcapng",
    .header_once = 0,
    .create = ng_create,
    .destroy = ng_destroy,
    .accepts = ng_accepts,
    .header = ng_header,
    .join = ng_join,
    .stats = ng_stats,
    .leave = ng_leave,
    .check = ng_check,
    .record = ng_record,
    .tail_scan = ng_tail_scan,
};
