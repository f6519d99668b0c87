/* Unit tests of the file sinks (lib/ps_sink_file.c and the pieces it
 * is made of) and the formats' byte layouts (lib/ps_pcapfmt.c,
 * lib/ps_fmt_pcap.c, lib/ps_fmt_pcapng.c). Outputs are read back with libpcap,
 * the reader every user has, and pcapng options are parsed here. */
#include "config.h"

#include "unit_util.h"

#include "ps_capture.h"
#include "ps_fileout.h"
#include "ps_pcapfmt.h"
#include "ps_sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char logbuf[8192];

static void log_fn(ps_log_level level, const char *msg, void *ud) {
  (void)ud;
  size_t n = strlen(logbuf);
  snprintf(logbuf + n, sizeof(logbuf) - n, "[%d] %s\n", (int)level, msg);
}

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/ps-test-sink-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  logbuf[0] = '\0';
}

static void teardown(void) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
      }
    }
    closedir(d);
  }
  rmdir(dir);
}

static char *path_in_dir(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
  return buf;
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static uint32_t h32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint16_t h16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static uint64_t h64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static const ps_session_info sess = {
    .id = 1, .sensor = "sens", .peer = "192.0.2.1:4000"};

static ps_interface_info mkifc(uint32_t id, const char *name, uint32_t linktype,
                               uint8_t tsres) {
  ps_interface_info i = {.id = id,
                         .name = name,
                         .linktype = linktype,
                         .snaplen = 65535,
                         .tsres = tsres};
  return i;
}

/* The packets the tests write: sizes and timestamps that probe limits. */
enum { NPKT = 6 };
static uint8_t pkt_data[NPKT][80000];
static const uint32_t pkt_caplen[NPKT] = {60, 0, 1514, 80000, 1, 333};

static ps_packet mkpkt(int k, int64_t sec, uint32_t frac) {
  unit_fill_pattern(pkt_data[k], pkt_caplen[k], (uint32_t)k);
  ps_packet p = {.ts_sec = sec,
                 .ts_frac = frac,
                 .caplen = pkt_caplen[k],
                 .len = pkt_caplen[k] + (k == 1 ? 60 : 0),
                 .iface = 0,
                 .data = pkt_data[k]};
  return p;
}

static void sink_iface(ps_sink *sk, const ps_interface_info *ifc, void **slot) {
  int rc = sk->ops->iface(sk, &sess, ifc, slot);
  ck_assert_msg(rc == 0, "iface: %d %s", rc, sk->errmsg);
}

static void sink_packet(ps_sink *sk, void *slot, const ps_interface_info *ifc,
                        const ps_packet *p) {
  int rc = sk->ops->packet(sk, slot, &sess, ifc, p);
  ck_assert_msg(rc == 0, "packet: %d %s", rc, sk->errmsg);
}

/* Closes sk, which must close cleanly, and frees it. */
static void sink_close(ps_sink *sk) {
  int rc = sk->ops->close(sk);
  ck_assert_msg(rc == 0, "close: %d %s", rc, sk->errmsg);
  ps_sink_free(sk);
}

/* The sink logged a line containing sub. */
static void expect_log(const char *sub) {
  ck_assert_msg(strstr(logbuf, sub) != NULL, "log lacks \"%s\": %s", sub,
                logbuf);
}

static pcap_t *open_read(const char *path, int prec) {
  char e[PCAP_ERRBUF_SIZE];
  pcap_t *p = pcap_open_offline_with_tstamp_precision(path, (u_int)prec, e);
  ck_assert_msg(p != NULL, "libpcap cannot read %s: %s", path, e);
  return p;
}

/* Reads the next packet and compares it with what was written. */
static void expect_pkt(pcap_t *pc, const ps_packet *p, uint32_t sec,
                       uint32_t frac) {
  struct pcap_pkthdr *h;
  const u_char *d;
  int rc = pcap_next_ex(pc, &h, &d);
  ck_assert_msg(rc == 1, "pcap_next_ex: %d %s", rc, pcap_geterr(pc));
  ck_assert_uint_eq(h->caplen, p->caplen);
  ck_assert_uint_eq(h->len, p->len);
  /* libpcap sign-extends the 32-bit fields: compare their bits. */
  ck_assert_uint_eq((uint32_t)h->ts.tv_sec, sec);
  ck_assert_uint_eq((uint32_t)h->ts.tv_usec, frac);
  if (p->caplen > 0) {
    ck_assert_mem_eq(d, p->data, p->caplen);
  }
}

static void expect_end(pcap_t *pc) {
  struct pcap_pkthdr *h;
  const u_char *d;
  ck_assert_int_eq(pcap_next_ex(pc, &h, &d), PCAP_ERROR_BREAK);
}

/* ------------------------------------------------------ ts_convert */

START_TEST(test_ts_convert) {
  int64_t sec = 10;
  uint32_t frac = 123456;
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_USEC, PS_TSRES_NSEC),
                   0);
  ck_assert_int_eq(sec, 10);
  ck_assert_uint_eq(frac, 123456000);

  sec = 10;
  frac = 123456789;
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, PS_TSRES_USEC),
                   0);
  ck_assert_int_eq(sec, 10);
  ck_assert_uint_eq(frac, 123456);

  /* Out of range and converted: normalised into the seconds. */
  sec = 10;
  frac = 2500000;
  ps__ts_convert(&sec, &frac, PS_TSRES_USEC, PS_TSRES_NSEC);
  ck_assert_int_eq(sec, 12);
  ck_assert_uint_eq(frac, 500000000);
  sec = 10;
  frac = 4294967295u;
  ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, PS_TSRES_USEC);
  ck_assert_int_eq(sec, 14);
  ck_assert_uint_eq(frac, 294967);

  /* Out of range, same resolution: kept verbatim. */
  sec = 10;
  frac = 0x80000000u;
  ps__ts_convert(&sec, &frac, PS_TSRES_USEC, PS_TSRES_USEC);
  ck_assert_int_eq(sec, 10);
  ck_assert_uint_eq(frac, 0x80000000u);
  ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, PS_TSRES_NSEC);
  ck_assert_uint_eq(frac, 0x80000000u);
}
END_TEST

/* Issue 9, F1: seconds near INT64_MAX plus the fraction's whole seconds
 * overflowed a signed 64-bit value (undefined behaviour; the receiver
 * died under UBSan). Now the conversion refuses and changes nothing. */
START_TEST(test_ts_convert_overflow) {
  int64_t sec = INT64_MAX;
  uint32_t frac = 1000000000u; /* exactly one second in ns */
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, PS_TSRES_USEC),
                   -1);
  ck_assert_int_eq(sec, INT64_MAX);
  ck_assert_uint_eq(frac, 1000000000u);
  frac = 1000000; /* one second in us */
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_USEC, PS_TSRES_NSEC),
                   -1);
  ck_assert_int_eq(sec, INT64_MAX);
  /* Below a whole second nothing is carried: INT64_MAX itself is fine. */
  frac = 999999999;
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, PS_TSRES_USEC),
                   0);
  ck_assert_int_eq(sec, INT64_MAX);
  ck_assert_uint_eq(frac, 999999);
  /* The largest carry lands exactly on INT64_MAX. */
  sec = INT64_MAX - 4294;
  frac = 4294967295u;
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_USEC, PS_TSRES_NSEC),
                   0);
  ck_assert_int_eq(sec, INT64_MAX);
  ck_assert_uint_eq(frac, 967295000u);
  sec = INT64_MAX - 4293;
  frac = 4294967295u;
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_USEC, PS_TSRES_NSEC),
                   -1);
  /* Negative seconds carry upwards and cannot overflow. */
  sec = INT64_MIN;
  frac = 4294967295u;
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, PS_TSRES_USEC),
                   0);
  ck_assert_int_eq(sec, INT64_MIN + 4);
  /* No resolution beyond nanoseconds. */
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, 10, PS_TSRES_USEC), -1);
  ck_assert_int_eq(ps__ts_convert(&sec, &frac, PS_TSRES_USEC, 255), -1);
}
END_TEST

typedef struct ts_case {
  int64_t sec;
  uint32_t frac;
  uint8_t tsres;
  int nano;
  int ok;
  uint32_t want_sec, want_frac;
} ts_case;

