/* Unit tests of lib/ps_ssession, the sensor's side of a connection, sans
 * I/O: scripted receiver bytes made with the ps__enc_* encoders go in,
 * the sensor's frames come out of the session's out buffer, and time is
 * whatever the test says. The last tests put it face to face with the
 * receiver's session (ps_session), bytes passed by hand. */
#include "config.h"

#include "unit_util.h"

#include "ps_codec.h"
#include "ps_proto.h"
#include "ps_replay.h"
#include "ps_session.h"
#include "ps_sink.h"
#include "ps_ssession.h"
#include "recorder.h"

static const uint8_t snonce[PS_NONCE_LEN] = "sensor-nonce-001";
static const uint8_t rnonce[PS_NONCE_LEN] = "recv-nonce-00001";
static const uint8_t key[] = "a shared key";

#define T0 1000000 /* the fake clock's start, ms */

typedef struct harness {
  ps__replay rq;
  ps__codec *cc;
  ps__ssession_iface ifaces[2];
  ps__ssession_env env;
  ps__ssession s;
  ps__buf rx; /* what the "receiver" says next */
  char err[PS_ERRMSG_MAX];
} harness;

static void h_init(harness *h, const uint8_t *auth_key) {
  memset(h, 0, sizeof(*h));
  ps__replay_init(&h->rq, 1u << 20, PS_OVERFLOW_DROP_OLDEST);
  h->cc = ps__codec_new(PS_WIRE_CODEC_STORED, 0);
  h->ifaces[0] = (ps__ssession_iface){
      .name = "eth0", .linktype = 1, .snaplen = 65535, .tsres = PS_TSRES_USEC};
  h->ifaces[1] = (ps__ssession_iface){.name = "tun0",
                                      .linktype = 101,
                                      .snaplen = 1500,
                                      .tsres = PS_TSRES_NSEC,
                                      .has_stats = 1,
                                      .stats = {.captured = 42}};
  h->rq.n_ifaces = 2;
  h->env = (ps__ssession_env){.name = "unit",
                              .stream_id = 0x1122334455667788ull,
                              .codec_pref = PS_WIRE_CODEC_ZLIB,
                              .peer_timeout_ms = 30000,
                              .n_ifaces = 2,
                              .ifaces = h->ifaces,
                              .rq = &h->rq};
  if (auth_key != NULL) {
    h->env.auth_key = auth_key;
    h->env.auth_len = strlen((const char *)auth_key);
  }
}

static void h_start(harness *h) {
  ck_assert_int_eq(
      ps__ssession_init(&h->s, &h->env, "rx.example", 4000, snonce, T0, 10000),
      0);
  ck_assert_int_eq(h->s.state, PS_SS_WELCOME);
}

static void h_free(harness *h) {
  ps__ssession_free(&h->s);
  ps__replay_free(&h->rq);
  ps__codec_free(h->cc);
  ps__buf_free(&h->rx);
}

/* Feeds what was scripted into rx, at time now. */
static int h_say(harness *h, int64_t now) {
  int rc = ps__ssession_input(&h->s, ps__buf_head(&h->rx), ps__buf_size(&h->rx),
                              now);
  ps__buf_reset(&h->rx);
  return rc;
}

/* The next frame the sensor sent (consumed from out), or type 0. */
static uint8_t next_out(harness *h, ps__frame *f) {
  ps__limits lim;
  ps__limits_default(&lim);
  size_t used;
  int rc = ps__frame_parse(ps__buf_head(&h->s.out), ps__buf_size(&h->s.out),
                           &lim, f, &used, h->err);
  ck_assert_int_ge(rc, 0);
  if (rc == 0) {
    return 0;
  }
  /* The payload stays readable until the next call: copy it aside. */
  static uint8_t copy[1 << 20];
  ck_assert_uint_le(f->len, sizeof(copy));
  memcpy(copy, f->payload, f->len);
  f->payload = copy;
  ps__buf_consume(&h->s.out, used);
  return f->type;
}

static void welcome(harness *h, uint8_t codec, uint8_t flags) {
  ps__limits lim;
  ps__limits_default(&lim);
  ps__welcome w = {.version = PS_PROTO_VERSION,
                   .codec = codec,
                   .flags = flags,
                   .max_frame = lim.max_frame,
                   .max_batch_raw = lim.max_batch_raw,
                   .max_batch_packets = lim.max_batch_packets,
                   .session_id = 77};
  memcpy(w.nonce, rnonce, PS_NONCE_LEN);
  ck_assert_int_eq(ps__enc_welcome(&h->rx, &w), 0);
}

/* One stored batch of n packets of 100 bytes on interface iface. */
static void add_batch(harness *h, int n, uint32_t iface) {
  static uint8_t data[100];
  for (int i = 0; i < n; i++) {
    ps_packet p = {
        .ts_sec = 1, .caplen = 100, .len = 100, .iface = iface, .data = data};
    ck_assert_int_eq(ps__replay_add(&h->rq, &p, T0), 0);
  }
  ck_assert_int_eq(ps__replay_seal(&h->rq, h->cc, 1, h->err), 0);
}

