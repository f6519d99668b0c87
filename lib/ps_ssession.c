/* A sensor's session with a receiver: the state machine of one
 * connection, fed bytes and the time, giving bytes back. */
#include "config.h"

#include "ps_ssession.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Wire bytes waiting for the socket before the queues stop feeding it:
 * the replay queue holds the rest, so this only bounds the copy. */
#define FEED_LOW_WATER (256u * 1024)
#define HEARTBEAT_MS 5000

/* The one place the state changes. */
static int on_control(ps__ssession *s, const ps__frame *f);

static void set_state(ps__ssession *s, enum ps__ss_state st) {
  s->state = st;
  s->started |= st == PS_SS_ACTIVE;
}

static int fail(ps__ssession *s, int code) {
  set_state(s, PS_SS_FAILED);
  return code;
}

static int nomem(ps__ssession *s) {
  return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
}

int ps__ssession_init(ps__ssession *s, const ps__ssession_env *env,
                      const char *host, uint16_t port, const uint8_t *snonce,
                      int64_t now_ms, int64_t timeout_ms) {
  memset(s, 0, sizeof(*s));
  s->env = env;
  snprintf(s->host, sizeof(s->host), "%s", host);
  s->port = port;
  memcpy(s->snonce, snonce, PS_NONCE_LEN);
  s->ctl_tail = &s->ctl;
  s->timeout_ms = timeout_ms;
  s->deadline_ms = now_ms + timeout_ms;
  s->last_read_ms = s->last_write_ms = now_ms;
  /* A receiver sends nothing larger than an error message, ever. */
  s->in_lim.max_frame = 4 + PS_MAX_ERROR_TEXT;
  ps__hello h = {.min_version = PS_PROTO_VERSION_MIN,
                 .max_version = PS_PROTO_VERSION,
                 .codecs =
                     (1u << PS_WIRE_CODEC_STORED) | (1u << env->codec_pref),
                 .flags = PS_HELLO_STREAM,
                 .name = env->name,
                 .name_len = strlen(env->name),
                 .stream_id = env->stream_id};
  memcpy(h.nonce, s->snonce, PS_NONCE_LEN);
  set_state(s, PS_SS_WELCOME);
  return ps__enc_hello(&s->out, &h) != 0 ? nomem(s) : 0;
}

static void ctl_clear(ps__ssession *s) {
  while (s->ctl != NULL) {
    ps__ss_ctl *c = s->ctl;
    s->ctl = c->next;
    free(c);
  }
  s->ctl_tail = &s->ctl;
}

void ps__ssession_free(ps__ssession *s) {
  ctl_clear(s);
  ps__buf_free(&s->in);
  ps__buf_free(&s->out);
}

/* Queues the frame the encoder put at the end of out (from offset at) to
 * follow every batch sealed so far. */
static int queue_ctl(ps__ssession *s, size_t at) {
  size_t len = ps__buf_size(&s->out) - at;
  ps__ss_ctl *c = malloc(sizeof(*c) + len);
  if (c == NULL) {
    return nomem(s);
  }
  c->next = NULL;
  c->after_seq = s->env->rq->seq;
  c->len = len;
  memcpy(c->bytes, ps__buf_head(&s->out) + at, len);
  s->out.len -= len;
  *s->ctl_tail = c;
  s->ctl_tail = &c->next;
  return 0;
}

/* The IFACE frame of interface id; its options only to a receiver that
 * chose version 2 (a version 1 receiver refuses them). */
static int enc_iface(ps__ssession *s, uint32_t id) {
  const ps__ssession_iface *f = &s->env->ifaces[id];
  ps__iface m = {.id = id,
                 .linktype = f->linktype,
                 .snaplen = f->snaplen,
                 .tsres = f->tsres,
                 .name = f->name,
                 .name_len = strlen(f->name)};
  if (s->version >= 2) {
    for (unsigned i = 0; i < f->n_opts; i++) {
      m.opt[i] = (ps__iface_opt){f->opt_key[i], strlen(f->opt_key[i]),
                                 f->opt_value[i], strlen(f->opt_value[i])};
    }
    m.n_opts = f->n_opts;
  }
  return ps__enc_iface(&s->out, &m);
}

int ps__ssession_announce(ps__ssession *s, uint32_t id) {
  if (s->state != PS_SS_ACTIVE) {
    return 0; /* the start of the session announces every interface */
  }
  size_t at = ps__buf_size(&s->out);
  if (enc_iface(s, id) != 0) {
    return nomem(s);
  }
  return queue_ctl(s, at);
}