START_TEST(test_pcap_ts_edges) {
  static const ts_case c[] = {
      {0, 0, PS_TSRES_USEC, 0, 1, 0, 0},
      /* The last second of the 32-bit field, either precision. */
      {4294967295ll, 999999, PS_TSRES_USEC, 0, 1, 4294967295u, 999999},
      {4294967295ll, 999999999, PS_TSRES_NSEC, 1, 1, 4294967295u, 999999999},
      {4294967296ll, 0, PS_TSRES_USEC, 0, 0, 0, 0},
      {4294967296ll, 0, PS_TSRES_NSEC, 1, 0, 0, 0},
      /* Same precision: fractions at and above the unit stay verbatim. */
      {4294967295ll, 1000000, PS_TSRES_USEC, 0, 1, 4294967295u, 1000000},
      {4294967295ll, 4294967295u, PS_TSRES_USEC, 0, 1, 4294967295u,
       4294967295u},
      {7, 1000000000u, PS_TSRES_NSEC, 1, 1, 7, 1000000000u},
      /* us -> ns: fraction == unit carries one second, past the end. */
      {4294967295ll, 1000000, PS_TSRES_USEC, 1, 0, 0, 0},
      {4294967294ll, 1000000, PS_TSRES_USEC, 1, 1, 4294967295u, 0},
      {10, 4294967295u, PS_TSRES_USEC, 1, 1, 10 + 4294, 967295000u},
      /* ns -> us: fraction == unit, > unit, the largest. */
      {10, 1000000000u, PS_TSRES_NSEC, 0, 1, 11, 0},
      {10, 1999999999u, PS_TSRES_NSEC, 0, 1, 11, 999999},
      {10, 4294967295u, PS_TSRES_NSEC, 0, 1, 14, 294967},
      {4294967291ll, 4294967295u, PS_TSRES_NSEC, 0, 1, 4294967295u, 294967},
      {4294967292ll, 4294967295u, PS_TSRES_NSEC, 0, 0, 0, 0},
      /* The finding: INT64_MAX and a whole second, both directions. */
      {INT64_MAX, 1000000000u, PS_TSRES_NSEC, 0, 0, 0, 0},
      {INT64_MAX, 1000000, PS_TSRES_USEC, 1, 0, 0, 0},
      {INT64_MAX, 0, PS_TSRES_USEC, 0, 0, 0, 0},
      {INT64_MAX, 0, PS_TSRES_NSEC, 1, 0, 0, 0},
      /* Sign-extended 32-bit seconds mean their unsigned value. */
      {-1, 5, PS_TSRES_USEC, 0, 1, 4294967295u, 5},
      {INT32_MIN, 0, PS_TSRES_NSEC, 1, 1, 2147483648u, 0},
      {-1, 1000000, PS_TSRES_USEC, 1, 0, 0, 0},
      {(int64_t)INT32_MIN - 1, 0, PS_TSRES_USEC, 0, 0, 0, 0},
      {INT64_MIN, 4294967295u, PS_TSRES_NSEC, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    uint32_t s = 0xdeadbeefu, f = 0xdeadbeefu;
    int rc = ps__pcap_ts(&s, &f, c[i].sec, c[i].frac, c[i].tsres, c[i].nano);
    ck_assert_msg(rc == (c[i].ok ? 0 : -1), "case %zu: rc %d", i, rc);
    if (c[i].ok) {
      ck_assert_msg(s == c[i].want_sec && f == c[i].want_frac,
                    "case %zu: %u.%u", i, s, f);
    } else {
      ck_assert_msg(s == 0xdeadbeefu && f == 0xdeadbeefu,
                    "case %zu: output touched", i);
    }
  }
}
END_TEST

START_TEST(test_pcapng_ts) {
  uint64_t v = 0;
  ck_assert_int_eq(ps__pcapng_ts(&v, 3, 5, PS_TSRES_USEC), 0);
  ck_assert_uint_eq(v, 3000005);
  ck_assert_int_eq(ps__pcapng_ts(&v, 3, 5, PS_TSRES_NSEC), 0);
  ck_assert_uint_eq(v, 3000000005ull);
  /* A negative second count is taken as classic pcap's unsigned 32. */
  ck_assert_int_eq(ps__pcapng_ts(&v, -1, 0, PS_TSRES_USEC), 0);
  ck_assert_uint_eq(v, 4294967295ull * 1000000);
  ck_assert_int_eq(ps__pcapng_ts(&v, INT32_MIN, 0, PS_TSRES_USEC), 0);
  ck_assert_uint_eq(v, 2147483648ull * 1000000);
  /* Fractions are verbatim, at and above the unit. */
  ck_assert_int_eq(ps__pcapng_ts(&v, 1, 1000000000u, PS_TSRES_NSEC), 0);
  ck_assert_uint_eq(v, 2000000000ull);
  ck_assert_int_eq(ps__pcapng_ts(&v, 1, 4294967295u, PS_TSRES_NSEC), 0);
  ck_assert_uint_eq(v, 1000000000ull + 4294967295ull);
  /* Past 32-bit seconds pcapng still holds. */
  ck_assert_int_eq(ps__pcapng_ts(&v, 4294967296ll, 0, PS_TSRES_NSEC), 0);
  ck_assert_uint_eq(v, 4294967296000000000ull);
  /* The last timestamp 64 bits hold, in each resolution, and one more. */
  ck_assert_int_eq(ps__pcapng_ts(&v, 18446744073ll, 709551615u, PS_TSRES_NSEC),
                   0);
  ck_assert_uint_eq(v, UINT64_MAX);
  ck_assert_uint_eq(ps__pcapng_max_sec(709551615u, PS_TSRES_NSEC),
                    18446744073ull);
  v = 42;
  ck_assert_int_eq(ps__pcapng_ts(&v, 18446744073ll, 709551616u, PS_TSRES_NSEC),
                   -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, 18446744074ll, 0, PS_TSRES_NSEC), -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, 18446744073709ll, 551615u, PS_TSRES_USEC),
                   0);
  ck_assert_uint_eq(v, UINT64_MAX);
  v = 42;
  ck_assert_int_eq(ps__pcapng_ts(&v, 18446744073709ll, 551616u, PS_TSRES_USEC),
                   -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, INT64_MAX, 0, PS_TSRES_USEC), -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, INT64_MAX, 1000000000u, PS_TSRES_NSEC),
                   -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, (int64_t)INT32_MIN - 1, 0, PS_TSRES_USEC),
                   -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, INT64_MIN, 0, PS_TSRES_NSEC), -1);
  ck_assert_int_eq(ps__pcapng_ts(&v, 0, 0, 10), -1);
  ck_assert_uint_eq(v, 42);
}
END_TEST

/* The encoders (whose signatures are those of c58edc3) refuse what the
 * format cannot hold, append nothing, and bound every length. */
START_TEST(test_pcap_record_refuses) {
  static uint8_t data[PS_MAX_CAPLEN + 1];
  ps__buf b = {0};
  ps_packet p = {.ts_sec = INT64_MAX,
                 .ts_frac = 1000000000u,
                 .caplen = 4,
                 .len = 4,
                 .data = data};
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_NSEC, 0), PS_ERR_INVALID);
  p.ts_frac = 1000000;
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_USEC, 1), PS_ERR_INVALID);
  p.ts_sec = 4294967296ll;
  p.ts_frac = 0;
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_USEC, 0), PS_ERR_INVALID);
  p.ts_sec = (int64_t)INT32_MIN - 1;
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_NSEC, 1), PS_ERR_INVALID);
  p.ts_sec = 1;
  p.caplen = PS_MAX_CAPLEN + 1;
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_USEC, 0), PS_ERR_INVALID);
  ck_assert_uint_eq(ps__buf_size(&b), 0);

  /* What it holds it writes, to the last byte. */
  p.caplen = PS_MAX_CAPLEN;
  p.len = 0xffffffffu;
  p.ts_sec = 4294967295ll;
  p.ts_frac = 4294967295u;
  unit_fill_pattern(data, PS_MAX_CAPLEN, 9);
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_USEC, 0), 0);
  ck_assert_uint_eq(ps__buf_size(&b), PS_PCAP_REC_HDR + PS_MAX_CAPLEN);
  const uint8_t *r = ps__buf_head(&b);
  ck_assert_uint_eq(h32(r), 4294967295u);
  ck_assert_uint_eq(h32(r + 4), 4294967295u);
  ck_assert_uint_eq(h32(r + 8), PS_MAX_CAPLEN);
  ck_assert_uint_eq(h32(r + 12), 0xffffffffu);
  ck_assert_mem_eq(r + PS_PCAP_REC_HDR, data, PS_MAX_CAPLEN);
  ck_assert_uint_eq(ps__pcap_record_size(r), PS_PCAP_REC_HDR + PS_MAX_CAPLEN);
  ps__buf_reset(&b);
  /* ns -> us with a fraction past the unit, up to the last second. */
  p.caplen = 0;
  p.ts_sec = 4294967291ll;
  ck_assert_int_eq(ps__pcap_record(&b, &p, PS_TSRES_NSEC, 0), 0);
  r = ps__buf_head(&b);
  ck_assert_uint_eq(h32(r), 4294967295u);
  ck_assert_uint_eq(h32(r + 4), 294967);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_pcapng_epb_refuses) {
  static uint8_t data[PS_MAX_CAPLEN + 1];
  ps__buf b = {0};
  ps_packet p = {.ts_sec = INT64_MAX,
                 .ts_frac = 1000000000u,
                 .caplen = 4,
                 .len = 4,
                 .data = data};
  ck_assert_int_eq(ps__pcapng_epb(&b, 0, &p, PS_TSRES_NSEC), PS_ERR_INVALID);
  p.ts_frac = 0;
  ck_assert_int_eq(ps__pcapng_epb(&b, 0, &p, PS_TSRES_USEC), PS_ERR_INVALID);
  p.ts_sec = 18446744074ll;
  ck_assert_int_eq(ps__pcapng_epb(&b, 0, &p, PS_TSRES_NSEC), PS_ERR_INVALID);
  p.ts_sec = INT64_MIN;
  ck_assert_int_eq(ps__pcapng_epb(&b, 0, &p, PS_TSRES_USEC), PS_ERR_INVALID);
  p.ts_sec = 1;
  p.caplen = PS_MAX_CAPLEN + 1;
  ck_assert_int_eq(ps__pcapng_epb(&b, 0, &p, PS_TSRES_USEC), PS_ERR_INVALID);
  p.caplen = 0xffffffffu; /* would wrap the 32-bit block length */
  ck_assert_int_eq(ps__pcapng_epb(&b, 0, &p, PS_TSRES_USEC), PS_ERR_INVALID);
  ck_assert_uint_eq(ps__buf_size(&b), 0);

  /* The largest block: lengths agree at both ends, padding is zero. */
  p.caplen = PS_MAX_CAPLEN - 1;
  p.len = 0xffffffffu;
  p.ts_sec = 18446744073ll;
  p.ts_frac = 709551615u;
  unit_fill_pattern(data, PS_MAX_CAPLEN, 3);
  ck_assert_int_eq(ps__pcapng_epb(&b, 7, &p, PS_TSRES_NSEC), 0);
  size_t n = ps__buf_size(&b);
  const uint8_t *e = ps__buf_head(&b);
  ck_assert_uint_eq(n, 36 + PS_MAX_CAPLEN);
  int sw = 0;
  ck_assert_uint_eq(ps__pcapng_block_len(e, &sw), n);
  ck_assert_uint_eq(ps__pcapng_trailer_len(e + n - 4, sw), n);
  ck_assert_uint_eq(h32(e + 8), 7);
  ck_assert_uint_eq(h32(e + 12), 0xffffffffu); /* UINT64_MAX, high */
  ck_assert_uint_eq(h32(e + 16), 0xffffffffu); /* and low */
  ck_assert_uint_eq(h32(e + 20), PS_MAX_CAPLEN - 1);
  ck_assert_uint_eq(h32(e + 24), 0xffffffffu);
  ck_assert_mem_eq(e + 28, data, PS_MAX_CAPLEN - 1);
  ck_assert_uint_eq(e[28 + PS_MAX_CAPLEN - 1], 0);
  ps__buf_free(&b);
}
END_TEST

/* The file sinks say, before any byte is written, which packets their
 * format cannot hold; packet() refuses them too. */
START_TEST(test_sink_check_ts) {
  char path[128];
  for (int ng = 0; ng < 2; ng++) {
    path_in_dir(path, sizeof(path), ng ? "c.pcapng" : "c.pcap");
    ps_sink *sk = NULL;
    ck_assert_int_eq(
        ng ? ps_pcapng_sink(&sk, path, 0) : ps_pcap_sink(&sk, path, 0), 0);
    ps__sink_set_log(sk, log_fn, NULL);
    ck_assert_ptr_nonnull(sk->ops->check);
    ps_interface_info ifn = mkifc(0, "eth0", 1, PS_TSRES_NSEC);
    void *slot = NULL;
    sink_iface(sk, &ifn, &slot);
    ps_packet good = mkpkt(0, 4294967295ll, 999999999);
    ck_assert_int_eq(sk->ops->check(sk, &ifn, &good), 0);
    sink_packet(sk, slot, &ifn, &good);
    ck_assert_int_eq(sk->ops->flush(sk), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);

    ps_packet bad = mkpkt(0, INT64_MAX, 1000000000u);
    int rc = sk->ops->check(sk, &ifn, &bad);
    ck_assert_err(rc, PS_ERR_PROTOCOL, sk->errmsg,
                  ng ? "interface eth0: time stamp 9223372036854775807 s + "
                       "1000000000 nanoseconds cannot be written: pcapng "
                       "output in nanoseconds holds 0 to 18446744072 s"
                     : "interface eth0: time stamp 9223372036854775807 s + "
                       "1000000000 nanoseconds cannot be written: pcap "
                       "output in microseconds holds 0 to 4294967295 s");
    sk->errmsg[0] = '\0';
    rc = sk->ops->packet(sk, slot, &sess, &ifn, &bad);
    ck_assert_err(rc, PS_ERR_PROTOCOL, sk->errmsg, "cannot be written");
    ck_assert_int_eq(sk->ops->flush(sk), 0);
    struct stat st2;
    ck_assert_int_eq(stat(path, &st2), 0);
    ck_assert_int_eq(st2.st_size, st.st_size);
    sk->ops->iface_end(sk, slot, &sess, &ifn, NULL);
    ck_assert_int_eq(sk->ops->close(sk), 0);
    ps_sink_free(sk);
  }
}
END_TEST

