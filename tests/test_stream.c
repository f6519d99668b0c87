/* End-to-end tests in one process and one thread over loopback: a
 * ps_stream sending to a ps_receiver (driven by its step API, with a
 * callback sink that records what arrives) or to a scripted fake
 * receiver. The stream runs on a fake clock: whenever it would wait, the
 * clock hook steps the peers instead, and lets time pass only when
 * nothing is ready, so backoffs and timeouts cost no real time. */
#include "config.h"

#include "unit_util.h"

#include "ps_proto.h"
#include "ps_stream.h"
#include "recorder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------- the world */

typedef struct rx rx;
typedef struct fake_rx fake_rx;
static int rx_step(rx *x);
static int fake_step(fake_rx *x);

/* The fake clock and the peers a waiting stream lets run. */
static struct {
  int64_t now;
  int waits;   /* times a stream waited */
  int patient; /* a wait gives the system up to 50 ms of real time */
  rx *rx[4];
  fake_rx *fake[4];
  /* Run at each wait (not from within itself): lets a test act on a
   * second stream while the first one waits. */
  void (*hook)(void);
  int in_hook;
} W = {.now = 1000000};

static void w_add(void **list, void *p) {
  for (int i = 0; i < 4; i++) {
    if (list[i] == NULL) {
      list[i] = p;
      return;
    }
  }
  ck_abort_msg("too many peers");
}

static void w_remove(void **list, void *p) {
  for (int i = 0; i < 4; i++) {
    if (list[i] == p) {
      list[i] = NULL;
    }
  }
}

/* Steps every peer once; returns whether any of them did something. */
static int w_step_peers(void) {
  int busy = 0;
  for (int i = 0; i < 4; i++) {
    busy |= W.rx[i] != NULL && rx_step(W.rx[i]);
    busy |= W.fake[i] != NULL && fake_step(W.fake[i]);
  }
  return busy;
}

static int64_t w_now(void *ud) {
  return W.now;
}

/* The stream's wait: the peers run, and the stream's descriptors are
 * looked at; time passes (timeout_ms of it) only when neither had
 * anything. The short real poll gives the kernel a moment (a loopback
 * connect completes in microseconds, not at once). */
static int w_poll(void *ud, struct pollfd *fds, unsigned n, int timeout_ms) {
  W.waits++;
  if (W.hook != NULL && !W.in_hook) {
    W.in_hook = 1;
    W.hook();
    W.in_hook = 0;
  }
  int busy = w_step_peers();
  int r = poll(fds, n, 0);
  if (r == 0 && !busy) {
    /* A write waiting for the peer's window moves on in real time. */
    int blocked = fds[0].fd >= 0 && (fds[0].events & POLLOUT);
    r = poll(fds, n, blocked || W.patient ? 50 : 1);
  }
  if (r == 0 && !busy) {
    W.now += timeout_ms < 0 ? 1000 : timeout_ms;
  }
  return r;
}

/* A stream on the fake clock. */
static ps_stream *new_stream(const char *name) {
  ps_stream *s = NULL;
  ck_assert_int_eq(ps_stream_create(&s, name), 0);
  ps__stream_clock c = {.now = w_now, .poll = w_poll};
  ps__stream_set_clock(s, &c);
  return s;
}

/* ------------------------------------------------------- receiver */

struct rx {
  ps_receiver *r;
  recorder rec;
  int rc;
  char log[65536];
};

static void rx_log(ps_log_level level, const char *msg, void *ud) {
  rx *x = ud;
  size_t n = strlen(x->log);
  snprintf(x->log + n, sizeof(x->log) - n, "%s\n", msg);
}

/* One non-blocking step of the receiver; returns whether it had work. */
static int rx_step(rx *x) {
  struct pollfd pfd = {ps_receiver_get_fd(x->r), POLLIN, 0};
  int ready = poll(&pfd, 1, 0) > 0;
  int rc = ps_receiver_process(x->r);
  if (rc != 0 && x->rc == 0) {
    x->rc = rc;
  }
  return ready;
}

/* Makes a receiver on 127.0.0.1 with sink (or a callback sink recording
 * into x->rec when sink is NULL), not yet running: its options can still
 * be set. Returns its port. */
static uint16_t rx_init(rx *x, ps_sink *sink) {
  memset(x, 0, sizeof(*x));
  ck_assert_int_eq(ps_receiver_create(&x->r), 0);
  ps_receiver_set_log(x->r, rx_log, x);
  if (sink == NULL) {
    rec_sink(&sink, &x->rec);
  }
  ck_assert_int_eq(ps_receiver_add_sink(x->r, sink), 0);
  ck_assert_int_eq(ps_receiver_listen(x->r, "127.0.0.1", 0), 0);
  uint16_t port = ps_receiver_port(x->r);
  ck_assert_uint_ne(port, 0);
  return port;
}

/* From now on the world steps the receiver while a stream waits. */
static void rx_run(rx *x) {
  w_add((void **)W.rx, x);
}

/* rx_init() and rx_run(). */
static uint16_t rx_start(rx *x, ps_sink *sink) {
  uint16_t port = rx_init(x, sink);
  rx_run(x);
  return port;
}

/* Takes what is left, then closes the sessions and the sinks; the
 * recorder stays readable. */
static int rx_stop(rx *x) {
  while (rx_step(x)) {
  }
  w_remove((void **)W.rx, x);
  ck_assert_int_eq(x->rc, 0);
  return ps_receiver_shutdown(x->r);
}

static void rx_free(rx *x) {
  ps_receiver_free(x->r);
  rec_free(&x->rec);
}

/* ------------------------------------------------------- packets */

static char slog[8192];

static void stream_log(ps_log_level level, const char *msg, void *ud) {
  size_t n = strlen(slog);
  snprintf(slog + n, sizeof(slog) - n, "%s\n", msg);
}

typedef struct gen {
  ps_packet *p;
  uint8_t **data;
  size_t n;
} gen;

/* n packets of 0..2000 bytes (one of 65535), alternating two interfaces,
 * half compressible. */
static void gen_make(gen *g, size_t n, size_t big_at) {
  g->n = n;
  g->p = calloc(n, sizeof(*g->p));
  g->data = calloc(n, sizeof(*g->data));
  for (size_t i = 0; i < n; i++) {
    uint32_t caplen = i == big_at ? 65535 : (uint32_t)((i * 37) % 2001);
    g->data[i] = malloc(caplen + 1);
    if ((i / 50) % 2 == 0) {
      unit_fill_random(g->data[i], caplen, (uint32_t)i + 1);
    } else {
      for (uint32_t k = 0; k < caplen; k++) {
        g->data[i][k] = (uint8_t)("abcabcabd"[k % 9] + (i & 3));
      }
    }
    uint32_t iface = (uint32_t)(i % 2);
    g->p[i] =
        (ps_packet){.ts_sec = 1700000000 + (int64_t)(i / 1000),
                    .ts_frac = iface ? (uint32_t)(i * 1000003u % 1000000000u)
                                     : (uint32_t)(i * 997u % 1000000u),
                    .caplen = caplen,
                    .len = caplen + (uint32_t)(i % 3),
                    .iface = iface,
                    .data = g->data[i]};
  }
}

static void gen_free(gen *g) {
  for (size_t i = 0; i < g->n; i++) {
    free(g->data[i]);
  }
  free(g->data);
  free(g->p);
}

static void expect_all(const recorder *r, const gen *g) {
  ck_assert_uint_eq(r->npkts, g->n);
  for (size_t i = 0; i < g->n; i++) {
    const rec_pkt *k = &r->pkts[i];
    const ps_packet *p = &g->p[i];
    ck_assert_msg(k->p.caplen == p->caplen && k->p.len == p->len &&
                      k->p.ts_sec == p->ts_sec && k->p.ts_frac == p->ts_frac &&
                      k->p.iface == p->iface,
                  "packet %zu differs in its header", i);
    ck_assert_msg(memcmp(k->data, p->data, p->caplen) == 0,
                  "packet %zu differs in its bytes", i);
  }
}