/* Hello, welcome, resume point: the session streams. */
static void h_activate(harness *h, uint64_t resume) {
  h_start(h);
  welcome(h, PS_WIRE_CODEC_STORED, 0);
  ps__enc_ack(&h->rx, resume);
  ck_assert_int_eq(h_say(h, T0 + 5), 0);
  ck_assert_int_eq(h->s.state, PS_SS_ACTIVE);
  ps__frame f;
  ck_assert_uint_eq(next_out(h, &f), PS_FRAME_HELLO);
}

START_TEST(test_hello) {
  harness h;
  h_init(&h, NULL);
  h_start(&h);
  ps__frame f;
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_HELLO);
  ps__hello m;
  ck_assert_int_eq(ps__dec_hello(&f, &m, h.err), 0);
  ck_assert_uint_eq(m.min_version, 1);
  ck_assert_uint_eq(m.max_version, 2);
  ck_assert_uint_eq(m.codecs,
                    (1u << PS_WIRE_CODEC_STORED) | (1u << PS_WIRE_CODEC_ZLIB));
  ck_assert_uint_eq(m.flags, PS_HELLO_STREAM);
  ck_assert_uint_eq(m.stream_id, 0x1122334455667788ull);
  ck_assert_uint_eq(m.name_len, 4);
  ck_assert_mem_eq(m.name, "unit", 4);
  ck_assert_mem_eq(m.nonce, snonce, PS_NONCE_LEN);
  ck_assert_uint_eq(next_out(&h, &f), 0);
  /* Nothing else is fed before the session is active. */
  add_batch(&h, 3, 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ck_assert_uint_eq(ps__buf_size(&h.s.out), 0);
  ck_assert_int_eq(ps__ssession_want_write(&h.s), 0);
  h_free(&h);
}
END_TEST

START_TEST(test_active_announces_then_feeds) {
  /* Interfaces first, then the batches, then the counters queued at the
   * start (they follow every batch sealed before the session began). */
  harness h;
  h_init(&h, NULL);
  add_batch(&h, 3, 0);
  h_activate(&h, 0);
  add_batch(&h, 2, 1);
  ck_assert_int_eq(ps__ssession_want_write(&h.s), 1);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__frame f;
  ps__iface ifc;
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_IFACE);
  ck_assert_int_eq(ps__dec_iface(&f, &ifc, h.err), 0);
  ck_assert_uint_eq(ifc.id, 0);
  ck_assert_mem_eq(ifc.name, "eth0", 4);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_IFACE);
  ck_assert_int_eq(ps__dec_iface(&f, &ifc, h.err), 0);
  ck_assert_uint_eq(ifc.id, 1);
  ck_assert_uint_eq(ifc.linktype, 101);
  ps__limits lim;
  ps__limits_default(&lim);
  ps__batch b;
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_BATCH);
  ck_assert_int_eq(ps__dec_batch(&f, &lim, &b, h.err), 0);
  ck_assert_uint_eq(b.seq, 1);
  ck_assert_uint_eq(b.count, 3);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_STATS);
  ps__stats st;
  ck_assert_int_eq(ps__dec_stats(&f, &st, h.err), 0);
  ck_assert_uint_eq(st.iface, 1);
  ck_assert_uint_eq(st.c.captured, 42);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_BATCH);
  ck_assert_int_eq(ps__dec_batch(&f, &lim, &b, h.err), 0);
  ck_assert_uint_eq(b.seq, 2);
  ck_assert_uint_eq(next_out(&h, &f), 0);
  ck_assert_uint_eq(h.rq.max_fed, 2);
  ck_assert_int_eq(ps__ssession_want_write(&h.s), 0);
  /* An interface added now, and counters, follow the batches so far. */
  add_batch(&h, 1, 0);
  ck_assert_int_eq(ps__ssession_announce(&h.s, 1), 0);
  ck_assert_int_eq(ps__ssession_send_stats(&h.s, 1), 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_BATCH);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_IFACE);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_STATS);
  /* Acknowledgements release the queue. */
  ps__enc_ack(&h.rx, 2);
  ck_assert_int_eq(h_say(&h, T0 + 10), 0);
  ck_assert_uint_eq(h.rq.acked, 2);
  ck_assert_uint_eq(h.rq.ctr.packets_acked, 5);
  ck_assert_uint_eq(h.s.acks, 1);
  ck_assert_int_eq(ps__ssession_worked(&h.s), 1);
  h_free(&h);
}
END_TEST

