/* End-to-end tests in one process over loopback: a ps_receiver driven by
 * the step API in a thread, a ps_stream sending to it, and a callback
 * sink that records what arrives. */
#include "config.h"

#include "unit_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------- recorder */

typedef struct rec_pkt {
  ps_packet p;
  uint8_t *data;
} rec_pkt;

typedef struct recorder {
  int starts, ifaces, ends, stats_calls;
  rec_pkt *pkts;
  size_t npkts, cap;
  uint32_t linktypes[8];
  ps_capture_stats last_stats;
} recorder;

static int cb_start(const ps_session_info *s, void *ud) {
  ((recorder *)ud)->starts++;
  return 0;
}

static int cb_iface(const ps_session_info *s, const ps_interface_info *i,
                    void *ud) {
  recorder *r = ud;
  if (i->id < 8) {
    r->linktypes[i->id] = i->linktype;
  }
  r->ifaces++;
  return 0;
}

static int cb_packet(const ps_session_info *s, const ps_interface_info *i,
                     const ps_packet *p, void *ud) {
  recorder *r = ud;
  if (r->npkts == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 1024;
    r->pkts = realloc(r->pkts, r->cap * sizeof(*r->pkts));
    if (r->pkts == NULL) {
      abort();
    }
  }
  rec_pkt *k = &r->pkts[r->npkts++];
  k->p = *p;
  k->p.data = NULL;
  k->data = malloc(p->caplen + 1);
  if (k->data == NULL) {
    abort();
  }
  memcpy(k->data, p->data, p->caplen);
  return 0;
}

static void cb_stats(const ps_session_info *s, const ps_interface_info *i,
                     const ps_capture_stats *st, void *ud) {
  recorder *r = ud;
  r->stats_calls++;
  r->last_stats = *st;
}

static void cb_end(const ps_session_info *s, void *ud) {
  ((recorder *)ud)->ends++;
}

static void rec_free(recorder *r) {
  for (size_t i = 0; i < r->npkts; i++) {
    free(r->pkts[i].data);
  }
  free(r->pkts);
  memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------- receiver */

typedef struct rx {
  ps_receiver *r;
  recorder rec;
  pthread_t thread;
  int rc;
  char log[8192];
  pthread_mutex_t log_mu;
} rx;

static void rx_log(ps_log_level level, const char *msg, void *ud) {
  rx *x = ud;
  pthread_mutex_lock(&x->log_mu);
  size_t n = strlen(x->log);
  snprintf(x->log + n, sizeof(x->log) - n, "%s\n", msg);
  pthread_mutex_unlock(&x->log_mu);
}

static void *rx_main(void *arg) {
  rx *x = arg;
  for (;;) {
    struct pollfd pfd = {ps_receiver_get_fd(x->r), POLLIN, 0};
    int t = ps_receiver_get_timeout_ms(x->r);
    poll(&pfd, 1, t < 0 || t > 200 ? 200 : t);
    int rc = ps_receiver_process(x->r);
    if (rc == PS_ERR_STOPPED) {
      break;
    }
    if (rc != 0) {
      x->rc = rc;
      break;
    }
  }
  return NULL;
}

/* Starts a receiver on 127.0.0.1 with sink (or a callback sink recording
 * into x->rec when sink is NULL). Returns its port. */
static uint16_t rx_start(rx *x, ps_sink *sink) {
  memset(x, 0, sizeof(*x));
  pthread_mutex_init(&x->log_mu, NULL);
  ck_assert_int_eq(ps_receiver_create(&x->r), 0);
  ps_receiver_set_log(x->r, rx_log, x);
  if (sink == NULL) {
    ps_sink_callbacks cb = PS_SINK_CALLBACKS_INIT;
    cb.session_start = cb_start;
    cb.interface = cb_iface;
    cb.packet = cb_packet;
    cb.stats = cb_stats;
    cb.session_end = cb_end;
    ck_assert_int_eq(ps_callback_sink(&sink, &cb, &x->rec), 0);
  }
  ck_assert_int_eq(ps_receiver_add_sink(x->r, sink), 0);
  ck_assert_int_eq(ps_receiver_listen(x->r, "127.0.0.1", 0), 0);
  uint16_t port = ps_receiver_port(x->r);
  ck_assert_uint_ne(port, 0);
  ck_assert_int_eq(pthread_create(&x->thread, NULL, rx_main, x), 0);
  return port;
}

/* Stops the loop and closes the sinks; the recorder stays readable. */
static int rx_stop(rx *x) {
  ps_receiver_stop(x->r);
  pthread_join(x->thread, NULL);
  ck_assert_int_eq(x->rc, 0);
  return ps_receiver_shutdown(x->r);
}

static void rx_free(rx *x) {
  ps_receiver_free(x->r);
  rec_free(&x->rec);
  pthread_mutex_destroy(&x->log_mu);
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
    g->p[i] = (ps_packet){
        .ts_sec = 1700000000 + (int64_t)(i / 1000),
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
                      k->p.ts_sec == p->ts_sec &&
                      k->p.ts_frac == p->ts_frac && k->p.iface == p->iface,
                  "packet %zu differs in its header", i);
    ck_assert_msg(memcmp(k->data, p->data, p->caplen) == 0,
                  "packet %zu differs in its bytes", i);
  }
}

