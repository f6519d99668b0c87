/* codecbench: zlib ratio and speed on capture files, framed as the
 * library frames them.
 *
 *   codecbench [-l LEVELS] [-t SECONDS] FILE...     (LEVELS: e.g. 1,6,9)
 *
 * Built with -DHAVE_ZSTD (-lzstd) and/or -DHAVE_LZ4 (-llz4) it also
 * measures zstd levels 1 and 3 and LZ4 (default acceleration) on the same
 * batches, for choosing a faster codec; the library itself has only zlib.
 *
 * Each file (anything libpcap reads) is cut into batches the way
 * ps_stream does: per packet a 24-byte record header (iface, ts_sec,
 * ts_frac, caplen, len) and the bytes, a batch sealed before it would pass
 * 256 KiB. Each batch is compressed like lib/ps_codec.c does: one
 * z_stream, deflateReset per batch, deflate(Z_FINISH) into inlen - 1 bytes
 * of room; a batch that does not fit is "stored" (sent as is). Reported
 * per file and level:
 *   zratio  zlib output / input over the batches zlib shrank, the stored
 *           ones counted at zlib's full output size (deflateBound run)
 *   wire    bytes on the wire / input (stored batches at their own size)
 *   stored  batches sent stored
 *   comp    input MB per CPU second, compress (incl. the failed tries)
 *   decomp  input MB per CPU second, inflate of the compressed batches
 * Times are CPU time of this thread (CLOCK_THREAD_CPUTIME_ID), the file
 * repeated until at least -t seconds (default 0.5) have passed. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef HAVE_LZ4
#include <lz4.h>
#endif

#define BATCH_MAX (256 * 1024)
#define PKT_HDR 24

typedef struct {
  uint8_t *data;
  size_t len;
} blob;

static blob *batches;
static size_t n_batches, cap_batches;
static uint8_t *cur;
static size_t cur_len;
static uint64_t total_raw, total_pkts;

static void seal(void) {
  if (cur_len == 0) {
    return;
  }
  if (n_batches == cap_batches) {
    cap_batches = cap_batches ? cap_batches * 2 : 64;
    batches = realloc(batches, cap_batches * sizeof(*batches));
  }
  batches[n_batches].data = malloc(cur_len);
  memcpy(batches[n_batches].data, cur, cur_len);
  batches[n_batches].len = cur_len;
  n_batches++;
  total_raw += cur_len;
  cur_len = 0;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void on_pkt(u_char *u, const struct pcap_pkthdr *h, const u_char *d) {
  (void)u;
  size_t rec = PKT_HDR + h->caplen;
  if (cur_len > 0 && cur_len + rec > BATCH_MAX) {
    seal();
  }
  if (rec > BATCH_MAX) { /* one giant packet: a batch of its own */
    cur = realloc(cur, rec);
  }
  uint8_t *p = cur + cur_len;
  put32(p, 0);
  put32(p + 4, 0);
  put32(p + 8, (uint32_t)h->ts.tv_sec);
  put32(p + 12, (uint32_t)h->ts.tv_usec);
  put32(p + 16, h->caplen);
  put32(p + 20, h->len);
  memcpy(p + PKT_HDR, d, h->caplen);
  cur_len += rec;
  total_pkts++;
  if (cur_len >= BATCH_MAX) {
    seal();
  }
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_level(const char *name, int level, double min_s) {
  z_stream def, inf;
  memset(&def, 0, sizeof(def));
  memset(&inf, 0, sizeof(inf));
  if (deflateInit(&def, level) != Z_OK || inflateInit(&inf) != Z_OK) {
    fprintf(stderr, "zlib init failed\n");
    return 1;
  }
  size_t room_max = deflateBound(&def, BATCH_MAX * 4);
  uint8_t *out = malloc(room_max), *back = malloc(BATCH_MAX * 4);
  uint8_t **zdata = calloc(n_batches, sizeof(uint8_t *));
  size_t *zlen = calloc(n_batches, sizeof(size_t));
  uint64_t wire = 0, zfull = 0, stored = 0;
  /* Pass 1: sizes, and keep the compressed batches for inflate. */
  for (size_t i = 0; i < n_batches; i++) {
    deflateReset(&def);
    def.next_in = batches[i].data;
    def.avail_in = (uInt)batches[i].len;
    def.next_out = out;
    def.avail_out = (uInt)deflateBound(&def, batches[i].len);
    if (deflate(&def, Z_FINISH) != Z_STREAM_END) {
      fprintf(stderr, "deflate failed\n");
      return 1;
    }
    size_t zl = def.total_out;
    zfull += zl;
    if (zl < batches[i].len) {
      wire += zl;
      zdata[i] = malloc(zl);
      memcpy(zdata[i], out, zl);
      zlen[i] = zl;
    } else {
      wire += batches[i].len;
      stored++;
    }
  }
  /* Compress timing, exactly as the library: room = inlen - 1. */
  double t0 = cpu_now(), t;
  uint64_t reps = 0;
  do {
    for (size_t i = 0; i < n_batches; i++) {
      deflateReset(&def);
      def.next_in = batches[i].data;
      def.avail_in = (uInt)batches[i].len;
      def.next_out = out;
      def.avail_out = (uInt)(batches[i].len - 1);
      (void)deflate(&def, Z_FINISH);
    }
    reps++;
    t = cpu_now() - t0;
  } while (t < min_s);
  double comp_mbs = (double)total_raw * (double)reps / t / 1e6;
  /* Decompress timing: the batches that were sent compressed. */
  uint64_t zin_raw = 0;
  for (size_t i = 0; i < n_batches; i++) {
    if (zdata[i]) {
      zin_raw += batches[i].len;
    }
  }
  double decomp_mbs = 0;
  if (zin_raw > 0) {
    t0 = cpu_now();
    reps = 0;
    do {
      for (size_t i = 0; i < n_batches; i++) {
        if (zdata[i] == NULL) {
          continue;
        }
        inflateReset(&inf);
        inf.next_in = zdata[i];
        inf.avail_in = (uInt)zlen[i];
        inf.next_out = back;
        inf.avail_out = (uInt)batches[i].len;
        if (inflate(&inf, Z_FINISH) != Z_STREAM_END ||
            memcmp(back, batches[i].data, batches[i].len) != 0) {
          fprintf(stderr, "inflate mismatch\n");
          return 1;
        }
      }
      reps++;
      t = cpu_now() - t0;
    } while (t < min_s);
    decomp_mbs = (double)zin_raw * (double)reps / t / 1e6;
  }
  printf("| %s | %llu | %.2f | zlib %d | %.3f | %.3f | %zu/%zu | %.1f | ", name,
         (unsigned long long)total_pkts, (double)total_raw / 1e6, level,
         (double)zfull / (double)total_raw, (double)wire / (double)total_raw,
         (size_t)stored, n_batches, comp_mbs);
  if (zin_raw > 0) {
    printf("%.1f |\n", decomp_mbs);
  } else {
    printf("- |\n");
  }
  for (size_t i = 0; i < n_batches; i++) {
    free(zdata[i]);
  }
  free(zdata);
  free(zlen);
  free(out);
  free(back);
  deflateEnd(&def);
  inflateEnd(&inf);
  return 0;
}

