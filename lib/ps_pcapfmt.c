/* pcap / pcapng writers' byte layouts. */
#include "config.h"

#include "ps_pcapfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t pow10u[] = {1,      10,      100,      1000,
                                  10000,  100000,  1000000,  10000000,
                                  100000000, 1000000000};

/* The fraction of a time stamp in resolution from_res, in to_res: the
 * whole seconds it holds (*carry) and the rest, scaled. Both resolutions
 * are at most 9, so the scaled rest is below 10^9 and nothing wraps. */
static uint32_t frac_to(uint32_t frac, uint8_t from_res, uint8_t to_res,
                        uint32_t *carry) {
  uint32_t unit = pow10u[from_res];
  uint32_t f = frac % unit;
  *carry = frac / unit;
  return to_res > from_res ? f * pow10u[to_res - from_res]
                           : f / pow10u[from_res - to_res];
}

int ps__ts_convert(int64_t *sec, uint32_t *frac, uint8_t from_res,
                   uint8_t to_res) {
  if (from_res > 9 || to_res > 9) {
    return -1;
  }
  if (from_res == to_res) {
    return 0;
  }
  uint32_t carry;
  uint32_t f = frac_to(*frac, from_res, to_res, &carry);
  /* A hostile sensor sends seconds near INT64_MAX: signed overflow here
   * is undefined behaviour, so test before adding. */
  if (*sec > INT64_MAX - (int64_t)carry) {
    return -1;
  }
  *sec += carry;
  *frac = f;
  return 0;
}

/* sec.frac as files read it: unsigned seconds and the fraction in to_res
 * (see the header). -1 if no file holds it. */
static int file_ts(uint64_t *out_sec, uint32_t *out_frac, int64_t sec,
                   uint32_t frac, uint8_t from_res, uint8_t to_res) {
  if (from_res > 9 || to_res > 9 || sec < INT32_MIN) {
    return -1;
  }
  /* A sign-extended 32-bit value means its unsigned self. */
  uint64_t s = sec < 0 ? (uint64_t)(sec + INT64_C(4294967296)) : (uint64_t)sec;
  if (from_res != to_res) {
    uint32_t carry;
    frac = frac_to(frac, from_res, to_res, &carry);
    s += carry; /* s < 2^63 and carry < 2^32: no wrap */
  }
  *out_sec = s;
  *out_frac = frac;
  return 0;
}

int ps__pcap_ts(uint32_t *out_sec, uint32_t *out_frac, int64_t sec,
                uint32_t frac, uint8_t tsres, int nano) {
  uint64_t s;
  uint32_t f;
  uint8_t to_res = nano ? PS_TSRES_NSEC : PS_TSRES_USEC;
  if (file_ts(&s, &f, sec, frac, tsres, to_res) != 0 || s > PS_PCAP_MAX_SEC) {
    return -1;
  }
  *out_sec = (uint32_t)s;
  *out_frac = f;
  return 0;
}

uint64_t ps__pcapng_max_sec(uint32_t frac, uint8_t tsres) {
  return tsres > 9 ? 0 : (UINT64_MAX - frac) / pow10u[tsres];
}

int ps__pcapng_ts(uint64_t *out, int64_t sec, uint32_t frac, uint8_t tsres) {
  uint64_t s;
  uint32_t f;
  if (file_ts(&s, &f, sec, frac, tsres, tsres) != 0 ||
      s > ps__pcapng_max_sec(f, tsres)) {
    return -1;
  }
  *out = s * pow10u[tsres] + f;
  return 0;
}