static void stream_roundtrip(ps_codec codec, size_t n, size_t batch_bytes) {
  rx x;
  uint16_t port = rx_start(&x, NULL);
  ps_stream *s = NULL;
  ck_assert_int_eq(ps_stream_create(&s, "unit-sensor"), 0);
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_codec(s, codec, 0), 0);
  if (batch_bytes) {
    ck_assert_int_eq(ps_stream_set_batching(s, batch_bytes, 50), 0);
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
  ps_capture_stats st = {.captured = n, .bytes = bytes, .received = n + 5,
                         .dropped = 5};
  ck_assert_int_eq(ps_stream_send_stats(s, 0, &st), 0);
  int rc = ps_stream_close(s, 10000);
  ck_assert_msg(rc == 0, "close: %d %s", rc, ps_stream_errmsg(s));
  ps_stream_counters c;
  ps_stream_get_counters(s, &c);
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
  ps_receiver_get_counters(x.r, &rc_ctr);
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

START_TEST(test_stream_zlib) { stream_roundtrip(PS_CODEC_ZLIB, 3000, 0); }
END_TEST

START_TEST(test_stream_none_small_batches) {
  stream_roundtrip(PS_CODEC_NONE, 1500, 4096);
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

  ps_stream *s = NULL;
  ck_assert_int_eq(ps_stream_create(&s, "lonely"), 0);
  slog[0] = '\0';
  ps_stream_set_log(s, stream_log, NULL);
  ck_assert_int_eq(ps_stream_set_connect_timeout(s, 2), 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = ps_stream_connect(s, "127.0.0.1", port);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_err(rc, PS_ERR_CONNECT, ps_stream_errmsg(s), "gave up after");
  ck_assert_msg(secs < 5.0, "connect took %.1f s", secs);
  ck_assert_msg(strstr(slog, "retrying") != NULL, "log: %s", slog);
  /* A failed stream stays failed. */
  uint32_t id;
  ck_assert_int_eq(ps_stream_add_interface(s, &id, "e", 1, 1, PS_TSRES_USEC),
                   PS_ERR_CLOSED);
  ps_stream_free(s);
}
END_TEST

START_TEST(test_connect_gave_up_keeps_reason) {
  ps_stream *s = NULL;
  ck_assert_int_eq(ps_stream_create(&s, "lonely"), 0);
  ck_assert_int_eq(ps_stream_set_connect_timeout(s, 1), 0);
  /* Port 1 on loopback: refused at once. */
  int rc = ps_stream_connect(s, "127.0.0.1", 1);
  ck_assert_err(rc, PS_ERR_CONNECT, ps_stream_errmsg(s),
                "cannot connect to receiver 127.0.0.1 port 1");
  ck_assert_ptr_nonnull(strstr(ps_stream_errmsg(s), "(gave up after "));
  ps_stream_free(s);
}
END_TEST

START_TEST(test_send_invalid) {
  ps_stream *s = NULL;
  ck_assert_int_eq(ps_stream_create(&s, "inv"), 0);
  static uint8_t buf[PS_MAX_CAPLEN + 1];
  ps_packet p = {.ts_sec = 1, .caplen = 10, .len = 10, .iface = 0,
                 .data = buf};
  /* Not connected yet. */
  ck_assert_err(ps_stream_send(s, &p), PS_ERR_STATE, ps_stream_errmsg(s),
                "not connected");

  rx x;
  uint16_t port = rx_start(&x, NULL);
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  uint32_t id;
  ck_assert_int_eq(ps_stream_set_codec(s, PS_CODEC_NONE, 0), PS_ERR_STATE);
  ck_assert_int_eq(ps_stream_add_interface(s, &id, "eth0", 1, 65535, 7),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps_stream_add_interface(s, &id, "", 1, 65535,
                                           PS_TSRES_USEC),
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

/* Sends stdout to a file for the duration of a test. */
static int stdout_to(const char *path) {
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  dup2(fd, STDOUT_FILENO);
  close(fd);
  return saved;
}

static void stdout_restore(int saved) {
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
}

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
  ps_stream *s = NULL;
  ck_assert_int_eq(ps_stream_create(&s, "twotypes"), 0);
  ck_assert_int_eq(ps_stream_connect(s, "127.0.0.1", port), 0);
  uint32_t id0, id1;
  ck_assert_int_eq(
      ps_stream_add_interface(s, &id0, "eth0", 1, 65535, PS_TSRES_USEC), 0);
  int rc = ps_stream_add_interface(s, &id1, "tun0", 101, 65535,
                                   PS_TSRES_USEC);
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
  ps_receiver_get_counters(x.r, &c);
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

static Suite *stream_suite(void) {
  Suite *s = suite_create("stream");
  TCase *tc = tcase_create("loopback");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_stream_zlib);
  tcase_add_test(tc, test_stream_none_small_batches);
  tcase_add_test(tc, test_connect_refused_times_out);
  tcase_add_test(tc, test_send_invalid);
  tcase_add_test(tc, test_stdout_second_linktype_refused);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_connect_gave_up_keeps_reason);
  tcase_add_test(tc, test_stdout_second_linktype_while_sending);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return unit_run(stream_suite()); }