/* --------------------------------------------------------- pcap */

START_TEST(test_pcap_micro) {
  char path[128];
  path_in_dir(path, sizeof(path), "m.pcap");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, path, 0), 0);
  ck_assert_ptr_nonnull(sk);
  ck_assert_str_eq(sk->ops->kind, "file");
  ps__sink_set_log(sk, log_fn, NULL);
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  void *slot = NULL;
  sink_iface(sk, &ifc, &slot);
  ps_packet p[NPKT];
  p[0] = mkpkt(0, 1700000000, 999999);
  p[1] = mkpkt(1, 0, 0);                    /* zero-length packet */
  p[2] = mkpkt(2, 2147483648ll, 1);         /* seconds >= 2^31 */
  p[3] = mkpkt(3, 4294967295ll, 500000);    /* 80000 bytes */
  p[4] = mkpkt(4, 1700000001, 0x80000000u); /* out-of-range fraction */
  p[5] = mkpkt(5, 1700000002, 1000000);     /* just out of range */
  for (int i = 0; i < NPKT; i++) {
    sink_packet(sk, slot, &ifc, &p[i]);
  }
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  sink_close(sk);
  ck_assert_str_eq(logbuf, "");

  /* The bytes: file header in host order, then the records. */
  size_t len;
  uint8_t *b = slurp(path, &len);
  size_t want = PS_PCAP_FILE_HDR;
  for (int i = 0; i < NPKT; i++) {
    want += PS_PCAP_REC_HDR + p[i].caplen;
  }
  ck_assert_uint_eq(len, want);
  ck_assert_uint_eq(h32(b), 0xa1b2c3d4u);
  ck_assert_uint_eq(h16(b + 4), 2);
  ck_assert_uint_eq(h16(b + 6), 4);
  ck_assert_uint_eq(h32(b + 16), PS_MAX_CAPLEN);
  ck_assert_uint_eq(h32(b + 20), 1);
  size_t off = PS_PCAP_FILE_HDR;
  const uint32_t secs[NPKT] = {1700000000u, 0,           0x80000000u,
                               0xffffffffu, 1700000001u, 1700000002u};
  const uint32_t fracs[NPKT] = {999999, 0, 1, 500000, 0x80000000u, 1000000};
  for (int i = 0; i < NPKT; i++) {
    ck_assert_uint_eq(h32(b + off), secs[i]);
    ck_assert_uint_eq(h32(b + off + 4), fracs[i]);
    ck_assert_uint_eq(h32(b + off + 8), p[i].caplen);
    ck_assert_uint_eq(h32(b + off + 12), p[i].len);
    off += PS_PCAP_REC_HDR + p[i].caplen;
  }
  free(b);

  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_MICRO);
  ck_assert_int_eq(pcap_datalink(pc), DLT_EN10MB);
  ck_assert_int_eq(pcap_snapshot(pc), (int)PS_MAX_CAPLEN);
  for (int i = 0; i < NPKT; i++) {
    expect_pkt(pc, &p[i], secs[i], fracs[i]);
  }
  expect_end(pc);
  pcap_close(pc);
}
END_TEST

START_TEST(test_pcap_nano) {
  char path[128];
  path_in_dir(path, sizeof(path), "n.pcap");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, path, PS_SINK_NANO), 0);
  ps__sink_set_log(sk, log_fn, NULL);
  ps_interface_info ifn = mkifc(0, "eth0", 1, PS_TSRES_NSEC);
  ps_interface_info ifu = mkifc(1, "eth1", 1, PS_TSRES_USEC);
  void *sn = NULL, *su = NULL;
  sink_iface(sk, &ifn, &sn);
  sink_iface(sk, &ifu, &su);
  /* Same link type: one file. */
  ps__file_mark m[4];
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_uint_eq(sk->ops->marks(sk, m, 4), 1);
  ps_packet p[4];
  p[0] = mkpkt(0, 1700000000, 123456789);
  p[1] = mkpkt(1, 1700000000, 999999999);
  p[2] = mkpkt(2, 1700000000, 654321);        /* usec interface: scaled up */
  p[3] = mkpkt(3, 2147483649ll, 0x80000000u); /* nsec: verbatim */
  sink_packet(sk, sn, &ifn, &p[0]);
  sink_packet(sk, sn, &ifn, &p[1]);
  sink_packet(sk, su, &ifu, &p[2]);
  sink_packet(sk, sn, &ifn, &p[3]);
  sink_close(sk);
  ck_assert_str_eq(logbuf, "");

  size_t len;
  uint8_t *b = slurp(path, &len);
  ck_assert_uint_eq(h32(b), 0xa1b23c4du);
  size_t off = PS_PCAP_FILE_HDR + 2 * PS_PCAP_REC_HDR + 60 + 0;
  ck_assert_uint_eq(h32(b + off + 4), 654321000u);
  free(b);

  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_NANO);
  ck_assert_int_eq(pcap_get_tstamp_precision(pc), PCAP_TSTAMP_PRECISION_NANO);
  expect_pkt(pc, &p[0], 1700000000u, 123456789);
  expect_pkt(pc, &p[1], 1700000000u, 999999999);
  expect_pkt(pc, &p[2], 1700000000u, 654321000);
  expect_pkt(pc, &p[3], 2147483649u, 0x80000000u);
  expect_end(pc);
  pcap_close(pc);
}
END_TEST

START_TEST(test_pcap_nsec_into_micro) {
  char path[128];
  path_in_dir(path, sizeof(path), "nm.pcap");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, path, 0), 0);
  ps__sink_set_log(sk, log_fn, NULL);
  ps_interface_info ifn = mkifc(0, "eth0", 1, PS_TSRES_NSEC);
  void *slot = NULL;
  sink_iface(sk, &ifn, &slot);
  expect_log("sub-microsecond digits are dropped");
  ps_packet p[2];
  p[0] = mkpkt(0, 1700000000, 123456789);
  p[1] = mkpkt(2, 1700000000, 2999999999u); /* out of range: normalised */
  sink_packet(sk, slot, &ifn, &p[0]);
  sink_packet(sk, slot, &ifn, &p[1]);
  sink_close(sk);
  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_MICRO);
  expect_pkt(pc, &p[0], 1700000000u, 123456);
  expect_pkt(pc, &p[1], 1700000002u, 999999);
  expect_end(pc);
  pcap_close(pc);
}
END_TEST

START_TEST(test_pcap_sibling_linktype) {
  char path[128], sib[128];
  path_in_dir(path, sizeof(path), "base.pcap");
  path_in_dir(sib, sizeof(sib), "base.RAW.pcap");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, path, 0), 0);
  ps__sink_set_log(sk, log_fn, NULL);
  ps_interface_info eth = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_interface_info raw = mkifc(1, "tun0", 101, PS_TSRES_USEC); /* RAW */
  ps_interface_info eth2 = mkifc(2, "eth1", 1, PS_TSRES_USEC);
  void *se = NULL, *sr = NULL, *se2 = NULL;
  sink_iface(sk, &eth, &se);
  sink_iface(sk, &raw, &sr);
  sink_iface(sk, &eth2, &se2);
  /* One file per link type. */
  ps__file_mark m[4];
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_uint_eq(sk->ops->marks(sk, m, 4), 2);
  expect_log(sib);
  expect_log("link type RAW (101)");
  ck_assert_int_eq(access(sib, F_OK), 0);
  ps_packet a = mkpkt(0, 100, 1), r = mkpkt(2, 101, 2), c = mkpkt(5, 102, 3);
  sink_packet(sk, se, &eth, &a);
  sink_packet(sk, sr, &raw, &r);
  sink_packet(sk, se2, &eth2, &c);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  sink_close(sk);

  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_MICRO);
  ck_assert_int_eq(pcap_datalink(pc), DLT_EN10MB);
  expect_pkt(pc, &a, 100, 1);
  expect_pkt(pc, &c, 102, 3);
  expect_end(pc);
  pcap_close(pc);
  pc = open_read(sib, PCAP_TSTAMP_PRECISION_MICRO);
  ck_assert_int_eq(pcap_datalink(pc), DLT_RAW);
  expect_pkt(pc, &r, 101, 2);
  expect_end(pc);
  pcap_close(pc);
  /* The file carries LINKTYPE_RAW, not the DLT_ value. */
  size_t len;
  uint8_t *b = slurp(sib, &len);
  ck_assert_uint_eq(h32(b + 20), 101);
  free(b);
}
END_TEST

START_TEST(test_pcap_sibling_names) {
  char path[128], sib[128];
  /* No extension: the link type is appended. */
  path_in_dir(path, sizeof(path), "cap");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, path, 0), 0);
  ps_interface_info eth = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_interface_info sll = mkifc(1, "any", 113, PS_TSRES_USEC);
  ps_interface_info odd = mkifc(2, "x", 0x24000001u, PS_TSRES_USEC);
  void *s0, *s1, *s2;
  sink_iface(sk, &eth, &s0);
  sink_iface(sk, &sll, &s1);
  sink_iface(sk, &odd, &s2);
  ck_assert_int_eq(access(path_in_dir(sib, sizeof(sib), "cap.LINUX_SLL"), F_OK),
                   0);
  /* FCS bits in the link type: named by number. */
  ck_assert_int_eq(
      access(path_in_dir(sib, sizeof(sib), "cap.LINKTYPE_603979777"), F_OK), 0);
  sink_close(sk);
  size_t len;
  uint8_t *b = slurp(sib, &len);
  ck_assert_uint_eq(len, PS_PCAP_FILE_HDR);
  ck_assert_uint_eq(h32(b + 20), 0x24000001u);
  free(b);
}
END_TEST