int ps__ssession_send_stats(ps__ssession *s, uint32_t id) {
  const ps__ssession_iface *f = &s->env->ifaces[id];
  if (s->state != PS_SS_ACTIVE || !f->has_stats) {
    return 0;
  }
  ps__stats m = {.iface = id, .c = f->stats, .v2 = s->version >= 2};
  size_t at = ps__buf_size(&s->out);
  if (ps__enc_stats(&s->out, &m) != 0) {
    return nomem(s);
  }
  return queue_ctl(s, at);
}

int ps__ssession_close(ps__ssession *s) {
  /* The CLOSE names the last batch the receiver can have: only once the
   * resume point settled the batches of a broken connection. */
  if (s->state != PS_SS_ACTIVE || s->close_queued || s->env->rq->limbo) {
    return 0;
  }
  s->close_seq = ps__replay_last_seq(s->env->rq);
  size_t at = ps__buf_size(&s->out);
  if (ps__enc_close(&s->out, s->close_seq) != 0) {
    return nomem(s);
  }
  s->close_queued = 1;
  return queue_ctl(s, at);
}

int ps__ssession_worked(const ps__ssession *s) {
  return s->worked;
}

/* ------------------------------------------------------ frames in */

/* The receiver refused us: its reason, made safe for a log line. */
static int on_error(ps__ssession *s, const ps__frame *f) {
  ps__error_msg m;
  if (ps__dec_error(f, &m, s->errmsg) != 0) {
    return fail(s, PS_ERR_PROTOCOL);
  }
  char text[PS_MAX_ERROR_TEXT + 1];
  size_t k = 0;
  for (size_t i = 0; i < m.text_len; i++) {
    unsigned char c = (unsigned char)m.text[i];
    text[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  text[k] = '\0';
  s->peer_error = m.code ? m.code : -1;
  /* Full, out of memory, cannot write: the receiver's state, not a
   * verdict on this sensor. Retried with backoff (not final). */
  if (ps__wire_error_retries(m.code)) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_BUSY,
                              "receiver %s port %u cannot take this sensor "
                              "now: %s",
                              s->host, s->port, text));
  }
  return fail(s, ps__seterr(s->errmsg, PS_ERR_REFUSED,
                            "receiver refused this sensor: %s", text));
}

/* The receiver's answer to the hello: what it chose, whether it wants
 * the shared key. */
static int on_welcome(ps__ssession *s, const ps__frame *f) {
  const ps__ssession_env *env = s->env;
  if (f->type != PS_FRAME_WELCOME) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "expected a welcome from the receiver, got %s",
                              ps__frame_name(f->type)));
  }
  ps__welcome w;
  if (ps__dec_welcome(f, &w, s->errmsg) != 0) {
    return fail(s, PS_ERR_PROTOCOL);
  }
  if (w.version < PS_PROTO_VERSION_MIN || w.version > PS_PROTO_VERSION ||
      (w.codec != PS_WIRE_CODEC_STORED && w.codec != env->codec_pref)) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "receiver chose version %u codec %u, which we "
                              "did not offer",
                              w.version, w.codec));
  }
  s->version = w.version;
  /* Queued batches carry the codec of the first connection: a receiver
   * that would not take it cannot take them. */
  if (env->have_codec && w.codec != env->codec) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "receiver %s port %u chose compression %s, but "
                              "the queued batches use %s",
                              s->host, s->port, ps__codec_name(w.codec),
                              ps__codec_name(env->codec)));
  }
  if ((w.flags & PS_WELCOME_AUTH) && env->auth_key == NULL) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_AUTH,
                              "receiver %s port %u requires a shared key: "
                              "give --auth-key-file",
                              s->host, s->port));
  }
  if (!(w.flags & PS_WELCOME_AUTH) && env->auth_key != NULL) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_AUTH,
                              "receiver %s port %u does not authenticate, "
                              "but a shared key was given: not streaming to "
                              "a receiver that cannot prove it holds the key",
                              s->host, s->port));
  }
  s->lim.max_frame = w.max_frame;
  s->lim.max_batch_raw = w.max_batch_raw;
  s->lim.max_batch_packets = w.max_batch_packets;
  s->session_id = w.session_id;
  s->codec = w.codec;
  if (w.version >= 2) {
    /* A version 2 receiver also sends capture requests, which name
     * interfaces and a filter. */
    s->in_lim.max_frame = PS_MAX_CONTROL_FRAME;
  }
  memcpy(s->rnonce, w.nonce, PS_NONCE_LEN);
  if (env->auth_key == NULL) {
    set_state(s, PS_SS_RESUME);
    return 0;
  }
  /* Shared-key authentication: prove we hold the key, then check that
   * the receiver does too (a fake receiver learns nothing and gets
   * nothing). */
  uint8_t mac[PS_MAC_LEN];
  if (ps__auth_mac(env->auth_key, env->auth_len, 0, s->rnonce, s->snonce,
                   env->name, strlen(env->name), mac) != 0 ||
      ps__enc_mac(&s->out, PS_FRAME_AUTH, mac) != 0) {
    return fail(s,
                ps__seterr(s->errmsg, PS_ERR_AUTH, "cannot compute the proof"));
  }
  set_state(s, PS_SS_AUTH);
  return 0;
}