static void stream_roundtrip(ps_codec codec, size_t n, size_t batch_bytes) {
  rx x;
  uint16_t port = rx_start(&x, NULL);
  ps_stream *s = new_stream("unit-sensor");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_codec(s, codec), 0);
  if (batch_bytes) {
    ck_assert_int_eq(ps_stream_set_batch_size(s, batch_bytes), 0);
    ck_assert_int_eq(ps_stream_set_batch_delay_ms(s, 50), 0);
  }
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  ck_assert_msg(strstr(slog, codec == PS_CODEC_ZLIB ? "compression zlib"
                                                    : "compression none"),
                "log: %s", slog);
  uint32_t id0 = 99, id1 = 99;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id0, "eth0", 1, 262144, PS_TSRES_USEC), 0);
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id1, "tun0", 101, 65535, PS_TSRES_NSEC), 0);
  ck_assert_uint_eq(id0, 0);
  ck_assert_uint_eq(id1, 1);
  gen g;
  gen_make(&g, n, n / 3);
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = ps_stream_send(s, &g.p[i]);
    ck_assert_msg(rc == 0, "send %zu: %d %s", i, rc, ps_stream_errmsg(s));
    bytes += g.p[i].caplen;
  }
  ps_capture_stats st = {
      .captured = n, .bytes = bytes, .received = n + 5, .dropped = 5};
  ck_assert_int_eq(ps_stream_send_stats(s, 0, &st, sizeof(st)), 0);
  int rc = ps_stream_close(s, 10000);
  ck_assert_msg(rc == 0, "close: %d %s", rc, ps_stream_errmsg(s));
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  ck_assert_uint_eq(c.packets_sent, n);
  ck_assert_uint_eq(c.bytes_sent, bytes);
  ck_assert_uint_gt(c.batches_sent, 0);
  ck_assert_uint_eq(c.batches_acked, c.batches_sent);
  ck_assert_uint_gt(c.wire_bytes, 0);
  if (codec == PS_CODEC_NONE) {
    ck_assert_uint_ge(c.wire_bytes, bytes + n * 24);
  } else {
    ck_assert_uint_lt(c.wire_bytes, bytes);
  }
  ps_stream_free(s);

  ck_assert_int_eq(rx_stop(&x), 0);
  expect_all(&x.rec, &g);
  ck_assert_int_eq(x.rec.starts, 1);
  ck_assert_int_eq(x.rec.ifaces, 2);
  ck_assert_uint_eq(x.rec.linktypes[0], 1);
  ck_assert_uint_eq(x.rec.linktypes[1], 101);
  ck_assert_int_eq(x.rec.stats_calls, 1);
  ck_assert_uint_eq(x.rec.last_stats.received, n + 5);
  ck_assert_uint_eq(x.rec.last_stats.dropped, 5);
  ck_assert_int_eq(x.rec.ends, 1);
  ps_receiver_counters rc_ctr;
  ps_receiver_get_counters(x.r, &rc_ctr, sizeof(rc_ctr));
  ck_assert_uint_eq(rc_ctr.packets, n);
  ck_assert_uint_eq(rc_ctr.bytes, bytes);
  ck_assert_uint_eq(rc_ctr.sessions_total, 1);
  ck_assert_uint_eq(rc_ctr.sessions_failed, 0);
  ck_assert_uint_eq(rc_ctr.sessions_active, 0);
  ck_assert_msg(strstr(x.log, "sensor unit-sensor connected") != NULL,
                "receiver log: %s", x.log);
  gen_free(&g);
  rx_free(&x);
}

START_TEST(test_stream_zlib) {
  stream_roundtrip(PS_CODEC_ZLIB, 3000, 0);
}
END_TEST

START_TEST(test_stream_none_small_batches) {
  stream_roundtrip(PS_CODEC_NONE, 1500, 4096);
}
END_TEST

/* A quiet stream's small batch waits for the max delay; one of 64
 * packets goes at the batch delay; all arrive either way. */
START_TEST(test_batch_max_delay) {
  ps_stream *v = new_stream("unit-sensor");
  ck_assert_err(ps_stream_set_batch_max_delay_ms(v, 60001), PS_ERR_INVALID,
                ps_stream_errmsg(v), "batch max delay 60001 ms: use 0..60000");
  ps_stream_free(v);
  for (int grow = 0; grow < 2; grow++) {
    rx x;
    uint16_t port = rx_start(&x, NULL);
    ps_stream *s = new_stream("unit-sensor");
    ck_assert_int_eq(ps_stream_set_batch_delay_ms(s, 50), 0);
    if (grow) {
      ck_assert_int_eq(ps_stream_set_batch_max_delay_ms(s, 4000), 0);
    }
    ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
    uint32_t id = 99;
    ck_assert_int_eq(
        ps_stream_add_interface(s, &id, "eth0", 1, 262144, PS_TSRES_USEC), 0);
    ck_assert_int_eq(
        ps_stream_add_interface(s, &id, "tun0", 101, 65535, PS_TSRES_NSEC), 0);
    gen g;
    gen_make(&g, 64, 64);
    ck_assert_int_eq(ps_stream_send(s, &g.p[0]), 0);
    int d = ps_stream_next_deadline_ms(s);
    if (grow) {
      ck_assert_msg(d > 1000, "1 packet, max delay 4000: due in %d ms", d);
    } else {
      ck_assert_msg(d >= 0 && d <= 50, "1 packet: due in %d ms", d);
    }
    for (size_t i = 1; i < 64; i++) {
      ck_assert_int_eq(ps_stream_send(s, &g.p[i]), 0);
    }
    d = ps_stream_next_deadline_ms(s);
    ck_assert_msg(d >= 0 && d <= 50, "64 packets: due in %d ms", d);
    ck_assert_int_eq(ps_stream_close(s, 10000), 0);
    ps_stream_free(s);
    ck_assert_int_eq(rx_stop(&x), 0);
    expect_all(&x.rec, &g);
    gen_free(&g);
    rx_free(&x);
  }
}
END_TEST

START_TEST(test_connect_refused_times_out) {
  /* A port nobody listens on: bind one, read its number, close it. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t sl = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &sl);
  uint16_t port = ntohs(a.sin_port);
  close(fd);

  ps_stream *s = new_stream("lonely");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_connect_timeout_ms(s, 2000), 0);
  int64_t t0 = W.now;
  int rc = ps_stream_connect(s, "127.0.0.1", port);
  /* Attempts at 0 s and 1 s; a third, 2 s later, would be past the
   * timeout. */
  ck_assert_err(rc, PS_ERR_CONNECT, ps_stream_errmsg(s),
                "(gave up after 2 attempts)");
  ck_assert_int_ge(W.now - t0, 1000);
  ck_assert_int_lt(W.now - t0, 2000);
  ck_assert_msg(strstr(slog, "retrying") != NULL, "log: %s", slog);
  /* A failed stream stays failed. */
  uint32_t id;
  ck_assert_int_eq(ps_stream_add_interface(s, &id, "e", 1, 1, PS_TSRES_USEC),
                   PS_ERR_CLOSED);
  ps_stream_free(s);
}
END_TEST

START_TEST(test_connect_gave_up_keeps_reason) {
  ps_stream *s = new_stream("lonely");
  ck_assert_int_eq(ps_stream_set_connect_timeout_ms(s, 1000), 0);
  /* Port 1 on loopback: refused at once. */
  int rc = ps_stream_connect(s, "127.0.0.1", 1);
  ck_assert_err(rc, PS_ERR_CONNECT, ps_stream_errmsg(s),
                "cannot connect to receiver 127.0.0.1 port 1");
  ck_assert_ptr_nonnull(strstr(ps_stream_errmsg(s), "(gave up after "));
  ps_stream_free(s);
}
END_TEST

START_TEST(test_send_invalid) {
  ps_stream *s = new_stream("inv");
  static uint8_t buf[PS_MAX_CAPLEN + 1];
  ps_packet p = {.ts_sec = 1, .caplen = 10, .len = 10, .iface = 0, .data = buf};
  /* Not connected yet. */
  ck_assert_err(ps_stream_send(s, &p), PS_ERR_STATE, ps_stream_errmsg(s),
                "not connected");

  rx x;
  uint16_t port = rx_start(&x, NULL);
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  uint32_t id;
  ck_assert_int_eq(ps_stream_set_codec(s, PS_CODEC_NONE), PS_ERR_STATE);
  ck_assert_int_eq(ps_stream_add_interface(s, &id, "eth0", 1, 65535, 7),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps_stream_add_interface(s, &id, "", 1, 65535, PS_TSRES_USEC),
                   PS_ERR_INVALID);
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  /* Unknown interface. */
  p.iface = 1;
  ck_assert_err(ps_stream_send(s, &p), PS_ERR_INVALID, ps_stream_errmsg(s),
                "unknown interface 1");
  /* caplen above the maximum. */
  p.iface = 0;
  p.caplen = PS_MAX_CAPLEN + 1;
  p.len = p.caplen;
  ck_assert_err(ps_stream_send(s, &p), PS_ERR_INVALID, ps_stream_errmsg(s),
                "caplen 262145 above 262144");
  /* Exactly the maximum is fine, and the stream is still usable. */
  p.caplen = PS_MAX_CAPLEN;
  unit_fill_random(buf, PS_MAX_CAPLEN, 5);
  ck_assert_int_eq(ps_stream_send(s, &p), 0);
  ck_assert_int_eq(ps_stream_close(s, 10000), 0);
  ps_stream_free(s);
  ck_assert_int_eq(rx_stop(&x), 0);
  ck_assert_uint_eq(x.rec.npkts, 1);
  ck_assert_uint_eq(x.rec.pkts[0].p.caplen, PS_MAX_CAPLEN);
  ck_assert_mem_eq(x.rec.pkts[0].data, buf, PS_MAX_CAPLEN);
  rx_free(&x);
}
END_TEST