START_TEST(test_feed_stops_at_low_water) {
  /* The copy to out stops while the socket (backlog) holds enough. */
  harness h;
  h_init(&h, NULL);
  h_activate(&h, 0);
  for (int i = 0; i < 40; i++) {
    add_batch(&h, 100, 0); /* ~12 KiB each */
  }
  ck_assert_int_eq(ps__ssession_output(&h.s, 1u << 20), 0);
  ck_assert_uint_eq(h.rq.max_fed, 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ck_assert_uint_gt(h.rq.max_fed, 10);
  ck_assert_uint_lt(h.rq.max_fed, 40);
  ck_assert_uint_ge(ps__buf_size(&h.s.out), 256u * 1024);
  h_free(&h);
}
END_TEST

START_TEST(test_error_frame_refuses) {
  /* In any state an ERROR frame ends the session with the receiver's
   * reason, made safe for a log line, and its code kept. */
  for (int at = 0; at < 2; at++) {
    harness h;
    h_init(&h, NULL);
    if (at == 0) {
      h_start(&h);
    } else {
      h_activate(&h, 0);
    }
    ps__enc_error(&h.rx, PS_WIRE_ERR_LIMIT, "full\nhouse");
    int rc = h_say(&h, T0 + 1);
    ck_assert_err(rc, PS_ERR_REFUSED, h.s.errmsg,
                  "receiver refused this sensor: full?house");
    ck_assert_int_eq(h.s.peer_error, PS_WIRE_ERR_LIMIT);
    ck_assert_int_eq(h.s.state, PS_SS_FAILED);
    /* Bytes after the end are ignored. */
    ps__enc_ack(&h.rx, 1);
    ck_assert_int_eq(h_say(&h, T0 + 2), 0);
    h_free(&h);
  }
}
END_TEST

START_TEST(test_busy_error_is_retried) {
  /* 520 (full), 501 (out of memory) and 514 (cannot write) are the
   * receiver's passing state: PS_ERR_BUSY, which the stream retries, with
   * the receiver named; any other code is a refusal. */
  const int codes[] = {PS_ERR_BUSY, PS_ERR_NOMEM, PS_ERR_IO};
  for (int i = 0; i < 3; i++) {
    harness h;
    h_init(&h, NULL);
    h_start(&h);
    ps__enc_error(&h.rx, (uint16_t)-codes[i], "at its limit");
    ck_assert_err(h_say(&h, T0 + 1), PS_ERR_BUSY, h.s.errmsg,
                  "receiver rx.example port 4000 cannot take this sensor "
                  "now: at its limit");
    ck_assert_int_eq(h.s.peer_error, -codes[i]);
    ck_assert_int_eq(h.s.state, PS_SS_FAILED);
    h_free(&h);
  }
}
END_TEST

START_TEST(test_worked_only_when_the_receiver_took_something) {
  /* Welcome and resume point are not enough: only an acknowledgement of
   * a batch not acknowledged before, an answered heartbeat or the
   * confirmed close make the connection one that worked. */
  for (int how = 0; how < 3; how++) {
    harness h;
    h_init(&h, NULL);
    add_batch(&h, 2, 0);
    h_activate(&h, 0);
    ck_assert_int_eq(ps__ssession_worked(&h.s), 0);
    ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
    ps__frame f;
    while (next_out(&h, &f) != 0) {
    }
    /* The resume point again (nothing new): still not. */
    ps__enc_ack(&h.rx, 0);
    ck_assert_int_eq(h_say(&h, T0 + 6), 0);
    ck_assert_int_eq(ps__ssession_worked(&h.s), 0);
    if (how == 0) {
      ps__enc_ack(&h.rx, 1);
    } else if (how == 1) {
      ps__enc_heartbeat(&h.rx);
    } else {
      ps__enc_ack(&h.rx, 1);
      ck_assert_int_eq(h_say(&h, T0 + 7), 0);
      ck_assert_int_eq(ps__ssession_close(&h.s), 0);
      ps__enc_close(&h.rx, 1);
      h.s.worked = 0; /* only the close counts here */
    }
    ck_assert_int_eq(h_say(&h, T0 + 8), 0);
    ck_assert_int_eq(ps__ssession_worked(&h.s), 1);
    h_free(&h);
  }
}
END_TEST

START_TEST(test_welcome_checks) {
  harness h;
  /* Another frame instead of the welcome. */
  h_init(&h, NULL);
  h_start(&h);
  ps__enc_ack(&h.rx, 0);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "expected a welcome from the receiver, got ACK");
  h_free(&h);
  /* A codec we did not offer. */
  h_init(&h, NULL);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_LZ4, 0);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "codec 2, which we did not offer");
  h_free(&h);
  /* Queued batches carry another codec. */
  h_init(&h, NULL);
  h.env.have_codec = 1;
  h.env.codec = PS_WIRE_CODEC_ZLIB;
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, 0);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "receiver rx.example port 4000 chose compression none, but "
                "the queued batches use zlib");
  h_free(&h);
  /* A receiver that wants a key we do not have, and one that does not
   * ask for the key we have. */
  h_init(&h, NULL);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, PS_WELCOME_AUTH);
  ck_assert_err(h_say(&h, T0), PS_ERR_AUTH, h.s.errmsg,
                "requires a shared key: give --auth-key-file");
  h_free(&h);
  h_init(&h, key);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, 0);
  ck_assert_err(h_say(&h, T0), PS_ERR_AUTH, h.s.errmsg,
                "does not authenticate, but a shared key was given");
  h_free(&h);
}
END_TEST

