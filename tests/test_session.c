/* Unit tests of lib/ps_session, sans I/O: scripted sensor bytes made with
 * the ps__enc_* encoders go in, the receiver's frames come out of the
 * session's out buffer, and packets reach a callback sink. */
#include "config.h"

#include "unit_util.h"

#include "ps_codec.h"
#include "ps_proto.h"
#include "ps_session.h"
#include "ps_sink.h"
#include "recorder.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <unistd.h>

/* -------------------------------------------------- session harness */

typedef struct harness {
  recorder rec;
  ps_sink *sinks[1];
  ps__session_env env;
  ps__session s;
} harness;

static char logbuf[16384];

static void log_fn(ps_log_level level, const char *msg, void *ud) {
  size_t n = strlen(logbuf);
  snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static void h_init(harness *h) {
  memset(h, 0, sizeof(*h));
  rec_sink(&h->sinks[0], &h->rec);
  h->env.sinks = h->sinks;
  h->env.n_sinks = 1;
  ps__limits_default(&h->env.lim);
  h->env.log = log_fn;
  static const uint8_t rnonce[PS_NONCE_LEN] = "receiver-nonce!";
  ps__session_init(&h->s, &h->env, 7, "198.51.100.9:40000", rnonce);
}

static void h_free(harness *h) {
  ps__session_end(&h->s);
  ps_sink_free(h->sinks[0]);
  rec_free(&h->rec);
}

static int feed(harness *h, const ps__buf *b) {
  return ps__session_input(&h->s, ps__buf_head(b), ps__buf_size(b));
}

/* Frames queued for the sensor; they point into the session's out. */
static int out_frames(harness *h, ps__frame *fr, int max) {
  ps__limits big = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
  const uint8_t *p = ps__buf_head(&h->s.out);
  size_t left = ps__buf_size(&h->s.out);
  int n = 0;
  char eb[PS_ERRMSG_MAX];
  while (left > 0) {
    size_t used;
    int rc = ps__frame_parse(p, left, &big, &fr[n], &used, eb);
    ck_assert_msg(rc == 1, "bad frame in out: %d %s", rc, eb);
    ck_assert_int_lt(n, max);
    n++;
    p += used;
    left -= used;
  }
  return n;
}

static uint64_t frame_seq(const ps__frame *f) {
  uint64_t seq = 0;
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(ps__dec_seq(f, &seq, eb), 0);
  return seq;
}

/* The last frame in out is an ERROR with code -code whose text is the
 * session's errmsg and contains sub. */
static void expect_error_out(harness *h, int code, const char *sub) {
  ps__frame fr[64];
  int n = out_frames(h, fr, 64);
  ck_assert_int_ge(n, 1);
  ck_assert_uint_eq(fr[n - 1].type, PS_FRAME_ERROR);
  ps__error_msg m;
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(ps__dec_error(&fr[n - 1], &m, eb), 0);
  ck_assert_uint_eq(m.code, (uint16_t)-code);
  char text[PS_MAX_ERROR_TEXT + 1];
  snprintf(text, sizeof(text), "%.*s", (int)m.text_len, m.text);
  ck_assert_str_eq(text, h->s.errmsg);
  ck_assert_msg(strstr(text, sub) != NULL, "error text \"%s\" lacks \"%s\"",
                text, sub);
  ck_assert_int_eq(h->s.state, PS_SESS_DONE);
}

/* ------------------------------------------------------ script parts */

static void add_hello(ps__buf *b, const char *name, uint32_t codecs,
                      uint16_t minv, uint16_t maxv) {
  ps__hello m = {.min_version = minv,
                 .max_version = maxv,
                 .codecs = codecs,
                 .name = name,
                 .name_len = strlen(name)};
  ck_assert_int_eq(ps__enc_hello(b, &m), 0);
}

static void add_iface(ps__buf *b, uint32_t id, uint32_t linktype, uint8_t tsres,
                      const char *name) {
  ps__iface m = {.id = id,
                 .linktype = linktype,
                 .snaplen = 65535,
                 .tsres = tsres,
                 .name = name,
                 .name_len = strlen(name)};
  ck_assert_int_eq(ps__enc_iface(b, &m), 0);
}

/* A batch of n packets; count < 0 declares n. codec ZLIB must compress. */
static void add_batch(ps__buf *b, uint64_t seq, uint8_t codec,
                      const ps_packet *pk, uint32_t n, int64_t count) {
  ps__buf raw = {0}, data = {0};
  for (uint32_t i = 0; i < n; i++) {
    ck_assert_int_eq(ps__batch_put(&raw, &pk[i]), 0);
  }
  uint8_t used = PS_WIRE_CODEC_STORED;
  if (codec == PS_WIRE_CODEC_ZLIB) {
    ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 0);
    ck_assert_int_eq(ps__codec_compress(c, ps__buf_head(&raw),
                                        ps__buf_size(&raw), &data, &used),
                     0);
    ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
    ps__codec_free(c);
  } else if (n > 0) {
    ck_assert_int_eq(
        ps__buf_append(&data, ps__buf_head(&raw), ps__buf_size(&raw)), 0);
  }
  ps__batch m = {.seq = seq,
                 .codec = used,
                 .count = count < 0 ? n : (uint32_t)count,
                 .raw_len = (uint32_t)ps__buf_size(&raw)};
  ck_assert_int_eq(ps__enc_batch_hdr(b, &m, ps__buf_size(&data)), 0);
  if (ps__buf_size(&data) > 0) {
    ck_assert_int_eq(
        ps__buf_append(b, ps__buf_head(&data), ps__buf_size(&data)), 0);
  }
  ps__buf_free(&raw);
  ps__buf_free(&data);
}

enum { MAXPK = 64 };
static uint8_t pkbuf[MAXPK][2000];

/* Packet k on iface with caplen bytes; text-like (compressible) bytes
 * when text is set. */
static ps_packet mkpkt(int k, uint32_t iface, uint32_t caplen, int text) {
  if (text) {
    for (uint32_t i = 0; i < caplen; i++) {
      pkbuf[k][i] = (uint8_t)("packet payload, repeated "[i % 25] + (k & 1));
    }
  } else {
    unit_fill_random(pkbuf[k], caplen, (uint32_t)k + 100);
  }
  ps_packet p = {.ts_sec = 1700000000 + k,
                 .ts_frac = (uint32_t)k * 1001,
                 .caplen = caplen,
                 .len = caplen + (uint32_t)k,
                 .iface = iface,
                 .data = pkbuf[k]};
  return p;
}

static void expect_delivered(const recorder *r, size_t idx,
                             const ps_packet *p) {
  ck_assert_uint_gt(r->npkts, idx);
  const rec_pkt *k = &r->pkts[idx];
  ck_assert_int_eq(k->p.ts_sec, p->ts_sec);
  ck_assert_uint_eq(k->p.ts_frac, p->ts_frac);
  ck_assert_uint_eq(k->p.caplen, p->caplen);
  ck_assert_uint_eq(k->p.len, p->len);
  ck_assert_uint_eq(k->p.iface, p->iface);
  ck_assert_mem_eq(k->data, p->data, p->caplen);
}

/* The standard script: hello, two interfaces, a stored batch, a zlib
 * batch, stats, close. pk receives the packets (23). */
static void happy_script(ps__buf *b, ps_packet *pk) {
  add_hello(b, "sensor-A", 3, 1, 1);
  add_iface(b, 0, 1, PS_TSRES_USEC, "eth0");
  add_iface(b, 1, 101, PS_TSRES_NSEC, "tun0");
  pk[0] = mkpkt(0, 0, 0, 0);
  pk[1] = mkpkt(1, 1, 60, 0);
  pk[2] = mkpkt(2, 0, 1500, 0);
  add_batch(b, 1, PS_WIRE_CODEC_STORED, pk, 3, -1);
  for (int k = 3; k < 23; k++) {
    pk[k] = mkpkt(k, (uint32_t)k % 2, (uint32_t)(k * 90), 1);
  }
  add_batch(b, 2, PS_WIRE_CODEC_ZLIB, pk + 3, 20, -1);
  ps__stats st = {.iface = 0,
                  .c = {.captured = 12,
                        .bytes = 3456,
                        .received = 20,
                        .dropped = 3,
                        .ifdropped = 1,
                        .truncated = 2}};
  ck_assert_int_eq(ps__enc_stats(b, &st), 0);
  ck_assert_int_eq(ps__enc_close(b, 2), 0);
}

/* ---------------------------------------------------------- tests */

