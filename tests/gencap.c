/*
 * gencap DIR: writes the integration tests' generated captures into DIR,
 * and DIR/MANIFEST.tsv describing them in the layout of
 * tests/data/MANIFEST.tsv, so tests/corpus.sh streams them like the real
 * ones. They cover what no small real capture with a licence that allows
 * copying does (see tests/data/README):
 *
 *   multi-if.pcapng, multi-if-be.pcapng
 *       pcapng (little- and big-endian) with three Ethernet interfaces of
 *       different time-stamp resolutions (usec, nsec, msec), the third
 *       described in the middle of the file; Enhanced Packet Blocks on
 *       all three, a packet cut short (caplen < len), comments, a Name
 *       Resolution Block, Simple Packet Blocks and an Interface Statistics
 *       Block. libpcap reads it.
 *   mixed-linktype.pcapng, mixed-snaplen.pcapng
 *       pcapng with a second interface whose link type (Linux cooked) or
 *       snaplen differs from the first: libpcap refuses both, so the
 *       sensor must refuse them before sending anything.
 *   longer-than-snaplen.pcap
 *       classic pcap (snaplen 200) with records longer than the snaplen,
 *       which libpcap cuts to 200 bytes (the sensor must say so), besides
 *       ordinary cut packets (caplen 200 < len).
 *   jumbo-nsec-be.pcap
 *       big-endian nanosecond classic pcap with a 9018-byte jumbo frame,
 *       a 70000-byte frame (over 65535), a cut jumbo and fractions just
 *       below one second.
 *
 * The same program writes the same bytes on every machine: the contents
 * come from a fixed xorshift generator and fixed time stamps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXPKT 70000u

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}

/* One output file and what MANIFEST.tsv says about it. */
typedef struct out {
  FILE *f;
  const char *dir, *name;
  int be;
  unsigned long packets, truncated, longer, mincap, maxcap;
} out;

static void die(const char *what, const char *name) {
  fprintf(stderr, "gencap: %s %s\n", what, name);
  exit(1);
}

static void out_open(out *o, const char *dir, const char *name, int be) {
  char path[4096];
  memset(o, 0, sizeof(*o));
  o->dir = dir;
  o->name = name;
  o->be = be;
  o->mincap = (unsigned long)-1;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  o->f = fopen(path, "wb");
  if (o->f == NULL) {
    die("cannot create", path);
  }
}

/* Counts a packet record of CAPLEN bytes (as libpcap delivers it) and
 * original length LEN. */
static void out_count(out *o, uint32_t caplen, uint32_t len) {
  o->packets++;
  o->truncated += caplen < len;
  o->mincap = caplen < o->mincap ? caplen : o->mincap;
  o->maxcap = caplen > o->maxcap ? caplen : o->maxcap;
}

/* A growing byte buffer in the file's byte order. */
typedef struct buf {
  uint8_t d[MAXPKT + 1024];
  size_t n;
  int be;
} buf;

static void put8(buf *b, uint8_t v) {
  b->d[b->n++] = v;
}

static void put16(buf *b, uint16_t v) {
  put8(b, (uint8_t)(b->be ? v >> 8 : v));
  put8(b, (uint8_t)(b->be ? v : v >> 8));
}

static void put32(buf *b, uint32_t v) {
  for (int i = 0; i < 4; i++) {
    put8(b, (uint8_t)(v >> (b->be ? 24 - 8 * i : 8 * i)));
  }
}

static void putn(buf *b, const void *p, size_t n) {
  memcpy(b->d + b->n, p, n);
  b->n += n;
}

static void pad4(buf *b) {
  while (b->n % 4) {
    put8(b, 0);
  }
}

/* An Ethernet/IPv4/UDP frame of LEN bytes between 10.9.0.1 and 10.9.0.2,
 * its payload from the generator (the IP header is plausible, not
 * checksummed: nothing here parses it). */