START_TEST(test_answered_with_tls) {
  harness h;
  h_init(&h, NULL);
  h_start(&h);
  static const uint8_t record[] = {0x16, 0x03, 0x03, 0x00, 0x40, 0x02,
                                   0x00, 0x00, 0x3c, 0x03, 0x03, 0x00};
  ck_assert_err(ps__ssession_input(&h.s, record, sizeof(record), T0),
                PS_ERR_TLS, h.s.errmsg,
                "receiver rx.example port 4000 answered with TLS: connect "
                "with --tls");
  h_free(&h);
}
END_TEST

START_TEST(test_auth) {
  harness h;
  h_init(&h, key);
  h_start(&h);
  ps__frame f;
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_HELLO);
  welcome(&h, PS_WIRE_CODEC_STORED, PS_WELCOME_AUTH);
  ck_assert_int_eq(h_say(&h, T0), 0);
  ck_assert_int_eq(h.s.state, PS_SS_AUTH);
  /* Our proof: HMAC over both nonces and the name, label 0. */
  uint8_t mac[PS_MAC_LEN], want[PS_MAC_LEN];
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_AUTH);
  ck_assert_int_eq(ps__dec_mac(&f, mac, h.err), 0);
  ck_assert_int_eq(
      ps__auth_mac(key, sizeof(key) - 1, 0, rnonce, snonce, "unit", 4, want),
      0);
  ck_assert_mem_eq(mac, want, PS_MAC_LEN);
  /* The receiver's: label 1. */
  ck_assert_int_eq(
      ps__auth_mac(key, sizeof(key) - 1, 1, rnonce, snonce, "unit", 4, want),
      0);
  ps__enc_mac(&h.rx, PS_FRAME_AUTH_OK, want);
  ps__enc_ack(&h.rx, 0);
  ck_assert_int_eq(h_say(&h, T0), 0);
  ck_assert_int_eq(h.s.state, PS_SS_ACTIVE);
  h_free(&h);

  /* A receiver that cannot prove it has the key gets nothing. */
  h_init(&h, key);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, PS_WELCOME_AUTH);
  ck_assert_int_eq(h_say(&h, T0), 0);
  want[0] ^= 1;
  ps__enc_mac(&h.rx, PS_FRAME_AUTH_OK, want);
  ck_assert_err(h_say(&h, T0), PS_ERR_AUTH, h.s.errmsg,
                "failed to prove it holds the shared key");
  h_free(&h);

  /* Nor one that skips the proof. */
  h_init(&h, key);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, PS_WELCOME_AUTH);
  ps__enc_ack(&h.rx, 0);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "expected the receiver's proof, got ACK");
  h_free(&h);
}
END_TEST

START_TEST(test_resume_point) {
  /* Batches 1..4 went to a broken connection; three more came while it
   * was down, so the queue kept only the stubs of 1 and 2 (limbo). The
   * new receiver has up to 1: batch 1 is delivered, the stub of 2 lost,
   * 3 and 4 are sent again, then 5..7. */
  harness h;
  h_init(&h, NULL);
  h.rq.max = 64 * 1024;
  for (int i = 0; i < 4; i++) {
    add_batch(&h, 100, 0); /* 12.4 KiB each */
  }
  while (ps__replay_next_to_feed(&h.rq) != NULL) {
    ps__replay_fed(&h.rq);
  }
  ps__replay_connection_lost(&h.rq);
  for (int i = 0; i < 3; i++) {
    add_batch(&h, 100, 0);
  }
  ck_assert_int_eq(h.rq.limbo, 1);
  h_activate(&h, 1);
  ck_assert_int_eq(h.rq.limbo, 0);
  ck_assert_uint_eq(h.rq.ctr.packets_acked, 100);
  ck_assert_uint_eq(h.rq.ctr.packets_lost, 100);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__frame f;
  ps__limits lim;
  ps__limits_default(&lim);
  ps__batch b;
  uint64_t seqs[8];
  int n = 0;
  while (next_out(&h, &f) != 0) {
    if (f.type == PS_FRAME_BATCH) {
      ck_assert_int_eq(ps__dec_batch(&f, &lim, &b, h.err), 0);
      seqs[n++] = b.seq;
    }
  }
  ck_assert_int_eq(n, 5);
  ck_assert_uint_eq(seqs[0], 3);
  ck_assert_uint_eq(seqs[4], 7);
  ck_assert_uint_eq(h.rq.ctr.batches_resent, 2);
  h_free(&h);

  /* A receiver claiming more than was ever sent is broken. */
  h_init(&h, NULL);
  add_batch(&h, 1, 0);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, 0);
  ps__enc_ack(&h.rx, 1);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "says it has batch 1 of this stream, but only 0 were sent");
  h_free(&h);
}
END_TEST