START_TEST(test_happy_path) {
  harness h;
  h_init(&h);
  ps__buf b = {0};
  ps_packet pk[23];
  happy_script(&b, pk);

  /* The hello alone gets the welcome. */
  size_t hello_len = PS_FRAME_HDR + 34 + 8;
  ck_assert_int_eq(ps__session_input(&h.s, ps__buf_head(&b), hello_len), 0);
  ps__frame fr[16];
  ck_assert_int_eq(out_frames(&h, fr, 16), 1);
  ck_assert_uint_eq(fr[0].type, PS_FRAME_WELCOME);
  ps__welcome w;
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(ps__dec_welcome(&fr[0], &w, eb), 0);
  /* A version 1 sensor (1..1, as every earlier build) is served in
   * version 1, without the control frames. */
  ck_assert_uint_eq(w.version, 1);
  ck_assert_uint_eq(w.codec, PS_WIRE_CODEC_ZLIB);
  ck_assert_uint_eq(w.max_frame, h.env.lim.max_frame);
  ck_assert_uint_eq(w.max_batch_raw, h.env.lim.max_batch_raw);
  ck_assert_uint_eq(w.max_batch_packets, h.env.lim.max_batch_packets);
  ck_assert_uint_eq(w.session_id, 7);
  ck_assert_int_eq(h.s.state, PS_SESS_ACTIVE);
  ck_assert_int_eq(h.rec.starts, 1);
  ck_assert_str_eq(h.rec.sensor, "sensor-A");
  ck_assert_str_eq(h.rec.peer, "198.51.100.9:40000");
  ck_assert_uint_eq(h.rec.session_id, 7);

  ck_assert_int_eq(ps__session_input(&h.s, ps__buf_head(&b) + hello_len,
                                     ps__buf_size(&b) - hello_len),
                   0);
  int n = out_frames(&h, fr, 16);
  ck_assert_int_eq(n, 4);
  ck_assert_uint_eq(fr[1].type, PS_FRAME_ACK);
  ck_assert_uint_eq(frame_seq(&fr[1]), 1);
  ck_assert_uint_eq(fr[2].type, PS_FRAME_ACK);
  ck_assert_uint_eq(frame_seq(&fr[2]), 2);
  ck_assert_uint_eq(fr[3].type, PS_FRAME_CLOSE);
  ck_assert_uint_eq(frame_seq(&fr[3]), 2);
  ck_assert_int_eq(h.s.state, PS_SESS_DONE);
  ck_assert_int_eq(h.s.clean_close, 1);

  ck_assert_int_eq(h.rec.ifaces, 2);
  ck_assert_uint_eq(h.rec.npkts, 23);
  uint64_t bytes = 0;
  for (size_t i = 0; i < 23; i++) {
    expect_delivered(&h.rec, i, &pk[i]);
    ck_assert_uint_eq(h.rec.pkts[i].linktype, pk[i].iface ? 101 : 1);
    bytes += pk[i].caplen;
  }
  ck_assert_int_eq(h.rec.stats_calls, 1);
  ck_assert_uint_eq(h.rec.last_stats_iface, 0);
  ck_assert_uint_eq(h.rec.last_stats.received, 20);
  ck_assert_uint_eq(h.rec.last_stats.dropped, 3);
  ck_assert_uint_eq(h.rec.last_stats.ifdropped, 1);
  ck_assert_uint_eq(h.rec.last_stats.truncated, 2);
  ck_assert_ptr_nonnull(strstr(logbuf, "4 packets dropped before capture"));

  ck_assert_uint_eq(h.s.packets, 23);
  ck_assert_uint_eq(h.s.bytes, bytes);
  ck_assert_uint_eq(h.s.batches, 2);
  ps_capture_stats t;
  ps__session_totals(&h.s, &t);
  ck_assert_uint_eq(t.captured, 23);
  ck_assert_uint_eq(t.bytes, bytes);
  ck_assert_uint_eq(t.received, 20);
  ck_assert_uint_eq(t.dropped, 3);

  /* Bytes after the end are ignored. */
  ck_assert_int_eq(ps__session_input(&h.s, (const uint8_t *)"zz", 2), 0);
  ck_assert_int_eq(out_frames(&h, fr, 16), 4);

  ck_assert_int_eq(h.rec.ends, 0);
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 1);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_ack_after_each_batch) {
  harness h;
  h_init(&h);
  ps__buf b = {0};
  add_hello(&b, "s", 3, 1, 1);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  ck_assert_int_eq(feed(&h, &b), 0);
  ps__frame fr[16];
  ck_assert_int_eq(out_frames(&h, fr, 16), 1);
  for (uint64_t seq = 1; seq <= 5; seq++) {
    ps__buf_reset(&b);
    ps_packet p = mkpkt((int)seq, 0, 100, 0);
    add_batch(&b, seq, PS_WIRE_CODEC_STORED, &p, 1, -1);
    ck_assert_int_eq(feed(&h, &b), 0);
    int n = out_frames(&h, fr, 16);
    ck_assert_int_eq(n, 1 + (int)seq);
    ck_assert_uint_eq(fr[n - 1].type, PS_FRAME_ACK);
    ck_assert_uint_eq(frame_seq(&fr[n - 1]), seq);
    ck_assert_uint_eq(h.rec.npkts, seq);
  }
  /* A heartbeat is echoed. */
  ps__buf_reset(&b);
  ck_assert_int_eq(ps__enc_heartbeat(&b), 0);
  ck_assert_int_eq(feed(&h, &b), 0);
  int n = out_frames(&h, fr, 16);
  ck_assert_uint_eq(fr[n - 1].type, PS_FRAME_HEARTBEAT);
  ck_assert_uint_eq(fr[n - 1].len, 0);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

/* The receiver's mode: batches taken in one loop round are acknowledged
 * together after one flush, cumulatively. A close still confirms only
 * after flushing. */
START_TEST(test_deferred_acks) {
  harness h;
  h_init(&h);
  h.env.defer_acks = 1;
  ps__buf b = {0};
  add_hello(&b, "s", 3, 1, 1);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  for (uint64_t seq = 1; seq <= 3; seq++) {
    ps_packet p = mkpkt((int)seq, 0, 100, 0);
    add_batch(&b, seq, PS_WIRE_CODEC_STORED, &p, 1, -1);
  }
  ck_assert_int_eq(feed(&h, &b), 0);
  ps__frame fr[16];
  ck_assert_int_eq(out_frames(&h, fr, 16), 1); /* the welcome only */
  ck_assert_int_eq(h.s.ack_due, 1);
  ck_assert_uint_eq(h.rec.npkts, 3);
  ck_assert_int_eq(ps__session_ack(&h.s), 0);
  ck_assert_int_eq(out_frames(&h, fr, 16), 2);
  ck_assert_uint_eq(fr[1].type, PS_FRAME_ACK);
  ck_assert_uint_eq(frame_seq(&fr[1]), 3);
  ck_assert_int_eq(h.s.ack_due, 0);
  /* Nothing new: no second acknowledgement. */
  ck_assert_int_eq(ps__session_ack(&h.s), 0);
  ck_assert_int_eq(out_frames(&h, fr, 16), 2);
  ps__buf_reset(&b);
  ps_packet p = mkpkt(4, 0, 100, 0);
  add_batch(&b, 4, PS_WIRE_CODEC_STORED, &p, 1, -1);
  ck_assert_int_eq(ps__enc_close(&b, 4), 0);
  ck_assert_int_eq(feed(&h, &b), 0);
  /* The close is confirmed with the round's acknowledgements, after the
   * receiver wrote (and journaled) everything. */
  ck_assert_int_eq(out_frames(&h, fr, 16), 2);
  ck_assert_int_eq(h.s.state, PS_SESS_ACTIVE);
  ck_assert_int_eq(ps__session_ack(&h.s), 0);
  ck_assert_int_eq(h.s.state, PS_SESS_DONE);
  ck_assert_int_eq(h.s.clean_close, 1);
  int n = out_frames(&h, fr, 16);
  ck_assert_uint_eq(fr[n - 1].type, PS_FRAME_CLOSE);
  ck_assert_uint_eq(frame_seq(&fr[n - 1]), 4);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_byte_at_a_time) {
  harness a, z;
  h_init(&a);
  h_init(&z);
  ps__buf b = {0};
  ps_packet pk[23];
  happy_script(&b, pk);
  ck_assert_int_eq(feed(&a, &b), 0);
  for (size_t i = 0; i < ps__buf_size(&b); i++) {
    ck_assert_int_eq(ps__session_input(&z.s, ps__buf_head(&b) + i, 1), 0);
  }
  ck_assert_int_eq(z.s.state, PS_SESS_DONE);
  ck_assert_int_eq(z.s.clean_close, 1);
  ck_assert_uint_eq(ps__buf_size(&z.s.out), ps__buf_size(&a.s.out));
  ck_assert_mem_eq(ps__buf_head(&z.s.out), ps__buf_head(&a.s.out),
                   ps__buf_size(&a.s.out));
  ck_assert_uint_eq(z.rec.npkts, 23);
  ck_assert_uint_eq(a.rec.npkts, 23);
  for (size_t i = 0; i < 23; i++) {
    expect_delivered(&z.rec, i, &pk[i]);
    expect_delivered(&a.rec, i, &pk[i]);
  }
  ck_assert_int_eq(z.rec.stats_calls, 1);
  ps__buf_free(&b);
  h_free(&a);
  h_free(&z);
}
END_TEST

/* Hello and one interface (id 0), fed; out holds the welcome. */
static void start_session(harness *h, uint32_t codecs) {
  ps__buf b = {0};
  add_hello(&b, "sensor-B", codecs, 1, 1);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  ck_assert_int_eq(feed(h, &b), 0);
  ck_assert_int_eq(h->s.state, PS_SESS_ACTIVE);
  ps__buf_free(&b);
}

START_TEST(test_duplicate_batch) {
  harness h;
  h_init(&h);
  start_session(&h, 3);
  ps__buf b = {0};
  ps_packet p1[2] = {mkpkt(1, 0, 10, 0), mkpkt(2, 0, 20, 0)};
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, p1, 2, -1);
  ck_assert_int_eq(feed(&h, &b), 0);
  /* The same batch again, as after a reconnect. */
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_uint_eq(h.rec.npkts, 2);
  ck_assert_uint_eq(h.s.duplicates, 1);
  ps__frame fr[16];
  ck_assert_int_eq(out_frames(&h, fr, 16), 3);
  ck_assert_uint_eq(frame_seq(&fr[1]), 1);
  ck_assert_uint_eq(fr[2].type, PS_FRAME_ACK);
  ck_assert_uint_eq(frame_seq(&fr[2]), 1);
  /* An older one is re-acked with the newest written. */
  ps__buf_reset(&b);
  ps_packet p2 = mkpkt(3, 0, 30, 0);
  add_batch(&b, 2, PS_WIRE_CODEC_STORED, &p2, 1, -1);
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, p1, 2, -1);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_int_eq(out_frames(&h, fr, 16), 5);
  ck_assert_uint_eq(frame_seq(&fr[3]), 2);
  ck_assert_uint_eq(frame_seq(&fr[4]), 2);
  ck_assert_uint_eq(h.rec.npkts, 3);
  ck_assert_uint_eq(h.s.duplicates, 2);
  expect_delivered(&h.rec, 2, &p2);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_empty_batch) {
  harness h;
  h_init(&h);
  start_session(&h, 3);
  ps__buf b = {0};
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, NULL, 0, -1);
  ck_assert_uint_eq(ps__buf_size(&b), PS_FRAME_HDR + PS_BATCH_HDR);
  ck_assert_int_eq(feed(&h, &b), 0);
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), 2);
  ck_assert_uint_eq(fr[1].type, PS_FRAME_ACK);
  ck_assert_uint_eq(frame_seq(&fr[1]), 1);
  ck_assert_uint_eq(h.rec.npkts, 0);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