static void frame(uint8_t *p, uint32_t len, uint16_t port) {
  static const uint8_t hdr[14] = {2, 0,    0x5e, 9, 0, 2, 2,
                                  0, 0x5e, 9,    0, 1, 8, 0};
  uint32_t l3 = len > 14 ? len - 14 : 0;
  memcpy(p, hdr, len < 14 ? len : 14);
  for (uint32_t i = 14; i < len; i += 8) {
    uint64_t v = rnd();
    for (uint32_t j = 0; j < 8 && i + j < len; j++) {
      p[i + j] = (uint8_t)(v >> (8 * j));
    }
  }
  if (len >= 42) {
    uint8_t ip[28] = {0x45,
                      0,
                      (uint8_t)(l3 >> 8),
                      (uint8_t)l3,
                      0,
                      1,
                      0x40,
                      0,
                      64,
                      17,
                      0,
                      0,
                      10,
                      9,
                      0,
                      1,
                      10,
                      9,
                      0,
                      2,
                      0xc3,
                      0x50,
                      (uint8_t)(port >> 8),
                      (uint8_t)port,
                      (uint8_t)((l3 - 20) >> 8),
                      (uint8_t)(l3 - 20),
                      0,
                      0};
    memcpy(p + 14, ip, sizeof(ip));
  }
}

/* ------------------------------------------------------------- pcapng */

/* Starts a block of TYPE in B; block_end writes it out. */
static void block_begin(buf *b, int be, uint32_t type) {
  b->n = 0;
  b->be = be;
  put32(b, type);
  put32(b, 0); /* total length, patched by block_end */
}

static void opt(buf *b, uint16_t code, const void *v, uint16_t n) {
  put16(b, code);
  put16(b, n);
  putn(b, v, n);
  pad4(b);
}

static void opt_end(buf *b) {
  put16(b, 0);
  put16(b, 0);
}

static void block_end(buf *b, out *o) {
  pad4(b);
  uint32_t total = (uint32_t)b->n + 4;
  put32(b, total);
  size_t keep = b->n;
  b->n = 4;
  put32(b, total);
  b->n = keep;
  if (fwrite(b->d, 1, b->n, o->f) != b->n) {
    die("cannot write", o->name);
  }
}

static buf B;
static uint8_t pkt[MAXPKT];

static void shb(out *o) {
  block_begin(&B, o->be, 0x0a0d0d0a);
  put32(&B, 0x1a2b3c4d);
  put16(&B, 1);
  put16(&B, 0);
  put32(&B, 0xffffffff); /* section length unknown */
  put32(&B, 0xffffffff);
  opt(&B, 1, "generated by tests/gencap.c", 27); /* opt_comment */
  opt(&B, 4, "gencap", 6);                       /* shb_userappl */
  opt_end(&B);
  block_end(&B, o);
}

/* An IDB; TSRESOL 0 leaves the default (usec) unsaid. */
static void idb(out *o, uint16_t linktype, uint32_t snaplen, uint8_t tsresol,
                const char *name) {
  block_begin(&B, o->be, 1);
  put16(&B, linktype);
  put16(&B, 0);
  put32(&B, snaplen);
  opt(&B, 2, name, (uint16_t)strlen(name)); /* if_name */
  if (tsresol) {
    opt(&B, 9, &tsresol, 1); /* if_tsresol */
  }
  opt_end(&B);
  block_end(&B, o);
}

/* An EPB of interface IFACE: LEN bytes of frame, CAPLEN of them kept,
 * time stamp TS in the interface's units. */
static void epb(out *o, uint32_t iface, uint64_t ts, uint32_t caplen,
                uint32_t len, const char *comment) {
  frame(pkt, len, (uint16_t)(5000 + iface));
  block_begin(&B, o->be, 6);
  put32(&B, iface);
  put32(&B, (uint32_t)(ts >> 32));
  put32(&B, (uint32_t)ts);
  put32(&B, caplen);
  put32(&B, len);
  putn(&B, pkt, caplen);
  pad4(&B);
  if (comment) {
    opt(&B, 1, comment, (uint16_t)strlen(comment));
    opt_end(&B);
  }
  block_end(&B, o);
  out_count(o, caplen, len);
}

/* A Simple Packet Block (interface 0, no time stamp): libpcap keeps at
 * most the interface's snaplen. */
static void spb(out *o, uint32_t len, uint32_t snaplen) {
  uint32_t caplen = len < snaplen ? len : snaplen;
  frame(pkt, len, 5999);
  block_begin(&B, o->be, 3);
  put32(&B, len);
  putn(&B, pkt, caplen);
  block_end(&B, o);
  out_count(o, caplen, len);
}

static void nrb(out *o) {
  static const uint8_t a[4] = {10, 9, 0, 2};
  block_begin(&B, o->be, 4);
  put16(&B, 1); /* nrb_record_ipv4 */
  put16(&B, 4 + 14);
  putn(&B, a, 4);
  putn(&B, "peer.test\0\0\0\0", 14); /* one name, NUL-padded */
  pad4(&B);
  opt_end(&B);
  block_end(&B, o);
}

