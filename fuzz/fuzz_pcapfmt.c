/*
 * Fuzz target for the pcap and pcapng encoders (lib/ps_pcapfmt.c,
 * lib/ps_fmt_pcap.c, lib/ps_fmt_pcapng.c), which turn what a sensor sent
 * (a time stamp of any 64-bit seconds and 32-bit fraction, any caplen
 * and len, an interface's resolution) into file bytes. The input is a sequence
 * of 21-byte records:
 *
 *   0       resolution: bits 0-3 (6 or 9 when bit 7 is clear: bit 0 picks
 *           9; else the raw nibble, so 0..15), bit 4: nanosecond pcap
 *   1..8    seconds, signed, big-endian
 *   9..12   fraction, big-endian
 *   13..16  caplen: bits 30-31 pick raw (1x), PS_MAX_CAPLEN - 8 + low
 *           4 bits (01) or the value mod 2048 (00)
 *   17..20  len
 *
 * and a last partial record, if any, is the if_name of an interface
 * block. Every record is converted with ps__ts_convert, encoded as a pcap
 * record (micro and nano) and as an Enhanced Packet Block, and checked
 * against 128-bit arithmetic: a value is refused exactly when the format
 * cannot hold it, what is written is exact (a fraction verbatim in its
 * own resolution, otherwise normalised and, toward microseconds,
 * truncated), a refusal appends nothing, and every length field agrees
 * with the bytes and reads back with the repair scanners' functions.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_pcapfmt.h"

#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 i128;

#define REC 21

static uint8_t payload[PS_MAX_CAPLEN + 8];

static i128 pow10i(unsigned r) {
  i128 v = 1;
  while (r-- > 0) {
    v *= 10;
  }
  return v;
}

/* The exact seconds a file means (sign-extended 32-bit values taken as
 * unsigned), or -1 when none does. */
static i128 file_seconds(int64_t sec) {
  if (sec >= 0) {
    return sec;
  }
  return sec >= INT32_MIN ? (i128)sec + ((i128)1 << 32) : -1;
}

/* The value in units of 10^-to: for the same resolution sec*10^r + frac;
 * between resolutions scaled exactly (up) or rounded down (the lost
 * digits of the fraction are dropped, also before 1970). */
static i128 units(i128 s, uint32_t frac, unsigned from, unsigned to) {
  i128 v = s * pow10i(from) + frac;
  if (to >= from) {
    return v * pow10i(to - from);
  }
  i128 d = pow10i(from - to);
  return v >= 0 ? v / d : -((-v + d - 1) / d);
}

static void check_convert(int64_t sec, uint32_t frac, unsigned from,
                          unsigned to) {
  int64_t s = sec;
  uint32_t f = frac;
  int rc = ps__ts_convert(&s, &f, (uint8_t)from, (uint8_t)to);
  if (from > 9 || to > 9) {
    CHECK(rc == -1 && s == sec && f == frac);
    return;
  }
  if (from == to) {
    CHECK(rc == 0 && s == sec && f == frac);
    return;
  }
  i128 want = (i128)sec + frac / pow10i(from);
  if (want > INT64_MAX) {
    CHECK(rc == -1 && s == sec && f == frac);
    return;
  }
  CHECK(rc == 0 && s == want && f < pow10i(to));
  CHECK((i128)s * pow10i(to) + f == units(sec, frac, from, to));
}