/* ------------------------------------------- inputs that end a session */

/* Scripts of what a sensor says wrong; the packets are made with mkpkt. */
static void say_gap(ps__buf *b) {
  ps_packet p = mkpkt(1, 0, 10, 0);
  add_batch(b, 1, PS_WIRE_CODEC_STORED, &p, 1, -1);
  add_batch(b, 3, PS_WIRE_CODEC_STORED, &p, 1, -1);
}

static void say_batch_2_first(ps__buf *b) {
  ps_packet p = mkpkt(1, 0, 10, 0);
  add_batch(b, 2, PS_WIRE_CODEC_STORED, &p, 1, -1);
}

static void say_count_mismatch(ps__buf *b) {
  ps_packet p[2] = {mkpkt(1, 0, 10, 0), mkpkt(2, 0, 20, 0)};
  add_batch(b, 1, PS_WIRE_CODEC_STORED, p, 2, 1);
}

/* A stored batch whose second record runs past the end. */
static void say_malformed_record(ps__buf *b) {
  ps__buf raw = {0};
  ps_packet p = mkpkt(1, 0, 10, 0);
  ck_assert_int_eq(ps__batch_put(&raw, &p), 0);
  ck_assert_int_eq(ps__batch_put(&raw, &p), 0);
  ps__put32(ps__buf_head(&raw) + 34 + 16, 11);
  ps__batch m = {.seq = 1,
                 .codec = 0,
                 .count = 2,
                 .raw_len = (uint32_t)ps__buf_size(&raw)};
  ck_assert_int_eq(ps__enc_batch_hdr(b, &m, ps__buf_size(&raw)), 0);
  ck_assert_int_eq(ps__buf_append(b, ps__buf_head(&raw), ps__buf_size(&raw)),
                   0);
  ps__buf_free(&raw);
}

static void say_corrupt_zlib(ps__buf *b) {
  ps_packet p[4];
  for (int k = 0; k < 4; k++) {
    p[k] = mkpkt(k, 0, 500, 1);
  }
  add_batch(b, 1, PS_WIRE_CODEC_ZLIB, p, 4, -1);
  /* Break the zlib header (first data byte after the batch header). */
  ps__buf_head(b)[PS_FRAME_HDR + PS_BATCH_HDR] ^= 0xff;
}

static void say_77_bytes(ps__buf *b) {
  ps_packet p = mkpkt(1, 0, 77, 0);
  add_batch(b, 1, PS_WIRE_CODEC_STORED, &p, 1, -1);
}

static void say_iface(ps__buf *b) {
  add_iface(b, 0, 1, PS_TSRES_USEC, "eth0");
}

/* Before the hello only a hello-sized frame is allowed, whatever the
 * receiver's limits after it. */
static void say_big_hello(ps__buf *b) {
  static const uint8_t hdr[8] = {PS_FRAME_HELLO, 0, 0, 0, 0, 0, 0x01, 0x2a};
  ck_assert_int_eq(ps__buf_append(b, hdr, sizeof(hdr)), 0); /* 298 */
}

static void say_big_batch(ps__buf *b) {
  static const uint8_t big[8] = {PS_FRAME_BATCH, 0, 0, 0, 0, 0x10, 0, 0};
  ck_assert_int_eq(ps__buf_append(b, big, sizeof(big)), 0); /* 1 MiB */
}

static void say_http(ps__buf *b) {
  const char *g = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ck_assert_int_eq(ps__buf_append(b, (const uint8_t *)g, strlen(g)), 0);
}

static void say_junk(ps__buf *b) {
  uint8_t junk[16];
  memset(junk, 0xee, sizeof(junk));
  ck_assert_int_eq(ps__buf_append(b, junk, sizeof(junk)), 0);
}

static void say_future_hello(ps__buf *b) {
  add_hello(b, "future", 3, 3, 4);
}

static void say_bad_magic(ps__buf *b) {
  add_hello(b, "s", 3, 1, 1);
  ps__buf_head(b)[8] = 'X'; /* magic */
}

static void say_second_hello(ps__buf *b) {
  add_hello(b, "s", 3, 1, 1);
}

static void say_iface_again(ps__buf *b) {
  add_iface(b, 0, 1, PS_TSRES_NSEC, "eth9");
}

static void say_stats_iface_3(ps__buf *b) {
  ps__stats st = {.iface = 3};
  ck_assert_int_eq(ps__enc_stats(b, &st), 0);
}

/* The version 2 layout (sampled_out) in a version 1 session. */
static void say_stats_v2_in_v1(ps__buf *b) {
  ps__stats st = {.iface = 0, .v2 = 1, .c = {.sampled_out = 1}};
  ck_assert_int_eq(ps__enc_stats(b, &st), 0);
}

static void say_close_after_2(ps__buf *b) {
  ps_packet p = mkpkt(1, 0, 10, 0);
  add_batch(b, 1, PS_WIRE_CODEC_STORED, &p, 1, -1);
  ck_assert_int_eq(ps__enc_close(b, 2), 0);
}

static void say_welcome(ps__buf *b) {
  ps__welcome w = {.version = 1};
  ck_assert_int_eq(ps__enc_welcome(b, &w), 0);
}

static void say_ack(ps__buf *b) {
  ck_assert_int_eq(ps__enc_ack(b, 0), 0);
}

static const struct bad_input {
  int active;             /* said after start_session(h, 3) */
  uint32_t max_batch_raw; /* the receiver's limit; 0: the default */
  void (*say)(ps__buf *b);
  int code;
  const char *why;  /* in the session's errmsg */
  const char *sent; /* in the ERROR frame sent back */
  size_t npkts;     /* packets that reached the sink first */
  int nframes;      /* frames in out, the ERROR included */
} bad_inputs[] = {
    {1, 0, say_gap, PS_ERR_PROTOCOL,
     "batch 3 follows batch 1: batches are missing", "batches are missing", 1,
     3},
    {1, 0, say_batch_2_first, PS_ERR_PROTOCOL, "batch 2 follows batch 0",
     "missing", 0, 2},
    {1, 0, say_count_mismatch, PS_ERR_PROTOCOL,
     "batch 1 holds 2 packets but declares 1", "declares 1", 0, 2},
    {1, 0, say_malformed_record, PS_ERR_PROTOCOL, "runs past the batch end",
     "caplen 11", 0, 2},
    {1, 0, say_corrupt_zlib, PS_ERR_CODEC, "corrupt zlib batch",
     "corrupt zlib batch", 0, 2},
    {1, 100, say_77_bytes, PS_ERR_LIMIT,
     "batch 1 of 101 bytes exceeds the decompressed batch limit of 100",
     "limit of 100", 0, 2},
    {0, 0, say_iface, PS_ERR_PROTOCOL, "expected a hello, got a IFACE frame",
     "expected a hello", 0, 1},
    {0, 0, say_big_hello, PS_ERR_LIMIT,
     "HELLO frame of 298 bytes exceeds the frame limit of 297",
     "frame limit of 297", 0, 1},
    {0, 0, say_big_batch, PS_ERR_LIMIT, "BATCH frame of 1048576 bytes",
     "frame limit of 297", 0, 1},
    {0, 0, say_http, PS_ERR_PROTOCOL, "unknown frame type 71",
     "unknown frame type", 0, 1},
    {1, 0, say_junk, PS_ERR_PROTOCOL, "unknown frame type 238",
     "unknown frame type 238", 0, 2},
    {0, 0, say_future_hello, PS_ERR_PROTOCOL,
     "sensor speaks protocol versions 3..4, this receiver 1..2",
     "versions 3..4", 0, 1},
    {0, 0, say_bad_magic, PS_ERR_PROTOCOL, "not a libpacketstreamer hello",
     "bad magic", 0, 1},
    {1, 0, say_second_hello, PS_ERR_PROTOCOL,
     "unexpected HELLO frame from a sensor", "unexpected HELLO", 0, 2},
    {1, 0, say_iface_again, PS_ERR_PROTOCOL, "interface 0 announced twice",
     "announced twice", 0, 2},
    {1, 0, say_stats_iface_3, PS_ERR_PROTOCOL,
     "statistics for unannounced interface 3", "unannounced interface 3", 0, 2},
    {1, 0, say_stats_v2_in_v1, PS_ERR_PROTOCOL,
     "stats frame of 68 bytes in a version 1 session",
     "stats frame of 68 bytes in a version 1 session", 0, 2},
    {1, 0, say_close_after_2, PS_ERR_PROTOCOL,
     "sensor closed after batch 2, but batch 1 is the last received",
     "closed after batch 2", 1, 3},
    {1, 0, say_welcome, PS_ERR_PROTOCOL,
     "unexpected WELCOME frame from a sensor",
     "unexpected WELCOME frame from a sensor", 0, 2},
    {1, 0, say_ack, PS_ERR_PROTOCOL, "unexpected ACK frame from a sensor",
     "unexpected ACK frame from a sensor", 0, 2},
};

