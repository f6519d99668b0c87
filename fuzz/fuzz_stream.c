/*
 * Fuzz target for the sensor's parser of receiver bytes: a ps__ssession
 * (the sensor's side of a connection, the state machine under
 * ps_stream) fed what a receiver sends, in chunks whose size the first
 * byte picks, on a clock that moves 250 ms per chunk. Its replay queue
 * holds five batches, three of which went to a broken connection before
 * (so the resume point has something to settle), and gains one batch
 * per chunk. Whatever the bytes, the session must not crash or leak, the
 * queue's accounting must hold, acknowledgements never pass what was
 * sent, errors end the session with a reason, a receiver silent for 35 s
 * after the input is given up, and what the sensor sends
 * back must be well-formed sensor frames in order: one HELLO first, the
 * proof only to a receiver that asked for the key and only the right
 * one, batches in rising order, CLOSE at most once and only once active,
 * and capture requests answered with a refusal (no sensor behind it).
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_codec.h"
#include "ps_replay.h"
#include "ps_ssession.h"

#include <stdlib.h>
#include <string.h>

/* What make_seeds.py builds the receiver's replies for. */
static const uint8_t snonce[PS_NONCE_LEN] = "fuzz-snonce-0001";
#define SENSOR "fuzz-sensor"

/* What the sensor said so far, for the order checks. */
typedef struct said {
  int hellos, proofs, closes;
  uint64_t last_batch;
} said;

static void add_batch(ps__replay *q, ps__codec *cc, int npkts, int connected) {
  static uint8_t pkt[100];
  for (int i = 0; i < npkts; i++) {
    ps_packet p = {.ts_sec = 1,
                   .caplen = sizeof(pkt),
                   .len = sizeof(pkt),
                   .iface = (uint32_t)(i % 2),
                   .data = pkt};
    CHECK(ps__replay_add(q, &p, 0) == 0);
  }
  char err[PS_ERRMSG_MAX];
  CHECK(ps__replay_seal(q, cc, connected, err) == 0);
}

static void check_queue(const ps__replay *q) {
  const ps_stream_counters *c = &q->ctr;
  CHECK(c->packets_sent + c->packets_recovered ==
        c->packets_acked + c->packets_dropped_overflow + c->packets_lost +
            c->packets_queued);
  CHECK(q->acked <= q->max_fed && q->max_fed <= q->seq);
}

/* Everything the sensor queued for the receiver: whole frames of the
 * types a sensor sends, in the order it may send them. */
