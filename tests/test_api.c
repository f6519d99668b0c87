/* Unit tests of the public API's shared rules: error classes and
 * strings, the published limits, and *out on a failed constructor. */
#include "config.h"

#include "unit_util.h"

#include <packetstreamer/packetstreamer.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Which errors retrying cannot mend (ps_error_is_final). */
static const struct {
  int code, final;
} error_classes[] = {
    {PS_ERR_REFUSED, 1},
    {PS_ERR_AUTH, 1},
    {PS_ERR_TLS, 1},
    {PS_ERR_NOMEM, 1},
    {PS_ERR_STOPPED, 1},
    {PS_ERR_INVALID, 1},
    {PS_ERR_STATE, 1},
    {0, 0},
    {PS_ERR_CONNECT, 0},
    {PS_ERR_TIMEOUT, 0},
    {PS_ERR_CLOSED, 0},
    {PS_ERR_BUSY, 0},
    {PS_ERR_IO, 0},
    {PS_ERR_RESOLVE, 0},
    {PS_ERR_PROTOCOL, 0},
    {-1, 0},
    {-499, 0},
    {-600, 0},
};

START_TEST(test_error_classes) {
  int code = error_classes[_i].code;
  ck_assert_msg(ps_error_is_final(code) == error_classes[_i].final,
                "%d (%s) is %sfinal", code, ps_strerror(code),
                error_classes[_i].final ? "" : "not ");
}
END_TEST

START_TEST(test_every_code_has_a_string) {
  for (int code = PS_ERR_BUSY; code <= PS_ERR_INVALID; code++) {
    ck_assert_msg(strcmp(ps_strerror(code), "unknown error") != 0,
                  "code %d has no string", code);
  }
  ck_assert_str_eq(ps_strerror(PS_ERR_BUSY - 1), "unknown error");
  ck_assert_str_eq(ps_strerror(0), "success");
}
END_TEST

START_TEST(test_limits_are_enforced) {
  ps_stream *st = NULL;
  ck_assert_int_eq(ps_stream_create(&st, "api"), 0);
  for (int i = 0; i < PS_MAX_RECEIVERS; i++) {
    ck_assert_int_eq(ps_stream_add_receiver(st, "127.0.0.1", 1000 + i), 0);
  }
  ck_assert_int_eq(ps_stream_add_receiver(st, "127.0.0.1", 2000), PS_ERR_LIMIT);
  ps_stream_free(st);

  ps_sensor *se = NULL;
  ck_assert_int_eq(ps_sensor_create(&se), 0);
  for (int i = 0; i < PS_MAX_INTERFACES; i++) {
    char name[16];
    snprintf(name, sizeof(name), "if%d", i);
    ck_assert_int_eq(ps_sensor_add_interface(se, name), 0);
  }
  ck_assert_int_eq(ps_sensor_add_interface(se, "one-more"), PS_ERR_LIMIT);
  /* No id before the interfaces are opened and announced. */
  uint32_t id = 77;
  ck_assert_err(ps_sensor_get_interface_id(se, &id, 0), PS_ERR_INVALID,
                ps_sensor_errmsg(se), "no interface 0");
  ck_assert_uint_eq(id, 77);
  ck_assert_int_eq(ps_sensor_get_interface_id(se, NULL, 0), PS_ERR_INVALID);
  ps_sensor_free(se);

  ps_receiver *r = NULL;
  ck_assert_int_eq(ps_receiver_create(&r), 0);
  int n = 0, rc = 0;
  while (n < PS_MAX_LISTENERS + 1 &&
         (rc = ps_receiver_listen(r, "127.0.0.1", 0)) == 0) {
    n++;
  }
  ck_assert_int_eq(n, PS_MAX_LISTENERS);
  ck_assert_int_eq(rc, PS_ERR_LIMIT);
  ps_receiver_free(r);
}
END_TEST

static int pcap_sink_empty_path(ps_sink **out) {
  return ps_pcap_sink(out, "", 0);
}

static int pcapng_sink_no_path(ps_sink **out) {
  return ps_pcapng_sink(out, NULL, 0);
}

static int callback_sink_no_callbacks(ps_sink **out) {
  return ps_callback_sink(out, NULL, 0, NULL);
}

static int (*const failing_sinks[])(ps_sink **) = {
    pcap_sink_empty_path, pcapng_sink_no_path, callback_sink_no_callbacks};

START_TEST(test_failed_sink_sets_out_null) {
  ps_sink *sk = (ps_sink *)&sk; /* anything but NULL */
  ck_assert_int_eq(failing_sinks[_i](&sk), PS_ERR_INVALID);
  ck_assert_ptr_null(sk);
}
END_TEST