/* Each ends the session with its error, said in an ERROR frame; what
 * came before it reached the sink, nothing after, and only a session
 * that started is ended at the sinks. */
START_TEST(test_bad_input) {
  const struct bad_input *c = &bad_inputs[_i];
  harness h;
  h_init(&h);
  if (c->max_batch_raw != 0) {
    h.env.lim.max_batch_raw = c->max_batch_raw;
  }
  if (c->active) {
    start_session(&h, 3);
  }
  ps__buf b = {0};
  c->say(&b);
  ck_assert_err(feed(&h, &b), c->code, h.s.errmsg, c->why);
  expect_error_out(&h, c->code, c->sent);
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), c->nframes);
  ck_assert_uint_eq(h.rec.npkts, c->npkts);
  ck_assert_int_eq(h.rec.starts, c->active);
  ck_assert_int_eq(h.rec.ifaces, c->active);
  ck_assert_int_eq(h.rec.stats_calls, 0);
  ck_assert_int_eq(h.s.clean_close, 0);
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, c->active);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_unannounced_iface_refuses_whole_batch) {
  harness h;
  h_init(&h);
  start_session(&h, 3);
  ps__buf b = {0};
  ps_packet p[3] = {mkpkt(1, 0, 10, 0), mkpkt(2, 0, 20, 0), mkpkt(3, 5, 30, 0)};
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, p, 3, -1);
  ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                "batch 1 has a packet for unannounced interface 5");
  expect_error_out(&h, PS_ERR_PROTOCOL, "unannounced interface 5");
  /* Not one packet of the batch reached the sink. */
  ck_assert_uint_eq(h.rec.npkts, 0);
  ck_assert_uint_eq(h.s.packets, 0);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

/* Issue 9, F1: a time stamp the output cannot hold (seconds INT64_MAX
 * and a whole second of fraction, converted between resolutions,
 * overflowed a signed 64-bit value) refuses the sensor with ERROR 508
 * before any packet of its batch reaches any output; earlier batches
 * stay written. */
typedef struct ts_variant {
  ps_file_format format;
  unsigned flags;
  uint8_t tsres;
  int64_t sec;
  uint32_t frac;
  const char *why;
} ts_variant;

START_TEST(test_unholdable_ts_refuses_whole_batch) {
  static const ts_variant v[] = {
      {PS_FORMAT_PCAP, 0, PS_TSRES_NSEC, INT64_MAX, 1000000000u,
       "batch 2, packet 2: interface eth0: time stamp 9223372036854775807 s "
       "+ 1000000000 nanoseconds cannot be written: pcap output in "
       "microseconds holds 0 to 4294967295 s"},
      {PS_FORMAT_PCAP, PS_SINK_NANO, PS_TSRES_USEC, INT64_MAX, 1000000,
       "batch 2, packet 2: interface eth0: time stamp 9223372036854775807 s "
       "+ 1000000 microseconds cannot be written: pcap output in "
       "nanoseconds holds 0 to 4294967295 s"},
      {PS_FORMAT_PCAP, 0, PS_TSRES_USEC, 4294967296ll, 0,
       "time stamp 4294967296 s + 0 microseconds cannot be written"},
      {PS_FORMAT_PCAPNG, 0, PS_TSRES_NSEC, 18446744074ll, 0,
       "batch 2, packet 2: interface eth0: time stamp 18446744074 s + 0 "
       "nanoseconds cannot be written: pcapng output in nanoseconds holds "
       "0 to 18446744073 s"},
      {PS_FORMAT_PCAPNG, 0, PS_TSRES_USEC, INT64_MIN, 0,
       "time stamp -9223372036854775808 s + 0 microseconds cannot be "
       "written"},
  };
  for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
    char dir[] = "/tmp/ps-test-sess-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/out", dir);
    harness h;
    h_init(&h);
    ps_sink *sinks[2] = {NULL, h.sinks[0]};
    ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
    o.flags = v[k].flags;
    ck_assert_int_eq(ps_file_sink(&sinks[0], v[k].format, path, &o, sizeof(o)),
                     0);
    h.env.sinks = sinks;
    h.env.n_sinks = 2;
    ps__buf b = {0};
    add_hello(&b, "sensor-T", 1, 1, 1);
    add_iface(&b, 0, 1, v[k].tsres, "eth0");
    ps_packet p[3] = {mkpkt(1, 0, 10, 0), mkpkt(2, 0, 20, 0),
                      mkpkt(3, 0, 30, 0)};
    add_batch(&b, 1, PS_WIRE_CODEC_STORED, p, 1, -1);
    ck_assert_int_eq(feed(&h, &b), 0);
    ps__buf_reset(&b);
    p[2].ts_sec = v[k].sec;
    p[2].ts_frac = v[k].frac;
    add_batch(&b, 2, PS_WIRE_CODEC_STORED, p + 1, 2, -1);
    ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg, v[k].why);
    expect_error_out(&h, PS_ERR_PROTOCOL, "cannot be written");
    /* Batch 1 reached both outputs, nothing of batch 2 either. */
    ck_assert_uint_eq(h.rec.npkts, 1);
    expect_delivered(&h.rec, 0, &p[0]);
    ck_assert_uint_eq(h.s.packets, 1);
    ck_assert_uint_eq(h.s.last_seq, 1);
    ps__buf_free(&b);
    h_free(&h);
    ps_sink_free(sinks[0]);
    /* The file: its header and batch 1's record (pcap) or blocks
     * (pcapng) and nothing of batch 2's packets. */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert_ptr_nonnull(memmem(buf, n, p[0].data, p[0].caplen));
    ck_assert_ptr_null(memmem(buf, n, p[1].data, p[1].caplen));
    ck_assert_ptr_null(memmem(buf, n, p[2].data, p[2].caplen));
    if (v[k].format == PS_FORMAT_PCAP) {
      ck_assert_uint_eq(n, 24 + 16 + 10);
    }
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
  }
}
END_TEST

/* The callback sink holds any value: it gets the time stamp verbatim. */
START_TEST(test_callback_gets_any_ts) {
  harness h;
  h_init(&h);
  ps__buf b = {0};
  add_hello(&b, "sensor-T", 1, 1, 1);
  add_iface(&b, 0, 1, PS_TSRES_NSEC, "eth0");
  ps_packet p[3] = {mkpkt(1, 0, 10, 0), mkpkt(2, 0, 20, 0), mkpkt(3, 0, 30, 0)};
  p[0].ts_sec = INT64_MAX;
  p[0].ts_frac = 1000000000u;
  p[1].ts_sec = INT64_MIN;
  p[1].ts_frac = UINT32_MAX;
  p[2].ts_sec = -1;
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, p, 3, -1);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_uint_eq(h.rec.npkts, 3);
  for (size_t i = 0; i < 3; i++) {
    expect_delivered(&h.rec, i, &p[i]);
  }
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_zlib_not_negotiated) {
  harness h;
  h_init(&h);
  ps__buf b = {0};
  add_hello(&b, "s", 1, 1, 1); /* stored only */
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  ck_assert_int_eq(feed(&h, &b), 0);
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), 1);
  ps__welcome w;
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(ps__dec_welcome(&fr[0], &w, eb), 0);
  ck_assert_uint_eq(w.codec, PS_WIRE_CODEC_STORED);
  ps__buf_reset(&b);
  ps_packet p[4];
  for (int k = 0; k < 4; k++) {
    p[k] = mkpkt(k, 0, 500, 1);
  }
  add_batch(&b, 1, PS_WIRE_CODEC_ZLIB, p, 4, -1);
  ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                "batch 1 uses codec zlib, negotiated none");
  expect_error_out(&h, PS_ERR_PROTOCOL, "negotiated none");
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

/* A version 1 sensor (hello 1..1) is served version 1, and an ANNOUNCE
 * from it is a violation; a version 2 sensor's ANNOUNCE fills its fleet
 * entry (labels a sensor may not set are dropped), and a malformed one
 * is refused with the reason. */