START_TEST(test_ack_checks) {
  harness h;
  h_init(&h, NULL);
  add_batch(&h, 1, 0);
  add_batch(&h, 1, 0);
  h_activate(&h, 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__enc_ack(&h.rx, 3);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "receiver acknowledged batch 3, but 2 were sent and 0 "
                "acknowledged");
  h_free(&h);
  h_init(&h, NULL);
  add_batch(&h, 1, 0);
  add_batch(&h, 1, 0);
  h_activate(&h, 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__enc_ack(&h.rx, 2);
  ps__enc_ack(&h.rx, 1);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "acknowledged batch 1, but 2 were sent and 2 acknowledged");
  h_free(&h);
  /* Frames a receiver never sends. */
  h_init(&h, NULL);
  h_activate(&h, 0);
  ps__enc_heartbeat(&h.rx);
  ck_assert_int_eq(h_say(&h, T0), 0);
  ps__iface m = {.id = 0,
                 .linktype = 1,
                 .name = "x",
                 .name_len = 1,
                 .tsres = PS_TSRES_USEC};
  ps__enc_iface(&h.rx, &m);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "unexpected IFACE frame from the receiver");
  h_free(&h);
  /* A frame too large for anything a receiver says (a version 2
   * receiver's largest are its capture requests). */
  h_init(&h, NULL);
  h_activate(&h, 0);
  const uint8_t big[PS_FRAME_HDR] = {PS_FRAME_ACK, 0, 0, 0, 0, 0x40, 0, 0};
  ck_assert_err(ps__ssession_input(&h.s, big, sizeof(big), T0), PS_ERR_LIMIT,
                h.s.errmsg,
                "ACK frame of 4194304 bytes exceeds the frame "
                "limit of 131072");
  ck_assert_int_eq(h.s.state, PS_SS_FAILED);
  h_free(&h);
}
END_TEST

START_TEST(test_heartbeat_and_silence) {
  harness h;
  h_init(&h, NULL);
  h.env.peer_timeout_ms = 9000; /* heartbeats every 3 s */
  h_activate(&h, 0);            /* at T0 + 5 */
  ps__frame f;
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  while (next_out(&h, &f) != 0) {
  }
  ck_assert_int_eq(ps__ssession_next_deadline(&h.s, T0 + 5), 3000);
  ck_assert_int_eq(ps__ssession_tick(&h.s, T0 + 3004, 0), 0);
  ck_assert_uint_eq(ps__buf_size(&h.s.out), 0);
  /* Due, but the socket still holds bytes: nothing more is queued. */
  ck_assert_int_eq(ps__ssession_tick(&h.s, T0 + 3005, 100), 0);
  ck_assert_uint_eq(ps__buf_size(&h.s.out), 0);
  ck_assert_int_eq(ps__ssession_tick(&h.s, T0 + 3005, 0), 0);
  ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_HEARTBEAT);
  ps__ssession_wrote(&h.s, T0 + 3005);
  ck_assert_int_eq(ps__ssession_next_deadline(&h.s, T0 + 3005), 3000);
  /* The receiver's answer keeps it alive. */
  ps__enc_heartbeat(&h.rx);
  ck_assert_int_eq(h_say(&h, T0 + 3010), 0);
  ck_assert_int_eq(ps__ssession_tick(&h.s, T0 + 12010, 1), 0);
  ck_assert_err(ps__ssession_tick(&h.s, T0 + 12011, 1), PS_ERR_TIMEOUT,
                h.s.errmsg,
                "receiver rx.example port 4000 has been silent for 9 s");
  ck_assert_int_eq(h.s.state, PS_SS_FAILED);
  ck_assert_int_eq(ps__ssession_next_deadline(&h.s, T0), -1);
  h_free(&h);
}
END_TEST

START_TEST(test_hello_timeout) {
  harness h;
  h_init(&h, NULL);
  h_start(&h);
  ck_assert_int_eq(ps__ssession_next_deadline(&h.s, T0 + 4000), 6000);
  ck_assert_int_eq(ps__ssession_tick(&h.s, T0 + 9999, 0), 0);
  welcome(&h, PS_WIRE_CODEC_STORED, 0);
  ck_assert_int_eq(h_say(&h, T0 + 9999), 0);
  ck_assert_int_eq(h.s.state, PS_SS_RESUME);
  ck_assert_err(ps__ssession_tick(&h.s, T0 + 10000, 0), PS_ERR_TIMEOUT,
                h.s.errmsg,
                "receiver rx.example port 4000 did not answer the hello "
                "within 10 s");
  h_free(&h);
}
END_TEST