START_TEST(test_pcap_stdout_second_linktype) {
  char out[128];
  path_in_dir(out, sizeof(out), "stdout.pcap");
  int saved = stdout_to(out);

  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, "-", 0), 0);
  ps_interface_info eth = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_interface_info raw = mkifc(1, "tun0", 101, PS_TSRES_USEC);
  void *s0 = NULL, *s1 = NULL;
  sink_iface(sk, &eth, &s0);
  int rc = sk->ops->iface(sk, &sess, &raw, &s1);
  ck_assert_err(rc, PS_ERR_LINKTYPE, ps_sink_errmsg(sk), "pcapng");
  ck_assert_ptr_nonnull(strstr(ps_sink_errmsg(sk), "sens/tun0"));
  ck_assert_msg(strstr(ps_sink_errmsg(sk), "link type RAW (101)") != NULL,
                "message: %s", ps_sink_errmsg(sk));
  ck_assert_ptr_null(s1);
  ps_packet a = mkpkt(0, 5, 6);
  sink_packet(sk, s0, &eth, &a);
  sink_close(sk);

  stdout_restore(saved);
  pcap_t *pc = open_read(out, PCAP_TSTAMP_PRECISION_MICRO);
  ck_assert_int_eq(pcap_datalink(pc), DLT_EN10MB);
  expect_pkt(pc, &a, 5, 6);
  expect_end(pc);
  pcap_close(pc);
}
END_TEST

START_TEST(test_unwritable_path) {
  const char *bad = "/nonexistent/dir/x.pcap";
  ps_sink *sk = NULL;
  int rc = ps_pcap_sink(&sk, bad, 0);
  ck_assert_ptr_nonnull(sk);
  ck_assert_err(rc, PS_ERR_IO, ps_sink_errmsg(sk),
                "cannot open /nonexistent/dir/x.pcap for writing");
  ps_sink_free(sk);
  sk = NULL;
  rc = ps_pcapng_sink(&sk, bad, 0);
  ck_assert_ptr_nonnull(sk);
  ck_assert_err(rc, PS_ERR_IO, ps_sink_errmsg(sk), bad);
  ps_sink_free(sk);
}
END_TEST

START_TEST(test_invalid_arguments) {
  ps_sink *sk = (ps_sink *)1;
  ck_assert_int_eq(ps_pcap_sink(NULL, "x", 0), PS_ERR_INVALID);
  ck_assert_int_eq(ps_pcap_sink(&sk, NULL, 0), PS_ERR_INVALID);
  ck_assert_int_eq(ps_pcap_sink(&sk, "", 0), PS_ERR_INVALID);
  ck_assert_int_eq(ps_pcap_sink(&sk, "x", 2), PS_ERR_INVALID);
  ck_assert_int_eq(ps_pcapng_sink(&sk, "x", PS_SINK_NANO), PS_ERR_INVALID);
  ck_assert_int_eq(ps_pcapng_sink(&sk, "", 0), PS_ERR_INVALID);
  ps_sink_free(NULL);
  ck_assert_str_eq(ps_sink_errmsg(NULL), "no sink");
}
END_TEST

/* --------------------------------------------------------- pcapng */

typedef struct ng_idb {
  uint16_t linktype;
  uint32_t snaplen;
  char name[256];
  char desc[512];
  int tsresol;
  int fcslen;
} ng_idb;

typedef struct ng_isb {
  uint32_t iface;
  uint64_t start, end, ifrecv, ifdrop, osdrop, usrdeliv, filteraccept;
  int nopts;
  char comment[256];
} ng_isb;

typedef struct ng_file {
  int shb, epb;
  char userappl[128];
  int n_idb, n_isb;
  ng_idb idb[8];
  ng_isb isb[8];
} ng_file;

static uint64_t opt_ts(const uint8_t *v) {
  return ((uint64_t)h32(v) << 32) | h32(v + 4);
}

/* Walks the blocks of a pcapng file, checking their framing. */
static void parse_pcapng(const uint8_t *b, size_t len, ng_file *out) {
  memset(out, 0, sizeof(*out));
  size_t off = 0;
  while (off < len) {
    ck_assert_uint_ge(len - off, 12);
    uint32_t type = h32(b + off), blen = h32(b + off + 4);
    ck_assert_uint_eq(blen % 4, 0);
    ck_assert_uint_le(blen, len - off);
    ck_assert_uint_eq(h32(b + off + blen - 4), blen);
    const uint8_t *body = b + off + 8;
    size_t opt = 0, end = blen - 12;
    if (type == 0x0A0D0D0Au) {
      ck_assert_uint_eq(h32(body), 0x1A2B3C4Du);
      out->shb++;
      opt = 16;
    } else if (type == 1) {
      ck_assert_int_lt(out->n_idb, 8);
      ng_idb *d = &out->idb[out->n_idb++];
      d->linktype = h16(body);
      d->snaplen = h32(body + 4);
      d->tsresol = -1;
      d->fcslen = -1;
      opt = 8;
    } else if (type == 5) {
      ck_assert_int_lt(out->n_isb, 8);
      out->isb[out->n_isb].iface = h32(body);
      out->n_isb++;
      opt = 12;
    } else if (type == 6) {
      out->epb++;
      off += blen;
      continue;
    } else {
      ck_abort_msg("unexpected block type %u", type);
    }
    int saw_end = 0;
    while (opt + 4 <= end) {
      uint16_t code = h16(body + opt), olen = h16(body + opt + 2);
      const uint8_t *v = body + opt + 4;
      ck_assert_uint_le(opt + 4 + olen, end);
      if (code == 0) {
        saw_end = 1;
        break;
      }
      if (type == 0x0A0D0D0Au && code == 4) {
        snprintf(out->userappl, sizeof(out->userappl), "%.*s", olen, v);
      } else if (type == 1) {
        ng_idb *d = &out->idb[out->n_idb - 1];
        if (code == 2) {
          snprintf(d->name, sizeof(d->name), "%.*s", olen, v);
        } else if (code == 3) {
          snprintf(d->desc, sizeof(d->desc), "%.*s", olen, v);
        } else if (code == 9) {
          ck_assert_uint_eq(olen, 1);
          d->tsresol = v[0];
        } else if (code == 13) {
          ck_assert_uint_eq(olen, 1);
          d->fcslen = v[0];
        }
      } else if (type == 5) {
        ng_isb *s = &out->isb[out->n_isb - 1];
        if (code == 1) {
          snprintf(s->comment, sizeof(s->comment), "%.*s", olen, v);
        } else {
          ck_assert_uint_eq(olen, 8);
          s->nopts++;
          switch (code) {
          case 2:
            s->start = opt_ts(v);
            break;
          case 3:
            s->end = opt_ts(v);
            break;
          case 4:
            s->ifrecv = h64(v);
            break;
          case 5:
            s->ifdrop = h64(v);
            break;
          case 6:
            s->filteraccept = h64(v);
            break;
          case 7:
            s->osdrop = h64(v);
            break;
          case 8:
            s->usrdeliv = h64(v);
            break;
          default:
            ck_abort_msg("unexpected ISB option %u", code);
          }
        }
      }
      opt += 4 + ((olen + 3u) & ~3u);
    }
    ck_assert_msg(saw_end, "block type %u without opt_endofopt", type);
    off += blen;
  }
  ck_assert_uint_eq(off, len);
}

START_TEST(test_pcapng) {
  char path[128];
  path_in_dir(path, sizeof(path), "x.pcapng");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcapng_sink(&sk, path, 0), 0);
  ck_assert_str_eq(sk->ops->kind, "file");
  ps_interface_info ifu = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_interface_info ifn = mkifc(1, "wlan0", 1, PS_TSRES_NSEC);
  /* libpcap wants one snaplen for all IDBs, and caplen <= snaplen. */
  ifu.snaplen = ifn.snaplen = PS_MAX_CAPLEN;
  void *su = NULL, *sn = NULL;
  sink_iface(sk, &ifu, &su);
  sink_iface(sk, &ifn, &sn);
  ps_packet p[NPKT];
  p[0] = mkpkt(0, 1700000000, 999999);
  p[1] = mkpkt(1, 1700000000, 123456789);
  p[2] = mkpkt(2, 4294967295ll, 1);
  p[3] = mkpkt(3, 1700000001, 5);
  p[4] = mkpkt(4, 0, 0);
  p[5] = mkpkt(5, 1700000002, 999999999);
  void *slots[NPKT] = {su, sn, su, sn, su, sn};
  ps_interface_info *ifcs[NPKT] = {&ifu, &ifn, &ifu, &ifn, &ifu, &ifn};
  for (int i = 0; i < NPKT; i++) {
    sink_packet(sk, slots[i], ifcs[i], &p[i]);
  }
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ps_capture_stats st = {.captured = 3,
                         .bytes = 81574,
                         .received = 10,
                         .dropped = 4,
                         .ifdropped = 2,
                         .truncated = 1};
  sk->ops->iface_end(sk, su, &sess, &ifu, &st);
  sk->ops->iface_end(sk, sn, &sess, &ifn, NULL); /* no counters: no ISB */
  sink_close(sk);

  size_t len;
  uint8_t *b = slurp(path, &len);
  ng_file ng;
  parse_pcapng(b, len, &ng);
  free(b);
  ck_assert_int_eq(ng.shb, 1);
  ck_assert_int_eq(ng.epb, NPKT);
  ck_assert_msg(strncmp(ng.userappl, "libpacketstreamer ", 18) == 0,
                "shb_userappl %s", ng.userappl);
  ck_assert_int_eq(ng.n_idb, 2);
  ck_assert_uint_eq(ng.idb[0].linktype, 1);
  ck_assert_uint_eq(ng.idb[0].snaplen, PS_MAX_CAPLEN);
  ck_assert_str_eq(ng.idb[0].name, "sens/eth0");
  ck_assert_int_eq(ng.idb[0].tsresol, 6);
  ck_assert_int_eq(ng.idb[0].fcslen, -1);
  ck_assert_ptr_nonnull(strstr(ng.idb[0].desc, "192.0.2.1:4000"));
  ck_assert_str_eq(ng.idb[1].name, "sens/wlan0");
  ck_assert_int_eq(ng.idb[1].tsresol, 9);
  ck_assert_uint_eq(ng.idb[1].snaplen, PS_MAX_CAPLEN);
  ck_assert_int_eq(ng.n_isb, 1);
  ck_assert_uint_eq(ng.isb[0].iface, 0);
  ck_assert_int_eq(ng.isb[0].nopts, 7);
  ck_assert_uint_eq(ng.isb[0].filteraccept, 3); /* nothing sampled out */
  ck_assert_uint_eq(ng.isb[0].ifrecv, 10);
  ck_assert_uint_eq(ng.isb[0].ifdrop, 2);
  ck_assert_uint_eq(ng.isb[0].osdrop, 4);
  ck_assert_uint_eq(ng.isb[0].usrdeliv, 3);
  ck_assert_str_eq(ng.isb[0].comment,
                   "sensor: 0 packets dropped by its replay buffer (receiver "
                   "unreachable or slow), 1 shortened by its file reader");
  /* Wall-clock times in microseconds, start <= end, after 2020. */
  ck_assert_uint_gt(ng.isb[0].start, 1577836800ull * 1000000);
  ck_assert_uint_le(ng.isb[0].start, ng.isb[0].end);

  /* libpcap reads it back, timestamps exact at nanosecond precision. */
  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_NANO);
  ck_assert_int_eq(pcap_datalink(pc), DLT_EN10MB);
  expect_pkt(pc, &p[0], 1700000000u, 999999000);
  expect_pkt(pc, &p[1], 1700000000u, 123456789);
  expect_pkt(pc, &p[2], 4294967295u, 1000);
  expect_pkt(pc, &p[3], 1700000001u, 5);
  expect_pkt(pc, &p[4], 0, 0);
  expect_pkt(pc, &p[5], 1700000002u, 999999999);
  expect_end(pc);
  pcap_close(pc);
}
END_TEST