START_TEST(test_announce_versions) {
  ps__announce a = {.flags = PS_ANNOUNCE_REMOTE,
                    .version = {"0.2.0", 5},
                    .host = {"web-7", 5},
                    .n_ifaces = 1,
                    .n_labels = 2};
  a.ifaces[0].name = (ps__text){"eth0", 4};
  a.ifaces[0].linktype = 1;
  a.labels[0].key = (ps__text){"app", 3};
  a.labels[0].value = (ps__text){"web", 3};
  a.labels[1].key = (ps__text){"sensor", 6}; /* not taken */
  a.labels[1].value = (ps__text){"other", 5};
  for (uint16_t maxv = 1; maxv <= 2; maxv++) {
    harness h;
    h_init(&h);
    ps__fleet fl = {0};
    h.env.fleet = &fl;
    ps__buf b = {0};
    add_hello(&b, "s", 3, 1, maxv);
    ck_assert_int_eq(ps__enc_announce(&b, &a), 0);
    if (maxv == 1) {
      ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                    "unexpected ANNOUNCE frame from a sensor (protocol "
                    "version 1)");
    } else {
      ck_assert_int_eq(feed(&h, &b), 0);
      ps__fleet_sensor *e = ps__fleet_find(&fl, "s");
      ck_assert_ptr_nonnull(e);
      ck_assert_int_eq(e->announced, 1);
      ck_assert_str_eq(e->host, "web-7");
      ck_assert_uint_eq(e->n_labels, 1);
      ck_assert_str_eq(e->labels[0].key, "app");
      ck_assert_uint_eq(e->n_avail, 1);
      ck_assert_str_eq(e->avail[0].name, "eth0");
      /* Truncated: refused, with what is wrong. */
      ps__buf_reset(&b);
      ck_assert_int_eq(ps__enc_announce(&b, &a), 0);
      b.len -= 2;
      ps__buf_head(&b)[4 + 3] -= 2; /* the frame's length */
      ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                    "ANNOUNCE frame of");
    }
    ps__buf_free(&b);
    h_free(&h);
    ps__fleet_free(&fl);
  }
}
END_TEST

START_TEST(test_largest_hello_fits) {
  /* A 255-byte name and a stream id: the largest hello. */
  harness h;
  h_init(&h);
  char name[256];
  memset(name, 'x', 255);
  name[255] = '\0';
  ps__buf b = {0};
  ps__hello hm = {.min_version = 1,
                  .max_version = 1,
                  .codecs = 3,
                  .flags = PS_HELLO_STREAM,
                  .name = name,
                  .name_len = 255,
                  .stream_id = 42};
  ck_assert_int_eq(ps__enc_hello(&b, &hm), 0);
  ck_assert_uint_eq(ps__buf_size(&b), 8 + 297);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_int_eq(h.s.state, PS_SESS_ACTIVE);
  ck_assert_str_eq(h.rec.sensor, name);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_sensor_error_frame) {
  harness h;
  h_init(&h);
  start_session(&h, 3);
  ps__buf b = {0};
  ck_assert_int_eq(ps__enc_error(&b, 513, "disk\nfull\x1b"), 0);
  ck_assert_err(feed(&h, &b), PS_ERR_CLOSED, h.s.errmsg,
                "the sensor reported: disk?full?");
  ck_assert_int_eq(h.s.state, PS_SESS_DONE);
  /* Nothing is answered to a sensor that says goodbye. */
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), 1);
  ck_assert_uint_eq(fr[0].type, PS_FRAME_WELCOME);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_callback_refuses_packet) {
  harness h;
  h_init(&h);
  h.rec.refuse_packet_at = 2;
  start_session(&h, 3);
  ps__buf b = {0};
  ps_packet p[3] = {mkpkt(1, 0, 10, 0), mkpkt(2, 0, 20, 0), mkpkt(3, 0, 30, 0)};
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, p, 3, -1);
  ck_assert_err(feed(&h, &b), PS_ERR_REFUSED, h.s.errmsg,
                "the callback sink refused sensor sensor-B at a packet");
  expect_error_out(&h, PS_ERR_REFUSED, "refused");
  ck_assert_uint_eq(h.rec.npkts, 1);
  /* The batch was not acknowledged. */
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), 2);
  ck_assert_uint_eq(fr[0].type, PS_FRAME_WELCOME);
  ck_assert_uint_eq(h.s.last_seq, 0);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_callback_refuses_start_and_iface) {
  harness h;
  h_init(&h);
  h.rec.refuse_start = 1;
  ps__buf b = {0};
  add_hello(&b, "nope", 3, 1, 1);
  ck_assert_err(feed(&h, &b), PS_ERR_REFUSED, h.s.errmsg,
                "refused sensor nope at session start");
  expect_error_out(&h, PS_ERR_REFUSED, "session start");
  /* No welcome for a refused sensor. */
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), 1);
  h_free(&h);

  h_init(&h);
  h.rec.refuse_iface = -3;
  ps__buf_reset(&b);
  add_hello(&b, "s2", 3, 1, 1);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  ck_assert_err(feed(&h, &b), PS_ERR_REFUSED, h.s.errmsg,
                "refused sensor s2 at interface announcement");
  expect_error_out(&h, PS_ERR_REFUSED, "interface announcement");
  /* The session had started: its end is told. */
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 1);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_session_end_tells_sinks) {
  harness h;
  h_init(&h);
  start_session(&h, 3);
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 1);
  /* Idempotent. */
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 1);
  h_free(&h);
}
END_TEST

/* ------------------------------------------------- shared-key auth */

static const uint8_t auth_key[] = "correct horse battery staple";
#define AUTH_KEY_LEN (sizeof(auth_key) - 1)
static const uint8_t rnonce_b[PS_NONCE_LEN] = "other rcv nonce";
static const uint8_t snonce_a[PS_NONCE_LEN] = {
    0x5e, 0x25, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xff};

/* A harness whose receiver requires auth_key, with rnonce (NULL: the
 * usual "receiver-nonce!"). */
static void h_init_auth(harness *h, const uint8_t *rnonce) {
  h_init(h);
  h->env.auth_key = auth_key;
  h->env.auth_len = AUTH_KEY_LEN;
  if (rnonce != NULL) {
    ps__session_init(&h->s, &h->env, 7, "198.51.100.9:40000", rnonce);
  }
  logbuf[0] = '\0';
}

static void add_hello_nonce(ps__buf *b, const char *name,
                            const uint8_t *nonce) {
  ps__hello m = {.min_version = 1,
                 .max_version = 1,
                 .codecs = 3,
                 .name = name,
                 .name_len = strlen(name)};
  memcpy(m.nonce, nonce, PS_NONCE_LEN);
  ck_assert_int_eq(ps__enc_hello(b, &m), 0);
}

/* An AUTH frame as a sensor computes it. */
static void add_auth(ps__buf *b, const uint8_t *key, size_t keylen,
                     int receiver, const uint8_t *rnonce, const uint8_t *snonce,
                     const char *name) {
  uint8_t mac[PS_MAC_LEN];
  ck_assert_int_eq(ps__auth_mac(key, keylen, receiver, rnonce, snonce, name,
                                strlen(name), mac),
                   0);
  ck_assert_int_eq(ps__enc_mac(b, PS_FRAME_AUTH, mac), 0);
}

/* The MAC computed here from the documented input (docs/PROTOCOL.md),
 * independently of ps__auth_mac. */
static void doc_mac(const char *label, const uint8_t *rnonce,
                    const uint8_t *snonce, const char *name, uint8_t *mac) {
  uint8_t msg[16 + 2 * PS_NONCE_LEN + 255];
  size_t n = strlen(name);
  ck_assert_uint_eq(strlen(label), 16);
  memcpy(msg, label, 16);
  memcpy(msg + 16, rnonce, PS_NONCE_LEN);
  memcpy(msg + 16 + PS_NONCE_LEN, snonce, PS_NONCE_LEN);
  memcpy(msg + 16 + 2 * PS_NONCE_LEN, name, n);
  ck_assert_int_eq(gnutls_hmac_fast(GNUTLS_MAC_SHA256, auth_key, AUTH_KEY_LEN,
                                    msg, 16 + 32 + n, mac),
                   0);
}

