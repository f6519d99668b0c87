/*
 * pcapcmp: the integration tests' oracle.
 *
 *   pcapcmp EXPECTED ACTUAL
 *       Reads both files with libpcap, each at its own time-stamp
 *       precision, and compares them packet by packet: bytes, caplen,
 *       len, time stamp (as nanoseconds, seconds and fraction taken as
 *       the files' unsigned 32-bit fields) and link type. Exit 0 and
 *       "N packets identical", or exit 1 naming the first difference.
 *   pcapcmp --iface NAME EXPECTED ACTUAL.pcapng
 *       Same, against only the packets of ACTUAL's interface whose
 *       if_name is NAME (read with a small pcapng parser, since libpcap
 *       neither reports interface ids nor reads every multi-interface
 *       file).
 *   pcapcmp --summary FILE
 *       Prints "PACKETS UDP TCP BYTES" for an Ethernet capture: all
 *       packets, IPv4 UDP and TCP packets among them, and the sum of
 *       caplen.
 *   pcapcmp --list FILE.pcapng
 *       Prints one line per IDB ("idb ID NAME linktype LT snaplen S
 *       tsresol R") and ISB ("isb ID ifrecv A ifdrop B osdrop C usrdeliv
 *       D"), and "epb ID COUNT" per interface.
 *   pcapcmp --isb FILE.pcapng
 *       Prints one line per ISB: "isb IFNAME filteraccept F usrdeliv D"
 *       and, per opt_comment, "isb IFNAME comment TEXT" (readers such as
 *       tshark 4.0 and capinfos show none of these).
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pkt {
  uint64_t ts_ns;
  uint32_t caplen, len;
  int linktype;
  unsigned char *data;
} pkt;

typedef struct pktlist {
  pkt *v;
  size_t n, cap;
} pktlist;

static void push(pktlist *l, uint64_t ts, uint32_t caplen, uint32_t len, int lt,
                 const unsigned char *d) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->v = realloc(l->v, l->cap * sizeof(pkt));
    if (l->v == NULL) {
      fprintf(stderr, "pcapcmp: out of memory\n");
      exit(2);
    }
  }
  pkt *p = &l->v[l->n++];
  p->ts_ns = ts;
  p->caplen = caplen;
  p->len = len;
  p->linktype = lt;
  p->data = malloc(caplen ? caplen : 1);
  memcpy(p->data, d, caplen);
}

static void free_list(pktlist *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].data);
  }
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

static int file_is_nano(const char *path) {
  FILE *f = fopen(path, "rb");
  uint32_t m = 0;
  if (f == NULL || fread(&m, 4, 1, f) != 1) {
    if (f) {
      fclose(f);
    }
    return 0;
  }
  fclose(f);
  return m == 0xa1b23c4du || m == 0x4d3cb2a1u || m == 0x0a0d0d0au;
}

static int read_libpcap(const char *path, pktlist *l) {
  char eb[PCAP_ERRBUF_SIZE];
  int nano = file_is_nano(path);
  pcap_t *p = pcap_open_offline_with_tstamp_precision(
      path, nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO,
      eb);
  if (p == NULL) {
    fprintf(stderr, "pcapcmp: %s: %s\n", path, eb);
    return -1;
  }
  struct pcap_pkthdr *h;
  const u_char *d;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    uint64_t sec = (uint32_t)h->ts.tv_sec;
    uint64_t frac = (uint32_t)h->ts.tv_usec;
    push(l, sec * 1000000000u + frac * (nano ? 1 : 1000), h->caplen, h->len,
         pcap_datalink(p), d);
  }
  if (rc == PCAP_ERROR) {
    fprintf(stderr, "pcapcmp: %s: %s\n", path, pcap_geterr(p));
    pcap_close(p);
    return -1;
  }
  pcap_close(p);
  return 0;
}

/* --- a small pcapng reader (host byte order, as our sinks write) --- */

typedef struct idb {
  char name[512];
  int linktype;
  uint32_t snaplen;
  int tsresol;
  unsigned long long epbs;
} idb;

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return NULL;
  }
  size_t cap = 1 << 20, n = 0;
  unsigned char *b = malloc(cap);
  size_t got;
  while ((got = fread(b + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      cap *= 2;
      b = realloc(b, cap);
    }
  }
  fclose(f);
  *len = n;
  return b;
}