#if defined(HAVE_ZSTD) || defined(HAVE_LZ4)
/* kind 'z': zstd at level; kind 'l': lz4. Same table columns as zlib. */
static int bench_other(const char *name, char kind, int level, double min_s) {
  size_t room_max = 2 * BATCH_MAX * 4 + 65536;
  uint8_t *out = malloc(room_max), *back = malloc(BATCH_MAX * 4);
  uint8_t **zdata = calloc(n_batches, sizeof(uint8_t *));
  size_t *zlen = calloc(n_batches, sizeof(size_t));
  uint64_t wire = 0, zfull = 0, stored = 0, zin_raw = 0;
#ifdef HAVE_ZSTD
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  ZSTD_DCtx *dc = ZSTD_createDCtx();
#endif
  const char *label = kind == 'z' ? "zstd" : "lz4";
  double t0, t = 0;
  uint64_t reps = 0;
  t0 = cpu_now();
  do {
    for (size_t i = 0; i < n_batches; i++) {
      size_t zl = 0;
#ifdef HAVE_ZSTD
      if (kind == 'z') {
        zl = ZSTD_compressCCtx(cc, out, room_max, batches[i].data,
                               batches[i].len, level);
        if (ZSTD_isError(zl)) {
          return 1;
        }
      }
#endif
#ifdef HAVE_LZ4
      if (kind == 'l') {
        zl = (size_t)LZ4_compress_default((const char *)batches[i].data,
                                          (char *)out, (int)batches[i].len,
                                          (int)room_max);
      }
#endif
      if (reps == 0) {
        zfull += zl;
        if (zl < batches[i].len) {
          wire += zl;
          zdata[i] = malloc(zl);
          memcpy(zdata[i], out, zl);
          zlen[i] = zl;
          zin_raw += batches[i].len;
        } else {
          wire += batches[i].len;
          stored++;
        }
      }
    }
    reps++;
    t = cpu_now() - t0;
  } while (t < min_s);
  double comp_mbs = (double)total_raw * (double)reps / t / 1e6;
  double decomp_mbs = 0;
  if (zin_raw > 0) {
    t0 = cpu_now();
    reps = 0;
    do {
      for (size_t i = 0; i < n_batches; i++) {
        if (zdata[i] == NULL) {
          continue;
        }
        size_t got = 0;
#ifdef HAVE_ZSTD
        if (kind == 'z') {
          got =
              ZSTD_decompressDCtx(dc, back, batches[i].len, zdata[i], zlen[i]);
        }
#endif
#ifdef HAVE_LZ4
        if (kind == 'l') {
          got =
              (size_t)LZ4_decompress_safe((const char *)zdata[i], (char *)back,
                                          (int)zlen[i], (int)batches[i].len);
        }
#endif
        if (got != batches[i].len ||
            memcmp(back, batches[i].data, batches[i].len) != 0) {
          fprintf(stderr, "%s: decompress mismatch\n", label);
          return 1;
        }
      }
      reps++;
      t = cpu_now() - t0;
    } while (t < min_s);
    decomp_mbs = (double)zin_raw * (double)reps / t / 1e6;
  }
  char lv[32];
  snprintf(lv, sizeof(lv), kind == 'z' ? "zstd %d" : "lz4", level);
  printf("| %s | %llu | %.2f | %s | %.3f | %.3f | %zu/%zu | %.1f | ", name,
         (unsigned long long)total_pkts, (double)total_raw / 1e6, lv,
         (double)zfull / (double)total_raw, (double)wire / (double)total_raw,
         (size_t)stored, n_batches, comp_mbs);
  if (zin_raw > 0) {
    printf("%.1f |\n", decomp_mbs);
  } else {
    printf("- |\n");
  }
  for (size_t i = 0; i < n_batches; i++) {
    free(zdata[i]);
  }
  free(zdata);
  free(zlen);
  free(out);
  free(back);
#ifdef HAVE_ZSTD
  ZSTD_freeCCtx(cc);
  ZSTD_freeDCtx(dc);
#endif
  return 0;
}
#endif