START_TEST(test_pcapng_fcs_and_linktypes) {
  char path[128];
  path_in_dir(path, sizeof(path), "f.pcapng");
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcapng_sink(&sk, path, 0), 0);
  /* FCS-length bits (bit 26 set, 2 x 16-bit words) become if_fcslen. */
  ps_interface_info a = mkifc(0, "eth0", 0x24000001u, PS_TSRES_USEC);
  ps_interface_info r = mkifc(1, "tun0", 101, PS_TSRES_USEC);
  r.snaplen = 300000; /* every IDB says PS_MAX_CAPLEN, for libpcap */
  void *sa, *sr;
  sink_iface(sk, &a, &sa);
  sink_iface(sk, &r, &sr);
  ps_packet p = mkpkt(0, 1, 2);
  sink_packet(sk, sr, &r, &p);
  ps_capture_stats st = {0};
  sk->ops->iface_end(sk, sa, &sess, &a, &st);
  sk->ops->iface_end(sk, sr, &sess, &r, &st);
  sink_close(sk);
  size_t len;
  uint8_t *b = slurp(path, &len);
  ng_file ng;
  parse_pcapng(b, len, &ng);
  free(b);
  ck_assert_int_eq(ng.n_idb, 2);
  ck_assert_uint_eq(ng.idb[0].linktype, 1);
  ck_assert_int_eq(ng.idb[0].fcslen, 32);
  ck_assert_uint_eq(ng.idb[1].linktype, 101);
  ck_assert_uint_eq(ng.idb[1].snaplen, PS_MAX_CAPLEN);
  ck_assert_int_eq(ng.idb[1].fcslen, -1);
  ck_assert_int_eq(ng.epb, 1);
  ck_assert_int_eq(ng.n_isb, 2);
  ck_assert_uint_eq(ng.isb[1].iface, 1);
  ck_assert_uint_eq(ng.isb[1].ifrecv, 0);
}
END_TEST

/* ------------------------------------------ names, rotation, faults */

/* A capture's "output" template (ps_capture.c): what is refused and
 * why, and the path it gives. */
START_TEST(test_capture_output_template) {
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(ps__capture_output_check("c-{capture}.pcap", NULL, eb), 0);
  ck_assert_int_eq(
      ps__capture_output_check("{sensor}/%Y-{capture}.pcapng", "/d", eb), 0);
  ck_assert_int_eq(ps__capture_output_check("/d/x/c.pcap", "/d/", eb), 0);
  ck_assert_int_eq(ps__capture_output_check("a/../b.pcap", NULL, eb),
                   PS_ERR_INVALID);
  ck_assert_str_eq(eb, "'output' a/../b.pcap: '..' is not allowed (the file "
                       "stays in the receiver's capture directory)");
  ck_assert_int_eq(ps__capture_output_check("..", NULL, eb), PS_ERR_INVALID);
  /* ".." only as a whole component. */
  ck_assert_int_eq(ps__capture_output_check("a..b/..c", NULL, eb), 0);
  ck_assert_int_eq(ps__capture_output_check("/dd/c.pcap", "/d", eb),
                   PS_ERR_INVALID);
  ck_assert_str_eq(eb, "'output' /dd/c.pcap is outside the receiver's "
                       "capture directory /d (give a path relative to it)");
  ck_assert_int_eq(ps__capture_output_check("c-{id}.pcap", NULL, eb),
                   PS_ERR_INVALID);
  ck_assert_str_eq(eb, "'output' c-{id}.pcap: unknown field {id} (known: "
                       "{sensor}, {capture})");
  ck_assert_int_eq(ps__capture_output_check("c\n.pcap", NULL, eb),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps__capture_output_check("d/", NULL, eb), PS_ERR_INVALID);
  ck_assert_int_eq(ps__capture_output_check("", NULL, eb), PS_ERR_INVALID);
  char *p = ps__capture_output_path("/d", "x/c-{capture}-{capture}.pcap", 42);
  ck_assert_str_eq(p, "/d/x/c-42-42.pcap");
  free(p);
  p = ps__capture_output_path("/d", "/d/c-{capture}.pcap", 7);
  ck_assert_str_eq(p, "/d/c-7.pcap");
  free(p);
  /* {capture} in -w: filled in as a file name part. */
  p = ps__path_fill("w-{capture}.{capture}", "{capture}", "../3");
  ck_assert_str_eq(p, "w-_._3._._3");
  free(p);
}
END_TEST

START_TEST(test_path_expand) {
  struct tm tm = {.tm_year = 124,
                  .tm_mon = 0,
                  .tm_mday = 2,
                  .tm_hour = 3,
                  .tm_min = 4,
                  .tm_sec = 5};
  char *p = ps__path_expand("/d/%Y%m%d-%H%M%S.{sensor}.pcap", &tm, "tap1");
  ck_assert_str_eq(p, "/d/20240102-030405.tap1.pcap");
  free(p);
  /* A sensor name is made a file name: no '/', no leading '.', and its
   * '%' is not a conversion. */
  p = ps__path_expand("x-{sensor}-%%-{sensor}", &tm, "../a/%Y");
  ck_assert_str_eq(p, "x-_._a_%Y-%-_._a_%Y");
  free(p);
  p = ps__path_expand("%H", &tm, NULL);
  ck_assert_str_eq(p, "03");
  free(p);
  p = ps__path_expand("{sensor}", &tm, NULL);
  ck_assert_str_eq(p, "{sensor}");
  free(p);
  p = ps__path_insert("dir.v/cap.pcap", "1");
  ck_assert_str_eq(p, "dir.v/cap.1.pcap");
  free(p);
  p = ps__path_insert("dir.v/cap", "RAW");
  ck_assert_str_eq(p, "dir.v/cap.RAW");
  free(p);
  p = ps__path_insert("dir/.hidden", "2");
  ck_assert_str_eq(p, "dir/.hidden.2");
  free(p);
}
END_TEST

static ps_sink *file_sink(ps_file_format fmt, const char *path,
                          const ps_file_sink_options *o) {
  ps_sink *sk = NULL;
  int rc = ps_file_sink(&sk, fmt, path, o, sizeof(*o));
  ck_assert_msg(rc == 0, "ps_file_sink: %d %s", rc,
                sk ? ps_sink_errmsg(sk) : "");
  ps__sink_set_log(sk, log_fn, NULL);
  return sk;
}

static uint64_t file_size(const char *path) {
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

static int count_packets(const char *path) {
  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_MICRO);
  struct pcap_pkthdr *h;
  const u_char *d;
  int n = 0, rc;
  while ((rc = pcap_next_ex(pc, &h, &d)) == 1) {
    n++;
  }
  ck_assert_int_eq(rc, PCAP_ERROR_BREAK);
  pcap_close(pc);
  return n;
}

START_TEST(test_never_overwrite) {
  char path[128], alt[128], alt2[128];
  path_in_dir(path, sizeof(path), "x.pcap");
  path_in_dir(alt, sizeof(alt), "x.1.pcap");
  path_in_dir(alt2, sizeof(alt2), "x.2.pcap");
  FILE *f = fopen(path, "w");
  fputs("precious", f);
  fclose(f);
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, path, NULL);
  /* No interface came: the pcap file is made at the end, header and
   * all. */
  ck_assert_int_eq(access(alt, F_OK), -1);
  sink_close(sk);
  char want[600];
  snprintf(want, sizeof(want), "%s exists: writing to %s instead", path, alt);
  expect_log(want);
  ck_assert_uint_eq(file_size(path), 8);
  ck_assert_int_eq(count_packets(alt), 0);
  /* Again: the next free number. */
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAPNG, path, NULL);
  sink_close(sk);
  ck_assert_int_eq(access(alt2, F_OK), 0);
  ck_assert_uint_eq(file_size(path), 8);
}
END_TEST

