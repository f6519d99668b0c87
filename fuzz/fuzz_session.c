/*
 * Fuzz target for the receiver's per-sensor state machine: the input is
 * what a sensor sends, fed to a ps__session in chunks whose size the
 * first byte picks, with a callback sink behind it, and with or without
 * a shared key to prove. Whatever the bytes, the session must not crash
 * or leak, packets must only reach the sink for announced interfaces and
 * with their bytes readable, a keyed session must reach the sink only
 * after the right proof, and what the session sends back must be
 * well-formed frames.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_session.h"

#include <stdlib.h>
#include <string.h>

/* The session under test, for the sink callbacks' checks. */
static const ps__session *g_sess;

typedef struct tally {
  int started, ended;
  int proofs; /* AUTH_OK frames sent */
  unsigned ifaces;
  uint64_t packets, bytes;
  uint32_t sum;
  int refuse_at; /* refuse the n-th packet (0: never) */
} tally;

static int on_start(const ps_session_info *s, void *ud) {
  tally *t = ud;
  CHECK(!t->started && s->sensor != NULL && s->peer != NULL);
  if (g_sess->env->auth_key != NULL) {
    /* Only right after the session queued its own proof, which it does
     * only after checking the sensor's. */
    size_t n = ps__buf_size(&g_sess->out);
    CHECK(g_sess->state == PS_SESS_AUTH && n >= PS_FRAME_HDR + PS_MAC_LEN);
    CHECK(ps__buf_head(&g_sess->out)[n - PS_FRAME_HDR - PS_MAC_LEN] ==
          PS_FRAME_AUTH_OK);
  }
  t->started = 1;
  return 0;
}

static int on_iface(const ps_session_info *s, const ps_interface_info *ifc,
                    void *ud) {
  tally *t = ud;
  CHECK(t->started && ifc->id < PS_MAX_IFACES);
  CHECK(ifc->name != NULL && strlen(ifc->name) > 0);
  t->ifaces++;
  return 0;
}

static int on_packet(const ps_session_info *s, const ps_interface_info *ifc,
                     const ps_packet *pkt, void *ud) {
  tally *t = ud;
  CHECK(t->started && t->ifaces > 0);
  CHECK(pkt->iface == ifc->id && pkt->caplen <= PS_MAX_CAPLEN);
  /* Touch every byte, so ASan sees a packet that points past its batch. */
  for (uint32_t i = 0; i < pkt->caplen; i++) {
    t->sum += pkt->data[i];
  }
  t->packets++;
  t->bytes += pkt->caplen;
  return t->refuse_at != 0 && t->packets == (uint64_t)t->refuse_at;
}

static void on_end(const ps_session_info *s, void *ud) {
  tally *t = ud;
  CHECK(t->started && !t->ended);
  t->ended = 1;
}

/* The session's replies go to a sensor: each must be a whole, valid
 * frame of a type a receiver sends. */
static void check_replies(ps__session *s, tally *t) {
  ps__frame f;
  size_t used;
  while (fuzz_next_frame(&s->out, &f, &used)) {
    char err[PS_ERRMSG_MAX];
    uint64_t seq;
    ps__welcome w;
    ps__error_msg em;
    switch (f.type) {
    case PS_FRAME_WELCOME:
      CHECK(ps__dec_welcome(&f, &w, err) == 0);
      break;
    case PS_FRAME_ERROR:
      CHECK(ps__dec_error(&f, &em, err) == 0);
      break;
    case PS_FRAME_ACK:
    case PS_FRAME_CLOSE:
      CHECK(ps__dec_seq(&f, &seq, err) == 0);
      CHECK(seq <= s->last_seq);
      break;
    case PS_FRAME_HEARTBEAT:
      CHECK(ps__dec_empty(&f, err) == 0);
      break;
    case PS_FRAME_AUTH_OK: {
      /* Only to a keyed sensor, once, with the receiver's proof. */
      uint8_t mac[PS_MAC_LEN], want[PS_MAC_LEN];
      CHECK(s->env->auth_key != NULL && t->proofs++ == 0);
      CHECK(ps__dec_mac(&f, mac, err) == 0);
      CHECK(ps__auth_mac(s->env->auth_key, s->env->auth_len, 1, s->rnonce,
                         s->snonce, s->sensor, strlen(s->sensor), want) == 0);
      CHECK(memcmp(mac, want, PS_MAC_LEN) == 0);
      break;
    }
    default:
      abort();
    }
    ps__buf_consume(&s->out, used);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* First byte: the chunk size, bit 5 a receiver that requires the
   * shared key, bit 6 a sink that refuses the third packet, bit 7 tight
   * limits. */
  fuzz_input in;
  if (!fuzz_input_init(&in, data, size)) {
    return 0;
  }
  int keyed = in.flag5;
  tally t = {0};
  t.refuse_at = in.flag6 ? 3 : 0;
  int tight = in.flag7;

  ps_sink_callbacks cb = PS_SINK_CALLBACKS_INIT;
  cb.session_start = on_start;
  cb.interface = on_iface;
  cb.packet = on_packet;
  cb.session_end = on_end;
  ps_sink *sink = NULL;
  if (ps_callback_sink(&sink, &cb, sizeof(cb), &t) != 0) {
    abort();
  }
  /* Sessions with a stream id remember it here (one session: nothing to
   * supersede). */
  ps__streamtab streams = {0};
  ps__session_env env = {.sinks = &sink, .n_sinks = 1, .streams = &streams};
  if (keyed) {
    env.auth_key = fuzz_key;
    env.auth_len = FUZZ_KEY_LEN;
  }
  ps__limits_default(&env.lim);
  if (tight) {
    env.lim.max_batch_raw = PS_PKT_HDR + PS_MAX_CAPLEN;
    env.lim.max_frame = PS_BATCH_HDR + env.lim.max_batch_raw;
    env.lim.max_batch_packets = 8;
  }

  ps__session s;
  static const uint8_t rnonce[PS_NONCE_LEN] = "fuzz-rnonce-0001";
  ps__session_init(&s, &env, 1, "192.0.2.1:4000", rnonce);
  g_sess = &s;
  int failed = 0;
  for (size_t off = 0; off < in.size; off += in.chunk) {
    int rc = ps__session_input(&s, in.data + off, fuzz_chunk_at(&in, off));
    if (rc != 0) {
      CHECK(rc < 0 && s.state == PS_SESS_DONE);
      fuzz_check_reason(s.errmsg, sizeof(s.errmsg));
      failed = 1;
    }
    check_replies(&s, &t);
  }
  /* A keyed session streams only after the proofs crossed. */
  CHECK(!keyed || !t.started || t.proofs == 1);
  CHECK(!keyed || t.packets == 0 || t.proofs == 1);
  CHECK(s.packets == t.packets || failed);
  CHECK(s.packets <= t.packets);
  ps_capture_stats tot;
  ps__session_totals(&s, &tot);
  CHECK(tot.captured == s.packets);
  ps__session_end(&s);
  CHECK(t.started == t.ended);
  ps_sink_free(sink);
  ps__streamtab_free(&streams);
  g_sess = NULL;
  return 0;
}