int main(int argc, char **argv) {
  int levels[10], n_levels = 0;
  double min_s = 0.5;
  int c;
  const char *lv = "1,6,9";
  while ((c = getopt(argc, argv, "l:t:")) != -1) {
    if (c == 'l') {
      lv = optarg;
    } else if (c == 't') {
      min_s = atof(optarg);
    } else {
      fprintf(stderr, "usage: codecbench [-l 1,6,9] [-t SECONDS] FILE...\n");
      return 2;
    }
  }
  for (const char *p = lv; *p && n_levels < 10;) {
    levels[n_levels++] = atoi(p);
    p = strchr(p, ',');
    if (p == NULL) {
      break;
    }
    p++;
  }
  if (optind >= argc) {
    fprintf(stderr, "usage: codecbench [-l 1,6,9] [-t SECONDS] FILE...\n");
    return 2;
  }
  printf("| file | packets | input MB | codec/level | zratio | wire ratio | "
         "stored batches | compress MB/s | decompress MB/s |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  cur = malloc(BATCH_MAX);
  for (int a = optind; a < argc; a++) {
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[a], eb);
    if (p == NULL) {
      fprintf(stderr, "codecbench: %s: %s\n", argv[a], eb);
      return 1;
    }
    n_batches = 0;
    total_raw = total_pkts = 0;
    cur_len = 0;
    if (pcap_loop(p, -1, on_pkt, NULL) == PCAP_ERROR) {
      fprintf(stderr, "codecbench: %s: %s\n", argv[a], pcap_geterr(p));
    }
    seal();
    pcap_close(p);
    const char *base = strrchr(argv[a], '/');
    base = base ? base + 1 : argv[a];
    for (int l = 0; l < n_levels; l++) {
      if (bench_level(base, levels[l], min_s) != 0) {
        return 1;
      }
    }
#ifdef HAVE_ZSTD
    if (bench_other(base, 'z', 1, min_s) || bench_other(base, 'z', 3, min_s)) {
      return 1;
    }
#endif
#ifdef HAVE_LZ4
    if (bench_other(base, 'l', 1, min_s)) {
      return 1;
    }
#endif
    for (size_t i = 0; i < n_batches; i++) {
      free(batches[i].data);
    }
  }
  return 0;
}
