/*
 * A misbehaving sensor for tests/hostile.sh: connects to a receiver and
 * breaks the protocol in one way.
 *
 *   hostile MODE HOST PORT
 *
 * MODE is garbage (random bytes), truncated (a hello, then half a frame,
 * then close), oversized (a frame header claiming 0xFFFFFFFF bytes after
 * the hello), oversized-hello (the same instead of the hello), bomb (a
 * zlib batch declared 1 MiB that inflates to 64 MiB), badseq (a first
 * batch with sequence number 5), tsoverflow (a batch whose second
 * record's time stamp no file can hold: seconds $HOSTILE_SEC, default
 * INT64_MAX, and a fraction of exactly one second on an interface of
 * resolution $HOSTILE_TSRES, 6 or 9, default 9) or idle (connects and
 * sends nothing for $HOSTILE_HOLD seconds, default 3).
 *
 * One mode behaves: good sends a batch of 3 packets, waits for its ACK
 * and prints "batch 1 acknowledged", waits until the file $HOSTILE_GO
 * exists (so a test can attack the receiver meanwhile), then sends 3
 * more, closes and exits 0 only if everything was acknowledged.
 *
 * trickle: batch 1, then 10 small batches 25 ms apart; prints how many
 * ACK frames covered them ("10 batches, N acknowledgements").
 *
 * Modes with many connections: many (idle ones), flood (opened and closed
 * at once), slowloris, and hellos: $HOSTILE_COUNT connections (default
 * 20) that each send a hello and nothing more (never the shared key's
 * proof), held until SIGTERM or $HOSTILE_HOLD seconds (default 30); one
 * the receiver closes is opened again (unless HOSTILE_REOPEN=0).
 *
 * hold: a well-behaved keyless sensor that takes a slot: hello, one
 * interface, one batch of one packet, then holds the connection until
 * SIGTERM (or $HOSTILE_HOLD seconds) and closes cleanly.
 *
 * fake-receiver: the other side. Listens on HOST PORT (0: any free port,
 * printed), welcomes each sensor (with resume point 0), answers its
 * first frame after that with garbage, and counts the connections made
 * within $HOSTILE_HOLD seconds (default 6) of the first.
 *
 * The frames are built here byte by byte, big-endian, as docs/PROTOCOL.md
 * and lib/ps_proto.c lay them out; the library is deliberately not used,
 * so its encoder cannot agree with its decoder by accident. Prints what
 * the receiver answered; exits 0 when the receiver ended the connection
 * (or, for truncated and idle, when this program did), 1 otherwise, 2 on
 * usage errors.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

enum {
  F_HELLO = 1,
  F_WELCOME = 2,
  F_ERROR = 3,
  F_IFACE = 4,
  F_BATCH = 5,
  F_ACK = 6,
  F_CLOSE = 9
};

#define HDR 8
#define REPLY_TIMEOUT_S 10

static const char *g_mode = "?";
static volatile sig_atomic_t g_stop;

static void on_stop(int sig) {
  (void)sig;
  g_stop = 1;
}

/* SIGTERM and SIGINT end a hold (poll and sleep return early). */
static void catch_stop(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

static int env_int(const char *name, int dflt) {
  const char *e = getenv(name);
  return e != NULL ? atoi(e) : dflt;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ bytes */

typedef struct obuf {
  uint8_t *p;
  size_t len, cap;
} obuf;

static void need(obuf *b, size_t n) {
  if (b->len + n <= b->cap) {
    return;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) {
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (p == NULL) {
    fprintf(stderr, "hostile: out of memory\n");
    exit(1);
  }
  b->p = p;
  b->cap = cap;
}

static void put8(obuf *b, uint8_t v) {
  need(b, 1);
  b->p[b->len++] = v;
}
static void put16(obuf *b, uint16_t v) {
  put8(b, (uint8_t)(v >> 8));
  put8(b, (uint8_t)v);
}
static void put32(obuf *b, uint32_t v) {
  put16(b, (uint16_t)(v >> 16));
  put16(b, (uint16_t)v);
}
static void put64(obuf *b, uint64_t v) {
  put32(b, (uint32_t)(v >> 32));
  put32(b, (uint32_t)v);
}
static void putn(obuf *b, const void *p, size_t n) {
  need(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}
static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

/* Frame header: type, flags 0, reserved 0, payload length. */
static void frame_hdr(obuf *b, uint8_t type, uint32_t len) {
  put8(b, type);
  put8(b, 0);
  put16(b, 0);
  put32(b, len);
}

static void hello(obuf *b) {
  char name[64];
  snprintf(name, sizeof(name), "hostile-%s", g_mode);
  size_t n = strlen(name);
  frame_hdr(b, F_HELLO, (uint32_t)(34 + n));
  putn(b, "PSTR", 4);
  put16(b, 1);   /* min version */
  put16(b, 1);   /* max version */
  put32(b, 0x3); /* codecs: stored and zlib */
  put32(b, 0);   /* flags */
  for (int i = 0; i < 16; i++) {
    put8(b, (uint8_t)i); /* nonce */
  }
  put16(b, (uint16_t)n);
  putn(b, name, n);
}

static void iface_res(obuf *b, uint8_t tsres) {
  frame_hdr(b, F_IFACE, 16 + 4);
  put32(b, 0);     /* id */
  put32(b, 1);     /* link type Ethernet */
  put32(b, 65535); /* snaplen */
  put8(b, tsres);
  put8(b, 0);
  put16(b, 4);
  putn(b, "eth0", 4);
}

static void iface(obuf *b) {
  iface_res(b, 6); /* microseconds */
}

static void batch_hdr(obuf *b, uint64_t seq, uint8_t codec, uint32_t count,
                      uint32_t raw_len, uint32_t data_len) {
  frame_hdr(b, F_BATCH, 20 + data_len);
  put64(b, seq);
  put8(b, codec);
  put8(b, 0);
  put16(b, 0);
  put32(b, count);
  put32(b, raw_len);
}

/* One 60-byte packet record on interface 0 with this time stamp. */
static void record_ts(obuf *b, uint64_t sec, uint32_t frac) {
  put32(b, 0);
  put64(b, sec);
  put32(b, frac);
  put32(b, 60);
  put32(b, 60);
  for (int i = 0; i < 60; i++) {
    put8(b, (uint8_t)(i + sec));
  }
}

static void record(obuf *b) {
  record_ts(b, 1700000000, 0);
}

/* ------------------------------------------------------------ socket */

static int dial(const char *host, const char *port) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  struct addrinfo *ai;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "hostile: %s: %s\n", host, gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      break;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  if (fd < 0) {
    fprintf(stderr, "hostile: cannot connect to %s:%s: %s\n", host, port,
            strerror(errno));
    return -1;
  }
  struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/* Sends everything; a receiver that hangs up first is no error here
 * (that is what it should do to us). Returns 0, or -1 if it hung up. */
static int send_all(int fd, const obuf *b) {
  size_t off = 0;
  while (off < b->len) {
    ssize_t n = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      printf("hostile %s: receiver hung up while we sent (%s)\n", g_mode,
             strerror(errno));
      return -1;
    }
    off += (size_t)n;
  }
  return 0;
}

/* Reads n bytes; 1 when done, 0 on end of stream or reset, -1 on a
 * timeout or another error. */
static int read_n(int fd, uint8_t *p, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = recv(fd, p + off, n - off, 0);
    if (r > 0) {
      off += (size_t)r;
    } else if (r == 0 || errno == ECONNRESET) {
      return 0;
    } else if (errno != EINTR) {
      return -1;
    }
  }
  return 1;
}

/* Reads one frame: 1 with its type and payload (malloc'ed), 0 at the end
 * of the stream, -1 on error or timeout. */
static int read_frame(int fd, uint8_t *type, uint8_t **payload, uint32_t *len) {
  uint8_t h[HDR];
  int rc = read_n(fd, h, HDR);
  if (rc != 1) {
    return rc;
  }
  *type = h[0];
  *len = get32(h + 4);
  if (*len > (1u << 20)) {
    fprintf(stderr, "hostile: the receiver sent a frame of %u bytes\n", *len);
    return -1;
  }
  *payload = malloc(*len ? *len : 1);
  if (*payload == NULL) {
    return -1;
  }
  rc = read_n(fd, *payload, *len);
  if (rc != 1) {
    free(*payload);
    return rc == 0 ? -1 : rc;
  }
  return 1;
}

/* Prints one frame from the receiver. */
static void show(uint8_t type, const uint8_t *p, uint32_t len) {
  if (type == F_ERROR && len >= 4) {
    unsigned code = ((unsigned)p[0] << 8) | p[1];
    size_t tl = ((size_t)p[2] << 8) | p[3];
    if (tl > len - 4) {
      tl = len - 4;
    }
    printf("hostile %s: receiver sent ERROR %u: %.*s\n", g_mode, code, (int)tl,
           (const char *)p + 4);
  } else {
    printf("hostile %s: receiver sent frame type %u (%u bytes)\n", g_mode, type,
           len);
  }
}

/* Waits for the WELCOME after our hello; returns its codec or -1. */
static int await_welcome(int fd) {
  uint8_t type, *p;
  uint32_t len;
  if (read_frame(fd, &type, &p, &len) != 1) {
    fprintf(stderr, "hostile %s: no welcome from the receiver\n", g_mode);
    return -1;
  }
  int codec = -1;
  if (type == F_WELCOME && len == 40) {
    codec = p[2];
  } else {
    show(type, p, len);
  }
  free(p);
  return codec;
}

/* Reads until the receiver ends the connection: 0 when it did, 1 when it
 * kept it open past the timeout. */
static int await_hangup(int fd) {
  for (;;) {
    uint8_t type, *p;
    uint32_t len;
    int rc = read_frame(fd, &type, &p, &len);
    if (rc == 0) {
      printf("hostile %s: receiver closed the connection\n", g_mode);
      return 0;
    }
    if (rc < 0) {
      fprintf(stderr, "hostile %s: receiver kept the connection open\n",
              g_mode);
      return 1;
    }
    show(type, p, len);
    free(p);
  }
}

/* Sends our hello and waits for the WELCOME; returns its codec, or -1
 * (b freed) when there was none. b is left empty for the next frames. */
static int greet(int fd, obuf *b) {
  b->len = 0;
  hello(b);
  int codec = send_all(fd, b) != 0 ? -1 : await_welcome(fd);
  if (codec < 0) {
    free(b->p);
    b->p = NULL;
  }
  b->len = 0;
  return codec;
}

/* Sends b (freed), then waits for the receiver to end the connection. */
static int send_and_await_hangup(int fd, obuf *b) {
  send_all(fd, b);
  free(b->p);
  return await_hangup(fd);
}

/* ------------------------------------------------------------ modes */

static int mode_garbage(int fd) {
  obuf b = {0};
  /* Fixed seed: the run can be repeated. The first byte is kept out of
   * the frame types (1..9), so the receiver's reason does not depend on
   * luck. */
  uint32_t x = 0x2545F491u;
  for (int i = 0; i < 4096; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    put8(&b, (uint8_t)x);
  }
  if (b.p[0] >= 1 && b.p[0] <= 9) {
    b.p[0] |= 0x80;
  }
  return send_and_await_hangup(fd, &b);
}

static int mode_truncated(int fd) {
  obuf b = {0};
  if (greet(fd, &b) < 0) {
    return 1;
  }
  iface(&b);
  b.len = b.len / 2; /* half the interface frame */
  int rc = send_all(fd, &b);
  free(b.p);
  printf("hostile %s: sent half a frame, closing\n", g_mode);
  return rc == 0 ? 0 : 1;
}

static int mode_oversized(int fd, int before_hello) {
  obuf b = {0};
  if (!before_hello && greet(fd, &b) < 0) {
    return 1;
  }
  frame_hdr(&b, before_hello ? F_HELLO : F_BATCH, 0xFFFFFFFFu);
  for (int i = 0; i < 64; i++) {
    put8(&b, 0); /* a start of the "payload" */
  }
  return send_and_await_hangup(fd, &b);
}

static int mode_bomb(int fd) {
  obuf b = {0};
  int codec = greet(fd, &b);
  if (codec != 1) {
    fprintf(stderr, "hostile %s: the receiver did not choose zlib (%d)\n",
            g_mode, codec);
    free(b.p);
    return 1;
  }
  iface(&b);
  /* 64 MiB of zeros, deflated a MiB at a time: about 64 KiB. */
  static uint8_t zeros[1 << 20];
  obuf z = {0};
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  if (deflateInit(&zs, 9) != Z_OK) {
    free(b.p);
    return 1;
  }
  for (int i = 0; i < 64; i++) {
    zs.next_in = zeros;
    zs.avail_in = sizeof(zeros);
    int flush = i == 63 ? Z_FINISH : Z_NO_FLUSH;
    do {
      need(&z, 65536);
      zs.next_out = z.p + z.len;
      zs.avail_out = 65536;
      deflate(&zs, flush);
      z.len += 65536 - zs.avail_out;
    } while (zs.avail_out == 0);
  }
  deflateEnd(&zs);
  batch_hdr(&b, 1, 1, 1, 1u << 20, (uint32_t)z.len);
  putn(&b, z.p, z.len);
  printf("hostile %s: batch declares 1048576 bytes, inflates to 67108864 "
         "(%zu compressed)\n",
         g_mode, z.len);
  free(z.p);
  return send_and_await_hangup(fd, &b);
}

static int mode_badseq(int fd) {
  obuf b = {0};
  if (greet(fd, &b) < 0) {
    return 1;
  }
  iface(&b);
  batch_hdr(&b, 5, 0, 1, 24 + 60, 24 + 60);
  record(&b);
  return send_and_await_hangup(fd, &b);
}

static int mode_tsoverflow(int fd) {
  const char *e = getenv("HOSTILE_TSRES");
  uint8_t tsres = e != NULL && atoi(e) == 6 ? 6 : 9;
  e = getenv("HOSTILE_SEC");
  int64_t sec = e != NULL ? strtoll(e, NULL, 10) : INT64_MAX;
  obuf b = {0};
  if (greet(fd, &b) < 0) {
    return 1;
  }
  iface_res(&b, tsres);
  /* A good packet first: the whole batch must be refused, not only the
   * record the output cannot hold. */
  batch_hdr(&b, 1, 0, 2, 2 * (24 + 60), 2 * (24 + 60));
  record(&b);
  record_ts(&b, (uint64_t)sec, tsres == 6 ? 1000000u : 1000000000u);
  printf("hostile %s: packet 2 at %lld s + one second in %s\n", g_mode,
         (long long)sec, tsres == 6 ? "microseconds" : "nanoseconds");
  return send_and_await_hangup(fd, &b);
}

/* Reads frames until one of type want with sequence number seq: 0, or 1
 * on anything else (an ERROR, a hang-up, a timeout). */
static int await_seq(int fd, uint8_t want, uint64_t seq) {
  for (;;) {
    uint8_t type, *p;
    uint32_t len;
    if (read_frame(fd, &type, &p, &len) != 1) {
      fprintf(stderr, "hostile %s: no reply to batch %llu\n", g_mode,
              (unsigned long long)seq);
      return 1;
    }
    uint64_t got = len == 8 ? ((uint64_t)get32(p) << 32) | get32(p + 4) : 0;
    if (type == want && len == 8 && got == seq) {
      free(p);
      return 0;
    }
    show(type, p, len);
    free(p);
    if (type != F_ACK) {
      return 1;
    }
  }
}

/* A quiet sensor: batch 1, then batches 2..11 one every 25 ms; counts
 * the ACK frames until batch 11 is acknowledged, then closes. A receiver
 * that acknowledges every batch sends 10, one that lets one ACK cover
 * several (PROTOCOL.md 4.3) fewer. */
static int mode_trickle(int fd) {
  obuf b = {0};
  if (greet(fd, &b) < 0) {
    return 1;
  }
  iface(&b);
  batch_hdr(&b, 1, 0, 3, 3 * (24 + 60), 3 * (24 + 60));
  for (uint64_t i = 0; i < 3; i++) {
    record_ts(&b, 1700000000 + i, 0);
  }
  if (send_all(fd, &b) != 0 || await_seq(fd, F_ACK, 1) != 0) {
    free(b.p);
    return 1;
  }
  for (uint64_t seq = 2; seq <= 11; seq++) {
    b.len = 0;
    batch_hdr(&b, seq, 0, 3, 3 * (24 + 60), 3 * (24 + 60));
    for (uint64_t i = 0; i < 3; i++) {
      record_ts(&b, 1700000000 + 3 * seq + i, 0);
    }
    if (send_all(fd, &b) != 0) {
      free(b.p);
      return 1;
    }
    usleep(25000);
  }
  unsigned acks = 0;
  for (;;) {
    uint8_t type, *p;
    uint32_t len;
    if (read_frame(fd, &type, &p, &len) != 1) {
      fprintf(stderr, "hostile %s: batch 11 not acknowledged\n", g_mode);
      free(b.p);
      return 1;
    }
    uint64_t got = len == 8 ? ((uint64_t)get32(p) << 32) | get32(p + 4) : 0;
    free(p);
    if (type != F_ACK || len != 8 || got < 2 || got > 11) {
      fprintf(stderr, "hostile %s: unexpected frame type %u\n", g_mode, type);
      free(b.p);
      return 1;
    }
    acks++;
    if (got == 11) {
      break;
    }
  }
  b.len = 0;
  frame_hdr(&b, F_CLOSE, 8);
  put64(&b, 11);
  int rc = send_all(fd, &b) != 0 || await_seq(fd, F_CLOSE, 11) != 0;
  free(b.p);
  if (rc == 0) {
    printf("hostile %s: 10 batches, %u acknowledgements, close confirmed\n",
           g_mode, acks);
  }
  return rc;
}

static int mode_good(int fd) {
  const char *go = getenv("HOSTILE_GO");
  obuf b = {0};
  if (greet(fd, &b) < 0) {
    return 1;
  }
  iface(&b);
  batch_hdr(&b, 1, 0, 3, 3 * (24 + 60), 3 * (24 + 60));
  for (uint64_t i = 0; i < 3; i++) {
    record_ts(&b, 1700000000 + i, 0);
  }
  if (send_all(fd, &b) != 0 || await_seq(fd, F_ACK, 1) != 0) {
    free(b.p);
    return 1;
  }
  printf("hostile %s: batch 1 acknowledged\n", g_mode);
  fflush(stdout);
  for (int i = 0; go != NULL && access(go, F_OK) != 0; i++) {
    if (i == 600) {
      fprintf(stderr, "hostile %s: %s did not appear in 30 s\n", g_mode, go);
      free(b.p);
      return 1;
    }
    usleep(50000);
  }
  b.len = 0;
  batch_hdr(&b, 2, 0, 3, 3 * (24 + 60), 3 * (24 + 60));
  for (uint64_t i = 3; i < 6; i++) {
    record_ts(&b, 1700000000 + i, 0);
  }
  int rc = send_all(fd, &b) != 0 || await_seq(fd, F_ACK, 2) != 0;
  if (rc == 0) {
    b.len = 0;
    frame_hdr(&b, F_CLOSE, 8);
    put64(&b, 2);
    rc = send_all(fd, &b) != 0 || await_seq(fd, F_CLOSE, 2) != 0;
  }
  free(b.p);
  if (rc == 0) {
    printf("hostile %s: batch 2 acknowledged, close confirmed\n", g_mode);
  }
  return rc;
}

static int mode_idle(void) {
  const char *e = getenv("HOSTILE_HOLD");
  int secs = e != NULL ? atoi(e) : 3;
  printf("hostile %s: holding the connection for %d s\n", g_mode, secs);
  fflush(stdout);
  sleep((unsigned)(secs > 0 ? secs : 0));
  return 0;
}

/* many: HOSTILE_COUNT idle connections held for HOSTILE_HOLD seconds;
 * reports how many the receiver closed meanwhile. */
static int mode_many(const char *host, const char *port) {
  const char *e = getenv("HOSTILE_COUNT");
  int n = e != NULL ? atoi(e) : 1000;
  e = getenv("HOSTILE_HOLD");
  int secs = e != NULL ? atoi(e) : 3;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int *fds = calloc((size_t)n, sizeof(int));
  int opened = 0;
  for (int i = 0; i < n; i++) {
    fds[i] = dial(host, port);
    opened += fds[i] >= 0;
  }
  printf("hostile %s: %d of %d connections open, holding %d s\n", g_mode,
         opened, n, secs);
  fflush(stdout);
  sleep((unsigned)(secs > 0 ? secs : 0));
  int closed = 0;
  for (int i = 0; i < n; i++) {
    if (fds[i] < 0) {
      continue;
    }
    char c;
    /* Closed by the receiver: readable with EOF (or reset). */
    ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
    closed += r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    close(fds[i]);
  }
  printf("hostile %s: the receiver closed %d of them\n", g_mode, closed);
  free(fds);
  return opened > 0 ? 0 : 1;
}

/* flood: HOSTILE_COUNT connections opened and closed at once. */
static int mode_flood(const char *host, const char *port) {
  const char *e = getenv("HOSTILE_COUNT");
  int n = e != NULL ? atoi(e) : 1000, ok = 0;
  for (int i = 0; i < n; i++) {
    int fd = dial(host, port);
    if (fd >= 0) {
      ok++;
      if (i % 2) {
        /* An abortive close (RST) every other time. */
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
      }
      close(fd);
    }
  }
  printf("hostile %s: %d of %d connect/disconnect cycles\n", g_mode, ok, n);
  return ok > 0 ? 0 : 1;
}

/* slowloris: a valid hello, then (once welcomed, with either codec) an
 * interface frame one byte a second for HOSTILE_HOLD seconds. */
static int mode_slowloris(int fd) {
  obuf b = {0};
  hello(&b);
  uint8_t type, *p;
  uint32_t len;
  int rc = send_all(fd, &b) != 0 ? -1 : read_frame(fd, &type, &p, &len);
  free(b.p);
  if (rc < 0) {
    fprintf(stderr, "hostile %s: no welcome from the receiver\n", g_mode);
    return 1;
  }
  /* Under load the receiver may end (or refuse) a connection still in
   * its handshake: that, too, is the receiver defending itself. */
  if (rc == 0 || type != F_WELCOME) {
    if (rc == 1) {
      show(type, p, len);
      free(p);
    }
    printf("hostile %s: receiver ended the connection before it was "
           "welcomed\n",
           g_mode);
    return 0;
  }
  free(p);
  b = (obuf){0};
  iface(&b);
  const char *e = getenv("HOSTILE_HOLD");
  int secs = e != NULL ? atoi(e) : 3;
  for (int i = 0; i < secs && (size_t)i < b.len; i++) {
    if (send(fd, b.p + i, 1, MSG_NOSIGNAL) != 1) {
      printf("hostile %s: receiver closed after %d bytes\n", g_mode, i);
      free(b.p);
      return 0;
    }
    sleep(1);
  }
  printf("hostile %s: dripped %d bytes, one a second\n", g_mode, secs);
  free(b.p);
  return 0;
}

/* hellos: connections that never get past their hello. */
static int hellos_open(const char *host, const char *port) {
  int fd = dial(host, port);
  if (fd < 0) {
    return -1;
  }
  obuf b = {0};
  hello(&b);
  int rc = send_all(fd, &b);
  free(b.p);
  if (rc != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int mode_hellos(const char *host, const char *port) {
  int n = env_int("HOSTILE_COUNT", 20);
  int secs = env_int("HOSTILE_HOLD", 30);
  int reopen = env_int("HOSTILE_REOPEN", 1);
  if (n < 1 || n > 10000) {
    fprintf(stderr, "hostile: HOSTILE_COUNT must be 1..10000\n");
    return 2;
  }
  catch_stop();
  int *fds = calloc((size_t)n, sizeof(int));
  int welcomed = 0, refused = 0;
  for (int i = 0; i < n; i++) {
    fds[i] = hellos_open(host, port);
    uint8_t type, *p;
    uint32_t len;
    if (fds[i] >= 0 && read_frame(fds[i], &type, &p, &len) == 1) {
      if (type == F_WELCOME) {
        welcomed++;
      } else {
        show(type, p, len);
        refused++;
      }
      free(p);
    }
  }
  printf("hostile %s: %d of %d welcomed, %d refused; holding\n", g_mode,
         welcomed, n, refused);
  fflush(stdout);
  /* The receiver sends nothing more until it closes one: then it is
   * opened again (at most ten times a second each). */
  int64_t end = now_ms() + (int64_t)secs * 1000;
  int closed = 0, reopened = 0;
  struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
  while (!g_stop && now_ms() < end) {
    for (int i = 0; i < n; i++) {
      if (fds[i] < 0 && reopen && (fds[i] = hellos_open(host, port)) >= 0) {
        reopened++;
      }
      pf[i].fd = fds[i];
      pf[i].events = POLLIN;
      pf[i].revents = 0;
    }
    if (poll(pf, (nfds_t)n, 100) <= 0) {
      continue;
    }
    for (int i = 0; i < n; i++) {
      if (fds[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        continue;
      }
      uint8_t buf[4096];
      ssize_t r = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close(fds[i]);
        fds[i] = -1;
        closed++;
      }
    }
  }
  for (int i = 0; i < n; i++) {
    if (fds[i] >= 0) {
      close(fds[i]);
    }
  }
  printf("hostile %s: the receiver closed %d (opened again: %d)\n", g_mode,
         closed, reopened);
  free(pf);
  free(fds);
  return welcomed > 0 ? 0 : 1;
}

/* hold: a real session that keeps its slot until told to go. */
static int mode_hold(int fd) {
  catch_stop();
  obuf b = {0};
  if (greet(fd, &b) < 0) {
    return 1;
  }
  iface(&b);
  batch_hdr(&b, 1, 0, 1, 24 + 60, 24 + 60);
  record(&b);
  uint8_t type, *p;
  uint32_t len;
  if (send_all(fd, &b) != 0 || read_frame(fd, &type, &p, &len) != 1) {
    free(b.p);
    return 1;
  }
  if (type != F_ACK) {
    show(type, p, len);
    free(p);
    free(b.p);
    return 1;
  }
  free(p);
  printf("hostile %s: batch 1 acknowledged; holding\n", g_mode);
  fflush(stdout);
  int64_t end = now_ms() + (int64_t)env_int("HOSTILE_HOLD", 30) * 1000;
  while (!g_stop && now_ms() < end) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 100) > 0) {
      fprintf(stderr, "hostile %s: the receiver spoke while we held\n", g_mode);
      free(b.p);
      return 1;
    }
  }
  b.len = 0;
  frame_hdr(&b, F_CLOSE, 8);
  put64(&b, 1);
  int rc = send_all(fd, &b);
  free(b.p);
  if (rc != 0 || read_frame(fd, &type, &p, &len) != 1) {
    return 1;
  }
  free(p);
  if (type != F_CLOSE) {
    return 1;
  }
  printf("hostile %s: closed cleanly\n", g_mode);
  return 0;
}

/* fake-receiver: one connection at a time. */
static void fake_serve(int fd, uint64_t id) {
  struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  uint8_t type, *p;
  uint32_t len;
  if (read_frame(fd, &type, &p, &len) != 1) {
    return;
  }
  free(p);
  if (type != F_HELLO) {
    return;
  }
  obuf b = {0};
  frame_hdr(&b, F_WELCOME, 40);
  put16(&b, 1);       /* version */
  put8(&b, 0);        /* stored */
  put8(&b, 0);        /* no shared key */
  put32(&b, 4456492); /* max_frame */
  put32(&b, 4456472); /* max_batch_raw */
  put32(&b, 262144);  /* max_batch_packets */
  put64(&b, id);
  for (int i = 0; i < 16; i++) {
    put8(&b, (uint8_t)(0xa0 + i)); /* nonce */
  }
  frame_hdr(&b, F_ACK, 8);
  put64(&b, 0); /* the resume point: a stream it does not have */
  if (send_all(fd, &b) != 0 || read_frame(fd, &type, &p, &len) != 1) {
    free(b.p);
    return;
  }
  free(p);
  /* The sensor is streaming now: no frame type is 0xee. */
  b.len = 0;
  for (int i = 0; i < 16; i++) {
    put8(&b, 0xee);
  }
  send_all(fd, &b);
  free(b.p);
  uint8_t sink[4096];
  while (recv(fd, sink, sizeof(sink), 0) > 0) {
  }
}

static int mode_fake_receiver(const char *host, const char *port) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  struct addrinfo *ai;
  if (getaddrinfo(host, port, &hints, &ai) != 0) {
    fprintf(stderr, "hostile: cannot resolve %s\n", host);
    return 1;
  }
  int lfd = socket(ai->ai_family, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (lfd < 0 || bind(lfd, ai->ai_addr, ai->ai_addrlen) != 0 ||
      listen(lfd, 16) != 0) {
    fprintf(stderr, "hostile: cannot listen: %s\n", strerror(errno));
    freeaddrinfo(ai);
    return 1;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  getsockname(lfd, (struct sockaddr *)&ss, &sl);
  unsigned lport =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
  printf("hostile %s: listening on port %u\n", g_mode, lport);
  fflush(stdout);
  int64_t window = (int64_t)env_int("HOSTILE_HOLD", 6) * 1000;
  int64_t first = 0, last = 0;
  int n = 0;
  char intervals[1024] = "";
  /* The first connection may be a while coming (the sensor starts). */
  int64_t give_up = now_ms() + 30000;
  for (;;) {
    int64_t now = now_ms();
    int64_t left = n ? first + window - now : give_up - now;
    if (left <= 0) {
      break;
    }
    struct pollfd pf = {lfd, POLLIN, 0};
    if (poll(&pf, 1, (int)left) <= 0) {
      continue;
    }
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      continue;
    }
    now = now_ms();
    if (n == 0) {
      first = now;
    } else {
      size_t k = strlen(intervals);
      snprintf(intervals + k, sizeof(intervals) - k, " %lld",
               (long long)(now - last));
    }
    last = now;
    n++;
    fake_serve(fd, (uint64_t)n);
    close(fd);
  }
  close(lfd);
  printf("hostile %s: %d connections within %lld s of the first "
         "(intervals in ms:%s)\n",
         g_mode, n, (long long)(window / 1000), intervals);
  return n > 0 ? 0 : 1;
}

static int mode_oversized_frame(int fd) {
  return mode_oversized(fd, 0);
}

static int mode_oversized_hello(int fd) {
  return mode_oversized(fd, 1);
}

static int mode_idle_fd(int fd) {
  (void)fd;
  return mode_idle();
}

/* The modes: each either gets one connection (on_fd) or makes its own
 * (on_addr, for the receiver's address or, fake-receiver, its own). */
static const struct mode {
  const char *name;
  int (*on_fd)(int fd);
  int (*on_addr)(const char *host, const char *port);
} modes[] = {
    {"garbage", mode_garbage, NULL},
    {"truncated", mode_truncated, NULL},
    {"oversized", mode_oversized_frame, NULL},
    {"oversized-hello", mode_oversized_hello, NULL},
    {"bomb", mode_bomb, NULL},
    {"badseq", mode_badseq, NULL},
    {"idle", mode_idle_fd, NULL},
    {"many", NULL, mode_many},
    {"flood", NULL, mode_flood},
    {"slowloris", mode_slowloris, NULL},
    {"hellos", NULL, mode_hellos},
    {"hold", mode_hold, NULL},
    {"fake-receiver", NULL, mode_fake_receiver},
    {"tsoverflow", mode_tsoverflow, NULL},
    {"good", mode_good, NULL},
    {"trickle", mode_trickle, NULL},
};

int main(int argc, char **argv) {
  const size_t nmodes = sizeof(modes) / sizeof(modes[0]);
  if (argc != 4) {
    fprintf(stderr, "usage: hostile ");
    for (size_t i = 0; i < nmodes; i++) {
      fprintf(stderr, "%s%s", i ? "|" : "", modes[i].name);
    }
    fprintf(stderr, " HOST PORT\n");
    return 2;
  }
  g_mode = argv[1];
  const struct mode *m = NULL;
  for (size_t i = 0; i < nmodes; i++) {
    if (strcmp(g_mode, modes[i].name) == 0) {
      m = &modes[i];
    }
  }
  if (m == NULL) {
    fprintf(stderr, "hostile: unknown mode %s\n", g_mode);
    return 2;
  }
  if (m->on_addr != NULL) {
    return m->on_addr(argv[2], argv[3]);
  }
  int fd = dial(argv[2], argv[3]);
  if (fd < 0) {
    return 1;
  }
  int rc = m->on_fd(fd);
  close(fd);
  return rc;
}