static void check_pcap(const ps_packet *p, unsigned res, int nano) {
  unsigned to = nano ? PS_TSRES_NSEC : PS_TSRES_USEC;
  i128 s = file_seconds(p->ts_sec);
  int fits = res <= 9 && s >= 0;
  i128 want_s = 0, want_f = 0;
  if (fits) {
    if (res == to) {
      want_s = s;
      want_f = p->ts_frac;
    } else {
      i128 v = units(s, p->ts_frac, res, to);
      want_s = v / pow10i(to);
      want_f = v % pow10i(to);
    }
    fits = want_s <= PS_PCAP_MAX_SEC;
  }
  uint32_t os = 0xa5a5a5a5u, of = 0x5a5a5a5au;
  int rc = ps__pcap_ts(&os, &of, p->ts_sec, p->ts_frac, (uint8_t)res, nano);
  CHECK(rc == (fits ? 0 : -1));
  CHECK(fits ? (os == want_s && of == want_f)
             : (os == 0xa5a5a5a5u && of == 0x5a5a5a5au));

  ps__buf b = {0};
  CHECK(ps__buf_append(&b, "x", 1) == 0);
  rc = ps__pcap_record(&b, p, (uint8_t)res, nano);
  if (!fits || p->caplen > PS_MAX_CAPLEN) {
    CHECK(rc == PS_ERR_INVALID && ps__buf_size(&b) == 1);
  } else {
    CHECK(rc == 0);
    const uint8_t *r = ps__buf_head(&b) + 1;
    CHECK(ps__buf_size(&b) == 1 + PS_PCAP_REC_HDR + (size_t)p->caplen);
    CHECK(fuzz_h32(r) == os && fuzz_h32(r + 4) == of);
    CHECK(fuzz_h32(r + 8) == p->caplen && fuzz_h32(r + 12) == p->len);
    CHECK(memcmp(r + PS_PCAP_REC_HDR, p->data, p->caplen) == 0);
    CHECK(ps__pcap_record_size(r) == PS_PCAP_REC_HDR + (uint64_t)p->caplen);
  }
  ps__buf_free(&b);
}

static void check_pcapng(const ps_packet *p, unsigned res) {
  i128 s = file_seconds(p->ts_sec);
  i128 v = res <= 9 && s >= 0 ? s * pow10i(res) + p->ts_frac : -1;
  int fits = v >= 0 && v <= (i128)UINT64_MAX;
  uint64_t ts = 42;
  int rc = ps__pcapng_ts(&ts, p->ts_sec, p->ts_frac, (uint8_t)res);
  CHECK(rc == (fits ? 0 : -1));
  CHECK(fits ? (i128)ts == v : ts == 42);
  if (res <= 9 && s >= 0) {
    CHECK(fits == (s <= (i128)ps__pcapng_max_sec(p->ts_frac, (uint8_t)res)));
  }

  ps__buf b = {0};
  CHECK(ps__buf_append(&b, "xyzw", 4) == 0);
  rc = ps__pcapng_epb(&b, 3, p, (uint8_t)res);
  if (!fits || p->caplen > PS_MAX_CAPLEN) {
    CHECK(rc == PS_ERR_INVALID && ps__buf_size(&b) == 4);
    ps__buf_free(&b);
    return;
  }
  CHECK(rc == 0);
  const uint8_t *e = ps__buf_head(&b) + 4;
  size_t n = ps__buf_size(&b) - 4;
  size_t padded = ((size_t)p->caplen + 3) & ~(size_t)3;
  CHECK(n == 36 + padded);
  int sw = 0;
  CHECK(ps__pcapng_block_len(e, &sw) == n && sw == 0);
  CHECK(ps__pcapng_trailer_len(e + n - 4, 0) == n);
  CHECK(fuzz_h32(e) == 6 && fuzz_h32(e + 8) == 3);
  CHECK((((uint64_t)fuzz_h32(e + 12) << 32) | fuzz_h32(e + 16)) == ts);
  CHECK(fuzz_h32(e + 20) == p->caplen && fuzz_h32(e + 24) == p->len);
  CHECK(memcmp(e + 28, p->data, p->caplen) == 0);
  for (size_t i = p->caplen; i < padded; i++) {
    CHECK(e[28 + i] == 0);
  }
  CHECK(fuzz_h32(e + 28 + padded) == 0); /* opt_endofopt */
  ps__buf_free(&b);
}