/* Runs a sensor with two link types against a pcap sink on standard
 * output; returns the first error and leaves the errmsg in msg. */
static int stdout_second_linktype(int wait_for_reply, char *msg, size_t n) {
  char out[] = "/tmp/ps-test-stream-XXXXXX";
  int tmp = mkstemp(out);
  ck_assert_int_ge(tmp, 0);
  close(tmp);
  int saved = stdout_to(out);
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_sink(&sk, "-", 0), 0);
  rx x;
  uint16_t port = rx_start(&x, sk);
  ps_stream *s = new_stream("twotypes");
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  uint32_t id0, id1;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id0, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  int rc = ps_stream_add_interface(s, &id1, "tun0", 101, 65535, PS_TSRES_USEC);
  if (rc == 0 && wait_for_reply) {
    for (int i = 0; i < 50 && rc == 0; i++) {
      rc = ps_stream_poll(s, 100);
    }
  }
  uint8_t data[100] = {0};
  ps_packet p = {.ts_sec = 1, .caplen = 100, .len = 100, .data = data};
  for (int i = 0; i < 100 && rc == 0; i++) {
    rc = ps_stream_send(s, &p);
  }
  if (rc == 0) {
    rc = ps_stream_close(s, 5000);
  }
  snprintf(msg, n, "%s", ps_stream_errmsg(s));
  ps_stream_free(s);
  ck_assert_int_eq(rx_stop(&x), 0);
  ck_assert_msg(strstr(x.log, "use --format pcapng") != NULL,
                "receiver log: %s", x.log);
  ps_receiver_counters c;
  ps_receiver_get_counters(x.r, &c, sizeof(c));
  ck_assert_uint_eq(c.sessions_failed, 1);
  rx_free(&x);
  stdout_restore(saved);
  unlink(out);
  return rc;
}

START_TEST(test_stdout_second_linktype_refused) {
  char msg[PS_ERRMSG_MAX];
  int rc = stdout_second_linktype(1, msg, sizeof(msg));
  ck_assert_err(rc, PS_ERR_REFUSED, msg, "pcapng");
  ck_assert_ptr_nonnull(strstr(msg, "receiver refused this sensor"));
}
END_TEST

START_TEST(test_stdout_second_linktype_while_sending) {
  /* The sensor keeps sending after the refused announcement: whatever
   * call notices, the reason is the receiver's. */
  char msg[PS_ERRMSG_MAX];
  int rc = stdout_second_linktype(0, msg, sizeof(msg));
  ck_assert_err(rc, PS_ERR_REFUSED, msg, "pcapng");
}
END_TEST

/* ------------------------------------------------------- fake receiver */

/* A scripted receiver on loopback, one connection at a time, stepped by
 * the world while the stream waits: it answers the hello, "writes" batches as
 * the real receiver does (a batch at or below the last written is a duplicate;
 * gaps are accepted), and behaves per connection as its plan says. */
typedef struct fake_plan {
  int ack;       /* acknowledge batches */
  int cut_after; /* close after this many batches (0: never) */
  int hangup;    /* close right after accepting */
  int forget;    /* forget what was written (a receiver that lost it) */
  int refuse;    /* answer the hello with an ERROR and close */
  int stall;     /* after the hello, read nothing until held is cleared */
  int silent;    /* take the connection, answer nothing */
  int busy;      /* answer the hello with ERROR 520 (full) and close */
  int garbage;   /* welcome, then answer the first frame with garbage */
} fake_plan;

#define FAKE_MAX_CONNS 64
#define FAKE_MAX_BATCHES 4096

struct fake_rx {
  int lfd;
  uint16_t port;
  int fd;      /* the connection being served, -1 */
  int conn;    /* its index */
  int batches; /* it took */
  fake_plan pl;
  int welcomed; /* this connection had its hello answered */
  int held;     /* a stalling plan holds its reading (the test clears it) */
  ps__buf in, out;
  fake_plan plan[FAKE_MAX_CONNS]; /* per connection; the last repeats */
  int nplan;
  int conns;  /* connections accepted */
  int hellos; /* connections that sent a hello */
  uint64_t stream_id[FAKE_MAX_CONNS];
  int ifaces[FAKE_MAX_CONNS]; /* IFACE frames per connection */
  int stats[FAKE_MAX_CONNS];
  uint64_t seq[FAKE_MAX_BATCHES]; /* batches received, in order */
  int conn_of[FAKE_MAX_BATCHES];
  int nbatch;
  uint64_t last_written;
  uint64_t written_pkts;
  uint64_t dup_batches;
  int closes;
  ps_capture_stats last_stats;
};