START_TEST(test_counters_honour_the_callers_size) {
  /* A caller built against an older header knows fewer fields: nothing
   * past them is written. One built against a newer header gets zeros
   * past the fields this library has. */
  ps_receiver *r = NULL;
  ck_assert_int_eq(ps_receiver_create(&r), 0);
  ck_assert_int_eq(ps_receiver_listen(r, "127.0.0.1", 0), 0);
  unsigned char buf[sizeof(ps_receiver_counters) + 64];
  size_t old = offsetof(ps_receiver_counters, connections);
  memset(buf, 0xAB, sizeof(buf));
  ps_receiver_get_counters(r, (ps_receiver_counters *)buf, old);
  for (size_t i = old; i < sizeof(buf); i++) {
    ck_assert_msg(buf[i] == 0xAB, "byte %zu past the caller's size written", i);
  }
  memset(buf, 0xAB, sizeof(buf));
  ps_receiver_get_counters(r, (ps_receiver_counters *)buf, sizeof(buf));
  for (size_t i = sizeof(ps_receiver_counters); i < sizeof(buf); i++) {
    ck_assert_msg(buf[i] == 0, "byte %zu of a newer caller's struct not zero",
                  i);
  }
  ps_receiver_free(r);

  ps_stream *st = NULL;
  ck_assert_int_eq(ps_stream_create(&st, "api"), 0);
  unsigned char sb[sizeof(ps_stream_counters) + 16];
  memset(sb, 0xAB, sizeof(sb));
  ps_stream_get_counters(st, (ps_stream_counters *)sb, 8);
  for (size_t i = 8; i < sizeof(sb); i++) {
    ck_assert_uint_eq(sb[i], 0xAB);
  }
  ps_stream_interface_counters ic;
  ck_assert_int_eq(ps_stream_get_interface_counters(st, &ic, sizeof(ic), 0),
                   PS_ERR_INVALID);
  ps_stream_free(st);
}
END_TEST

/* Runs the receiver's step API (no thread) until done(ud) or 5 s. */
static int step_until(ps_receiver *r, int (*done)(void *), void *ud) {
  for (int i = 0; i < 500; i++) {
    if (done(ud)) {
      return 1;
    }
    struct pollfd pfd = {.fd = ps_receiver_get_fd(r), .events = POLLIN};
    int t = ps_receiver_get_timeout_ms(r);
    poll(&pfd, 1, t < 0 || t > 10 ? 10 : t);
    ck_assert_int_eq(ps_receiver_process(r), 0);
  }
  return done(ud);
}

static int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

typedef struct poip_wait {
  ps_sink *sk;
  unsigned n;
} poip_wait;

static int has_clients(void *ud) {
  poip_wait *w = ud;
  ps_pcap_over_ip_client_counters c;
  return ps_pcap_over_ip_get_client_counters(w->sk, &c, sizeof(c), w->n - 1) ==
         0;
}

static int readable(void *ud) {
  struct pollfd pfd = {.fd = *(int *)ud, .events = POLLIN};
  return poll(&pfd, 1, 0) == 1;
}

START_TEST(test_pcap_over_ip_step_api) {
  /* A listener driven by the step API alone: it accepts, sends a
   * pcapng header at once, and closes a client beyond max-clients. */
  ps_receiver *r = NULL;
  ck_assert_int_eq(ps_receiver_create(&r), 0);
  ps_pcap_over_ip_options o = PS_PCAP_OVER_IP_OPTIONS_INIT;
  o.format = PS_PCAP_OVER_IP_PCAPNG;
  o.max_clients = 1;
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_over_ip_sink(&sk, NULL, 0, &o, sizeof(o)), 0);
  uint16_t port = 0;
  ck_assert_int_eq(ps_pcap_over_ip_get_port(sk, &port), 0);
  ck_assert_uint_ne(port, 0);
  ck_assert_int_eq(ps_receiver_add_sink(r, sk), 0);
  int c1 = tcp_connect(port);
  poip_wait w = {sk, 1};
  ck_assert(step_until(r, has_clients, &w));
  ck_assert(step_until(r, readable, &c1));
  unsigned char shb[4];
  ck_assert_int_eq(recv(c1, shb, 4, 0), 4);
  ck_assert_uint_eq(shb[0], 0x0A);
  ck_assert_uint_eq(shb[1], 0x0D);
  int c2 = tcp_connect(port);
  ck_assert(step_until(r, readable, &c2));
  ck_assert_int_eq(recv(c2, shb, 4, 0), 0); /* closed: max-clients */
  ps_pcap_over_ip_client_counters cc;
  ck_assert_int_eq(ps_pcap_over_ip_get_client_counters(sk, &cc, sizeof(cc), 0),
                   0);
  ck_assert_uint_eq(cc.packets, 0);
  ck_assert_int_eq(ps_pcap_over_ip_get_client_counters(sk, &cc, sizeof(cc), 1),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps_receiver_shutdown(r), 0);
  ps_receiver_free(r);
  close(c1);
  close(c2);
}
END_TEST