START_TEST(test_auth_ok) {
  harness h;
  h_init_auth(&h, NULL);
  ps__buf b = {0};
  add_hello_nonce(&b, "sensor-A", snonce_a);
  ck_assert_int_eq(feed(&h, &b), 0);
  /* Welcomed, asked for the proof, and the sinks know nothing yet. */
  ck_assert_int_eq(h.s.state, PS_SESS_AUTH);
  ck_assert_int_eq(h.rec.starts, 0);
  ck_assert_ptr_null(strstr(logbuf, "connected"));
  ps__frame fr[16];
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(out_frames(&h, fr, 16), 1);
  ps__welcome w;
  ck_assert_int_eq(ps__dec_welcome(&fr[0], &w, eb), 0);
  ck_assert_uint_eq(w.flags, PS_WELCOME_AUTH);
  ck_assert_mem_eq(w.nonce, "receiver-nonce!", PS_NONCE_LEN);

  ps__buf_reset(&b);
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, w.nonce, snonce_a, "sensor-A");
  ck_assert_uint_eq(ps__buf_size(&b), PS_FRAME_HDR + PS_MAC_LEN);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_int_eq(h.s.state, PS_SESS_ACTIVE);
  ck_assert_int_eq(h.rec.starts, 1);
  ck_assert_str_eq(h.rec.sensor, "sensor-A");
  ck_assert_ptr_nonnull(strstr(logbuf, "sensor sensor-A connected from "
                                       "198.51.100.9:40000 (session 7, "
                                       "compression zlib, shared key "
                                       "verified)"));
  /* The receiver's proof follows, byte for byte. */
  ck_assert_int_eq(out_frames(&h, fr, 16), 2);
  const uint8_t *ok = ps__buf_head(&h.s.out) + PS_FRAME_HDR + 40;
  static const uint8_t ok_hdr[8] = {PS_FRAME_AUTH_OK, 0, 0, 0, 0, 0, 0, 32};
  ck_assert_mem_eq(ok, ok_hdr, 8);
  ck_assert_uint_eq(ps__buf_size(&h.s.out), 2 * PS_FRAME_HDR + 40 + 32);
  uint8_t mac[PS_MAC_LEN], theirs[PS_MAC_LEN];
  ck_assert_int_eq(ps__dec_mac(&fr[1], theirs, eb), 0);
  ck_assert_int_eq(ps__auth_mac(auth_key, AUTH_KEY_LEN, 1, w.nonce, snonce_a,
                                "sensor-A", 8, mac),
                   0);
  ck_assert_mem_eq(theirs, mac, PS_MAC_LEN);
  doc_mac("PSTR auth rcvr  ", w.nonce, snonce_a, "sensor-A", mac);
  ck_assert_mem_eq(theirs, mac, PS_MAC_LEN);

  /* Then the stream goes on as without auth. */
  ps__buf_reset(&b);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  ps_packet p = mkpkt(1, 0, 100, 0);
  add_batch(&b, 1, PS_WIRE_CODEC_STORED, &p, 1, -1);
  ck_assert_int_eq(ps__enc_close(&b, 1), 0);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_int_eq(h.s.clean_close, 1);
  ck_assert_uint_eq(h.rec.npkts, 1);
  expect_delivered(&h.rec, 0, &p);
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 1);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_auth_byte_at_a_time) {
  /* Hello and proof in one write, then fed a byte at a time. */
  harness h;
  h_init_auth(&h, NULL);
  ps__buf b = {0};
  add_hello_nonce(&b, "s", snonce_a);
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "s");
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  for (size_t i = 0; i < ps__buf_size(&b); i++) {
    ck_assert_int_eq(ps__session_input(&h.s, ps__buf_head(&b) + i, 1), 0);
  }
  ck_assert_int_eq(h.s.state, PS_SESS_ACTIVE);
  ck_assert_int_eq(h.rec.starts, 1);
  ck_assert_int_eq(h.rec.ifaces, 1);
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 1);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_auth_wrong_mac) {
  static const uint8_t wrong[] = "correct horse battery stapler";
  const uint8_t *rn = (const uint8_t *)"receiver-nonce!";
  for (int k = 0; k < 5; k++) {
    harness h;
    h_init_auth(&h, NULL);
    ps__buf b = {0};
    add_hello_nonce(&b, "sensor-A", snonce_a);
    switch (k) {
    case 0: /* a wrong key */
      add_auth(&b, wrong, sizeof(wrong) - 1, 0, rn, snonce_a, "sensor-A");
      break;
    case 1: /* the receiver's proof reflected back */
      add_auth(&b, auth_key, AUTH_KEY_LEN, 1, rn, snonce_a, "sensor-A");
      break;
    case 2: /* made for another sensor name */
      add_auth(&b, auth_key, AUTH_KEY_LEN, 0, rn, snonce_a, "sensor-B");
      break;
    case 3: /* made for another sensor nonce */
      add_auth(&b, auth_key, AUTH_KEY_LEN, 0, rn, rnonce_b, "sensor-A");
      break;
    default: { /* all zeros */
      uint8_t zero[PS_MAC_LEN] = {0};
      ck_assert_int_eq(ps__enc_mac(&b, PS_FRAME_AUTH, zero), 0);
    }
    }
    ck_assert_err(feed(&h, &b), PS_ERR_AUTH, h.s.errmsg,
                  "authentication failed: wrong shared key for sensor "
                  "sensor-A");
    expect_error_out(&h, PS_ERR_AUTH, "authentication failed");
    ck_assert_int_eq(h.rec.starts, 0);
    ps__frame fr[4];
    ck_assert_int_eq(out_frames(&h, fr, 4), 2); /* WELCOME, ERROR */
    ck_assert_uint_eq(fr[0].type, PS_FRAME_WELCOME);
    ps__session_end(&h.s);
    ck_assert_int_eq(h.rec.ends, 0);
    ps__buf_free(&b);
    h_free(&h);
  }
}
END_TEST

START_TEST(test_auth_required) {
  /* Anything but AUTH while the proof is awaited. */
  const uint8_t types[] = {PS_FRAME_IFACE, PS_FRAME_HEARTBEAT, PS_FRAME_CLOSE,
                           PS_FRAME_HELLO, PS_FRAME_AUTH_OK};
  for (size_t i = 0; i < sizeof(types); i++) {
    harness h;
    h_init_auth(&h, NULL);
    ps__buf b = {0};
    add_hello_nonce(&b, "keyless", snonce_a);
    ck_assert_int_eq(feed(&h, &b), 0);
    ps__buf_reset(&b);
    uint8_t mac[PS_MAC_LEN];
    switch (types[i]) {
    case PS_FRAME_IFACE:
      add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
      break;
    case PS_FRAME_HEARTBEAT:
      ck_assert_int_eq(ps__enc_heartbeat(&b), 0);
      break;
    case PS_FRAME_CLOSE:
      ck_assert_int_eq(ps__enc_close(&b, 0), 0);
      break;
    case PS_FRAME_HELLO:
      add_hello_nonce(&b, "keyless", snonce_a);
      break;
    default: /* a sensor posing as the receiver, with the right proof */
      ck_assert_int_eq(ps__auth_mac(auth_key, AUTH_KEY_LEN, 1,
                                    (const uint8_t *)"receiver-nonce!",
                                    snonce_a, "keyless", 7, mac),
                       0);
      ck_assert_int_eq(ps__enc_mac(&b, PS_FRAME_AUTH_OK, mac), 0);
    }
    char want[128];
    snprintf(want, sizeof(want),
             "authentication required: sensor keyless sent %s instead of "
             "its proof (it needs --auth-key-file)",
             ps__frame_name(types[i]));
    ck_assert_err(feed(&h, &b), PS_ERR_AUTH, h.s.errmsg, want);
    expect_error_out(&h, PS_ERR_AUTH, "authentication required");
    ck_assert_int_eq(h.rec.starts, 0);
    ck_assert_int_eq(h.rec.ifaces, 0);
    ck_assert_int_eq(h.s.clean_close, 0);
    ps__buf_free(&b);
    h_free(&h);
  }
}
END_TEST