START_TEST(test_file_sink_invalid) {
  ps_sink *sk = NULL;
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  ck_assert_int_eq(ps_file_sink(NULL, PS_FORMAT_PCAP, "x", NULL, 0),
                   PS_ERR_INVALID);
  struct {
    ps_file_format fmt;
    const char *path;
    unsigned flags;
    uint64_t bytes;
    unsigned secs, max;
    int split;
    const char *post;
    const char *msg;
  } cases[] = {
      {PS_FORMAT_PCAP, "", 0, 0, 0, 0, 0, NULL, "no output path"},
      {(ps_file_format)7, "x", 0, 0, 0, 0, 0, NULL, "unknown file format"},
      {PS_FORMAT_PCAP, "x", 0x80, 0, 0, 0, 0, NULL, "unknown flags"},
      {PS_FORMAT_PCAPNG, "x", PS_SINK_NANO, 0, 0, 0, 0, NULL,
       "PS_SINK_NANO applies to pcap"},
      {PS_FORMAT_PCAP, "-", 0, 1000, 0, 0, 0, NULL,
       "standard output cannot be rotated"},
      {PS_FORMAT_PCAP, "-", PS_SINK_APPEND, 0, 0, 0, 0, NULL,
       "standard output cannot be rotated"},
      {PS_FORMAT_PCAP, "x", 0, 0, 0, 3, 0, NULL,
       "needs rotation by size or time"},
      {PS_FORMAT_PCAP, "x{sensor}", 0, 0, 0, 0, 0, NULL, "split by sensor"},
      {PS_FORMAT_PCAP, "x", 0, 0, 0, 0, 0, "", "empty post-rotate command"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    o.flags = cases[i].flags;
    o.rotate_bytes = cases[i].bytes;
    o.rotate_seconds = cases[i].secs;
    o.max_files = cases[i].max;
    o.split_by_sensor = cases[i].split;
    o.post_rotate = cases[i].post;
    sk = NULL;
    int rc = ps_file_sink(&sk, cases[i].fmt, cases[i].path, &o, sizeof(o));
    ck_assert_ptr_nonnull(sk);
    ck_assert_err(rc, PS_ERR_INVALID, ps_sink_errmsg(sk), cases[i].msg);
    ps_sink_free(sk);
  }
  /* Options of the wrong size: shorter than the first published struct,
   * or longer with a field set this library does not know. */
  o = (ps_file_sink_options)PS_FILE_SINK_OPTIONS_INIT;
  ck_assert_int_eq(ps_file_sink(&sk, PS_FORMAT_PCAP, "x", &o, 8),
                   PS_ERR_INVALID);
  ck_assert_err(PS_ERR_INVALID, PS_ERR_INVALID, ps_sink_errmsg(sk),
                "pass sizeof(ps_file_sink_options) of a zeroed struct");
  ps_sink_free(sk);
  struct {
    ps_file_sink_options o;
    uint64_t newer;
  } big = {.newer = 1};
  sk = NULL;
  ck_assert_int_eq(ps_file_sink(&sk, PS_FORMAT_PCAP, "x", &big.o, sizeof(big)),
                   PS_ERR_INVALID);
  ps_sink_free(sk);
  o.split_by_sensor = 1;
  sk = NULL;
  ck_assert_err(
      ps_file_sink(&sk, PS_FORMAT_PCAP, "/nonexistent/d/x", &o, sizeof(o)),
      PS_ERR_IO, ps_sink_errmsg(sk),
      "cannot create /nonexistent/d/x.sensor: No such file");
  ps_sink_free(sk);
  ck_assert_int_eq(ps_sink_reopen(NULL), PS_ERR_INVALID);
  ps_sink_callbacks cb = PS_SINK_CALLBACKS_INIT;
  ck_assert_int_eq(ps_callback_sink(&sk, &cb, sizeof(cb), NULL), 0);
  ck_assert_int_eq(ps_sink_reopen(sk), PS_ERR_INVALID);
  ps_sink_free(sk);
}
END_TEST

/* ------------------------------------------------- callback sink */

/* ps_sink_callbacks as a program built against version 1 of the header
 * knows it: it ends after session_end. */

static int n_cb_iface, n_cb_end;
static uint64_t cb_end_captured;

static int cb_interface(const ps_session_info *s, const ps_interface_info *i,
                        void *ud) {
  (void)s;
  (void)ud;
  n_cb_iface++;
  return strcmp(i->name, "refused") == 0;
}

static void cb_interface_end(const ps_session_info *s,
                             const ps_interface_info *i,
                             const ps_capture_stats *last, void *ud) {
  (void)s;
  ck_assert_ptr_eq(ud, &n_cb_end);
  ck_assert_str_eq(i->name, "eth0");
  n_cb_end++;
  cb_end_captured = last ? last->captured : UINT64_MAX;
}

START_TEST(test_callback_versions) {
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_interface_info bad = mkifc(1, "refused", 1, PS_TSRES_USEC);
  ps_capture_stats st = {.captured = 7};
  void *slot = NULL, *slot2 = NULL;
  n_cb_iface = n_cb_end = 0;

  /* A caller built against a newer header passes a longer struct: its
   * tail (callbacks this library does not have) all zero is fine, one
   * set there is refused, never ignored; a struct shorter than the first
   * published one is refused, as is none at all. */
  struct {
    ps_sink_callbacks cb;
    void (*newer)(void);
  } big;
  memset(&big, 0, sizeof(big));
  big.cb.interface = cb_interface;
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_callback_sink(&sk, &big.cb, sizeof(big), &n_cb_end), 0);
  ck_assert_int_eq(sk->ops->iface(sk, &sess, &ifc, &slot), 0);
  sk->ops->iface_end(sk, slot, &sess, &ifc, &st);
  sk->ops->session_end(sk, &sess);
  ck_assert_int_eq(n_cb_iface, 1);
  ck_assert_int_eq(n_cb_end, 0); /* interface_end was NULL */
  ps_sink_free(sk);
  big.newer = (void (*)(void))abort;
  sk = (ps_sink *)&big;
  ck_assert_int_eq(ps_callback_sink(&sk, &big.cb, sizeof(big), NULL),
                   PS_ERR_INVALID);
  ck_assert_ptr_null(sk); /* *out is NULL on every error */
  ck_assert_int_eq(ps_callback_sink(&sk, &big.cb,
                                    offsetof(ps_sink_callbacks, interface_end),
                                    NULL),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps_callback_sink(&sk, NULL, sizeof(big.cb), NULL),
                   PS_ERR_INVALID);

  /* Version 2: interface_end for each interface taken, with its last
   * counters. */
  ps_sink_callbacks cb = PS_SINK_CALLBACKS_INIT;
  cb.interface = cb_interface;
  cb.interface_end = cb_interface_end;
  sk = NULL;
  ck_assert_int_eq(ps_callback_sink(&sk, &cb, sizeof(cb), &n_cb_end), 0);
  slot = NULL;
  ck_assert_int_eq(sk->ops->iface(sk, &sess, &ifc, &slot), 0);
  ck_assert_int_eq(sk->ops->iface(sk, &sess, &bad, &slot2), PS_ERR_REFUSED);
  sk->ops->iface_end(sk, slot2, &sess, &bad, NULL);
  ck_assert_int_eq(n_cb_end, 0);
  sk->ops->iface_end(sk, slot, &sess, &ifc, &st);
  ck_assert_int_eq(n_cb_end, 1);
  ck_assert_uint_eq(cb_end_captured, 7);
  sk->ops->iface_end(sk, slot, &sess, &ifc, NULL);
  ck_assert_uint_eq(cb_end_captured, UINT64_MAX);
  ps_sink_free(sk);
}
END_TEST

/* The on_open calls and marks a journal would see. */
static char opened[8][256];
static uint64_t opened_size[8];
static int n_opened;

static void on_open(void *ud, const char *path, int fd, uint64_t size) {
  (void)ud;
  ck_assert_int_ge(fd, 0);
  ck_assert_int_lt(n_opened, 8);
  snprintf(opened[n_opened], sizeof(opened[0]), "%s", path);
  opened_size[n_opened++] = size;
}

START_TEST(test_write_error_retry) {
  char path[128];
  path_in_dir(path, sizeof(path), "full.pcap");
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, path, NULL);
  n_opened = 0;
  sk->on_open = on_open;
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  void *slot;
  sink_iface(sk, &ifc, &slot);
  ps_packet p0 = mkpkt(0, 100, 1), p3 = mkpkt(3, 101, 2), p2 = mkpkt(2, 102, 3);
  sink_packet(sk, slot, &ifc, &p0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_int_eq(n_opened, 1);
  ck_assert_str_eq(opened[0], path);
  ck_assert_uint_eq(opened_size[0], PS_PCAP_FILE_HDR);
  uint64_t good = PS_PCAP_FILE_HDR + PS_PCAP_REC_HDR + 60;
  ck_assert_uint_eq(file_size(path), good);

  /* The file may grow 1000 bytes more: the 80000-byte record is written
   * in part, then the write fails (EFBIG), as on a full disk. The limit
   * holds for Check's own message file too: no assertion until it is
   * lifted. */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl, old;
  getrlimit(RLIMIT_FSIZE, &old);
  rl = old;
  rl.rlim_cur = good + 1000;
  char msg[PS_ERRMSG_MAX];
  uint64_t size1, size2, mark_size;
  ps__file_mark m[4];
  unsigned n_marks;
  int rc2;
  int rl_rc = setrlimit(RLIMIT_FSIZE, &rl);
  int p1 = sk->ops->packet(sk, slot, &sess, &ifc, &p3);
  int p2rc = sk->ops->packet(sk, slot, &sess, &ifc, &p2);
  int rc = sk->ops->flush(sk);
  snprintf(msg, sizeof(msg), "%s", ps_sink_errmsg(sk));
  struct stat st;
  stat(path, &st);
  size1 = (uint64_t)st.st_size;
  n_marks = sk->ops->marks(sk, m, 4);
  mark_size = m[0].size;
  rc2 = sk->ops->flush(sk);
  stat(path, &st);
  size2 = (uint64_t)st.st_size;
  setrlimit(RLIMIT_FSIZE, &old);
  ck_assert_int_eq(rl_rc, 0);
  ck_assert_int_eq(p1, 0);
  ck_assert_int_eq(p2rc, 0);
  ck_assert_err(rc, PS_ERR_IO, msg, "retried at the next flush");
  ck_assert_msg(strstr(msg, path) != NULL, "%s", msg);
  /* No partial record: cut back to the last whole one. */
  ck_assert_uint_eq(size1, good);
  ck_assert_uint_eq(n_marks, 1);
  ck_assert_str_eq(m[0].path, path);
  ck_assert_uint_eq(mark_size, good);
  /* Still failing: still nothing partial. */
  ck_assert_int_eq(rc2, PS_ERR_IO);
  ck_assert_uint_eq(size2, good);
  ck_assert_int_eq(count_packets(path), 1);

  /* Space again: the kept bytes go out, in order. */
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_uint_eq(sk->ops->marks(sk, m, 4), 1);
  ck_assert_uint_eq(m[0].size, file_size(path));
  sink_close(sk);
  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_MICRO);
  expect_pkt(pc, &p0, 100, 1);
  expect_pkt(pc, &p3, 101, 2);
  expect_pkt(pc, &p2, 102, 3);
  expect_end(pc);
  pcap_close(pc);
}
END_TEST

START_TEST(test_append_repair_pcap) {
  char path[128];
  path_in_dir(path, sizeof(path), "a.pcap");
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.flags = PS_SINK_APPEND;
  /* A missing file is created. */
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, path, &o);
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  void *slot;
  sink_iface(sk, &ifc, &slot);
  ps_packet p[3] = {mkpkt(0, 1, 1), mkpkt(2, 2, 2), mkpkt(5, 3, 3)};
  for (int i = 0; i < 3; i++) {
    sink_packet(sk, slot, &ifc, &p[i]);
  }
  sink_close(sk);
  uint64_t size = file_size(path);
  /* Torn in the middle of the third record. */
  ck_assert_int_eq(truncate(path, (off_t)(size - 100)), 0);
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAP, path, &o);
  n_opened = 0;
  sk->on_open = on_open;
  sink_iface(sk, &ifc, &slot);
  ps_packet q = mkpkt(4, 4, 4);
  sink_packet(sk, slot, &ifc, &q);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_int_eq(n_opened, 1);
  ck_assert_uint_eq(opened_size[0], size - PS_PCAP_REC_HDR - 333);
  sink_close(sk);
  char want[600];
  snprintf(want, sizeof(want), "%s ended in a torn record: cut %u bytes", path,
           PS_PCAP_REC_HDR + 333 - 100);
  expect_log(want);
  pcap_t *pc = open_read(path, PCAP_TSTAMP_PRECISION_MICRO);
  expect_pkt(pc, &p[0], 1, 1);
  expect_pkt(pc, &p[1], 2, 2);
  expect_pkt(pc, &q, 4, 4);
  expect_end(pc);
  pcap_close(pc);

  /* Another link type, precision or no pcap at all: a new name. */
  char alt[128];
  path_in_dir(alt, sizeof(alt), "a.1.pcap");
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAP, path, &o);
  ps_interface_info raw = mkifc(0, "tun0", 101, PS_TSRES_USEC);
  sink_iface(sk, &raw, &slot);
  snprintf(want, sizeof(want),
           "cannot append to %s (it has link type 1, this output 101): "
           "writing to %s instead",
           path, alt);
  expect_log(want);
  sink_close(sk);
  ck_assert_int_eq(count_packets(path), 3);

  path_in_dir(path, sizeof(path), "text.pcap");
  FILE *f = fopen(path, "w");
  fputs("not a capture file at all", f);
  fclose(f);
  o.flags = PS_SINK_APPEND | PS_SINK_NANO;
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAP, path, &o);
  sink_iface(sk, &ifc, &slot);
  expect_log("(it is not a pcap file in this host's byte "
             "order): writing to");
  sink_close(sk);
}
END_TEST