/* An interface block and a statistics block from the record's bytes:
 * framing agrees at both ends whatever the strings and counters. */
static void check_blocks(const uint8_t *r, const char *name, unsigned res) {
  ps__buf b = {0};
  ps__pcapng_idb_info idb = {.linktype = fuzz_h32(r + 1),
                             .snaplen = fuzz_h32(r + 5),
                             .tsres = (uint8_t)res,
                             .name = name,
                             .description = name[0] ? name + 1 : NULL};
  ps_capture_stats st = {.captured = fuzz_h32(r + 9),
                         .received = fuzz_h32(r + 13),
                         .overflow = (uint64_t)fuzz_h32(r + 1) << 32,
                         .truncated = fuzz_h32(r + 17)};
  ps__pcapng_isb_info isb = {.iface = fuzz_h32(r + 13),
                             .ts = ((uint64_t)fuzz_h32(r + 1) << 32) |
                                   fuzz_h32(r + 5),
                             .starttime = fuzz_h32(r + 9),
                             .endtime = fuzz_h32(r + 17),
                             .stats = &st};
  CHECK(ps__pcapng_idb(&b, &idb) == 0);
  CHECK(ps__pcapng_isb(&b, &isb) == 0);
  size_t off = 0;
  int sw = 0;
  for (int k = 0; k < 2; k++) {
    CHECK(ps__buf_size(&b) - off >= 12);
    uint32_t n = ps__pcapng_block_len(ps__buf_head(&b) + off, &sw);
    CHECK(n >= 12 && n % 4 == 0 && n <= ps__buf_size(&b) - off);
    CHECK(ps__pcapng_trailer_len(ps__buf_head(&b) + off + n - 4, sw) == n);
    off += n;
  }
  CHECK(off == ps__buf_size(&b));
  ps__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int filled;
  if (!filled) {
    for (size_t i = 0; i < sizeof(payload); i++) {
      payload[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    filled = 1;
  }
  size_t nrec = size / REC;
  char name[REC + 1] = "";
  memcpy(name, data + nrec * REC, size - nrec * REC);
  for (size_t k = 0; k < nrec; k++) {
    const uint8_t *r = data + k * REC;
    unsigned res = (r[0] & 0x80) ? (r[0] & 0x0fu)
                                 : ((r[0] & 1) ? PS_TSRES_NSEC : PS_TSRES_USEC);
    int nano = (r[0] & 0x10) != 0;
    uint64_t su = 0;
    for (int i = 1; i <= 8; i++) {
      su = (su << 8) | r[i];
    }
    uint32_t frac = ((uint32_t)r[9] << 24) | ((uint32_t)r[10] << 16) |
                    ((uint32_t)r[11] << 8) | r[12];
    uint32_t cl = ((uint32_t)r[13] << 24) | ((uint32_t)r[14] << 16) |
                  ((uint32_t)r[15] << 8) | r[16];
    uint32_t caplen = (cl & 0x80000000u)   ? cl
                      : (cl & 0x40000000u) ? PS_MAX_CAPLEN - 8 + (cl & 0xf)
                                           : cl % 2048;
    ps_packet p = {.ts_sec = (int64_t)su,
                   .ts_frac = frac,
                   .caplen = caplen,
                   .len = ((uint32_t)r[17] << 24) | ((uint32_t)r[18] << 16) |
                          ((uint32_t)r[19] << 8) | r[20],
                   .iface = 0,
                   .data = payload};
    check_convert(p.ts_sec, frac, res, PS_TSRES_USEC);
    check_convert(p.ts_sec, frac, res, PS_TSRES_NSEC);
    check_convert(p.ts_sec, frac, PS_TSRES_NSEC, res);
    check_pcap(&p, res, nano);
    check_pcap(&p, res, !nano);
    check_pcapng(&p, res);
    check_blocks(r, name, res);
  }
  return 0;
}