static void isb(out *o, uint32_t iface, uint64_t ts, uint64_t recv) {
  block_begin(&B, o->be, 5);
  put32(&B, iface);
  put32(&B, (uint32_t)(ts >> 32));
  put32(&B, (uint32_t)ts);
  put16(&B, 4); /* isb_ifrecv */
  put16(&B, 8);
  put32(&B, o->be ? (uint32_t)(recv >> 32) : (uint32_t)recv);
  put32(&B, o->be ? (uint32_t)recv : (uint32_t)(recv >> 32));
  opt_end(&B);
  block_end(&B, o);
}

#define T0 1700000000ULL /* 2023-11-14, in seconds */

static void multi_if(out *o) {
  static const uint32_t sizes[] = {60, 1514, 342, 98, 1200, 64, 750, 9018};
  shb(o);
  idb(o, 1, 262144, 0, "eth0");  /* usec */
  idb(o, 1, 262144, 9, "wlan0"); /* nsec */
  unsigned k = 0;
  for (unsigned i = 0; i < 12; i++, k++) {
    uint32_t len = sizes[k % 8];
    if (i % 2 == 0) {
      epb(o, 0, T0 * 1000000 + 1000 * i + 7, len, len, NULL);
    } else {
      epb(o, 1, T0 * 1000000000 + 1000000ULL * i + 123456789, len, len,
          i == 5 ? "a packet comment" : NULL);
    }
  }
  nrb(o);
  idb(o, 1, 262144, 3, "tap-ms"); /* msec, described mid-file */
  for (unsigned i = 0; i < 24; i++, k++) {
    uint32_t len = sizes[k % 8], caplen = len;
    uint32_t iface = i % 3;
    if (i == 10) {
      caplen = 96; /* cut short by the capturing tool */
    }
    uint64_t ts = iface == 0   ? T0 * 1000000 + 20000 + 1000 * i
                  : iface == 1 ? T0 * 1000000000 + 20000000ULL + 999999 * i
                               : T0 * 1000 + 30 + i;
    epb(o, iface, ts, caplen, len, NULL);
  }
  spb(o, 128, 262144);
  spb(o, 1514, 262144);
  isb(o, 0, T0 * 1000000 + 900000, 14);
}

static void mixed(out *o, int linktype) {
  shb(o);
  idb(o, 1, 262144, 0, "eth0");
  idb(o, linktype ? 113 : 1, linktype ? 262144 : 4000, 0, "other");
  for (unsigned i = 0; i < 6; i++) {
    epb(o, i % 2, T0 * 1000000 + 1000 * i, 200 + 10 * i, 200 + 10 * i, NULL);
  }
}

/* --------------------------------------------------------- classic pcap */

static void pcap_hdr(out *o, int nano, uint32_t snaplen) {
  B.n = 0;
  B.be = o->be;
  put32(&B, nano ? 0xa1b23c4d : 0xa1b2c3d4);
  put16(&B, 2);
  put16(&B, 4);
  put32(&B, 0);
  put32(&B, 0);
  put32(&B, snaplen);
  put32(&B, 1);
  if (fwrite(B.d, 1, B.n, o->f) != B.n) {
    die("cannot write", o->name);
  }
}

/* A record of CAPLEN bytes in the file, libpcap delivering at most
 * SNAPLEN of them. */
static void rec(out *o, uint32_t sec, uint32_t frac, uint32_t caplen,
                uint32_t len, uint32_t snaplen) {
  frame(pkt, len, 6000);
  B.n = 0;
  B.be = o->be;
  put32(&B, sec);
  put32(&B, frac);
  put32(&B, caplen);
  put32(&B, len);
  putn(&B, pkt, caplen);
  if (fwrite(B.d, 1, B.n, o->f) != B.n) {
    die("cannot write", o->name);
  }
  uint32_t got = caplen < snaplen ? caplen : snaplen;
  o->longer += caplen > snaplen;
  out_count(o, got, len);
}

static void longer_than_snaplen(out *o) {
  pcap_hdr(o, 0, 200);
  for (uint32_t i = 0; i < 20; i++) {
    uint32_t len = i % 4 == 0 ? 1514 : 60 + 7 * i;
    uint32_t caplen = len < 200 ? len : 200;
    if (i == 3 || i == 9 || i == 16) {
      caplen = i == 3 ? 300 : i == 9 ? 1000 : 1514; /* over the snaplen */
      len = caplen > len ? caplen : len;
    }
    rec(o, (uint32_t)T0 + i, 1000 * i, caplen, len, 200);
  }
}