START_TEST(test_close) {
  harness h;
  h_init(&h, NULL);
  h_start(&h);
  /* Not before the session is active. */
  ck_assert_int_eq(ps__ssession_close(&h.s), 0);
  ck_assert_int_eq(h.s.close_queued, 0);
  ps__buf_free(&h.rx);
  ps__ssession_free(&h.s);
  add_batch(&h, 2, 0);
  h_activate(&h, 0);
  add_batch(&h, 3, 1);
  ck_assert_int_eq(ps__ssession_close(&h.s), 0);
  ck_assert_int_eq(h.s.close_queued, 1);
  ck_assert_uint_eq(h.s.close_seq, 2);
  ck_assert_int_eq(ps__ssession_close(&h.s), 0); /* once */
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__frame f;
  uint8_t last = 0;
  int closes = 0;
  while (next_out(&h, &f) != 0) {
    last = f.type;
    closes += f.type == PS_FRAME_CLOSE;
  }
  ck_assert_uint_eq(last, PS_FRAME_CLOSE);
  ck_assert_int_eq(closes, 1);
  /* A confirmation of another batch is a broken receiver. */
  ps__enc_close(&h.rx, 1);
  ck_assert_err(h_say(&h, T0), PS_ERR_PROTOCOL, h.s.errmsg,
                "receiver closed after batch 1 of 2");
  h_free(&h);

  h_init(&h, NULL);
  add_batch(&h, 2, 0);
  h_activate(&h, 0);
  ck_assert_int_eq(ps__ssession_close(&h.s), 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__enc_ack(&h.rx, 1);
  ps__enc_close(&h.rx, 1);
  ck_assert_int_eq(h_say(&h, T0), 0);
  ck_assert_int_eq(h.s.state, PS_SS_CLOSED);
  ck_assert_uint_eq(h.rq.ctr.packets_acked, 2);
  ck_assert_uint_eq(h.rq.ctr.packets_queued, 0);
  ck_assert_int_eq(ps__ssession_want_write(&h.s), 0);
  h_free(&h);

  /* While stubs of a broken connection wait, the close waits too. */
  h_init(&h, NULL);
  h_activate(&h, 0);
  h.rq.limbo = 1;
  ck_assert_int_eq(ps__ssession_close(&h.s), 0);
  ck_assert_int_eq(h.s.close_queued, 0);
  h_free(&h);
}
END_TEST

START_TEST(test_bytes_one_at_a_time) {
  harness h;
  h_init(&h, key);
  h_start(&h);
  welcome(&h, PS_WIRE_CODEC_STORED, PS_WELCOME_AUTH);
  uint8_t want[PS_MAC_LEN];
  ps__auth_mac(key, sizeof(key) - 1, 1, rnonce, snonce, "unit", 4, want);
  ps__enc_mac(&h.rx, PS_FRAME_AUTH_OK, want);
  ps__enc_ack(&h.rx, 0);
  ps__enc_heartbeat(&h.rx);
  for (size_t i = 0; i < ps__buf_size(&h.rx); i++) {
    ck_assert_int_eq(ps__ssession_input(&h.s, ps__buf_head(&h.rx) + i, 1, T0),
                     0);
  }
  ck_assert_int_eq(h.s.state, PS_SS_ACTIVE);
  ck_assert_uint_eq(ps__buf_size(&h.s.in), 0);
  ps__buf_reset(&h.rx);
  h_free(&h);
}
END_TEST

/* ------------------------------------------- against ps_session */

/* The receiver's session, with a recording sink behind it. */
typedef struct peer {
  recorder t;
  ps_sink *sink;
  ps__streamtab streams;
  ps__session_env env;
  ps__session r;
} peer;

static void peer_init(peer *p, const uint8_t *auth_key, const uint8_t *nonce) {
  memset(p, 0, sizeof(*p));
  rec_sink(&p->sink, &p->t);
  p->env = (ps__session_env){
      .sinks = &p->sink, .n_sinks = 1, .streams = &p->streams};
  ps__limits_default(&p->env.lim);
  if (auth_key != NULL) {
    p->env.auth_key = auth_key;
    p->env.auth_len = strlen((const char *)auth_key);
  }
  ps__session_init(&p->r, &p->env, 1, "192.0.2.7:5000", nonce);
}

/* Ends the session (the sink hears of it) and frees the rest. */
static void peer_free(peer *p) {
  ps__session_end(&p->r);
  ps_sink_free(p->sink);
  rec_free(&p->t);
  ps__streamtab_free(&p->streams);
}

/* One round trip, bytes carried by hand: what the sensor queued goes to
 * the receiver, and its answer (also appended to copy, unless NULL) back
 * to the sensor at time now. Neither side may fail. */
static void exchange(harness *h, peer *p, int64_t now, ps__buf *copy) {
  ck_assert_int_eq(ps__ssession_output(&h->s, 0), 0);
  ck_assert_int_eq(ps__session_input(&p->r, ps__buf_head(&h->s.out),
                                     ps__buf_size(&h->s.out)),
                   0);
  ps__buf_reset(&h->s.out);
  if (copy != NULL) {
    ps__buf_append(copy, ps__buf_head(&p->r.out), ps__buf_size(&p->r.out));
  }
  ck_assert_int_eq(ps__ssession_input(&h->s, ps__buf_head(&p->r.out),
                                      ps__buf_size(&p->r.out), now),
                   0);
  ps__buf_reset(&p->r.out);
}

/* The sensor's and the receiver's sessions, bytes carried by hand. */
static void face_to_face(const uint8_t *auth_key) {
  harness h;
  h_init(&h, auth_key);
  peer p;
  peer_init(&p, auth_key, rnonce);
  h_start(&h);
  int64_t now = T0;
  for (int round = 0; round < 50 && h.s.state != PS_SS_CLOSED; round++) {
    if (round == 3) {
      for (int i = 0; i < 5; i++) {
        add_batch(&h, 7, (uint32_t)(i % 2));
      }
    }
    if (round == 6) {
      ck_assert_int_eq(ps__ssession_close(&h.s), 0);
    }
    exchange(&h, &p, now, NULL);
    ck_assert_int_eq(ps__ssession_tick(&h.s, now, 0), 0);
    now += 10;
  }
  ck_assert_int_eq(h.s.state, PS_SS_CLOSED);
  ck_assert_int_eq(p.r.state, PS_SESS_DONE);
  ck_assert_int_eq(p.r.clean_close, 1);
  ck_assert_uint_eq(p.t.npkts, 35);
  ck_assert_uint_eq(p.t.bytes, 35 * 100);
  ck_assert_int_eq(p.t.ifaces, 2);
  ck_assert_uint_eq(h.rq.ctr.packets_acked, 35);
  ck_assert_uint_eq(h.rq.ctr.packets_queued, 0);
  ck_assert_uint_eq(h.s.session_id, 1);
  ps__session_end(&p.r);
  ck_assert_int_eq(p.t.starts, 1);
  ck_assert_int_eq(p.t.ends, 1);
  peer_free(&p);
  h_free(&h);
}

START_TEST(test_face_to_face) {
  face_to_face(NULL);
}
END_TEST

START_TEST(test_face_to_face_keyed) {
  face_to_face(key);
}
END_TEST

/* The fuzz target's sensor (fuzz/fuzz_stream.c) and the seeds made for
 * it (fuzz/make_seeds.py): the seeds hold what the receiver's session
 * really answers that sensor, byte for byte. */
static void seed_replies(const char *seed, const uint8_t *auth_key,
                         size_t skip_tail) {
  const char *srcdir = getenv("top_srcdir");
  if (srcdir == NULL) {
    return; /* run by hand, outside make check */
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/fuzz/seeds/fuzz_stream/%s", srcdir, seed);
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp != NULL, "cannot open %s", path);
  static uint8_t want[65536];
  size_t wlen = fread(want, 1, sizeof(want), fp);
  fclose(fp);
  ck_assert_uint_gt(wlen, 1 + skip_tail);
  wlen -= 1 + skip_tail; /* the flag byte; what the exchange does not get to */

  static const uint8_t fsnonce[PS_NONCE_LEN] = "fuzz-snonce-0001";
  static const uint8_t frnonce[PS_NONCE_LEN] = "fuzz-rnonce-0001";
  harness h;
  h_init(&h, auth_key);
  h.env.name = "fuzz-sensor";
  h.env.stream_id = 0x0102030405060708ull;
  for (int i = 0; i < 3; i++) {
    add_batch(&h, 100, (uint32_t)(i % 2));
  }
  while (ps__replay_next_to_feed(&h.rq) != NULL) {
    ps__replay_fed(&h.rq);
  }
  ps__replay_connection_lost(&h.rq);
  for (int i = 0; i < 3; i++) {
    add_batch(&h, 100, 0);
  }
  peer p;
  peer_init(&p, auth_key, frnonce);
  ck_assert_int_eq(
      ps__ssession_init(&h.s, &h.env, "fuzz.example", 4000, fsnonce, T0, 10000),
      0);
  ps__buf replies = {0};
  for (int round = 0; round < 20 && ps__buf_size(&replies) < wlen; round++) {
    exchange(&h, &p, T0, &replies);
  }
  ck_assert_uint_ge(ps__buf_size(&replies), wlen);
  ck_assert_mem_eq(ps__buf_head(&replies), want + 1, wlen);
  ps__buf_free(&replies);
  peer_free(&p);
  h_free(&h);
}

START_TEST(test_fuzz_seeds_are_receiver_replies) {
  seed_replies("real-replies", NULL, PS_FRAME_HDR); /* not the heartbeat */
  seed_replies("real-replies-keyed", (const uint8_t *)"fuzz-shared-key", 0);
}
END_TEST

/* Version negotiation: a version 2 receiver gets the announcement first
 * and may send capture requests, which reach the handler; a version 1
 * receiver (every earlier build) gets neither, and a capture request
 * from it is a protocol violation. Without a handler, a request is
 * refused by the session itself, with the reason. */
static int g_controls;
static uint8_t g_control_type;
static void on_control_rec(void *ud, const ps__frame *f) {
  (void)ud;
  g_controls++;
  g_control_type = f->type;
}

static void activate_v(harness *h, uint16_t version) {
  h_start(h);
  ps__limits lim;
  ps__limits_default(&lim);
  ps__welcome w = {.version = version,
                   .codec = PS_WIRE_CODEC_STORED,
                   .max_frame = lim.max_frame,
                   .max_batch_raw = lim.max_batch_raw,
                   .max_batch_packets = lim.max_batch_packets,
                   .session_id = 77};
  ck_assert_int_eq(ps__enc_welcome(&h->rx, &w), 0);
  ps__enc_ack(&h->rx, 0);
  ck_assert_int_eq(h_say(h, T0 + 5), 0);
  ck_assert_int_eq(h->s.state, PS_SS_ACTIVE);
  ck_assert_uint_eq(h->s.version, version);
}

START_TEST(test_version_negotiation) {
  ps__buf ann = {0};
  ps__announce a = {.flags = PS_ANNOUNCE_STANDBY | PS_ANNOUNCE_REMOTE,
                    .version = {"0.2.0", 5},
                    .host = {"h", 1}};
  ck_assert_int_eq(ps__enc_announce(&ann, &a), 0);
  for (uint16_t v = 1; v <= 2; v++) {
    harness h;
    h_init(&h, NULL);
    h.env.announce = ps__buf_head(&ann);
    h.env.announce_len = ps__buf_size(&ann);
    h.env.on_control = on_control_rec;
    g_controls = 0;
    activate_v(&h, v);
    ps__frame f;
    ck_assert_uint_eq(next_out(&h, &f), PS_FRAME_HELLO);
    /* Version 2: the announcement, then the interfaces. */
    uint8_t first = next_out(&h, &f);
    ck_assert_uint_eq(first, v == 2 ? PS_FRAME_ANNOUNCE : PS_FRAME_IFACE);
    ck_assert_int_eq(ps__enc_capture_stop(&h.rx, 9), 0);
    if (v == 2) {
      ck_assert_int_eq(h_say(&h, T0 + 6), 0);
      ck_assert_int_eq(g_controls, 1);
      ck_assert_uint_eq(g_control_type, PS_FRAME_CAPTURE_STOP);
    } else {
      ck_assert_err(h_say(&h, T0 + 6), PS_ERR_PROTOCOL, h.s.errmsg,
                    "unexpected CAPTURE_STOP frame from the receiver");
      ck_assert_int_eq(g_controls, 0);
    }
    h_free(&h);
  }
  /* No handler: refused with the reason, after what was sealed. */
  harness h;
  h_init(&h, NULL);
  activate_v(&h, 2);
  ps__capture_start cs = {.id = 4, .filter = {"udp", 3}};
  ck_assert_int_eq(ps__enc_capture_start(&h.rx, &cs), 0);
  ck_assert_int_eq(h_say(&h, T0 + 6), 0);
  ck_assert_int_eq(ps__ssession_output(&h.s, 0), 0);
  ps__frame f;
  uint8_t t;
  while ((t = next_out(&h, &f)) != 0 && t != PS_FRAME_CAPTURE_STATE) {
  }
  ck_assert_uint_eq(t, PS_FRAME_CAPTURE_STATE);
  ps__capture_state_msg m;
  ck_assert_int_eq(ps__dec_capture_state(&f, &m, h.err), 0);
  ck_assert_uint_eq(m.id, 4);
  ck_assert_uint_eq(m.state, PS_CAP_REFUSED);
  ck_assert_int_eq(m.text.len, strlen("this sensor takes no captures from the "
                                      "receiver"));
  ck_assert_int_eq(memcmp(m.text.p, "this sensor takes no captures", 29), 0);
  h_free(&h);
  ps__buf_free(&ann);
}
END_TEST

static Suite *ssession_suite(void) {
  Suite *s = suite_create("ssession");
  TCase *tc = tcase_create("scripted");
  tcase_add_test(tc, test_hello);
  tcase_add_test(tc, test_active_announces_then_feeds);
  tcase_add_test(tc, test_feed_stops_at_low_water);
  tcase_add_test(tc, test_error_frame_refuses);
  tcase_add_test(tc, test_busy_error_is_retried);
  tcase_add_test(tc, test_worked_only_when_the_receiver_took_something);
  tcase_add_test(tc, test_welcome_checks);
  tcase_add_test(tc, test_answered_with_tls);
  tcase_add_test(tc, test_auth);
  tcase_add_test(tc, test_resume_point);
  tcase_add_test(tc, test_ack_checks);
  tcase_add_test(tc, test_heartbeat_and_silence);
  tcase_add_test(tc, test_hello_timeout);
  tcase_add_test(tc, test_close);
  tcase_add_test(tc, test_bytes_one_at_a_time);
  tcase_add_test(tc, test_version_negotiation);
  suite_add_tcase(s, tc);
  tc = tcase_create("receiver");
  tcase_add_test(tc, test_face_to_face);
  tcase_add_test(tc, test_face_to_face_keyed);
  tcase_add_test(tc, test_fuzz_seeds_are_receiver_replies);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(ssession_suite());
}