static void fake_send(int fd, ps__buf *b) {
  size_t off = 0;
  while (off < ps__buf_size(b)) {
    ssize_t n =
        send(fd, ps__buf_head(b) + off, ps__buf_size(b) - off, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    off += (size_t)n;
  }
  ps__buf_reset(b);
}

/* Handles the whole frames that came; returns 1 when the plan says to
 * close the connection now. */
static int fake_frames(fake_rx *x) {
  ps__limits lim;
  ps__limits_default(&lim);
  int done = 0;
  while (!done) {
    ps__frame f;
    size_t used;
    char err[PS_ERRMSG_MAX];
    int rc = ps__frame_parse(ps__buf_head(&x->in), ps__buf_size(&x->in), &lim,
                             &f, &used, err);
    ck_assert_msg(rc >= 0, "fake receiver: %s", err);
    if (rc == 0) {
      break;
    }
    if (x->pl.garbage && f.type != PS_FRAME_HELLO) {
      /* No frame type is 0xee: the sensor meets a protocol violation
       * on a connection that had been welcomed. */
      static const uint8_t junk[16] = {0xee, 0xee, 0xee, 0xee};
      ck_assert_int_eq(ps__buf_append(&x->out, junk, sizeof(junk)), 0);
      done = 1;
      break;
    }
    switch (f.type) {
    case PS_FRAME_HELLO: {
      ps__hello h;
      ck_assert_int_eq(ps__dec_hello(&f, &h, err), 0);
      ck_assert_uint_eq(h.flags & PS_HELLO_STREAM, PS_HELLO_STREAM);
      x->stream_id[x->conn] = h.stream_id;
      x->hellos++;
      if (x->pl.refuse) {
        ps__enc_error(&x->out, 1, "sensor not allowed");
        done = 1;
        break;
      }
      if (x->pl.busy) {
        ps__enc_error(&x->out, PS_WIRE_ERR_BUSY,
                      "the receiver is at its limit of 1 sensors");
        done = 1;
        break;
      }
      ps__welcome w = {.version = 1,
                       .codec = PS_WIRE_CODEC_STORED,
                       .max_frame = lim.max_frame,
                       .max_batch_raw = lim.max_batch_raw,
                       .max_batch_packets = lim.max_batch_packets,
                       .session_id = (uint64_t)x->conn + 1};
      ps__enc_welcome(&x->out, &w);
      /* The resume point, always (0: a stream it does not have). */
      ps__enc_ack(&x->out, x->last_written);
      x->welcomed = 1;
      break;
    }
    case PS_FRAME_IFACE:
      x->ifaces[x->conn]++;
      break;
    case PS_FRAME_BATCH: {
      ps__batch b;
      ck_assert_int_eq(ps__dec_batch(&f, &lim, &b, err), 0);
      ck_assert_int_lt(x->nbatch, FAKE_MAX_BATCHES);
      x->seq[x->nbatch] = b.seq;
      x->conn_of[x->nbatch++] = x->conn;
      if (b.seq > x->last_written) {
        x->last_written = b.seq;
        x->written_pkts += b.count;
      } else {
        x->dup_batches++;
      }
      if (x->pl.ack) {
        ps__enc_ack(&x->out, x->last_written);
      }
      if (x->pl.cut_after && ++x->batches >= x->pl.cut_after) {
        done = 1;
      }
      break;
    }
    case PS_FRAME_STATS: {
      ps__stats st;
      ck_assert_int_eq(ps__dec_stats(&f, &st, err), 0);
      x->stats[x->conn]++;
      x->last_stats = st.c;
      break;
    }
    case PS_FRAME_HEARTBEAT:
      ps__enc_heartbeat(&x->out);
      break;
    case PS_FRAME_CLOSE: {
      uint64_t seq;
      ck_assert_int_eq(ps__dec_seq(&f, &seq, err), 0);
      if (seq == x->last_written) {
        ps__enc_close(&x->out, seq);
        x->closes++;
        done = 1;
      }
      break;
    }
    default:
      ck_abort_msg("fake receiver: unexpected frame %u", f.type);
    }
    ps__buf_consume(&x->in, used);
  }
  return done;
}

static void fake_hangup(fake_rx *x) {
  close(x->fd);
  x->fd = -1;
  ps__buf_reset(&x->in);
  ps__buf_reset(&x->out);
}

/* Takes a connection when none is served, reads what came and answers
 * it. Returns whether anything happened. */
static int fake_step(fake_rx *x) {
  if (x->fd < 0) {
    int fd = accept(x->lfd, NULL, NULL);
    if (fd < 0) {
      return 0;
    }
    x->conn = x->conns < FAKE_MAX_CONNS - 1 ? x->conns : FAKE_MAX_CONNS - 1;
    x->conns++;
    x->pl = x->plan[x->conn < x->nplan ? x->conn : x->nplan - 1];
    x->batches = 0;
    x->welcomed = 0;
    x->held = x->pl.stall;
    if (x->pl.hangup) {
      close(fd);
      return 1;
    }
    if (x->pl.forget) {
      x->last_written = 0;
    }
    x->fd = fd;
  }
  int busy = 0;
  while (!(x->held && x->welcomed)) {
    uint8_t *p = ps__buf_reserve(&x->in, 65536);
    ssize_t n = recv(x->fd, p, 65536, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return busy;
    }
    if (n <= 0) {
      fake_hangup(x);
      return 1;
    }
    busy = 1;
    if (x->pl.silent) {
      continue; /* heard, and ignored */
    }
    x->in.len += (size_t)n;
    int done = fake_frames(x);
    fake_send(x->fd, &x->out);
    if (done) {
      fake_hangup(x);
      return 1;
    }
  }
  return busy;
}

/* Starts a fake receiver with n plans (the last repeats). */
static uint16_t fake_start(fake_rx *x, const fake_plan *plan, int n) {
  memset(x, 0, sizeof(*x));
  x->fd = -1;
  memcpy(x->plan, plan, (size_t)n * sizeof(*plan));
  x->nplan = n;
  x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(x->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(x->lfd, 16), 0);
  socklen_t sl = sizeof(a);
  getsockname(x->lfd, (struct sockaddr *)&a, &sl);
  x->port = ntohs(a.sin_port);
  w_add((void **)W.fake, x);
  return x->port;
}

/* Changes the plan of connections from index conn on. */
static void fake_replan(fake_rx *x, int conn, fake_plan pl) {
  for (int i = conn; i < FAKE_MAX_CONNS; i++) {
    x->plan[i] = pl;
  }
  x->nplan = FAKE_MAX_CONNS;
}

static void fake_stop(fake_rx *x) {
  w_remove((void **)W.fake, x);
  if (x->fd >= 0) {
    fake_hangup(x);
  }
  close(x->lfd);
  ps__buf_free(&x->in);
  ps__buf_free(&x->out);
}

/* The accounting every stream keeps, whatever happened. */
static void expect_invariant(ps_stream *s) {
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  ck_assert_msg(
      c.packets_sent == c.packets_acked + c.packets_dropped_overflow +
                            c.packets_lost + c.packets_queued,
      "sent %llu != acked %llu + dropped %llu + lost %llu + "
      "queued %llu",
      (unsigned long long)c.packets_sent, (unsigned long long)c.packets_acked,
      (unsigned long long)c.packets_dropped_overflow,
      (unsigned long long)c.packets_lost, (unsigned long long)c.packets_queued);
}

/* Closes s, which must end cleanly within 10 s, and returns its
 * counters, whose accounting must add up. */
static ps_stream_counters close_clean(ps_stream *s) {
  int rc = ps_stream_close(s, 10000);
  ck_assert_msg(rc == 0, "close: %s\nlog: %s", ps_stream_errmsg(s), slog);
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  return c;
}

/* A stream to a fake receiver, uncompressed so batch sizes are known:
 * each batch of BATCH_PKTS packets of PKT_LEN bytes is one frame of
 * 28 + BATCH_PKTS * (24 + PKT_LEN) bytes. */
#define PKT_LEN 1000
#define BATCH_PKTS 10
#define FRAME_LEN (28 + BATCH_PKTS * (24 + PKT_LEN))

static ps_stream *fake_stream(uint16_t port, size_t replay,
                              ps_overflow policy) {
  ps_stream *s = new_stream("replay-sensor");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_codec(s, PS_CODEC_NONE), 0);
  ck_assert_int_eq(ps_stream_set_batch_size(s, 1u << 20), 0);
  ck_assert_int_eq(ps_stream_set_batch_delay_ms(s, 10000), 0);
  if (replay) {
    ck_assert_int_eq(ps_stream_set_replay_size(s, replay), 0);
    ck_assert_int_eq(ps_stream_set_overflow(s, policy), 0);
  }
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  uint32_t id;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth1", 1, 65535, PS_TSRES_USEC), 0);
  return s;
}

/* Sends n batches of BATCH_PKTS packets (alternating interfaces), each
 * sealed by a flush. */
static void send_batches(ps_stream *s, int n, int poll_ms) {
  static uint8_t data[PKT_LEN];
  for (int b = 0; b < n; b++) {
    for (int i = 0; i < BATCH_PKTS; i++) {
      ps_packet p = {.ts_sec = 1700000000 + b,
                     .ts_frac = (uint32_t)i,
                     .caplen = PKT_LEN,
                     .len = PKT_LEN,
                     .iface = (uint32_t)(i % 2),
                     .data = data};
      ck_assert_int_eq(ps_stream_send(s, &p), 0);
    }
    ck_assert_int_eq(ps_stream_flush(s), 0);
    if (poll_ms >= 0) {
      ck_assert_int_eq(ps_stream_poll(s, poll_ms), 0);
    }
    expect_invariant(s);
  }
}

/* Polls until the stream has noticed a lost connection. */
static void wait_down(ps_stream *s) {
  for (int i = 0; i < 200 && ps_stream_get_fd(s) >= 0; i++) {
    ck_assert_int_eq(ps_stream_poll(s, 10), 0);
  }
  ck_assert_int_lt(ps_stream_get_fd(s), 0);
}