START_TEST(test_pcap_over_ip_connect_step_api) {
  /* A connection out: the receiver's timeout says when to step, and the
   * step connects to our listener. */
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(l, 4), 0);
  socklen_t al = sizeof(a);
  getsockname(l, (struct sockaddr *)&a, &al);
  ps_receiver *r = NULL;
  ck_assert_int_eq(ps_receiver_create(&r), 0);
  ck_assert_int_eq(ps_receiver_get_timeout_ms(r), -1);
  ps_sink *sk = NULL;
  ck_assert_int_eq(ps_pcap_over_ip_connect_sink(&sk, "127.0.0.1",
                                                ntohs(a.sin_port), NULL, 0),
                   0);
  ck_assert_int_eq(ps_receiver_add_sink(r, sk), 0);
  ck_assert_int_ge(ps_receiver_get_timeout_ms(r), 0); /* a connect is due */
  ck_assert(step_until(r, readable, &l));
  int c = accept(l, NULL, NULL);
  ck_assert_int_ge(c, 0);
  poip_wait w = {sk, 1};
  ck_assert(step_until(r, has_clients, &w));
  ck_assert_int_eq(ps_receiver_shutdown(r), 0);
  ps_receiver_free(r);
  close(c);
  close(l);
}
END_TEST

START_TEST(test_pcap_over_ip_options) {
  ps_sink *sk = NULL;
  ps_pcap_over_ip_options o = PS_PCAP_OVER_IP_OPTIONS_INIT;
  o.queue_bytes = 1000;
  ck_assert_int_eq(ps_pcap_over_ip_sink(&sk, NULL, 0, &o, sizeof(o)),
                   PS_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(ps_sink_errmsg(sk), "64 KiB to 4 GiB"));
  ps_sink_free(sk);
  /* A newer caller's struct with a field set this library lacks. */
  unsigned char big[sizeof(o) + 8];
  memset(big, 0, sizeof(big));
  big[sizeof(o) + 3] = 1;
  ck_assert_int_eq(ps_pcap_over_ip_sink(&sk, NULL, 0,
                                        (ps_pcap_over_ip_options *)big,
                                        sizeof(big)),
                   PS_ERR_INVALID);
  ps_sink_free(sk);
  o = (ps_pcap_over_ip_options)PS_PCAP_OVER_IP_OPTIONS_INIT;
  o.filter = "tcp port";
  ck_assert_int_eq(ps_pcap_over_ip_sink(&sk, NULL, 0, &o, sizeof(o)),
                   PS_ERR_FILTER);
  ps_sink_free(sk);
  o = (ps_pcap_over_ip_options)PS_PCAP_OVER_IP_OPTIONS_INIT;
  o.allow = "10.0.0.0/33";
  ck_assert_int_eq(ps_pcap_over_ip_sink(&sk, NULL, 0, &o, sizeof(o)),
                   PS_ERR_INVALID);
  ps_sink_free(sk);
  o = (ps_pcap_over_ip_options)PS_PCAP_OVER_IP_OPTIONS_INIT;
  o.max_clients = 3;
  ck_assert_int_eq(ps_pcap_over_ip_connect_sink(&sk, "h", 1, &o, sizeof(o)),
                   PS_ERR_INVALID);
  ps_sink_free(sk);
  uint16_t p;
  ck_assert_int_eq(ps_pcap_over_ip_get_port(NULL, &p), PS_ERR_INVALID);
}
END_TEST

static Suite *api_suite(void) {
  Suite *s = suite_create("api");
  TCase *tc = tcase_create("api");
  tcase_add_loop_test(tc, test_error_classes, 0,
                      sizeof(error_classes) / sizeof(error_classes[0]));
  tcase_add_test(tc, test_every_code_has_a_string);
  tcase_add_test(tc, test_limits_are_enforced);
  tcase_add_loop_test(tc, test_failed_sink_sets_out_null, 0,
                      sizeof(failing_sinks) / sizeof(failing_sinks[0]));
  tcase_add_test(tc, test_counters_honour_the_callers_size);
  tcase_add_test(tc, test_pcap_over_ip_step_api);
  tcase_add_test(tc, test_pcap_over_ip_connect_step_api);
  tcase_add_test(tc, test_pcap_over_ip_options);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(api_suite());
}