static int on_auth_ok(ps__ssession *s, const ps__frame *f) {
  const ps__ssession_env *env = s->env;
  uint8_t mac[PS_MAC_LEN], theirs[PS_MAC_LEN];
  if (f->type != PS_FRAME_AUTH_OK || ps__dec_mac(f, theirs, s->errmsg) != 0) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "expected the receiver's proof, got %s",
                              ps__frame_name(f->type)));
  }
  if (ps__auth_mac(env->auth_key, env->auth_len, 1, s->rnonce, s->snonce,
                   env->name, strlen(env->name), mac) != 0 ||
      gnutls_memcmp(mac, theirs, PS_MAC_LEN) != 0) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_AUTH,
                              "receiver %s port %u failed to prove it holds "
                              "the shared key: not streaming to it",
                              s->host, s->port));
  }
  set_state(s, PS_SS_RESUME);
  return 0;
}

/* Announces every interface, then queues the latest counters of each to
 * follow the batches: the start of every session. */
static int announce_all(ps__ssession *s) {
  const ps__ssession_env *env = s->env;
  /* Who the sensor is comes first (version 2). */
  if (s->version >= 2 && env->announce != NULL &&
      ps__buf_append(&s->out, env->announce, env->announce_len) != 0) {
    return nomem(s);
  }
  for (uint32_t i = 0; i < env->n_ifaces; i++) {
    if (enc_iface(s, i) != 0) {
      return nomem(s);
    }
  }
  if (s->version >= 2 && env->session_state != NULL &&
      ps__buf_append(&s->out, env->session_state, env->session_state_len) !=
          0) {
    return nomem(s);
  }
  for (uint32_t i = 0; i < env->n_ifaces; i++) {
    int rc = ps__ssession_send_stats(s, i);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

/* Then the receiver says how far it has this stream (0: not at all, as a
 * receiver failed over to, or one that lost its journal): that much is
 * delivered, batches of a broken connection above it that the queue no
 * longer holds are lost, and what it holds above it is sent again. Only
 * this first ACK may be below the last one (another receiver's). */
static int on_resume(ps__ssession *s, const ps__frame *f, int64_t now_ms) {
  ps__replay *rq = s->env->rq;
  uint64_t resume;
  if (f->type != PS_FRAME_ACK || ps__dec_seq(f, &resume, s->errmsg) != 0) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "expected the receiver's resume point, got %s",
                              ps__frame_name(f->type)));
  }
  if (resume > rq->max_fed) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "receiver %s port %u says it has batch %llu of "
                              "this stream, but only %llu were sent",
                              s->host, s->port, (unsigned long long)resume,
                              (unsigned long long)rq->max_fed));
  }
  /* Nothing went to this connection yet, and its resume point is now
   * known (batches evicted from here on are dropped or wait for this
   * connection's own acknowledgement, never for another's). */
  ps__replay_connection_start(rq);
  ps__replay_release(rq, resume);
  ps__replay_resolve_limbo(rq);
  set_state(s, PS_SS_ACTIVE);
  s->last_read_ms = s->last_write_ms = now_ms;
  return announce_all(s);
}