static uint32_t g32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint16_t g16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

static uint64_t pow10u(int e) {
  uint64_t v = 1;
  while (e-- > 0) {
    v *= 10;
  }
  return v;
}

/* Walks the file; with want (non-NULL), collects want's packets into l;
 * with list, prints blocks. */
static int read_pcapng(const char *path, const char *want, pktlist *l,
                       int list) {
  size_t len;
  unsigned char *b = slurp(path, &len);
  if (b == NULL) {
    return -1;
  }
  idb ifs[4096];
  unsigned n_if = 0;
  size_t off = 0;
  if (len < 12 || g32(b) != 0x0a0d0d0au || g32(b + 8) != 0x1a2b3c4du) {
    fprintf(stderr, "pcapcmp: %s: not a host-order pcapng file\n", path);
    free(b);
    return -1;
  }
  while (off + 12 <= len) {
    uint32_t type = g32(b + off), blen = g32(b + off + 4);
    if (blen < 12 || blen % 4 || off + blen > len ||
        g32(b + off + blen - 4) != blen) {
      fprintf(stderr, "pcapcmp: %s: bad block at offset %zu\n", path, off);
      free(b);
      return -1;
    }
    const unsigned char *body = b + off + 8;
    size_t bl = blen - 12;
    if (type == 0x0a0d0d0au) {
      n_if = 0; /* a new section restarts interface numbering */
    } else if (type == 1 && n_if < 4096) {
      idb *d = &ifs[n_if++];
      memset(d, 0, sizeof(*d));
      d->linktype = g16(body);
      d->snaplen = g32(body + 4);
      d->tsresol = 6;
      size_t o = 8;
      while (o + 4 <= bl) {
        uint16_t code = g16(body + o), ol = g16(body + o + 2);
        if (code == 0 || o + 4 + ol > bl) {
          break;
        }
        if (code == 2) {
          size_t k = ol < sizeof(d->name) - 1 ? ol : sizeof(d->name) - 1;
          memcpy(d->name, body + o + 4, k);
          d->name[k] = '\0';
        } else if (code == 9 && ol >= 1) {
          d->tsresol = body[o + 4];
        }
        o += 4 + ((ol + 3u) & ~3u);
      }
      if (list == 1) {
        printf("idb %u %s linktype %d snaplen %u tsresol %d\n", n_if - 1,
               d->name, d->linktype, d->snaplen, d->tsresol);
      }
    } else if (type == 6) {
      uint32_t id = g32(body);
      if (id >= n_if) {
        fprintf(stderr, "pcapcmp: %s: packet for unknown interface %u\n", path,
                id);
        free(b);
        return -1;
      }
      uint64_t ts = ((uint64_t)g32(body + 4) << 32) | g32(body + 8);
      uint32_t caplen = g32(body + 12), plen = g32(body + 16);
      if (20 + (size_t)caplen > bl) {
        fprintf(stderr, "pcapcmp: %s: packet runs past its block\n", path);
        free(b);
        return -1;
      }
      ifs[id].epbs++;
      if (want && strcmp(ifs[id].name, want) == 0) {
        uint64_t unit = pow10u(ifs[id].tsresol);
        uint64_t ns =
            (ts / unit) * 1000000000u + (ts % unit) * (1000000000u / unit);
        push(l, ns, caplen, plen, ifs[id].linktype, body + 20);
      }
    } else if (type == 5 && list) {
      uint32_t id = g32(body);
      unsigned long long v[9] = {0};
      size_t o = 12;
      const char *ifname = id < n_if ? ifs[id].name : "?";
      while (o + 4 <= bl) {
        uint16_t code = g16(body + o), ol = g16(body + o + 2);
        if (code == 0 || o + 4 + ol > bl) {
          break;
        }
        if (code == 1 && list == 2) {
          printf("isb %s comment %.*s\n", ifname, (int)ol,
                 (const char *)body + o + 4);
        }
        if (code < 9 && ol == 8) {
          uint64_t x;
          memcpy(&x, body + o + 4, 8);
          v[code] = x;
        }
        o += 4 + ((ol + 3u) & ~3u);
      }
      if (list == 1) {
        printf("isb %u ifrecv %llu ifdrop %llu osdrop %llu usrdeliv %llu\n", id,
               v[4], v[5], v[7], v[8]);
      } else {
        printf("isb %s filteraccept %llu usrdeliv %llu\n", ifname, v[6], v[8]);
      }
    }
    off += blen;
  }
  if (off != len) {
    fprintf(stderr, "pcapcmp: %s: %zu trailing bytes\n", path, len - off);
    free(b);
    return -1;
  }
  if (list == 1) {
    for (unsigned i = 0; i < n_if; i++) {
      printf("epb %u %llu\n", i, ifs[i].epbs);
    }
  }
  free(b);
  return 0;
}

