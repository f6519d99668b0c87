/* loadgen: many sensor sessions in one process, through the public API.
 *
 *   loadgen [-n STREAMS] [-p TOTAL_PPS] [-d SECONDS] [-i IDLE_SECONDS]
 *           [-c none|zlib|lz4] [-k KEYFILE] [-b BATCH_DELAY_MS]
 *           [-t CONNECT_SECONDS] [-v] HOST PORT
 *
 * Connects STREAMS streams (default 1000) to the receiver at HOST:PORT one
 * after the other (ps_stream_create/connect/add_interface_options, with
 * the shared key of KEYFILE when given, as ps-sensor --auth-key-file
 * does; each stream is a sensor of its own, "loadgen-I", with one
 * interface "lg0" and its description; -t: how long ps_stream_connect
 * may retry, default 10 s; -b: ps_stream_set_batch_delay_ms; -m:
 * ps_stream_set_batch_max_delay_ms), prints
 * "loadgen: connected N streams" on stderr, stays idle IDLE_SECONDS (default
 * 0; a harness measures the receiver's idle memory then), then sends
 * TOTAL_PPS packets per second in total (default 20000), spread evenly over
 * the streams and in time (stream i sends every STREAMS/TOTAL_PPS s, offset
 * by i/TOTAL_PPS), for SECONDS (default 10), round-robin in this one thread;
 * due batches are flushed with ps_stream_poll(s, 0). Then every stream is
 * closed cleanly (ps_stream_close waits for the receiver's confirmation
 * that it wrote everything).
 *
 * Frames: Ethernet/IPv4/UDP, 64..1514 bytes (mix of sizes like genmix),
 * random payload. Prints packets sent per stream (min/median/max; every
 * stream with -v) and in total, and exits 1 if any stream failed (connect,
 * send, poll or close), 2 on a usage error.
 */
#include <packetstreamer/packetstreamer.h>

/* Weak, so that loadgen also builds against a library from before it
 * (bench/scale.sh measures older builds for comparison). */
#pragma weak ps_stream_set_batch_max_delay_ms

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