START_TEST(test_auth_frames_out_of_place) {
  harness h;
  ps__buf b = {0};
  uint8_t mac[PS_MAC_LEN] = {0};
  /* AUTH_OK, or AUTH, to a receiver without a key: never expected. */
  const uint8_t types[] = {PS_FRAME_AUTH_OK, PS_FRAME_AUTH};
  for (size_t i = 0; i < sizeof(types); i++) {
    h_init(&h);
    start_session(&h, 3);
    ps__buf_reset(&b);
    ck_assert_int_eq(ps__enc_mac(&b, types[i], mac), 0);
    char want[64];
    snprintf(want, sizeof(want), "unexpected %s frame from a sensor",
             ps__frame_name(types[i]));
    ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg, want);
    expect_error_out(&h, PS_ERR_PROTOCOL, want);
    h_free(&h);
  }
  /* A proof before the hello. */
  h_init_auth(&h, NULL);
  ps__buf_reset(&b);
  ck_assert_int_eq(ps__enc_mac(&b, PS_FRAME_AUTH, mac), 0);
  ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                "expected a hello, got a AUTH frame");
  h_free(&h);
  /* A proof after the session authenticated. */
  h_init_auth(&h, NULL);
  ps__buf_reset(&b);
  add_hello_nonce(&b, "s", snonce_a);
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "s");
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "s");
  ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                "unexpected AUTH frame from a sensor");
  ck_assert_int_eq(h.rec.starts, 1);
  h_free(&h);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_auth_bad_frame) {
  /* A proof of the wrong size, and one over the pre-auth frame limit. */
  harness h;
  h_init_auth(&h, NULL);
  ps__buf b = {0};
  add_hello_nonce(&b, "s", snonce_a);
  uint8_t f31[PS_FRAME_HDR + 31] = {PS_FRAME_AUTH, 0, 0, 0, 0, 0, 0, 31};
  ck_assert_int_eq(ps__buf_append(&b, f31, sizeof(f31)), 0);
  ck_assert_err(feed(&h, &b), PS_ERR_PROTOCOL, h.s.errmsg,
                "AUTH frame of 31 bytes");
  expect_error_out(&h, PS_ERR_PROTOCOL, "AUTH frame of 31 bytes");
  ck_assert_int_eq(h.rec.starts, 0);
  h_free(&h);

  h_init_auth(&h, NULL);
  ps__buf_reset(&b);
  add_hello_nonce(&b, "s", snonce_a);
  uint8_t big[PS_FRAME_HDR] = {PS_FRAME_AUTH, 0, 0, 0, 0, 0x10, 0, 0};
  ck_assert_int_eq(ps__buf_append(&b, big, sizeof(big)), 0);
  ck_assert_err(feed(&h, &b), PS_ERR_LIMIT, h.s.errmsg,
                "AUTH frame of 1048576 bytes exceeds the frame limit of 297");
  ck_assert_int_eq(h.rec.starts, 0);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

START_TEST(test_auth_replay) {
  /* Session 1 accepts a hello and proof; the very same bytes, replayed to
   * session 2 (another receiver nonce), are refused. */
  harness h1, h2;
  h_init_auth(&h1, NULL);
  h_init_auth(&h2, rnonce_b);
  ps__buf rec = {0};
  add_hello_nonce(&rec, "sensor-A", snonce_a);
  ck_assert_int_eq(feed(&h1, &rec), 0);
  add_auth(&rec, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "sensor-A");
  ck_assert_int_eq(ps__session_input(&h1.s,
                                     ps__buf_head(&rec) + PS_FRAME_HDR + 42,
                                     PS_FRAME_HDR + PS_MAC_LEN),
                   0);
  ck_assert_int_eq(h1.s.state, PS_SESS_ACTIVE);
  ck_assert_int_eq(h1.rec.starts, 1);

  ck_assert_err(feed(&h2, &rec), PS_ERR_AUTH, h2.s.errmsg,
                "authentication failed");
  expect_error_out(&h2, PS_ERR_AUTH, "wrong shared key");
  ck_assert_int_eq(h2.rec.starts, 0);
  ps__frame fr[4];
  char eb[PS_ERRMSG_MAX];
  ps__welcome w;
  ck_assert_int_eq(out_frames(&h2, fr, 4), 2);
  ck_assert_int_eq(ps__dec_welcome(&fr[0], &w, eb), 0);
  ck_assert_mem_eq(w.nonce, rnonce_b, PS_NONCE_LEN);
  ps__buf_free(&rec);
  h_free(&h1);
  h_free(&h2);
}
END_TEST

START_TEST(test_auth_mac_inputs) {
  const uint8_t *rn = (const uint8_t *)"receiver-nonce!";
  uint8_t s[PS_MAC_LEN], r[PS_MAC_LEN], x[PS_MAC_LEN];
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 0, rn, snonce_a, "sensor-A", 8, s),
      0);
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 1, rn, snonce_a, "sensor-A", 8, r),
      0);
  /* The role label makes the two proofs differ. */
  ck_assert_mem_ne(s, r, PS_MAC_LEN);
  /* Both are HMAC-SHA256 over label, rnonce, snonce, name. */
  doc_mac("PSTR auth sensor", rn, snonce_a, "sensor-A", x);
  ck_assert_mem_eq(s, x, PS_MAC_LEN);
  doc_mac("PSTR auth rcvr  ", rn, snonce_a, "sensor-A", x);
  ck_assert_mem_eq(r, x, PS_MAC_LEN);
  /* Every input counts. */
  ck_assert_int_eq(ps__auth_mac(auth_key, AUTH_KEY_LEN - 1, 0, rn, snonce_a,
                                "sensor-A", 8, x),
                   0);
  ck_assert_mem_ne(s, x, PS_MAC_LEN);
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 0, snonce_a, rn, "sensor-A", 8, x),
      0);
  ck_assert_mem_ne(s, x, PS_MAC_LEN);
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 0, rn, snonce_a, "sensor-A", 7, x),
      0);
  ck_assert_mem_ne(s, x, PS_MAC_LEN);
  /* Deterministic. */
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 0, rn, snonce_a, "sensor-A", 8, x),
      0);
  ck_assert_mem_eq(s, x, PS_MAC_LEN);
  /* A name longer than the protocol allows. */
  char name[300];
  memset(name, 'n', sizeof(name));
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 0, rn, snonce_a, name, 256, x),
      PS_ERR_AUTH);
  ck_assert_int_eq(
      ps__auth_mac(auth_key, AUTH_KEY_LEN, 0, rn, snonce_a, name, 255, x), 0);
}
END_TEST

START_TEST(test_welcome_auth_flag) {
  /* Bit 0 of the WELCOME's fourth payload byte, exactly when a key is
   * configured. */
  for (int keyed = 0; keyed < 2; keyed++) {
    harness h;
    if (keyed) {
      h_init_auth(&h, NULL);
    } else {
      h_init(&h);
    }
    ps__buf b = {0};
    add_hello_nonce(&b, "s", snonce_a);
    ck_assert_int_eq(feed(&h, &b), 0);
    ck_assert_uint_eq(ps__buf_size(&h.s.out), PS_FRAME_HDR + 40);
    const uint8_t *p = ps__buf_head(&h.s.out);
    ck_assert_uint_eq(p[0], PS_FRAME_WELCOME);
    ck_assert_uint_eq(p[PS_FRAME_HDR + 3], keyed ? PS_WELCOME_AUTH : 0);
    ck_assert_int_eq(h.s.state, keyed ? PS_SESS_AUTH : PS_SESS_ACTIVE);
    ck_assert_int_eq(h.rec.starts, keyed ? 0 : 1);
    ps__buf_free(&b);
    h_free(&h);
  }
}
END_TEST

START_TEST(test_auth_then_sink_refuses) {
  /* The sinks may still refuse an authenticated sensor: the proof went
   * out, then the refusal. */
  harness h;
  h_init_auth(&h, NULL);
  h.rec.refuse_start = 1;
  ps__buf b = {0};
  add_hello_nonce(&b, "s", snonce_a);
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "s");
  ck_assert_err(feed(&h, &b), PS_ERR_REFUSED, h.s.errmsg,
                "refused sensor s at session start");
  ps__frame fr[4];
  ck_assert_int_eq(out_frames(&h, fr, 4), 3);
  ck_assert_uint_eq(fr[1].type, PS_FRAME_AUTH_OK);
  ck_assert_uint_eq(fr[2].type, PS_FRAME_ERROR);
  ck_assert_int_eq(h.rec.starts, 1);
  ps__session_end(&h.s);
  ck_assert_int_eq(h.rec.ends, 0);
  ps__buf_free(&b);
  h_free(&h);
}
END_TEST

/* ------------------------------------------------ streams (issue 4) */

static void add_stream_hello(ps__buf *b, const char *name, uint64_t id) {
  ps__hello m = {.min_version = 1,
                 .max_version = 1,
                 .codecs = 3,
                 .flags = PS_HELLO_STREAM,
                 .name = name,
                 .name_len = strlen(name),
                 .stream_id = id};
  ck_assert_int_eq(ps__enc_hello(b, &m), 0);
}

static ps__session *superseded;

static void on_supersede(void *ud, ps__session *old) {
  (void)ud;
  superseded = old;
  ps__session_end(old);
}

/* A stream that comes back on a new connection resumes: the receiver
 * says how far it wrote, skips what it has, takes what follows. */
START_TEST(test_stream_resume_dedupe) {
  ps__streamtab tab = {0};
  harness h;
  h_init(&h);
  h.env.streams = &tab;
  h.env.supersede = on_supersede;
  ps__buf b = {0};
  ps_packet pk[8];
  for (int k = 0; k < 8; k++) {
    pk[k] = mkpkt(k, 0, 100 + (uint32_t)k, 0);
  }
  add_stream_hello(&b, "s", 0xabcdef);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  for (uint64_t seq = 1; seq <= 3; seq++) {
    add_batch(&b, seq, PS_WIRE_CODEC_STORED, &pk[seq - 1], 1, -1);
  }
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_uint_eq(h.rec.npkts, 3);
  ps__stream_ent *e = ps__streamtab_get(&tab, "s", 1, 0xabcdef);
  ck_assert_uint_eq(e->seq, 3);
  ck_assert_ptr_eq(e->owner, &h.s);
  /* The connection breaks without a close. */
  ps__session_end(&h.s);
  ck_assert_ptr_null(e->owner);

  /* The sensor reconnects and resends from batch 2. */
  static const uint8_t rn[PS_NONCE_LEN] = "receiver-nonce2";
  ps__session_init(&h.s, &h.env, 8, "198.51.100.9:40001", rn);
  ps__buf_reset(&b);
  add_stream_hello(&b, "s", 0xabcdef);
  ck_assert_int_eq(feed(&h, &b), 0);
  ps__frame fr[16];
  ck_assert_int_eq(out_frames(&h, fr, 16), 2);
  ck_assert_uint_eq(fr[0].type, PS_FRAME_WELCOME);
  ck_assert_uint_eq(fr[1].type, PS_FRAME_ACK); /* resume point */
  ck_assert_uint_eq(frame_seq(&fr[1]), 3);
  ps__buf_reset(&h.s.out);
  ps__buf_reset(&b);
  add_iface(&b, 0, 1, PS_TSRES_USEC, "eth0");
  add_batch(&b, 2, PS_WIRE_CODEC_STORED, &pk[1], 1, -1);
  add_batch(&b, 3, PS_WIRE_CODEC_STORED, &pk[2], 1, -1);
  add_batch(&b, 4, PS_WIRE_CODEC_STORED, &pk[3], 1, -1);
  /* Batch 5 was dropped by the sensor's full buffer: a gap is allowed
   * in a stream. */
  add_batch(&b, 6, PS_WIRE_CODEC_STORED, &pk[5], 1, -1);
  ck_assert_int_eq(ps__enc_close(&b, 6), 0);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_uint_eq(h.rec.npkts, 5); /* 1 2 3, then 4 and 6 */
  expect_delivered(&h.rec, 3, &pk[3]);
  expect_delivered(&h.rec, 4, &pk[5]);
  ck_assert_uint_eq(h.s.duplicates, 2);
  ck_assert_uint_eq(h.s.missing, 1);
  ck_assert_uint_eq(e->seq, 6);
  ck_assert_int_eq(h.s.state, PS_SESS_DONE);
  ck_assert_int_eq(h.s.clean_close, 1);
  ck_assert_ptr_null(superseded);
  ps__buf_free(&b);
  h_free(&h);
  ck_assert_ptr_null(e->owner);
  ps__streamtab_free(&tab);
}
END_TEST