/* pcapng link types are LINKTYPE_ values, libpcap reports DLT_ values:
 * compare through libpcap's own name table. */
static int same_linktype(int a, int b) {
  if (a == b) {
    return 1;
  }
  const char *na = pcap_datalink_val_to_name(a);
  const char *nb = pcap_datalink_val_to_name(b);
  return (a == 101 && (b == 12 || b == 14)) ||
         (b == 101 && (a == 12 || a == 14)) ||
         (na && nb && strcmp(na, nb) == 0);
}

static int summary(const char *path) {
  pktlist l = {0};
  if (read_libpcap(path, &l) != 0) {
    return 2;
  }
  unsigned long long udp = 0, tcp = 0, bytes = 0;
  for (size_t i = 0; i < l.n; i++) {
    const pkt *p = &l.v[i];
    bytes += p->caplen;
    if (p->caplen >= 34 && p->data[12] == 0x08 && p->data[13] == 0x00) {
      udp += p->data[23] == 17;
      tcp += p->data[23] == 6;
    }
  }
  printf("%zu %llu %llu %llu\n", l.n, udp, tcp, bytes);
  free_list(&l);
  return 0;
}

int main(int argc, char **argv) {
  const char *iface = NULL;
  int argi = 1;
  if (argc == 3 && strcmp(argv[1], "--summary") == 0) {
    return summary(argv[2]);
  }
  if (argc == 3 && strcmp(argv[1], "--list") == 0) {
    return read_pcapng(argv[2], NULL, NULL, 1) == 0 ? 0 : 2;
  }
  if (argc == 3 && strcmp(argv[1], "--isb") == 0) {
    return read_pcapng(argv[2], NULL, NULL, 2) == 0 ? 0 : 2;
  }
  if (argc == 5 && strcmp(argv[1], "--iface") == 0) {
    iface = argv[2];
    argi = 3;
  } else if (argc != 3) {
    fprintf(stderr, "usage: pcapcmp [--iface NAME] EXPECTED ACTUAL | "
                    "pcapcmp --list FILE.pcapng\n");
    return 2;
  }
  pktlist a = {0}, b = {0};
  if (read_libpcap(argv[argi], &a) != 0) {
    return 2;
  }
  if ((iface ? read_pcapng(argv[argi + 1], iface, &b, 0)
             : read_libpcap(argv[argi + 1], &b)) != 0) {
    return 2;
  }
  size_t n = a.n < b.n ? a.n : b.n;
  for (size_t i = 0; i < n; i++) {
    pkt *x = &a.v[i], *y = &b.v[i];
    const char *what = NULL;
    if (!same_linktype(x->linktype, y->linktype)) {
      what = "link type";
    } else if (x->caplen != y->caplen) {
      what = "caplen";
    } else if (x->len != y->len) {
      what = "len";
    } else if (x->ts_ns != y->ts_ns) {
      what = "time stamp";
    } else if (memcmp(x->data, y->data, x->caplen) != 0) {
      what = "bytes";
    }
    if (what) {
      printf("packet %zu differs in %s: expected caplen %u len %u ts %llu "
             "lt %d, got caplen %u len %u ts %llu lt %d\n",
             i + 1, what, x->caplen, x->len, (unsigned long long)x->ts_ns,
             x->linktype, y->caplen, y->len, (unsigned long long)y->ts_ns,
             y->linktype);
      free_list(&a);
      free_list(&b);
      return 1;
    }
  }
  if (a.n != b.n) {
    printf("packet counts differ: expected %zu, got %zu\n", a.n, b.n);
    free_list(&a);
    free_list(&b);
    return 1;
  }
  printf("%zu packets identical\n", a.n);
  free_list(&a);
  free_list(&b);
  return 0;
}