START_TEST(test_append_repair_pcapng) {
  char path[128];
  path_in_dir(path, sizeof(path), "a.pcapng");
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.flags = PS_SINK_APPEND;
  ps_sink *sk = file_sink(PS_FORMAT_PCAPNG, path, &o);
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  void *slot;
  sink_iface(sk, &ifc, &slot);
  ps_packet a = mkpkt(0, 1, 1), b = mkpkt(2, 2, 2);
  sink_packet(sk, slot, &ifc, &a);
  sink_packet(sk, slot, &ifc, &b);
  sink_close(sk);
  uint64_t size = file_size(path);
  ck_assert_int_eq(truncate(path, (off_t)(size - 7)), 0);
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAPNG, path, &o);
  expect_log("ended in a torn record: cut");
  sink_iface(sk, &ifc, &slot);
  ps_packet c = mkpkt(5, 3, 3);
  sink_packet(sk, slot, &ifc, &c);
  sink_close(sk);
  size_t len;
  uint8_t *buf = slurp(path, &len);
  ng_file ng;
  parse_pcapng(buf, len, &ng);
  free(buf);
  ck_assert_int_eq(ng.shb, 2); /* a new section after the repaired one */
  ck_assert_int_eq(ng.epb, 2);
  ck_assert_int_eq(ng.n_idb, 2);

  /* Not pcapng: a new name. */
  path_in_dir(path, sizeof(path), "p.pcapng");
  FILE *f = fopen(path, "w");
  fputs("0123456789abcdef", f);
  fclose(f);
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAPNG, path, &o);
  expect_log("(it is not a pcapng file): writing to");
  ps_sink_free(sk);

  /* Whole blocks that do not begin with a section header are no pcapng
   * file either (found by fuzz_tail): a reader refuses it, so appending
   * a section to it would only make a longer unreadable file. */
  path_in_dir(path, sizeof(path), "n.pcapng");
  uint32_t blk[5] = {6, 20, 0, 0, 20}; /* a packet block, 20 bytes */
  f = fopen(path, "w");
  fwrite(blk, sizeof(blk), 1, f);
  fclose(f);
  size_t n0;
  uint8_t *before = slurp(path, &n0);
  logbuf[0] = '\0';
  sk = file_sink(PS_FORMAT_PCAPNG, path, &o);
  expect_log("(it is not a pcapng file): writing to");
  sink_close(sk);
  uint8_t *after = slurp(path, &len);
  ck_assert_uint_eq(len, n0);
  ck_assert_mem_eq(after, before, n0);
  free(before);
  free(after);
}
END_TEST

START_TEST(test_rotate_size_pcapng) {
  char path[128], f1[128], f2[128];
  path_in_dir(path, sizeof(path), "r.pcapng");
  path_in_dir(f1, sizeof(f1), "r.1.pcapng");
  path_in_dir(f2, sizeof(f2), "r.2.pcapng");
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.rotate_bytes = 1000;
  o.max_files = 2;
  ps_sink *sk = file_sink(PS_FORMAT_PCAPNG, path, &o);
  n_opened = 0;
  sk->on_open = on_open;
  ps_interface_info i0 = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_interface_info i1 = mkifc(1, "eth1", 1, PS_TSRES_NSEC);
  void *s0, *s1;
  sink_iface(sk, &i0, &s0);
  sink_iface(sk, &i1, &s1);
  ps_packet a = mkpkt(2, 1, 1); /* 1514 bytes: each flush rotates */
  sink_packet(sk, s0, &i0, &a);
  sink_packet(sk, s1, &i1, &a);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_int_eq(access(f1, F_OK), 0);
  /* eth0 ends: the next file declares only eth1, as interface 0. */
  ps_capture_stats st = {.captured = 1};
  sk->ops->iface_end(sk, s0, &sess, &i0, &st);
  sink_packet(sk, s1, &i1, &a);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_int_eq(access(f2, F_OK), 0);
  /* At most 2 files: the first goes once the third holds packets. */
  ck_assert_int_eq(access(path, F_OK), 0);
  sink_packet(sk, s1, &i1, &a);
  sink_close(sk);
  ck_assert_int_eq(access(path, F_OK), -1);
  expect_log("at most 2 files are kept");
  ck_assert_int_eq(n_opened, 3);
  ck_assert_str_eq(opened[2], f2);

  size_t len;
  uint8_t *b = slurp(f1, &len);
  ng_file ng;
  parse_pcapng(b, len, &ng);
  free(b);
  ck_assert_int_eq(ng.shb, 1);
  ck_assert_int_eq(ng.n_idb, 2);
  ck_assert_int_eq(ng.epb, 1);
  ck_assert_int_eq(ng.n_isb, 1);
  ck_assert_uint_eq(ng.isb[0].iface, 0);
  b = slurp(f2, &len);
  parse_pcapng(b, len, &ng);
  ck_assert_int_eq(ng.n_idb, 1);
  ck_assert_str_eq(ng.idb[0].name, "sens/eth1");
  ck_assert_int_eq(ng.idb[0].tsresol, 9);
  ck_assert_int_eq(ng.epb, 1);
  ck_assert_uint_eq(h32(b + len - 32 - 1516 + 8), 0); /* EPB iface id */
  free(b);
}
END_TEST