typedef struct lg_stream {
  ps_stream *s;
  uint32_t iface;
  int failed;
  const char *why;
  uint64_t sent;
  double next;      /* next send time, seconds since start */
  double next_poll; /* next poll for the receiver's acks */
} lg_stream;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t xr(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void fail(lg_stream *g, int rc) {
  if (!g->failed) {
    g->failed = rc ? rc : -1;
    g->why = ps_stream_errmsg(g->s);
  }
}

int main(int argc, char **argv) {
  long n = 1000, idle = 0;
  double pps = 20000, secs = 10;
  int verbose = 0;
  const char *keyfile = NULL;
  long batch_delay = -1, max_delay = -1;
  long connect_ms = 10000;
  ps_codec codec =
      ps_codec_available(PS_CODEC_LZ4) ? PS_CODEC_LZ4 : PS_CODEC_ZLIB;
  int a = 1;
  for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
    const char *o = argv[a];
    const char *v = a + 1 < argc ? argv[a + 1] : NULL;
    if (!strcmp(o, "-v")) {
      verbose = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "loadgen: %s needs a value\n", o);
      return 2;
    }
    a++;
    if (!strcmp(o, "-n")) {
      n = strtol(v, NULL, 10);
    } else if (!strcmp(o, "-p")) {
      pps = strtod(v, NULL);
    } else if (!strcmp(o, "-d")) {
      secs = strtod(v, NULL);
    } else if (!strcmp(o, "-k")) {
      keyfile = v;
    } else if (!strcmp(o, "-t")) {
      connect_ms = (long)(strtod(v, NULL) * 1000);
    } else if (!strcmp(o, "-m")) {
      max_delay = strtol(v, NULL, 10);
    } else if (!strcmp(o, "-b")) {
      batch_delay = strtol(v, NULL, 10);
    } else if (!strcmp(o, "-i")) {
      idle = strtol(v, NULL, 10);
    } else if (!strcmp(o, "-c")) {
      if (!strcmp(v, "none")) {
        codec = PS_CODEC_NONE;
      } else if (!strcmp(v, "zlib")) {
        codec = PS_CODEC_ZLIB;
      } else if (!strcmp(v, "lz4")) {
        codec = PS_CODEC_LZ4;
      } else {
        fprintf(stderr, "loadgen: unknown codec %s\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "loadgen: unknown option %s\n", o);
      return 2;
    }
  }
  if (argc - a != 2 || n < 1 || pps <= 0 || secs < 0 || idle < 0) {
    fprintf(stderr, "usage: loadgen [-n STREAMS] [-p TOTAL_PPS] [-d SECONDS] "
                    "[-i IDLE_SECONDS] [-c none|zlib|lz4] [-k KEYFILE] "
                    "[-b BATCH_DELAY_MS] [-m MAX_DELAY_MS] [-t CONNECT_S] [-v] "
                    "HOST PORT\n");
    return 2;
  }
  const char *host = argv[a];
  uint16_t port = (uint16_t)strtoul(argv[a + 1], NULL, 10);

  uint8_t key[1024];
  size_t keylen = 0;
  if (keyfile) {
    char err[512];
    if (ps_auth_key_load(key, &keylen, keyfile, err, sizeof(err)) != 0) {
      fprintf(stderr, "loadgen: %s\n", err);
      return 1;
    }
  }

  /* one descriptor per stream, plus stdio and slack */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur < (rlim_t)(2 * n + 64)) {
    rl.rlim_cur = (rlim_t)(2 * n + 64); /* a socket and an eventfd each */
    if (rl.rlim_max < rl.rlim_cur) {
      rl.rlim_max = rl.rlim_cur; /* needs CAP_SYS_RESOURCE */
    }
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      fprintf(stderr, "loadgen: cannot raise RLIMIT_NOFILE to %ld: %s\n",
              2 * n + 64, strerror(errno));
      return 1;
    }
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    fprintf(stderr, "loadgen: RLIMIT_NOFILE %llu (hard %llu)\n",
            (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  }

  lg_stream *g = calloc((size_t)n, sizeof(*g));
  uint8_t *payload = malloc(65536);
  if (!g || !payload) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < 65536; i++) {
    payload[i] = (uint8_t)xr();
  }

  double t0 = now_s();
  long connected = 0;
  double next_keep = t0 + 1;
  for (long i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof(name), "loadgen-%ld", i);
    int rc = ps_stream_create(&g[i].s, name);
    if (rc != 0) {
      fprintf(stderr, "loadgen: stream %ld: create: %s\n", i, ps_strerror(rc));
      g[i].s = NULL;
      g[i].failed = rc;
      continue;
    }
    ps_stream_set_connect_timeout_ms(g[i].s, (unsigned)connect_ms);
    ps_stream_set_codec(g[i].s, codec);
    if (keylen) {
      ps_stream_set_auth_key(g[i].s, key, keylen);
    }
    if (batch_delay >= 0) {
      ps_stream_set_batch_delay_ms(g[i].s, (unsigned)batch_delay);
    }
    if (max_delay >= 0) {
      if (!ps_stream_set_batch_max_delay_ms) {
        fprintf(stderr, "loadgen: -m: this library has no "
                        "ps_stream_set_batch_max_delay_ms()\n");
        return 2;
      }
      ps_stream_set_batch_max_delay_ms(g[i].s, (unsigned)max_delay);
    }
    rc = ps_stream_connect(g[i].s, host, port);
    if (rc == 0) {
      ps_stream_interface_options io = {"loadgen interface", NULL, 0};
      rc = ps_stream_add_interface_options(g[i].s, &g[i].iface, "lg0", 1, 65535,
                                           PS_TSRES_USEC, &io, sizeof(io));
    }
    if (rc != 0) {
      fail(&g[i], rc);
      fprintf(stderr, "loadgen: stream %ld: connect: %s (%s)\n", i,
              ps_strerror(rc), g[i].why);
      continue;
    }
    connected++;
    /* the earlier streams keep their heartbeats going meanwhile (a
     * receiver drops a sensor silent for its idle timeout) */
    if (now_s() >= next_keep) {
      for (long j = 0; j <= i; j++) {
        int prc;
        if (g[j].s && !g[j].failed && (prc = ps_stream_poll(g[j].s, 0))) {
          fail(&g[j], prc);
        }
      }
      next_keep = now_s() + 1;
    }
  }
  double tc = now_s();
  fprintf(stderr, "loadgen: connected %ld streams in %.2f s\n", connected,
          tc - t0);
  fflush(stderr);

  /* idle: keep reading the receiver's messages, send nothing */
  double idle_end = now_s() + (double)idle;
  while (now_s() < idle_end) {
    for (long i = 0; i < n; i++) {
      if (g[i].s && !g[i].failed) {
        int rc = ps_stream_poll(g[i].s, 0);
        if (rc != 0) {
          fail(&g[i], rc);
        }
      }
    }
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
  }

  /* send: stream i at start + i/pps + k*n/pps */
  double period = (double)n / pps;
  double start = now_s();
  for (long i = 0; i < n; i++) {
    g[i].next = (double)i / pps;
    g[i].next_poll = 0.5 * (double)i / (double)n;
  }
  uint64_t total = 0;
  uint8_t frame[1514];
  for (;;) {
    double t = now_s() - start;
    if (t >= secs) {
      break;
    }
    double soonest = secs;
    for (long i = 0; i < n; i++) {
      lg_stream *x = &g[i];
      if (!x->s || x->failed) {
        continue;
      }
      while (x->next <= t && x->next < secs) {
        uint64_t r = xr();
        unsigned len;
        unsigned pick = (unsigned)(r % 100);
        if (pick < 35) {
          len = 64 + (unsigned)((r >> 8) % 64);
        } else if (pick < 60) {
          len = 128 + (unsigned)((r >> 8) % 896);
        } else {
          len = 1400 + (unsigned)((r >> 8) % 115);
        }
        memcpy(frame, payload + ((r >> 20) % (65536 - 1514)), len);
        /* Ethernet II, IPv4 */
        memcpy(frame,
               "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
        struct timeval tv;
        gettimeofday(&tv, NULL);
        ps_packet p = {tv.tv_sec, (uint32_t)tv.tv_usec, len, len, x->iface,
                       frame};
        int rc = ps_stream_send(x->s, &p);
        if (rc != 0) {
          fail(x, rc);
          break;
        }
        x->sent++;
        total++;
        x->next += period;
      }
      if (x->failed) {
        continue;
      }
      if (ps_stream_next_deadline_ms(x->s) == 0 || x->next_poll <= t) {
        int rc = ps_stream_poll(x->s, 0);
        if (rc != 0) {
          fail(x, rc);
          continue;
        }
        x->next_poll = t + 0.5;
      }
      if (x->next < soonest) {
        soonest = x->next;
      }
    }
    /* sleep until the next packet is due, but wake at least every 10 ms
     * for batches whose delay ran out */
    double wait = soonest - (now_s() - start);
    if (wait > 0.01) {
      wait = 0.01;
    }
    if (wait > 0) {
      struct timespec ts = {0, (long)(wait * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  double ts_end = now_s();

  /* close all: flush first so every stream's last batch is on its way */
  for (long i = 0; i < n; i++) {
    if (g[i].s && !g[i].failed) {
      int rc = ps_stream_flush(g[i].s);
      if (rc != 0) {
        fail(&g[i], rc);
      }
    }
  }
  long failed = 0;
  uint64_t acked_pk = 0;
  for (long i = 0; i < n; i++) {
    if (g[i].s && !g[i].failed) {
      int rc = ps_stream_close(g[i].s, 30000);
      if (rc != 0) {
        fail(&g[i], rc);
      } else {
        acked_pk += g[i].sent;
      }
    }
    if (g[i].failed) {
      failed++;
      fprintf(stderr, "loadgen: stream %ld failed: %s (%s)\n", i,
              ps_strerror(g[i].failed), g[i].why ? g[i].why : "");
    }
  }
  double tclose = now_s();

  uint64_t *per = malloc((size_t)n * sizeof(*per));
  for (long i = 0; i < n; i++) {
    per[i] = g[i].sent;
    if (verbose) {
      printf("stream %ld packets %llu%s\n", i, (unsigned long long)g[i].sent,
             g[i].failed ? " FAILED" : "");
    }
  }
  qsort(per, (size_t)n, sizeof(*per), cmp_u64);
  printf("loadgen: streams %ld connected %ld failed %ld packets %llu "
         "(per stream min %llu median %llu max %llu) confirmed %llu "
         "send_s %.2f pps %.0f connect_s %.2f close_s %.2f\n",
         n, connected, failed, (unsigned long long)total,
         (unsigned long long)per[0], (unsigned long long)per[n / 2],
         (unsigned long long)per[n - 1], (unsigned long long)acked_pk,
         ts_end - start, total / (ts_end - start > 0 ? ts_end - start : 1),
         tc - t0, tclose - ts_end);
  for (long i = 0; i < n; i++) {
    if (g[i].s) {
      ps_stream_free(g[i].s);
    }
  }
  free(per);
  free(payload);
  free(g);
  return failed ? 1 : 0;
}