/* A stream arriving on a second connection while the first still holds
 * it: the first ends (its sensor gave up on it). */
START_TEST(test_stream_supersede) {
  ps__streamtab tab = {0};
  harness h1, h2;
  h_init(&h1);
  h_init(&h2);
  h1.env.streams = h2.env.streams = &tab;
  h1.env.supersede = h2.env.supersede = on_supersede;
  superseded = NULL;
  ps__buf b = {0};
  add_stream_hello(&b, "s", 77);
  ck_assert_int_eq(feed(&h1, &b), 0);
  ck_assert_int_eq(feed(&h2, &b), 0);
  ck_assert_ptr_eq(superseded, &h1.s);
  ck_assert_ptr_eq(ps__streamtab_get(&tab, "s", 1, 77)->owner, &h2.s);
  /* Another stream id of the same sensor name is another stream. */
  harness h3;
  h_init(&h3);
  h3.env.streams = &tab;
  h3.env.supersede = on_supersede;
  superseded = NULL;
  ps__buf_reset(&b);
  add_stream_hello(&b, "s", 78);
  ck_assert_int_eq(feed(&h3, &b), 0);
  ck_assert_ptr_null(superseded);
  ck_assert_uint_eq(tab.n, 2);
  ps__buf_free(&b);
  h_free(&h1);
  h_free(&h2);
  h_free(&h3);
  ps__streamtab_free(&tab);
}
END_TEST

/* ------------------------------------------- admission (issue 9) */

static int admit_calls, admit_took_over, admit_refuse;

static int on_admit(void *ud, ps__session *s, int takes_over) {
  (void)ud;
  admit_calls++;
  admit_took_over = takes_over;
  if (admit_refuse) {
    return ps__seterr(s->errmsg, PS_ERR_BUSY,
                      "the receiver is at its limit of 1 sensors");
  }
  return 0;
}

/* A receiver without room: the sensor is told with ERROR 520 (not a
 * verdict on it: it retries), in place of the welcome without a key, and
 * right after the receiver's proof with one. It leaves nothing: the
 * sinks never hear of it, no stream is remembered. */
START_TEST(test_admit_refuses_busy) {
  ps__streamtab tab = {0};
  harness h;
  h_init(&h);
  h.env.streams = &tab;
  h.env.admit = on_admit;
  admit_refuse = 1;
  admit_calls = 0;
  ps__buf b = {0};
  add_stream_hello(&b, "s", 5);
  ck_assert_err(feed(&h, &b), PS_ERR_BUSY, h.s.errmsg,
                "at its limit of 1 sensors");
  ps__frame fr[8];
  ck_assert_int_eq(out_frames(&h, fr, 8), 1);
  expect_error_out(&h, PS_ERR_BUSY, "at its limit of 1 sensors");
  ck_assert_int_eq(admit_calls, 1);
  ck_assert_int_eq(h.rec.starts, 0);
  ck_assert_uint_eq(tab.n, 0);
  h_free(&h);

  /* With a key, a connection that has not proved it is not asked about:
   * it is no sensor yet. */
  h_init_auth(&h, NULL);
  h.env.streams = &tab;
  h.env.admit = on_admit;
  admit_calls = 0;
  ps__buf_reset(&b);
  add_hello_nonce(&b, "sensor-A", snonce_a);
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_int_eq(h.s.state, PS_SESS_AUTH);
  ck_assert_int_eq(admit_calls, 0);
  ps__buf_reset(&b);
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "sensor-A");
  ck_assert_err(feed(&h, &b), PS_ERR_BUSY, h.s.errmsg, "at its limit");
  ck_assert_int_eq(admit_calls, 1);
  ck_assert_int_eq(out_frames(&h, fr, 8), 3);
  ck_assert_uint_eq(fr[0].type, PS_FRAME_WELCOME);
  ck_assert_uint_eq(fr[1].type, PS_FRAME_AUTH_OK);
  expect_error_out(&h, PS_ERR_BUSY, "at its limit of 1 sensors");
  ck_assert_int_eq(h.rec.starts, 0);
  ck_assert_ptr_null(strstr(logbuf, "connected"));
  h_free(&h);

  /* With room, the same proof makes a sensor. */
  admit_refuse = 0;
  h_init_auth(&h, NULL);
  h.env.admit = on_admit;
  ps__buf_reset(&b);
  add_hello_nonce(&b, "sensor-A", snonce_a);
  add_auth(&b, auth_key, AUTH_KEY_LEN, 0, (const uint8_t *)"receiver-nonce!",
           snonce_a, "sensor-A");
  ck_assert_int_eq(feed(&h, &b), 0);
  ck_assert_int_eq(h.s.state, PS_SESS_ACTIVE);
  ck_assert_int_eq(h.rec.starts, 1);
  ps__buf_free(&b);
  h_free(&h);
  ps__streamtab_free(&tab);
}
END_TEST

/* A sensor whose stream an older connection holds replaces it, so the
 * receiver may take it even when full. */
START_TEST(test_admit_takes_over) {
  ps__streamtab tab = {0};
  harness h1, h2, h3;
  h_init(&h1);
  h_init(&h2);
  h_init(&h3);
  h1.env.streams = h2.env.streams = h3.env.streams = &tab;
  h1.env.supersede = h2.env.supersede = h3.env.supersede = on_supersede;
  h1.env.admit = h2.env.admit = h3.env.admit = on_admit;
  admit_refuse = 0;
  ps__buf b = {0};
  add_stream_hello(&b, "s", 9);
  ck_assert_int_eq(feed(&h1, &b), 0);
  ck_assert_int_eq(admit_took_over, 0);
  superseded = NULL;
  ck_assert_int_eq(feed(&h2, &b), 0);
  ck_assert_int_eq(admit_took_over, 1);
  ck_assert_ptr_eq(superseded, &h1.s);
  /* The same name with another stream id is another sensor. */
  ps__buf_reset(&b);
  add_stream_hello(&b, "s", 10);
  ck_assert_int_eq(feed(&h3, &b), 0);
  ck_assert_int_eq(admit_took_over, 0);
  ps__buf_free(&b);
  h_free(&h1);
  h_free(&h2);
  h_free(&h3);
  ps__streamtab_free(&tab);
}
END_TEST

static Suite *session_suite(void) {
  Suite *s = suite_create("session");
  TCase *tc = tcase_create("flow");
  tcase_add_test(tc, test_happy_path);
  tcase_add_test(tc, test_ack_after_each_batch);
  tcase_add_test(tc, test_byte_at_a_time);
  tcase_add_test(tc, test_deferred_acks);
  tcase_add_test(tc, test_stream_resume_dedupe);
  tcase_add_test(tc, test_stream_supersede);
  tcase_add_test(tc, test_duplicate_batch);
  tcase_add_test(tc, test_empty_batch);
  tcase_add_test(tc, test_session_end_tells_sinks);
  suite_add_tcase(s, tc);
  tc = tcase_create("refusals");
  tcase_add_test(tc, test_unannounced_iface_refuses_whole_batch);
  tcase_add_test(tc, test_unholdable_ts_refuses_whole_batch);
  tcase_add_test(tc, test_callback_gets_any_ts);
  tcase_add_test(tc, test_zlib_not_negotiated);
  tcase_add_test(tc, test_largest_hello_fits);
  tcase_add_test(tc, test_announce_versions);
  tcase_add_loop_test(tc, test_bad_input, 0,
                      sizeof(bad_inputs) / sizeof(bad_inputs[0]));
  tcase_add_test(tc, test_sensor_error_frame);
  tcase_add_test(tc, test_callback_refuses_packet);
  tcase_add_test(tc, test_callback_refuses_start_and_iface);
  suite_add_tcase(s, tc);
  tc = tcase_create("auth");
  tcase_add_test(tc, test_auth_ok);
  tcase_add_test(tc, test_auth_byte_at_a_time);
  tcase_add_test(tc, test_auth_wrong_mac);
  tcase_add_test(tc, test_auth_required);
  tcase_add_test(tc, test_auth_frames_out_of_place);
  tcase_add_test(tc, test_auth_bad_frame);
  tcase_add_test(tc, test_auth_replay);
  tcase_add_test(tc, test_auth_mac_inputs);
  tcase_add_test(tc, test_welcome_auth_flag);
  tcase_add_test(tc, test_auth_then_sink_refuses);
  tcase_add_test(tc, test_admit_refuses_busy);
  tcase_add_test(tc, test_admit_takes_over);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(session_suite());
}