static int on_active(ps__ssession *s, const ps__frame *f) {
  ps__replay *rq = s->env->rq;
  uint64_t seq;
  switch (f->type) {
  case PS_FRAME_ACK:
    if (ps__dec_seq(f, &seq, s->errmsg) != 0) {
      return fail(s, PS_ERR_PROTOCOL);
    }
    if (seq > rq->max_fed || seq < rq->acked) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                                "receiver acknowledged batch %llu, but %llu "
                                "were sent and %llu acknowledged",
                                (unsigned long long)seq,
                                (unsigned long long)rq->max_fed,
                                (unsigned long long)rq->acked));
    }
    /* Only a batch not acknowledged before proves the receiver takes
     * this stream (a repeated ACK does not). */
    s->worked |= seq > rq->acked;
    ps__replay_release(rq, seq);
    s->acks++;
    return 0;
  case PS_FRAME_CLOSE:
    if (ps__dec_seq(f, &seq, s->errmsg) != 0) {
      return fail(s, PS_ERR_PROTOCOL);
    }
    if (!s->close_queued || seq != s->close_seq) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                                "receiver closed after batch %llu of %llu",
                                (unsigned long long)seq,
                                (unsigned long long)s->close_seq));
    }
    ps__replay_release(rq, seq);
    set_state(s, PS_SS_CLOSED);
    s->worked = 1;
    return 0;
  case PS_FRAME_HEARTBEAT:
    if (ps__dec_empty(f, s->errmsg) != 0) {
      return fail(s, PS_ERR_PROTOCOL);
    }
    s->worked = 1;
    return 0;
  case PS_FRAME_CAPTURE_START:
  case PS_FRAME_CAPTURE_CHANGE:
  case PS_FRAME_CAPTURE_STOP:
    if (s->version >= 2) {
      return on_control(s, f);
    }
    break; /* not in version 1 */
  default:
    break;
  }
  return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                            "unexpected %s frame from the receiver",
                            ps__frame_name(f->type)));
}

/* A capture request (version 2): validated here, handled by the
 * sensor (env->on_control), or refused when nothing handles them (a
 * stream without a ps_sensor behind it). */
static int on_control(ps__ssession *s, const ps__frame *f) {
  int rc;
  uint64_t id = 0;
  if (f->type == PS_FRAME_CAPTURE_START) {
    ps__capture_start m;
    rc = ps__dec_capture_start(f, &m, s->errmsg);
    id = m.id;
  } else if (f->type == PS_FRAME_CAPTURE_CHANGE) {
    ps__capture_change m;
    rc = ps__dec_capture_change(f, &m, s->errmsg);
    id = m.id;
  } else {
    rc = ps__dec_capture_stop(f, &id, s->errmsg);
  }
  if (rc != 0) {
    return fail(s, rc);
  }
  if (s->env->on_control != NULL) {
    s->env->on_control(s->env->ctl_ud, f);
    return 0;
  }
  static const char no[] = "this sensor takes no captures from the receiver";
  ps__capture_state_msg st = {.id = id,
                              .state = f->type == PS_FRAME_CAPTURE_CHANGE
                                           ? PS_CAP_CHANGE_REFUSED
                                           : PS_CAP_REFUSED,
                              .text = {no, sizeof(no) - 1}};
  if (f->type == PS_FRAME_CAPTURE_STOP) {
    st.state = PS_CAP_ENDED;
    st.text.len = 0;
  }
  size_t at = ps__buf_size(&s->out);
  if (ps__enc_capture_state(&s->out, &st) != 0) {
    return nomem(s);
  }
  return queue_ctl(s, at);
}

int ps__ssession_send_control(ps__ssession *s, const uint8_t *frame,
                              size_t len) {
  if (s->state != PS_SS_ACTIVE || s->version < 2) {
    return 0;
  }
  size_t at = ps__buf_size(&s->out);
  if (ps__buf_append(&s->out, frame, len) != 0) {
    return nomem(s);
  }
  return queue_ctl(s, at);
}

/* Handles one frame in the state the session is in. */
static int on_frame(ps__ssession *s, const ps__frame *f, int64_t now_ms) {
  if (f->type == PS_FRAME_ERROR) {
    return on_error(s, f);
  }
  switch (s->state) {
  case PS_SS_WELCOME:
    return on_welcome(s, f);
  case PS_SS_AUTH:
    return on_auth_ok(s, f);
  case PS_SS_RESUME:
    return on_resume(s, f, now_ms);
  case PS_SS_ACTIVE:
    return on_active(s, f);
  default:
    return 0;
  }
}