static void jumbo(out *o) {
  pcap_hdr(o, 1, 262144);
  rec(o, (uint32_t)T0, 0, 60, 60, 262144);
  rec(o, (uint32_t)T0, 999999999, 9018, 9018, 262144);
  rec(o, (uint32_t)T0 + 1, 1, MAXPKT, MAXPKT, 262144);
  rec(o, (uint32_t)T0 + 1, 500000000, 128, 9018, 262144);
  rec(o, (uint32_t)T0 + 2, 999999998, 1514, 1514, 262144);
  rec(o, (uint32_t)T0 + 3, 123456789, 65535, 65535, 262144);
}

/* ------------------------------------------------------------ manifest */

static FILE *manifest;

static void row(out *o, const char *format, const char *tsres,
                const char *links, unsigned long snaplen, const char *libpcap,
                const char *notes) {
  long size = ftell(o->f);
  if (fclose(o->f) != 0 || size < 0) {
    die("cannot write", o->name);
  }
  if (o->packets == 0) {
    o->mincap = 0;
  }
  fprintf(manifest,
          "%s\ttests/gencap.c\t%s\t%s\t%s\t%s\t%lu\t%lu\t%lu\t%lu\t%s\t%lu\t"
          "0\t%lu\t%ld\t-\t%s\t%s\n",
          o->name, format, o->be ? "big" : "little", tsres, links, o->packets,
          snaplen, o->mincap, o->maxcap, o->truncated ? "y" : "n", o->truncated,
          o->longer, size, libpcap, notes);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gencap DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  char path[4096];
  snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dir);
  manifest = fopen(path, "w");
  if (manifest == NULL) {
    die("cannot create", path);
  }
  fputs("file\tsource\tformat\tbyte_order\tts_resolution\tlink_types\t"
        "packets\tsnaplen\tmin_caplen\tmax_caplen\ttruncated\t"
        "truncated_count\tcaplen_gt_len\tcaplen_gt_snaplen\tsize\tsha256\t"
        "libpcap_1_10_3\tnotes\n",
        manifest);

  out o;
  for (int be = 0; be <= 1; be++) {
    out_open(&o, dir, be ? "multi-if-be.pcapng" : "multi-if.pcapng", be);
    multi_if(&o);
    row(&o, "pcapng", "usec+nsec+msec", "EN10MB/1 x3 [3 IDBs]", 262144,
        "faithful",
        "3 interfaces (usec, nsec, msec; the third described mid-file), "
        "NRB, SPBs, ISB, comments, one packet caplen<len");
  }
  out_open(&o, dir, "mixed-linktype.pcapng", 0);
  mixed(&o, 1);
  row(&o, "pcapng", "usec", "EN10MB/1, LINUX_SLL/113 [2 IDBs]", 262144,
      "DIFFERS: READERR an interface has a type 113 different from the type "
      "of the first interface",
      "LIBPCAP-REFUSES: second interface of another link type");
  out_open(&o, dir, "mixed-snaplen.pcapng", 0);
  mixed(&o, 0);
  row(&o, "pcapng", "usec", "EN10MB/1 x2 [2 IDBs]", 262144,
      "DIFFERS: READERR an interface has a snapshot length 4000 different "
      "from the snapshot length of the first interface",
      "LIBPCAP-REFUSES: second interface of another snaplen");
  out_open(&o, dir, "longer-than-snaplen.pcap", 0);
  longer_than_snaplen(&o);
  row(&o, "pcap", "usec", "EN10MB/1", 200,
      "DIFFERS: data_diff=3; LIBPCAP-LOSSY: caplen > header snaplen",
      "3 records longer than the snaplen 200, cut by libpcap; others "
      "caplen<len");
  out_open(&o, dir, "jumbo-nsec-be.pcap", 1);
  jumbo(&o);
  row(&o, "pcap", "nsec", "EN10MB/1", 262144, "faithful",
      "big-endian nanosecond; jumbo 9018 and 70000 bytes, a cut jumbo, "
      "fractions 999999999");
  if (fclose(manifest) != 0) {
    die("cannot write", path);
  }
  return 0;
}