static void check_said(ps__ssession *s, said *w) {
  ps__limits lim;
  ps__limits_default(&lim);
  ps__frame f;
  size_t used;
  while (fuzz_next_frame(&s->out, &f, &used)) {
    char err[PS_ERRMSG_MAX];
    CHECK(f.type == PS_FRAME_HELLO || w->hellos == 1);
    CHECK(w->closes == 0 || f.type == PS_FRAME_HEARTBEAT);
    switch (f.type) {
    case PS_FRAME_HELLO: {
      ps__hello h;
      CHECK(w->hellos++ == 0 && ps__dec_hello(&f, &h, err) == 0);
      break;
    }
    case PS_FRAME_AUTH: {
      /* Only to a receiver that asked for the key, once, and right. */
      uint8_t mac[PS_MAC_LEN], want[PS_MAC_LEN];
      CHECK(s->env->auth_key != NULL && w->proofs++ == 0);
      CHECK(ps__dec_mac(&f, mac, err) == 0);
      CHECK(ps__auth_mac(fuzz_key, FUZZ_KEY_LEN, 0, s->rnonce, snonce, SENSOR,
                         strlen(SENSOR), want) == 0);
      CHECK(memcmp(mac, want, PS_MAC_LEN) == 0);
      break;
    }
    case PS_FRAME_IFACE: {
      ps__iface m;
      CHECK(ps__dec_iface(&f, &m, err) == 0 && m.id < s->env->n_ifaces);
      break;
    }
    case PS_FRAME_BATCH: {
      ps__batch b;
      CHECK(ps__dec_batch(&f, &lim, &b, err) == 0);
      CHECK(b.seq > w->last_batch && b.seq <= s->env->rq->seq);
      w->last_batch = b.seq;
      break;
    }
    case PS_FRAME_STATS: {
      ps__stats m;
      CHECK(ps__dec_stats(&f, &m, err) == 0);
      break;
    }
    case PS_FRAME_HEARTBEAT:
      CHECK(ps__dec_empty(&f, err) == 0);
      break;
    case PS_FRAME_CAPTURE_STATE: {
      /* The answer to a receiver's capture request (version 2 only):
       * with no sensor behind the stream, a refusal, or "ended" for a
       * stop. */
      ps__capture_state_msg m;
      CHECK(s->version >= 2 && ps__dec_capture_state(&f, &m, err) == 0);
      CHECK(m.state == PS_CAP_REFUSED || m.state == PS_CAP_CHANGE_REFUSED ||
            m.state == PS_CAP_ENDED);
      break;
    }
    case PS_FRAME_CLOSE: {
      uint64_t seq;
      CHECK(ps__dec_seq(&f, &seq, err) == 0 && w->closes++ == 0);
      CHECK(seq == s->close_seq && seq <= s->env->rq->seq);
      break;
    }
    default:
      abort();
    }
    ps__buf_consume(&s->out, used);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* First byte: the chunk size, bit 5 a shared key to prove, bit 6 ask
   * for the close once active, bit 7 a 64 KiB replay buffer (evictions:
   * stubs, limbo, drops). */
  fuzz_input in;
  if (!fuzz_input_init(&in, data, size)) {
    return 0;
  }
  int keyed = in.flag5;
  int closing = in.flag6;
  int tight = in.flag7;

  ps__codec *cc = ps__codec_new(PS_WIRE_CODEC_STORED, 0);
  CHECK(cc != NULL);
  ps__replay q;
  ps__replay_init(&q, tight ? 64 * 1024 : 1u << 20, PS_OVERFLOW_DROP_OLDEST);
  q.n_ifaces = 2;
  /* Batches 1..3 went to a connection that broke; 4..6 came after (with
   * the small buffer, the stub of 1 waits in limbo). */
  for (int i = 0; i < 3; i++) {
    add_batch(&q, cc, 100, 1);
  }
  while (ps__replay_next_to_feed(&q) != NULL) {
    ps__replay_fed(&q);
  }
  ps__replay_connection_lost(&q);
  for (int i = 0; i < 3; i++) {
    add_batch(&q, cc, 100, 0);
  }
  static char eth0[] = "eth0", tun0[] = "tun0";
  ps__ssession_iface ifaces[2] = {
      {.name = eth0, .linktype = 1, .snaplen = 65535, .tsres = PS_TSRES_USEC},
      {.name = tun0,
       .linktype = 101,
       .snaplen = 1500,
       .tsres = PS_TSRES_NSEC,
       .has_stats = 1,
       .stats = {.captured = 3}}};
  ps__ssession_env env = {.name = SENSOR,
                          .stream_id = 0x0102030405060708ull,
                          .codec_pref = PS_WIRE_CODEC_ZLIB,
                          .peer_timeout_ms = 30000,
                          .n_ifaces = 2,
                          .ifaces = ifaces,
                          .rq = &q};
  if (keyed) {
    env.auth_key = fuzz_key;
    env.auth_len = FUZZ_KEY_LEN;
  }

  ps__ssession s;
  int64_t now = 1000;
  CHECK(ps__ssession_init(&s, &env, "fuzz.example", 4000, snonce, now, 10000) ==
        0);
  said w = {0};
  check_said(&s, &w);
  for (size_t off = 0; off < in.size && s.state != PS_SS_FAILED;
       off += in.chunk) {
    int rc =
        ps__ssession_input(&s, in.data + off, fuzz_chunk_at(&in, off), now);
    if (rc != 0) {
      CHECK(rc < 0 && s.state == PS_SS_FAILED);
      fuzz_check_reason(s.errmsg, sizeof(s.errmsg));
      CHECK(rc != PS_ERR_REFUSED || s.peer_error != 0);
    }
    check_queue(&q);
    if (!s.close_queued) {
      add_batch(&q, cc, 1, s.state == PS_SS_ACTIVE);
    }
    if (closing) {
      CHECK(ps__ssession_close(&s) == 0);
    }
    CHECK(ps__ssession_output(&s, 0) == 0);
    check_said(&s, &w);
    rc = ps__ssession_tick(&s, now, 0);
    CHECK(rc == 0 || (rc == PS_ERR_TIMEOUT && s.state == PS_SS_FAILED));
    check_said(&s, &w);
    int64_t next = ps__ssession_next_deadline(&s, now);
    CHECK(next >= -1 && next <= 30001);
    /* A keyed session streams only after its proof went out (and the
     * receiver's came back right: the session checked it). */
    CHECK(!s.started || w.hellos == 1);
    CHECK(!keyed || !s.started || w.proofs == 1);
    now += 250;
  }
  /* Then the receiver says nothing for 35 s: heartbeats, then the
   * session gives it up. */
  for (int i = 0; i < 140 && s.state != PS_SS_FAILED; i++) {
    int rc = ps__ssession_tick(&s, now, 0);
    CHECK(rc == 0 || (rc == PS_ERR_TIMEOUT && s.state == PS_SS_FAILED));
    CHECK(ps__ssession_output(&s, 0) == 0);
    check_said(&s, &w);
    now += 250;
  }
  CHECK(s.state == PS_SS_FAILED || s.state == PS_SS_CLOSED);
  CHECK(s.state != PS_SS_CLOSED || w.closes == 1);
  ps__ssession_free(&s);
  ps__replay_lose_all(&q);
  check_queue(&q);
  CHECK(q.ctr.packets_queued == 0);
  ps__replay_free(&q);
  ps__codec_free(cc);
  return 0;
}