int ps__ssession_input(ps__ssession *s, const uint8_t *data, size_t len,
                       int64_t now_ms) {
  if (s->state == PS_SS_CLOSED || s->state == PS_SS_FAILED) {
    return 0; /* bytes after the end are ignored */
  }
  s->last_read_ms = now_ms;
  if (ps__buf_append(&s->in, data, len) != 0) {
    return nomem(s);
  }
  while (s->state != PS_SS_CLOSED && s->state != PS_SS_FAILED) {
    ps__frame f;
    size_t used;
    int rc = ps__frame_parse(ps__buf_head(&s->in), ps__buf_size(&s->in),
                             &s->in_lim, &f, &used, s->errmsg);
    if (rc < 0) {
      /* TLS records start with content types 0x14..0x17. */
      uint8_t b0 = *ps__buf_head(&s->in);
      if (!s->env->tls && s->state == PS_SS_WELCOME && b0 >= 0x14 &&
          b0 <= 0x17) {
        return fail(s, ps__seterr(s->errmsg, PS_ERR_TLS,
                                  "receiver %s port %u answered with TLS: "
                                  "connect with --tls",
                                  s->host, s->port));
      }
      return fail(s, rc);
    }
    if (rc == 0) {
      return 0;
    }
    rc = on_frame(s, &f, now_ms);
    ps__buf_consume(&s->in, used);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

/* ------------------------------------------------------ frames out */

int ps__ssession_output(ps__ssession *s, size_t backlog) {
  ps__replay *rq = s->env->rq;
  while (s->state == PS_SS_ACTIVE &&
         ps__buf_size(&s->out) + backlog < FEED_LOW_WATER) {
    ps__rq_ent *e = ps__replay_next_to_feed(rq);
    uint64_t next = e ? e->seq : UINT64_MAX;
    if (s->ctl != NULL && s->ctl->after_seq < next) {
      ps__ss_ctl *c = s->ctl;
      if (ps__buf_append(&s->out, c->bytes, c->len) != 0) {
        return nomem(s);
      }
      s->ctl = c->next;
      if (s->ctl == NULL) {
        s->ctl_tail = &s->ctl;
      }
      free(c);
      continue;
    }
    if (e == NULL) {
      break;
    }
    if (ps__buf_append(&s->out, e->frame, e->len) != 0) {
      return nomem(s);
    }
    ps__replay_fed(rq);
  }
  return 0;
}

int ps__ssession_want_write(ps__ssession *s) {
  if (s->state == PS_SS_CLOSED || s->state == PS_SS_FAILED) {
    return 0; /* nothing more to say */
  }
  return ps__buf_size(&s->out) > 0 ||
         (s->state == PS_SS_ACTIVE &&
          (s->ctl != NULL || ps__replay_next_to_feed(s->env->rq) != NULL));
}

void ps__ssession_wrote(ps__ssession *s, int64_t now_ms) {
  s->last_write_ms = now_ms;
}

/* Heartbeats come often enough for the peer timeout to mean silence. */
static int64_t heartbeat_ms(const ps__ssession *s) {
  int64_t t = s->env->peer_timeout_ms / 3;
  return t < HEARTBEAT_MS ? t : HEARTBEAT_MS;
}

int ps__ssession_tick(ps__ssession *s, int64_t now_ms, size_t backlog) {
  switch (s->state) {
  case PS_SS_WELCOME:
  case PS_SS_AUTH:
  case PS_SS_RESUME:
    if (now_ms >= s->deadline_ms) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                                "receiver %s port %u did not answer the hello "
                                "within %lld s",
                                s->host, s->port,
                                (long long)(s->timeout_ms / 1000)));
    }
    return 0;
  case PS_SS_ACTIVE:
    /* A receiver answers every heartbeat and acknowledges every batch:
     * one that says nothing for this long has vanished (a crashed host,
     * a cut path), even if TCP has not noticed. */
    if (now_ms - s->last_read_ms > s->env->peer_timeout_ms) {
      return fail(
          s, ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                        "receiver %s port %u has been silent for %lld s (no "
                        "acknowledgement, no heartbeat): presumed dead",
                        s->host, s->port,
                        (long long)(s->env->peer_timeout_ms / 1000)));
    }
    if (now_ms - s->last_write_ms >= heartbeat_ms(s) &&
        ps__buf_size(&s->out) == 0 && backlog == 0) {
      if (ps__enc_heartbeat(&s->out) != 0) {
        return nomem(s);
      }
    }
    return 0;
  default:
    return 0;
  }
}

int64_t ps__ssession_next_deadline(const ps__ssession *s, int64_t now_ms) {
  int64_t at;
  switch (s->state) {
  case PS_SS_WELCOME:
  case PS_SS_AUTH:
  case PS_SS_RESUME:
    at = s->deadline_ms;
    break;
  case PS_SS_ACTIVE: {
    at = s->last_write_ms + heartbeat_ms(s);
    int64_t silent = s->last_read_ms + s->env->peer_timeout_ms + 1;
    at = silent < at ? silent : at;
    break;
  }
  default:
    return -1;
  }
  return at > now_ms ? at - now_ms : 0;
}