START_TEST(test_reconnect_resends) {
  /* The first connection takes three batches without acknowledging any
   * and closes; the next receiver has none of them (resume point 0), so
   * it gets them again, with the same numbers. */
  fake_plan plan[] = {{.ack = 0, .cut_after = 3}, {.ack = 1, .forget = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 2);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  send_batches(s, 10, 20);
  ps_capture_stats st = {.captured = 100};
  ck_assert_int_eq(ps_stream_send_stats(s, 0, &st, sizeof(st)), 0);
  ps_stream_counters c = close_clean(s);
  ck_assert_uint_eq(c.packets_sent, 100);
  ck_assert_uint_eq(c.packets_acked, 100);
  ck_assert_uint_eq(c.packets_lost, 0);
  ck_assert_uint_eq(c.packets_dropped_overflow, 0);
  ck_assert_uint_eq(c.packets_queued, 0);
  ck_assert_uint_eq(c.reconnects, 1);
  ck_assert_uint_ge(c.batches_resent, 3);
  ck_assert_uint_eq(c.batches_acked, 10);
  ck_assert_int_eq(x.hellos, 2);
  ck_assert_uint_eq(x.stream_id[0], x.stream_id[1]);
  ck_assert_int_eq(x.ifaces[1], 2); /* announced again */
  ck_assert_int_ge(x.stats[1], 1);
  /* The second connection starts with batch 1 again, in order. */
  int first = -1;
  for (int i = 0; i < x.nbatch; i++) {
    if (x.conn_of[i] == 1) {
      if (first < 0) {
        first = i;
        ck_assert_uint_eq(x.seq[i], 1);
      } else {
        ck_assert_uint_eq(x.seq[i], x.seq[i - 1] + 1);
      }
    }
  }
  ck_assert_uint_eq(x.seq[x.nbatch - 1], 10);
  /* The receiver that forgot writes batches 1..3 a second time. */
  ck_assert_uint_eq(x.written_pkts, 130);
  ck_assert_msg(strstr(slog, "reconnecting to 127.0.0.1 port") != NULL,
                "log: %s", slog);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

START_TEST(test_resume_ack) {
  /* The receiver wrote four batches but acknowledged none before the
   * cut; the next connection opens with "ACK 4": the stream takes it,
   * and the resent copies are duplicates the receiver skips. */
  fake_plan plan[] = {{.ack = 0, .cut_after = 4}, {.ack = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 2);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  send_batches(s, 4, -1);
  wait_down(s);
  send_batches(s, 2, -1);
  ps_stream_counters c = close_clean(s);
  ck_assert_uint_eq(c.packets_acked, 60);
  ck_assert_uint_eq(c.packets_lost, 0);
  ck_assert_uint_eq(c.reconnects, 1);
  ck_assert_uint_eq(x.written_pkts, 60);
  ck_assert_uint_eq(x.last_written, 6);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

/* An outage of 20 batches with room for 6 (64 KiB, frames of 10268
 * bytes). The first batch went to the broken connection and the
 * receiver wrote it; its resume ACK counts it delivered. */
static void outage(ps_overflow policy, uint64_t *acked, uint64_t *dropped,
                   fake_rx *x) {
  fake_plan plan[] = {{.ack = 0, .cut_after = 1}, {.hangup = 1}};
  uint16_t port = fake_start(x, plan, 2);
  ps_stream *s = fake_stream(port, 65536, policy);
  send_batches(s, 1, -1);
  wait_down(s);
  send_batches(s, 20, -1);
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  fake_replan(x, x->conns, (fake_plan){.ack = 1});
  int rc = ps_stream_close(s, 10000);
  ck_assert_msg(rc == 0, "close: %s\nlog: %s", ps_stream_errmsg(s), slog);
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  ck_assert_uint_eq(c.packets_sent, 210);
  ck_assert_uint_eq(c.packets_lost, 0);
  ck_assert_uint_eq(c.packets_queued, 0);
  ck_assert_uint_eq(x->written_pkts, c.packets_acked);
  *acked = c.packets_acked;
  *dropped = c.packets_dropped_overflow;
  /* Per interface: half each. */
  ps_stream_interface_counters ic;
  ck_assert_int_eq(ps_stream_get_interface_counters(s, &ic, sizeof(ic), 1), 0);
  ck_assert_uint_eq(ic.packets_sent, 105);
  ck_assert_uint_eq(ic.packets_dropped_overflow, *dropped / 2);
  ck_assert_uint_eq(ic.packets_acked, *acked / 2);
  ck_assert_msg(strstr(slog, "replay buffer full") != NULL, "log: %s", slog);
  ps_stream_free(s);
  fake_stop(x);
}

START_TEST(test_drop_oldest_counts) {
  ck_assert_int_lt(6 * FRAME_LEN, 65536);
  ck_assert_int_gt(7 * FRAME_LEN, 65536);
  uint64_t acked, dropped;
  fake_rx x;
  outage(PS_OVERFLOW_DROP_OLDEST, &acked, &dropped, &x);
  /* Batch 1 (written before the cut) and the newest six, 16..21. */
  ck_assert_uint_eq(acked, 70);
  ck_assert_uint_eq(dropped, 140);
  ck_assert_uint_eq(x.seq[x.nbatch - 1], 21);
  int n2 = 0;
  for (int i = 0; i < x.nbatch; i++) {
    if (x.conn_of[i] > 0) {
      ck_assert_uint_eq(x.seq[i], 16 + (uint64_t)n2++);
    }
  }
  ck_assert_int_eq(n2, 6);
}
END_TEST

START_TEST(test_drop_newest_counts) {
  uint64_t acked, dropped;
  fake_rx x;
  outage(PS_OVERFLOW_DROP_NEWEST, &acked, &dropped, &x);
  /* Batch 1 stays queued with the five after it; the fifteen newest were
   * refused. The receiver's resume point says it has batch 1: not sent
   * again. */
  ck_assert_uint_eq(acked, 60);
  ck_assert_uint_eq(dropped, 150);
  ck_assert_uint_eq(x.last_written, 6);
  ck_assert_uint_eq(x.dup_batches, 0);
}
END_TEST

/* drop-newest while connected: with the queue full of unacknowledged
 * batches, new ones are sent but not kept. The connection breaks with
 * four of those unacknowledged: the next connection's first ACK tells
 * whether the receiver has them (resume) or not (lost, counted). */
static void sent_unkept(int receiver_remembers) {
  fake_plan plan[] = {{.ack = 0, .cut_after = 10},
                      {.ack = 1, .forget = !receiver_remembers}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 2);
  ps_stream *s = fake_stream(port, 65536, PS_OVERFLOW_DROP_NEWEST);
  send_batches(s, 10, 5);
  wait_down(s);
  ps_stream_counters c = close_clean(s);
  ck_assert_uint_eq(c.packets_dropped_overflow, 0);
  /* Only the six kept can be resent, and only to a receiver that does
   * not have them. */
  ck_assert_uint_eq(c.batches_resent, receiver_remembers ? 0 : 6);
  if (receiver_remembers) {
    ck_assert_uint_eq(c.packets_acked, 100);
    ck_assert_uint_eq(c.packets_lost, 0);
  } else {
    ck_assert_uint_eq(c.packets_acked, 60);
    ck_assert_uint_eq(c.packets_lost, 40);
  }
  ps_stream_free(s);
  fake_stop(&x);
}

START_TEST(test_drop_newest_connected_resumed) {
  sent_unkept(1);
}
END_TEST

START_TEST(test_drop_newest_connected_lost) {
  sent_unkept(0);
}
END_TEST

START_TEST(test_evicted_after_resume_are_dropped) {
  /* Connection 1 takes 8 batches of 1 MiB and breaks without an
   * acknowledgement. Connection 2, a receiver that lost them (resume
   * point 0), stops reading after the hello, so most of the 8 wait unsent
   * when 8 more overflow the 9 MiB buffer. Those evicted never went to
   * this connection and its resume point says the receiver lacks them:
   * dropped, and counted so. (The stream used to forget that the resume
   * point had come: it kept them as stubs waiting for an acknowledgement
   * no connection could give, and so never sent this connection the end
   * of the stream; ps_stream_close() timed out and counted everything
   * lost.) */
  fake_plan plan[] = {{.ack = 0, .cut_after = 8},
                      {.ack = 1, .forget = 1, .stall = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 2);
  ps_stream *s = new_stream("evictor");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_codec(s, PS_CODEC_NONE), 0);
  ck_assert_int_eq(ps_stream_set_batch_size(s, 2u << 20), 0);
  ck_assert_int_eq(ps_stream_set_batch_delay_ms(s, 10000), 0);
  ck_assert_int_eq(ps_stream_set_replay_size(s, 9u << 20), 0);
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  uint32_t id;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  static uint8_t big[65535];
  ps_packet p = {.ts_sec = 1, .caplen = 65535, .len = 65535, .data = big};
  for (int b = 0; b < 16; b++) {
    if (b == 8) {
      wait_down(s);
      /* Until the new connection has written what the socket takes. */
      ps_stream_counters c = {0};
      for (int i = 0; i < 300 && c.reconnects == 0; i++) {
        ck_assert_int_eq(ps_stream_poll(s, 10), 0);
        ps_stream_get_counters(s, &c, sizeof(c));
      }
      for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ps_stream_process(s), 0);
      }
      ck_assert_uint_eq(c.reconnects, 1);
      /* The test needs batches of the broken connection still unsent. */
      ck_assert_uint_lt(s->rq.fed, s->rq.n);
    }
    for (int k = 0; k < 16; k++) {
      ck_assert_int_eq(ps_stream_send(s, &p), 0);
    }
    ck_assert_int_eq(ps_stream_flush(s), 0);
  }
  x.held = 0;
  ps_stream_counters c = close_clean(s);
  ck_assert_uint_eq(c.packets_lost, 0);
  ck_assert_uint_gt(c.packets_dropped_overflow, 0);
  ck_assert_uint_eq(c.packets_acked + c.packets_dropped_overflow, 256);
  /* And the new receiver wrote exactly what was acknowledged (after the
   * 128 packets of the first connection, which it forgot). */
  ck_assert_uint_eq(x.written_pkts, 128 + c.packets_acked);
  ck_assert_int_eq(x.closes, 1);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

START_TEST(test_reconnect_never_waits) {
  /* The receiver goes away; the next one takes the connection and never
   * answers the hello. While the stream tries it, the capture keeps
   * queueing: no call waits (every wait of the stream goes through the
   * clock hook, which counts them) and no time passes. The attempt then
   * times out on the clock, the next gets through, everything arrives. */
  fake_plan plan[] = {{.ack = 1, .cut_after = 1}, {.silent = 1}, {.ack = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 3);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  send_batches(s, 1, -1);
  wait_down(s);
  for (int i = 0; i < 300 && x.conns < 2; i++) {
    ck_assert_int_eq(ps_stream_poll(s, 10), 0);
  }
  ck_assert_int_eq(x.conns, 2);
  ck_assert_int_ge(ps_stream_get_fd(s), 0); /* the attempt is on its way */
  int waits = W.waits;
  int64_t t = W.now;
  send_batches(s, 50, -1);
  ck_assert_int_eq(W.waits, waits);
  ck_assert_int_eq(W.now, t);
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  ck_assert_uint_eq(c.packets_queued, 500);
  ck_assert_uint_eq(c.reconnects, 0);
  int rc = ps_stream_close(s, 30000);
  ck_assert_msg(rc == 0, "close: %s\nlog: %s", ps_stream_errmsg(s), slog);
  ck_assert_msg(strstr(slog, "did not answer the hello within 5 s") != NULL,
                "log: %s", slog);
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  ck_assert_uint_eq(c.packets_acked, 510);
  ck_assert_uint_eq(c.reconnects, 1);
  ck_assert_int_eq(x.conns, 3);
  ck_assert_uint_eq(x.written_pkts, 510);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

START_TEST(test_close_counts_lost) {
  /* The receiver never comes back: close gives up at its timeout and
   * says how many packets were not acknowledged. */
  fake_plan plan[] = {{.ack = 1, .cut_after = 2}, {.hangup = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 2);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  send_batches(s, 2, -1);
  wait_down(s);
  send_batches(s, 3, -1);
  int rc = ps_stream_close(s, 1500);
  ck_assert_err(rc, PS_ERR_TIMEOUT, ps_stream_errmsg(s),
                "30 packets in 3 batches were not acknowledged");
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  ck_assert_uint_eq(c.packets_acked, 20);
  ck_assert_uint_eq(c.packets_lost, 30);
  ck_assert_uint_eq(c.packets_queued, 0);
  ck_assert_uint_ge(x.conns, 2); /* it kept trying */
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

START_TEST(test_refused_on_reconnect_counts_lost) {
  /* The receiver comes back but refuses the sensor: the stream ends
   * while polling, and the batches it still held are counted lost, not
   * left "queued" in a stream that can never send them. */
  fake_plan plan[] = {{.ack = 1, .cut_after = 2}, {.refuse = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 2);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  send_batches(s, 2, -1);
  wait_down(s);
  send_batches(s, 3, -1);
  int rc = 0;
  for (int i = 0; i < 300 && rc == 0; i++) {
    rc = ps_stream_poll(s, 10);
  }
  ck_assert_err(rc, PS_ERR_REFUSED, ps_stream_errmsg(s), "not allowed");
  ck_assert_int_ne(ps_stream_close(s, 1000), 0);
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  ck_assert_uint_eq(c.packets_acked, 20);
  ck_assert_uint_eq(c.packets_queued, 0);
  ck_assert_uint_eq(c.packets_lost, 30);
  ps_stream_interface_counters ic;
  ck_assert_int_eq(ps_stream_get_interface_counters(s, &ic, sizeof(ic), 0), 0);
  ck_assert_uint_eq(ic.packets_lost, 15);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

START_TEST(test_failover) {
  /* A takes two batches and goes away for good; B takes the rest. */
  fake_plan pa[] = {{.ack = 1, .cut_after = 2}, {.hangup = 1}};
  fake_plan pb[] = {{.ack = 1}};
  fake_rx a, b;
  uint16_t porta = fake_start(&a, pa, 2);
  uint16_t portb = fake_start(&b, pb, 1);
  ps_stream *s = new_stream("failover");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_codec(s, PS_CODEC_NONE), 0);
  ck_assert_int_eq(ps_stream_add_receiver(s, "127.0.0.1", portb), 0);
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", porta), 0);
  ck_assert_int_eq(ps_stream_add_receiver(s, "127.0.0.1", portb), PS_ERR_STATE);
  uint32_t id;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth1", 1, 65535, PS_TSRES_USEC), 0);
  send_batches(s, 10, 20);
  ps_stream_counters c = close_clean(s);
  ck_assert_uint_eq(c.packets_acked, 100);
  ck_assert_uint_eq(a.written_pkts + b.written_pkts, 100);
  ck_assert_uint_eq(a.written_pkts, 20);
  ck_assert_int_ge(b.hellos, 1);
  ck_assert_int_eq(b.ifaces[0], 2);
  ck_assert_msg(strstr(slog, "connected to receiver 127.0.0.1 port") != NULL,
                "log: %s", slog);
  ps_stream_free(s);
  fake_stop(&a);
  fake_stop(&b);
}
END_TEST

START_TEST(test_connect_by_name) {
  /* A name resolves in the background (here from /etc/hosts: no DNS
   * query leaves the host), then its addresses are tried in turn. */
  fake_plan plan[] = {{.ack = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 1);
  W.patient = 1; /* the resolver runs in real time */
  ps_stream *s = new_stream("named");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  int rc = ps_stream_connect(s, "localhost", port);
  W.patient = 0;
  ck_assert_msg(rc == 0, "connect: %s\nlog: %s", ps_stream_errmsg(s), slog);
  ck_assert_msg(strstr(slog, "connected to receiver localhost port") != NULL,
                "log: %s", slog);
  ck_assert_int_eq(ps_stream_close(s, 5000), 0);
  ck_assert_int_eq(x.closes, 1);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

START_TEST(test_failover_at_connect) {
  /* The first receiver is not there at all: connect moves on. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  socklen_t sl = sizeof(sa);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  uint16_t dead = ntohs(sa.sin_port);
  close(fd);
  fake_plan pb[] = {{.ack = 1}};
  fake_rx b;
  uint16_t portb = fake_start(&b, pb, 1);
  ps_stream *s = new_stream("failover");
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_add_receiver(s, "127.0.0.1", dead), 0);
  ck_assert_int_eq(ps_stream_add_receiver(s, "127.0.0.1", portb), 0);
  ck_assert_int_eq(ps_stream_connect(s, NULL, 0), 0);
  ck_assert_msg(strstr(slog, "trying receiver 127.0.0.1 port") != NULL,
                "log: %s", slog);
  ck_assert_int_eq(ps_stream_close(s, 5000), 0);
  ck_assert_int_eq(b.closes, 1);
  ps_stream_free(s);
  fake_stop(&b);
}
END_TEST

START_TEST(test_replay_setters) {
  ps_stream *s = new_stream("setters");
  ck_assert_err(ps_stream_set_replay_size(s, 1000), PS_ERR_INVALID,
                ps_stream_errmsg(s),
                "replay buffer of 1000 bytes: at least 65536");
  ck_assert_err(ps_stream_set_overflow(s, (ps_overflow)7), PS_ERR_INVALID,
                ps_stream_errmsg(s), "overflow policy 7: use");
  ck_assert_int_eq(ps_stream_set_replay_size(s, 1u << 20), 0);
  ck_assert_int_eq(ps_stream_set_overflow(s, PS_OVERFLOW_DROP_NEWEST), 0);
  /* Every setter names what it refused and the range it takes. */
  ck_assert_err(ps_stream_set_batch_size(s, 4095), PS_ERR_INVALID,
                ps_stream_errmsg(s), "batch size 4095: use 4096..4194304");
  ck_assert_err(ps_stream_set_batch_delay_ms(s, 0), PS_ERR_INVALID,
                ps_stream_errmsg(s), "batch delay 0 ms: use 1..10000");
  ck_assert_err(ps_stream_set_codec_level(s, 10), PS_ERR_INVALID,
                ps_stream_errmsg(s), "compression level 10: use 1..9");
  ck_assert_err(ps_stream_set_codec(s, (ps_codec)9), PS_ERR_INVALID,
                ps_stream_errmsg(s), "codec 9 is not in this build");
  ck_assert_err(ps_stream_set_peer_timeout_ms(s, 86400001), PS_ERR_INVALID,
                ps_stream_errmsg(s), "peer timeout 86400001 ms: at most");
  ck_assert_err(ps_stream_set_connect_timeout_ms(s, 86400001), PS_ERR_INVALID,
                ps_stream_errmsg(s), "connect timeout 86400001 ms: at most");
  ck_assert_int_eq(ps_stream_set_peer_timeout_ms(s, 86400000), 0);
  ck_assert_int_eq(ps_stream_add_receiver(s, "", 1), PS_ERR_INVALID);
  ck_assert_int_eq(ps_stream_add_receiver(s, "h", 0), PS_ERR_INVALID);
  for (int i = 0; i < 8; i++) {
    ck_assert_int_eq(ps_stream_add_receiver(s, "127.0.0.1", 1), 0);
  }
  ck_assert_int_eq(ps_stream_add_receiver(s, "127.0.0.1", 1), PS_ERR_LIMIT);
  ps_stream_free(s);
}
END_TEST

/* ------------------------------------- sensor limit, busy (issue 9) */

static const uint8_t unit_key[] = "unit test shared key";
#define UNIT_KEY_LEN (sizeof(unit_key) - 1)

/* A stranger: connects and says hello (no key), nothing more. */
static int stranger(uint16_t port, int i) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  char name[32];
  snprintf(name, sizeof(name), "stranger-%d", i);
  ps__hello h = {.min_version = 1,
                 .max_version = 1,
                 .codecs = 1,
                 .name = name,
                 .name_len = strlen(name)};
  ps__buf b = {0};
  ck_assert_int_eq(ps__enc_hello(&b, &h), 0);
  ck_assert_int_eq(send(fd, ps__buf_head(&b), ps__buf_size(&b), MSG_NOSIGNAL),
                   (ssize_t)ps__buf_size(&b));
  ps__buf_free(&b);
  return fd;
}

/* The type of the first frame the receiver sends on fd (-1: none within
 * 5 s, 0: the connection ended); reads only its header. */
static int first_frame(int fd) {
  uint8_t hdr[PS_FRAME_HDR];
  size_t got = 0;
  while (got < sizeof(hdr)) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = 0;
    for (int i = 0; i < 5000 && r == 0; i++) {
      w_step_peers();
      r = poll(&p, 1, 1);
    }
    if (r <= 0) {
      return -1;
    }
    ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, 0);
    if (n <= 0) {
      return 0;
    }
    got += (size_t)n;
  }
  return hdr[0];
}

/* Whether the receiver has closed fd (what it sent before is skipped). */
static int closed_by_peer(int fd) {
  uint8_t buf[4096];
  /* What the receiver has to do about fd is done first. */
  for (int i = 0; i < 100 && w_step_peers(); i++) {
  }
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      continue;
    }
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

/* A keyed sensor streams n packets to port and closes; all arrive. */
static void keyed_sensor(uint16_t port, const char *name, size_t n) {
  ps_stream *s = new_stream(name);
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_auth_key(s, unit_key, UNIT_KEY_LEN), 0);
  ck_assert_int_eq(ps_stream_set_connect_timeout_ms(s, 3000), 0);
  int rc = ps_stream_connect(s, "127.0.0.1", port);
  ck_assert_msg(rc == 0, "connect: %s", ps_stream_errmsg(s));
  uint32_t id;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "eth0", 1, 262144, PS_TSRES_USEC), 0);
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id, "tun0", 101, 65535, PS_TSRES_NSEC), 0);
  gen g;
  gen_make(&g, n, n / 2);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_eq(ps_stream_send(s, &g.p[i]), 0);
  }
  rc = ps_stream_close(s, 10000);
  ck_assert_msg(rc == 0, "close: %s", ps_stream_errmsg(s));
  gen_free(&g);
  ps_stream_free(s);
}

START_TEST(test_strangers_leave_sensor_slots) {
  /* F6: with room for 2 sensors, 6 strangers that say hello and never
   * prove the key lock nobody out: they are not sensors yet. */
  rx x;
  uint16_t port = rx_init(&x, NULL);
  ck_assert_int_eq(ps_receiver_set_max_sessions(x.r, 2), 0);
  ck_assert_int_eq(ps_receiver_set_auth_key(x.r, unit_key, UNIT_KEY_LEN), 0);
  rx_run(&x);
  int fd[6];
  for (int i = 0; i < 6; i++) {
    fd[i] = stranger(port, i);
    ck_assert_int_eq(first_frame(fd[i]), PS_FRAME_WELCOME);
  }
  keyed_sensor(port, "keyed", 500);
  /* The strangers still wait for their proof (handshake timeout 10 s). */
  for (int i = 0; i < 6; i++) {
    ck_assert_msg(!closed_by_peer(fd[i]), "stranger %d was closed", i);
  }
  /* Two keyed sensors fill the limit; a third is told so. */
  ps_stream *a = NULL, *b = NULL, *c = NULL;
  ps_stream **ss[3] = {&a, &b, &c};
  for (int i = 0; i < 3; i++) {
    *ss[i] = new_stream("keyed");
    ck_assert_int_eq(ps_stream_set_auth_key(*ss[i], unit_key, UNIT_KEY_LEN), 0);
    ck_assert_int_eq(ps_stream_set_connect_timeout_ms(*ss[i], 1000), 0);
  }
  ck_assert_int_eq(ps_stream_connect(a, "127.0.0.1", port), 0);
  ck_assert_int_eq(ps_stream_connect(b, "127.0.0.1", port), 0);
  ck_assert_err(ps_stream_connect(c, "127.0.0.1", port), PS_ERR_CONNECT,
                ps_stream_errmsg(c),
                "cannot take this sensor now: the receiver is at its limit "
                "of 2 sensors");
  ck_assert_int_eq(ps_stream_close(a, 5000), 0);
  ck_assert_int_eq(ps_stream_close(b, 5000), 0);
  for (int i = 0; i < 3; i++) {
    ps_stream_free(*ss[i]);
  }
  for (int i = 0; i < 6; i++) {
    close(fd[i]);
  }
  ck_assert_int_eq(rx_stop(&x), 0);
  ck_assert_uint_eq(x.rec.npkts, 500);
  ck_assert_int_eq(x.rec.starts, 3);
  rx_free(&x);
}
END_TEST

START_TEST(test_oldest_stranger_evicted) {
  /* Room for 3 connections in their handshake: each newcomer closes the
   * one that has waited longest, and a sensor with the key gets in. */
  rx x;
  uint16_t port = rx_init(&x, NULL);
  ck_assert_int_eq(ps_receiver_set_max_pending(x.r, 3), 0);
  ck_assert_int_eq(ps_receiver_set_max_pending(x.r, 1000001), PS_ERR_INVALID);
  ck_assert_int_eq(ps_receiver_set_auth_key(x.r, unit_key, UNIT_KEY_LEN), 0);
  rx_run(&x);
  int fd[5];
  for (int i = 0; i < 5; i++) {
    fd[i] = stranger(port, i);
    ck_assert_int_eq(first_frame(fd[i]), PS_FRAME_WELCOME);
  }
  keyed_sensor(port, "keyed", 50);
  for (int i = 0; i < 5; i++) {
    ck_assert_msg(closed_by_peer(fd[i]) == (i < 3), "stranger %d", i);
    close(fd[i]);
  }
  ck_assert_int_eq(rx_stop(&x), 0);
  ck_assert_uint_eq(x.rec.npkts, 50);
  ck_assert_msg(strstr(x.log, "sensor stranger-0 (127.0.0.1:") != NULL &&
                    strstr(x.log, ") dropped: closed for a newer connection: "
                                  "too many in their handshake (3 "
                                  "connections in their handshake, limit "
                                  "3)\n") != NULL,
                "receiver log: %s", x.log);
  rx_free(&x);
}
END_TEST

/* The second sensor of test_full_receiver_retried, and the first one,
 * closed by the hook once the second was told the receiver is full. */
static char w2log[4096];
static ps_stream *w_first;
static int w_first_rc = -1;

static void w2_log(ps_log_level level, const char *msg, void *ud) {
  size_t n = strlen(w2log);
  snprintf(w2log + n, sizeof(w2log) - n, "%s\n", msg);
}

static const char full_line[] = "cannot take this sensor now: the receiver "
                                "is at its limit of 1 sensors; retrying in "
                                "1 s";

static void close_first_when_full(void) {
  if (w_first != NULL && strstr(w2log, full_line) != NULL) {
    ps_stream *first = w_first;
    w_first = NULL;
    w_first_rc = ps_stream_close(first, 10000);
    ps_stream_free(first);
  }
}

START_TEST(test_full_receiver_retried) {
  /* Room for one sensor, taken: the second is told the receiver is full,
   * keeps trying, and gets in once the first has gone. */
  rx x;
  uint16_t port = rx_init(&x, NULL);
  ck_assert_int_eq(ps_receiver_set_max_sessions(x.r, 1), 0);
  rx_run(&x);
  ps_stream *first = new_stream("first");
  ck_assert_int_eq(ps_stream_connect(first, "127.0.0.1", port), 0);
  uint32_t id;
  ck_assert_int_eq(
      ps_stream_add_interface(first, &id, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  uint8_t data[200] = {0};
  for (int i = 0; i < 10; i++) {
    ps_packet p = {.ts_sec = 1, .caplen = 100, .len = 100, .data = data};
    ck_assert_int_eq(ps_stream_send(first, &p), 0);
  }
  ck_assert_int_eq(ps_stream_flush(first), 0);

  /* The second waits in ps_stream_connect(); meanwhile the hook closes
   * the first once the second logged that the receiver is full. */
  w2log[0] = '\0';
  w_first = first;
  w_first_rc = -1;
  W.hook = close_first_when_full;
  ps_stream *second = new_stream("second");
  ps_stream_set_log(second, w2_log, NULL);
  ck_assert_int_eq(ps_stream_set_connect_timeout_ms(second, 30000), 0);
  int rc = ps_stream_connect(second, "127.0.0.1", port);
  W.hook = NULL;
  ck_assert_msg(strstr(w2log, full_line) != NULL, "second sensor's log: %s",
                w2log);
  ck_assert_ptr_null(w_first);
  ck_assert_int_eq(w_first_rc, 0);
  ck_assert_msg(rc == 0, "second sensor: %d; log: %s", rc, w2log);
  ck_assert_int_eq(
      ps_stream_add_interface(second, &id, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  for (int i = 0; i < 20; i++) {
    ps_packet p = {
        .ts_sec = 1700000000 + i, .caplen = 200, .len = 200, .data = data};
    ck_assert_int_eq(ps_stream_send(second, &p), 0);
  }
  ck_assert_int_eq(ps_stream_close(second, 10000), 0);
  ps_stream_free(second);
  ck_assert_int_eq(rx_stop(&x), 0);
  ck_assert_uint_eq(x.rec.npkts, 30);
  ck_assert_int_eq(x.rec.starts, 2);
  ck_assert_msg(strstr(x.log, "sensor second (127.0.0.1:") != NULL &&
                    strstr(x.log, ") dropped: the receiver is at its limit "
                                  "of 1 sensors\n") != NULL,
                "receiver log: %s", x.log);
  rx_free(&x);
}
END_TEST

START_TEST(test_busy_on_reconnect_retried) {
  /* A receiver full when the stream comes back: retried, nothing lost. */
  fake_plan plan[] = {{.ack = 1, .cut_after = 2}, {.busy = 1}, {.ack = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 3);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  send_batches(s, 2, -1);
  wait_down(s);
  send_batches(s, 3, -1);
  ps_stream_counters c = close_clean(s);
  ck_assert_uint_eq(c.packets_acked, 50);
  ck_assert_uint_eq(c.packets_lost, 0);
  ck_assert_int_eq(x.conns, 3);
  ck_assert_msg(strstr(slog, "cannot take this sensor now: the receiver is "
                             "at its limit of 1 sensors") != NULL,
                "log: %s", slog);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

/* The delays of the "reconnecting to H port P in N ms" lines of slog. */
static int reconnect_delays(long *d, int max) {
  int n = 0;
  const char *p = slog;
  while (n < max && (p = strstr(p, "reconnecting to ")) != NULL) {
    const char *in = strstr(p, " in ");
    ck_assert_ptr_nonnull(in);
    d[n++] = strtol(in + 4, NULL, 10);
    p = in;
  }
  return n;
}

START_TEST(test_backoff_grows_until_a_connection_works) {
  /* Three receivers in a row welcome the sensor and then send garbage:
   * the backoff doubles (0.5, 1, 2 s, +-25%) instead of starting at
   * 0.5 s after each. A connection that got an acknowledgement resets
   * it. */
  fake_plan plan[] = {{.garbage = 1},
                      {.garbage = 1},
                      {.garbage = 1},
                      {.ack = 1, .cut_after = 1},
                      {.ack = 1}};
  fake_rx x;
  uint16_t port = fake_start(&x, plan, 5);
  ps_stream *s = fake_stream(port, 0, PS_OVERFLOW_DROP_OLDEST);
  for (int i = 0; i < 300 && x.conns < 5; i++) {
    send_batches(s, 1, 30);
  }
  int rc = ps_stream_close(s, 10000);
  ck_assert_msg(rc == 0, "close: %s\nlog: %s", ps_stream_errmsg(s), slog);
  long d[8];
  int n = reconnect_delays(d, 8);
  ck_assert_msg(n == 4, "%d reconnect lines; log: %s", n, slog);
  ck_assert_msg(d[0] >= 375 && d[0] <= 625, "first delay %ld", d[0]);
  ck_assert_msg(d[1] >= 750 && d[1] <= 1250, "second delay %ld", d[1]);
  ck_assert_msg(d[2] >= 1500 && d[2] <= 2500, "third delay %ld", d[2]);
  ck_assert_msg(d[3] >= 375 && d[3] <= 625, "after a working connection %ld",
                d[3]);
  ck_assert_msg(strstr(slog, "unknown frame type") != NULL, "log: %s", slog);
  ps_stream_counters c;
  ps_stream_get_counters(s, &c, sizeof(c));
  expect_invariant(s);
  ck_assert_uint_eq(c.packets_lost, 0);
  ck_assert_uint_eq(c.packets_acked, c.packets_sent);
  ps_stream_free(s);
  fake_stop(&x);
}
END_TEST

static int count_lines(const char *log, const char *sub) {
  int n = 0;
  for (const char *p = log; (p = strstr(p, sub)) != NULL; p += strlen(sub)) {
    n++;
  }
  return n;
}

START_TEST(test_handshake_log_lines_limited) {
  /* 120 connections that close without a hello: 100 lines, then one
   * that counts the rest, not a line each. */
  rx x;
  uint16_t port = rx_start(&x, NULL);
  for (int i = 0; i < 120; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    rx_step(&x); /* the listen backlog never fills */
  }
  ps_receiver_counters c = {0};
  for (int i = 0; i < 2000; i++) {
    rx_step(&x);
    ps_receiver_get_counters(x.r, &c, sizeof(c));
    if (c.connections == 120 && c.sessions_active == 0) {
      break;
    }
    usleep(1000);
  }
  ck_assert_uint_eq(c.connections, 120);
  ck_assert_uint_eq(c.connections_no_hello, 120);
  ck_assert_uint_eq(c.sessions_total, 0);
  ck_assert_uint_eq(c.sessions_active, 0);
  ck_assert_int_eq(rx_stop(&x), 0);
  ck_assert_int_eq(count_lines(x.log, "connection from 127.0.0.1:"), 100);
  ck_assert_msg(strstr(x.log, "20 more connections ended in their handshake "
                              "in the last") != NULL,
                "receiver log: %s", x.log);
  rx_free(&x);
}
END_TEST

static Suite *stream_suite(void) {
  Suite *s = suite_create("stream");
  TCase *tc = tcase_create("loopback");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_stream_zlib);
  tcase_add_test(tc, test_stream_none_small_batches);
  tcase_add_test(tc, test_connect_refused_times_out);
  tcase_add_test(tc, test_batch_max_delay);
  tcase_add_test(tc, test_send_invalid);
  tcase_add_test(tc, test_stdout_second_linktype_refused);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_connect_gave_up_keeps_reason);
  tcase_add_test(tc, test_stdout_second_linktype_while_sending);
  suite_add_tcase(s, tc);
  tc = tcase_create("replay");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_replay_setters);
  tcase_add_test(tc, test_reconnect_resends);
  tcase_add_test(tc, test_resume_ack);
  tcase_add_test(tc, test_drop_oldest_counts);
  tcase_add_test(tc, test_drop_newest_counts);
  tcase_add_test(tc, test_drop_newest_connected_resumed);
  tcase_add_test(tc, test_drop_newest_connected_lost);
  tcase_add_test(tc, test_close_counts_lost);
  tcase_add_test(tc, test_evicted_after_resume_are_dropped);
  tcase_add_test(tc, test_reconnect_never_waits);
  tcase_add_test(tc, test_failover);
  tcase_add_test(tc, test_refused_on_reconnect_counts_lost);
  tcase_add_test(tc, test_failover_at_connect);
  tcase_add_test(tc, test_connect_by_name);
  suite_add_tcase(s, tc);
  tc = tcase_create("limits");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_strangers_leave_sensor_slots);
  tcase_add_test(tc, test_oldest_stranger_evicted);
  tcase_add_test(tc, test_full_receiver_retried);
  tcase_add_test(tc, test_busy_on_reconnect_retried);
  tcase_add_test(tc, test_backoff_grows_until_a_connection_works);
  tcase_add_test(tc, test_handshake_log_lines_limited);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(stream_suite());
}