START_TEST(test_reopen_and_split) {
  char tmpl[128], a[128], b[128], b1[128], mark[128], cmd[300];
  path_in_dir(tmpl, sizeof(tmpl), "{sensor}.pcap");
  path_in_dir(a, sizeof(a), "_hidden_x.pcap");
  path_in_dir(b, sizeof(b), "b.pcap");
  path_in_dir(b1, sizeof(b1), "b.1.pcap");
  path_in_dir(mark, sizeof(mark), "closed.txt");
  snprintf(cmd, sizeof(cmd), "echo >>%s", mark);
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.split_by_sensor = 1;
  o.post_rotate = cmd;
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, tmpl, &o);
  ps_session_info sa = sess, sb = sess;
  sa.sensor = ".hidden/x";
  sb.sensor = "b";
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  void *ka, *kb;
  ck_assert_int_eq(sk->ops->iface(sk, &sa, &ifc, &ka), 0);
  ck_assert_int_eq(sk->ops->iface(sk, &sb, &ifc, &kb), 0);
  ck_assert_ptr_ne(ka, kb);
  ps_packet p = mkpkt(0, 1, 1);
  ck_assert_int_eq(sk->ops->packet(sk, ka, &sa, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->packet(sk, kb, &sb, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_int_eq(ps_sink_reopen(sk), 0);
  ck_assert_int_eq(sk->ops->packet(sk, kb, &sb, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_int_eq(access(b1, F_OK), 0);
  ck_assert_int_eq(sk->ops->packet(sk, kb, &sb, &ifc, &p), 0);
  sk->ops->iface_end(sk, ka, &sa, &ifc, NULL);
  sk->ops->iface_end(sk, kb, &sb, &ifc, NULL);
  sink_close(sk);
  /* What was taken before the reopen went to the old files (closed only
   * after they are written); the new one of the sensor that sent nothing
   * since is removed at the end. */
  ck_assert_int_eq(count_packets(a), 1);
  ck_assert_int_eq(count_packets(b), 2);
  ck_assert_int_eq(count_packets(b1), 1);
  ck_assert_int_eq(
      access(path_in_dir(cmd, sizeof(cmd), "_hidden_x.1.pcap"), F_OK), -1);
  /* Three files were closed; each got the command, which runs apart. */
  int lines = 0;
  for (int i = 0; i < 100 && lines < 3; i++) {
    usleep(20000);
    FILE *f = fopen(mark, "r");
    lines = 0;
    if (f != NULL) {
      for (int c; (c = fgetc(f)) != EOF;) {
        lines += c == '\n';
      }
      fclose(f);
    }
  }
  ck_assert_int_eq(lines, 3);
}
END_TEST

/* A sensor that leaves and comes back takes up its file again: the
 * journal must hear of it (on_open) before packets go into it, for it
 * may have forgotten the file when it was closed. */
START_TEST(test_split_resume_announced) {
  char tmpl[128], b[128];
  path_in_dir(tmpl, sizeof(tmpl), "{sensor}.pcap");
  path_in_dir(b, sizeof(b), "b.pcap");
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.split_by_sensor = 1;
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, tmpl, &o);
  n_opened = 0;
  sk->on_open = on_open;
  ps_session_info sb = sess;
  sb.sensor = "b";
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_packet p = mkpkt(0, 1, 1);
  void *kb;
  ck_assert_int_eq(sk->ops->iface(sk, &sb, &ifc, &kb), 0);
  ck_assert_int_eq(sk->ops->packet(sk, kb, &sb, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  sk->ops->iface_end(sk, kb, &sb, &ifc, NULL);
  ck_assert_int_eq(sk->ops->flush(sk), 0); /* closed: the sensor left */
  uint64_t left = file_size(b);
  ck_assert_int_eq(n_opened, 1);
  ck_assert_int_eq(sk->ops->iface(sk, &sb, &ifc, &kb), 0);
  ck_assert_int_eq(n_opened, 2);
  ck_assert_str_eq(opened[1], b);
  ck_assert_uint_eq(opened_size[1], left);
  ck_assert_int_eq(sk->ops->packet(sk, kb, &sb, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  sk->ops->iface_end(sk, kb, &sb, &ifc, NULL);
  sink_close(sk);
  ck_assert_int_eq(count_packets(b), 2);
}
END_TEST

/* A file that can never be created fails its own output only: a sensor
 * whose name makes its file name too long is refused at its interface
 * (PS_ERR_REFUSED, the reason in errmsg); one whose rotated name is too
 * long keeps what was written, fails (failed() 2) and is refused at its
 * next packet; the flush never reports them as a stall (PS_ERR_IO), and
 * the other sensor's output goes on. */
START_TEST(test_final_error_fails_one_output) {
  char tmpl[128], a[128], a1[128], mid_file[512];
  char name_long[256], name_mid[247];
  memset(name_long, 'x', 255);
  name_long[255] = '\0';
  memset(name_mid, 'z', 246); /* all.zzz...zzz.pcap: 255 bytes */
  name_mid[246] = '\0';
  path_in_dir(tmpl, sizeof(tmpl), "all.pcap");
  path_in_dir(a, sizeof(a), "all.a.pcap");
  path_in_dir(a1, sizeof(a1), "all.a.1.pcap");
  snprintf(mid_file, sizeof(mid_file), "%s/all.%s.pcap", dir, name_mid);
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.split_by_sensor = 1;
  o.rotate_bytes = 1; /* a new file after each flush with packets */
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, tmpl, &o);
  ps_session_info sa = sess, sl = sess, sm = sess;
  sa.sensor = "a";
  sl.sensor = name_long;
  sm.sensor = name_mid;
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_packet p = mkpkt(0, 1, 1);
  void *ka, *kl = NULL, *km;
  ck_assert_int_eq(sk->ops->iface(sk, &sa, &ifc, &ka), 0);
  ck_assert_err(sk->ops->iface(sk, &sl, &ifc, &kl), PS_ERR_REFUSED, sk->errmsg,
                "File name too long");
  ck_assert_ptr_null(kl);
  ck_assert_uint_eq(sk->failures, 1);
  ck_assert_int_eq(sk->ops->iface(sk, &sm, &ifc, &km), 0);
  ck_assert_int_eq(sk->ops->packet(sk, ka, &sa, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->packet(sk, km, &sm, &ifc, &p), 0);
  /* Both files are written; m's rotation to all.M.1.pcap fails. */
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  ck_assert_uint_eq(sk->failures, 2);
  char why[PS_ERRMSG_MAX];
  ck_assert_int_eq(sk->ops->failed(sk, ka, why, sizeof(why)), 0);
  ck_assert_int_eq(sk->ops->failed(sk, km, why, sizeof(why)), 2);
  ck_assert_msg(strstr(why, "File name too long") != NULL, "%s", why);
  ck_assert_err(sk->ops->packet(sk, km, &sm, &ifc, &p), PS_ERR_REFUSED,
                sk->errmsg, "File name too long");
  ck_assert_int_eq(sk->ops->packet(sk, ka, &sa, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  /* Another session of the same name joins while m is still on it. */
  void *km2 = NULL;
  ck_assert_err(sk->ops->iface(sk, &sm, &ifc, &km2), PS_ERR_REFUSED, sk->errmsg,
                "File name too long");
  sk->ops->iface_end(sk, ka, &sa, &ifc, NULL);
  sk->ops->iface_end(sk, km, &sm, &ifc, NULL);
  sink_close(sk);
  ck_assert_int_eq(count_packets(a), 1);
  ck_assert_int_eq(count_packets(a1), 1);
  ck_assert_int_eq(count_packets(mid_file), 1);
  expect_log("refusing the sensors written to it");
}
END_TEST

/* A named pipe -w names whose reader left (EPIPE) can never be written
 * again: flush and close say PS_ERR_CLOSED, so the receiver stops. */
START_TEST(test_pipe_reader_gone) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  signal(SIGPIPE, SIG_IGN);
  char path[64];
  snprintf(path, sizeof(path), "/dev/fd/%d", fds[1]);
  ps_sink *sk = file_sink(PS_FORMAT_PCAPNG, path, NULL);
  close(fds[1]);
  char hdr[4];
  ck_assert_int_eq(read(fds[0], hdr, 4), 4); /* the section header */
  close(fds[0]);
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  void *slot;
  sink_iface(sk, &ifc, &slot);
  ps_packet p = mkpkt(0, 1, 1);
  sink_packet(sk, slot, &ifc, &p);
  ck_assert_err(sk->ops->flush(sk), PS_ERR_CLOSED, sk->errmsg, "Broken pipe");
  sink_packet(sk, slot, &ifc, &p);
  ck_assert_int_eq(sk->ops->flush(sk), PS_ERR_CLOSED);
  sk->ops->iface_end(sk, slot, &sess, &ifc, NULL);
  ck_assert_err(sk->ops->close(sk), PS_ERR_CLOSED, sk->errmsg, "Broken pipe");
  ps_sink_free(sk);
}
END_TEST

/* --append never follows a symbolic link, nor continues a second link
 * of another file: the next free name is used, the target unchanged. */
START_TEST(test_append_no_links) {
  char tmpl[128], target[128], link1[128], next[128], hard[128];
  path_in_dir(tmpl, sizeof(tmpl), "{sensor}.pcap");
  path_in_dir(target, sizeof(target), "target");
  path_in_dir(link1, sizeof(link1), "s.pcap");
  path_in_dir(next, sizeof(next), "s.1.pcap");
  path_in_dir(hard, sizeof(hard), "h.pcap");
  int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0644);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(symlink(target, link1), 0);
  ck_assert_int_eq(link(target, hard), 0);
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.split_by_sensor = 1;
  o.flags = PS_SINK_APPEND;
  ps_sink *sk = file_sink(PS_FORMAT_PCAP, tmpl, &o);
  ps_session_info ss = sess, sh = sess;
  ss.sensor = "s";
  sh.sensor = "h";
  ps_interface_info ifc = mkifc(0, "eth0", 1, PS_TSRES_USEC);
  ps_packet p = mkpkt(0, 1, 1);
  void *ks, *kh;
  ck_assert_int_eq(sk->ops->iface(sk, &ss, &ifc, &ks), 0);
  ck_assert_int_eq(sk->ops->iface(sk, &sh, &ifc, &kh), 0);
  ck_assert_int_eq(sk->ops->packet(sk, ks, &ss, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->packet(sk, kh, &sh, &ifc, &p), 0);
  ck_assert_int_eq(sk->ops->flush(sk), 0);
  sk->ops->iface_end(sk, ks, &ss, &ifc, NULL);
  sk->ops->iface_end(sk, kh, &sh, &ifc, NULL);
  sink_close(sk);
  ck_assert_uint_eq(file_size(target), 0);
  ck_assert_int_eq(count_packets(next), 1);
  ck_assert_int_eq(count_packets(path_in_dir(hard, sizeof(hard), "h.1.pcap")),
                   1);
  expect_log("it is a symbolic link, which is never followed");
  expect_log("it has 2 hard links");
}
END_TEST

/* Drops pcapng has no option for (the sensor's buffer, a file reader's
 * cuts) are written as the statistics block's comment. */
START_TEST(test_isb_overflow_comment) {
  ps__buf b = {0};
  ps_capture_stats st = {.captured = 10, .overflow = 5};
  ps__pcapng_isb_info isb = {.iface = 0, .ts = 1, .stats = &st};
  ck_assert_int_eq(ps__pcapng_isb(&b, &isb), 0);
  const uint8_t *p = ps__buf_head(&b);
  size_t n = ps__buf_size(&b);
  uint32_t len1, len2;
  memcpy(&len1, p + 4, 4);
  memcpy(&len2, p + n - 4, 4);
  ck_assert_uint_eq(len1, n);
  ck_assert_uint_eq(len2, n);
  ck_assert_uint_eq(n % 4, 0);
  const char *want = "sensor: 5 packets dropped by its replay buffer";
  ck_assert_ptr_nonnull(memmem(p, n, want, strlen(want)));
  ps__buf_free(&b);
  /* Nothing to say: no comment. */
  st.overflow = 0;
  ck_assert_int_eq(ps__pcapng_isb(&b, &isb), 0);
  ck_assert_ptr_null(memmem(ps__buf_head(&b), ps__buf_size(&b), "sensor:", 7));
  ps__buf_free(&b);
}
END_TEST

/* Sampling is counted apart: the filter accepted captured + sampled
 * out, the user got captured, and a comment says it for readers that
 * show neither. */
START_TEST(test_isb_sampled_out) {
  ps__buf b = {0};
  ps_capture_stats st = {.captured = 25, .sampled_out = 75};
  ps__pcapng_isb_info isb = {.iface = 0, .ts = 1, .stats = &st};
  ck_assert_int_eq(ps__pcapng_isb(&b, &isb), 0);
  const uint8_t *p = ps__buf_head(&b);
  size_t n = ps__buf_size(&b);
  uint32_t len1, len2;
  memcpy(&len1, p + 4, 4);
  memcpy(&len2, p + n - 4, 4);
  ck_assert_uint_eq(len1, n);
  ck_assert_uint_eq(len2, n);
  uint64_t fa = 0, ud = 0;
  int comment = 0;
  for (size_t o = 20; o + 4 <= n - 4;) {
    uint16_t code, olen;
    memcpy(&code, p + o, 2);
    memcpy(&olen, p + o + 2, 2);
    if (code == 0) {
      break;
    }
    if (code == 6) {
      memcpy(&fa, p + o + 4, 8);
    } else if (code == 8) {
      memcpy(&ud, p + o + 4, 8);
    } else if (code == 1) {
      comment = olen == strlen("sampled-out 75") &&
                memcmp(p + o + 4, "sampled-out 75", olen) == 0;
    }
    o += 4 + ((olen + 3u) & ~3u);
  }
  ck_assert_uint_eq(fa, 100);
  ck_assert_uint_eq(ud, 25);
  ck_assert_int_eq(comment, 1);
  ps__buf_free(&b);
}
END_TEST

static Suite *sink_suite(void) {
  Suite *s = suite_create("sink");
  TCase *tc = tcase_create("format");
  tcase_add_test(tc, test_ts_convert);
  tcase_add_test(tc, test_ts_convert_overflow);
  tcase_add_test(tc, test_pcap_ts_edges);
  tcase_add_test(tc, test_pcapng_ts);
  tcase_add_test(tc, test_pcap_record_refuses);
  tcase_add_test(tc, test_pcapng_epb_refuses);
  tcase_add_test(tc, test_isb_overflow_comment);
  tcase_add_test(tc, test_isb_sampled_out);
  suite_add_tcase(s, tc);
  tc = tcase_create("callback");
  tcase_add_test(tc, test_callback_versions);
  suite_add_tcase(s, tc);
  tc = tcase_create("files");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pcap_micro);
  tcase_add_test(tc, test_pcap_nano);
  tcase_add_test(tc, test_pcap_nsec_into_micro);
  tcase_add_test(tc, test_sink_check_ts);
  tcase_add_test(tc, test_pcap_sibling_linktype);
  tcase_add_test(tc, test_pcap_sibling_names);
  tcase_add_test(tc, test_pcap_stdout_second_linktype);
  tcase_add_test(tc, test_unwritable_path);
  tcase_add_test(tc, test_invalid_arguments);
  tcase_add_test(tc, test_pcapng);
  tcase_add_test(tc, test_pcapng_fcs_and_linktypes);
  tcase_add_test(tc, test_path_expand);
  tcase_add_test(tc, test_capture_output_template);
  tcase_add_test(tc, test_never_overwrite);
  tcase_add_test(tc, test_file_sink_invalid);
  tcase_add_test(tc, test_write_error_retry);
  tcase_add_test(tc, test_append_repair_pcap);
  tcase_add_test(tc, test_append_repair_pcapng);
  tcase_add_test(tc, test_rotate_size_pcapng);
  tcase_add_test(tc, test_reopen_and_split);
  tcase_add_test(tc, test_split_resume_announced);
  tcase_add_test(tc, test_final_error_fails_one_output);
  tcase_add_test(tc, test_pipe_reader_gone);
  tcase_add_test(tc, test_append_no_links);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(sink_suite());
}