static void put32h(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16h(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

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

/* --- pcapng --- */

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static size_t opt_size(size_t len) { return 4 + pad4(len); }

static uint8_t *put_opt(uint8_t *p, uint16_t code, const void *v,
                        size_t len) {
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
  uint8_t *end;
  uint8_t *p = block_begin(out, 1, body, &end);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  put16h(p, (uint16_t)(idb->linktype & 0xffff));
  put16h(p + 2, 0);
  put32h(p + 4, idb->snaplen);
  p += 8;
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
  size_t ln = strlen(note);
  size_t body = 12 + (isb->starttime ? opt_size(8) : 0) +
                (isb->endtime ? opt_size(8) : 0) + 4 * opt_size(8) +
                (ln ? opt_size(ln) : 0) + 4;
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
  p = put_opt_u64(p, 4, isb->stats->received);  /* isb_ifrecv */
  p = put_opt_u64(p, 5, isb->stats->ifdropped); /* isb_ifdrop */
  p = put_opt_u64(p, 7, isb->stats->dropped);   /* isb_osdrop */
  p = put_opt_u64(p, 8, isb->stats->captured);  /* isb_usrdeliv */
  if (ln) {
    p = put_opt(p, 1, note, ln); /* opt_comment */
  }
  put32h(p, 0);
  return 0;
}

/* --- reading back --- */

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
    snprintf(why, whylen, "it is pcap version %u.%u, not 2.4",
             get16h(hdr + 4), get16h(hdr + 6));
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

static uint32_t swap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) |
         (v << 24);
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

/* --- names --- */

void ps__name_for_file(char *out, size_t outlen, const char *name) {
  size_t i = 0;
  for (; name[i] != '\0' && i + 1 < outlen; i++) {
    char c = name[i];
    out[i] = (c == '/' || (i == 0 && c == '.')) ? '_' : c;
  }
  out[i] = '\0';
}

/* Appends the strftime expansion of the n bytes at fmt. */
static int append_strftime(ps__buf *out, const char *fmt, size_t n,
                           const struct tm *tm) {
  /* strftime returns 0 both for an empty result and for one too long:
   * a leading byte that is cut off afterwards tells them apart. */
  char *f = malloc(n + 2);
  if (f == NULL) {
    return -1;
  }
  f[0] = 'x';
  memcpy(f + 1, fmt, n);
  f[n + 1] = '\0';
  size_t cap = 2 * n + 64;
  for (;;) {
    uint8_t *p = ps__buf_reserve(out, cap);
    if (p == NULL) {
      free(f);
      return -1;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t k = strftime((char *)p, cap, f, tm);
#pragma GCC diagnostic pop
    if (k > 0) {
      memmove(p, p + 1, k - 1);
      out->len += k - 1;
      free(f);
      return 0;
    }
    if (cap > 65536) {
      free(f);
      return -1;
    }
    cap *= 4;
  }
}

char *ps__path_expand(const char *tmpl, const struct tm *tm,
                      const char *sensor) {
  static const char tag[] = "{sensor}";
  ps__buf out = {0};
  const char *p = tmpl;
  for (;;) {
    const char *q = sensor ? strstr(p, tag) : NULL;
    size_t lit = q ? (size_t)(q - p) : strlen(p);
    if (lit > 0 && append_strftime(&out, p, lit, tm) != 0) {
      goto nomem;
    }
    if (q == NULL) {
      break;
    }
    char name[256];
    ps__name_for_file(name, sizeof(name), sensor);
    if (ps__buf_append(&out, name, strlen(name)) != 0) {
      goto nomem;
    }
    p = q + sizeof(tag) - 1;
  }
  if (ps__buf_append(&out, "", 1) != 0) {
    goto nomem;
  }
  return (char *)out.data;
nomem:
  ps__buf_free(&out);
  return NULL;
}

char *ps__path_insert(const char *path, const char *tag) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  size_t stem = (dot && (!slash || dot > slash + 1)) ? (size_t)(dot - path)
                                                     : strlen(path);
  size_t need = strlen(path) + strlen(tag) + 2;
  char *p = malloc(need);
  if (p != NULL) {
    snprintf(p, need, "%.*s.%s%s", (int)stem, path, tag, path + stem);
  }
  return p;
}
