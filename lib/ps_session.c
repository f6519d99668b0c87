/* A sensor session's state machine on the receiver side. */
#include "config.h"

#include "ps_session.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int start(ps__session *s);
static int resume(ps__session *s);

void ps__session_init(ps__session *s, const ps__session_env *env, uint64_t id,
                      const char *peer, const uint8_t *rnonce) {
  memset(s, 0, sizeof(*s));
  memcpy(s->rnonce, rnonce, PS_NONCE_LEN);
  s->env = env;
  s->state = PS_SESS_HELLO;
  snprintf(s->peer, sizeof(s->peer), "%s", peer);
  snprintf(s->sensor, sizeof(s->sensor), "?");
  s->info.id = id;
  s->info.sensor = s->sensor;
  s->info.peer = s->peer;
}

void ps__session_set_tls_subject(ps__session *s, const char *subject) {
  snprintf(s->tls_subject, sizeof(s->tls_subject), "%s", subject);
  s->info.tls_subject = s->tls_subject[0] ? s->tls_subject : NULL;
}

/* Ends the session with an error: the reason goes to the sensor too. */
static int refuse(ps__session *s, int code) {
  ps__enc_error(&s->out, ps__wire_error(code), s->errmsg);
  s->state = PS_SESS_DONE;
  return code;
}

static int sink_error(ps__session *s, ps_sink *sk, int rc) {
  snprintf(s->errmsg, sizeof(s->errmsg), "%s", sk->errmsg);
  if (rc == PS_ERR_IO || rc == PS_ERR_NOMEM) {
    /* The output failed, not the sensor: say so to the sensor and let
     * the receiver decide what happens to everyone else. */
    ps__enc_error(&s->out, ps__wire_error(rc), "the receiver cannot write");
    s->state = PS_SESS_DONE;
    return rc;
  }
  return refuse(s, rc);
}

/* Whether an output failed for good since the session began (a sink
 * counts it in failures): only then are its slots asked. */
static int outputs_failed(const ps__session *s) {
  for (unsigned i = 0; i < s->env->n_sinks; i++) {
    if (s->env->sinks[i]->failures > 0) {
      return 1;
    }
  }
  return 0;
}

int ps__session_check_outputs(ps__session *s, int more) {
  if (s->state == PS_SESS_DONE || !outputs_failed(s)) {
    return 0;
  }
  for (unsigned k = 0; k < s->n_slots; k++) {
    ps__sess_iface *ifc = s->ifaces[k];
    if (ifc == NULL) {
      continue;
    }
    for (unsigned i = 0; i < s->env->n_sinks; i++) {
      ps_sink *sk = s->env->sinks[i];
      int f = ps__sink_failed(sk, ifc->slot[i], s->errmsg, sizeof(s->errmsg));
      if (f == 1 || (f != 0 && more)) {
        return refuse(s, PS_ERR_REFUSED);
      }
    }
  }
  return 0;
}

static int on_hello(ps__session *s, const ps__frame *f) {
  ps__hello h;
  int rc = ps__dec_hello(f, &h, s->errmsg);
  if (rc != 0) {
    return refuse(s, rc);
  }
  memcpy(s->sensor, h.name, h.name_len);
  s->sensor[h.name_len] = '\0';
  memcpy(s->snonce, h.nonce, PS_NONCE_LEN);
  s->has_stream = (h.flags & PS_HELLO_STREAM) != 0;
  s->stream_id = h.stream_id;
  if (h.min_version > PS_PROTO_VERSION ||
      h.max_version < PS_PROTO_VERSION_MIN) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
               "sensor speaks protocol versions %u..%u, this receiver %u..%u",
               h.min_version, h.max_version, PS_PROTO_VERSION_MIN,
               PS_PROTO_VERSION);
    return refuse(s, PS_ERR_PROTOCOL);
  }
  /* The highest version both speak. */
  s->version =
      h.max_version < PS_PROTO_VERSION ? h.max_version : PS_PROTO_VERSION;
  uint32_t common = h.codecs & ps__codec_supported();
  /* The sensor offers stored and the one codec it prefers: take that one
   * if this build has it. */
  s->codec = PS_WIRE_CODEC_STORED;
  for (uint8_t c = PS_WIRE_CODEC_MAX; c > PS_WIRE_CODEC_STORED; c--) {
    if (common & (1u << c)) {
      s->codec = c;
      break;
    }
  }
  s->cc = ps__codec_new(s->codec, 0);
  if (s->cc == NULL) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  /* Without a key to check, the sinks may refuse the sensor before it is
   * welcomed; with one, they hear of it only once it proved the key. */
  if (s->env->auth_key == NULL && (rc = start(s)) != 0) {
    return rc;
  }
  ps__welcome w = {.version = s->version,
                   .codec = s->codec,
                   .flags = s->env->auth_key ? PS_WELCOME_AUTH : 0,
                   .max_frame = s->env->lim.max_frame,
                   .max_batch_raw = s->env->lim.max_batch_raw,
                   .max_batch_packets = s->env->lim.max_batch_packets,
                   .session_id = s->info.id};
  memcpy(w.nonce, s->rnonce, PS_NONCE_LEN);
  if (ps__enc_welcome(&s->out, &w) != 0) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  if (s->env->auth_key != NULL) {
    s->state = PS_SESS_AUTH;
    return 0;
  }
  return resume(s);
}

/* Binds the session to its stream: an older connection of the same
 * stream ends (the sensor gave up on it), and the batches written before
 * are not written again. */
static int claim_stream(ps__session *s) {
  if (!s->has_stream || s->env->streams == NULL) {
    return 0;
  }
  ps__stream_ent *e = ps__streamtab_get(s->env->streams, s->sensor,
                                        strlen(s->sensor), s->stream_id);
  if (e == NULL) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  if (e->owner != NULL && e->owner != s) {
    ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "superseded", s->sensor,
             NULL, 0,
             "sensor %s: stream continues on a new connection from %s "
             "(session %llu replaces %llu)",
             s->sensor, s->peer, (unsigned long long)s->info.id,
             (unsigned long long)e->owner->info.id);
    s->env->supersede(s->env->ud, e->owner);
  }
  e->owner = s;
  e->used_ms = ps__now_ms();
  s->stream = e;
  s->last_seq = e->seq;
  return 0;
}

/* Counts the batches an ACK (or CLOSE) up to seq newly acknowledges, in
 * the sensor's entry: what /metrics shows as acknowledged. */
static void count_acked(ps__session *s, uint64_t seq) {
  if (seq > s->acked_sent) {
    if (s->fleet != NULL) {
      s->fleet->acked_batches += seq - s->acked_sent;
    }
    s->acked_sent = seq;
  }
}

static int send_ack(ps__session *s, uint64_t seq) {
  count_acked(s, seq);
  return ps__enc_ack(&s->out, seq) ? refuse(s, PS_ERR_NOMEM) : 0;
}

/* After the welcome (and the proof), a sensor with a stream learns how
 * far this receiver has it: ACK of the last batch written, 0 for a stream
 * it does not know. It resends only what follows, and counts what it can
 * no longer resend as lost rather than delivered. */
static int resume(ps__session *s) {
  if (s->stream == NULL) {
    return 0;
  }
  if (s->last_seq > 0) {
    ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "resumed", s->sensor,
             NULL, 0, "sensor %s: resuming after batch %llu", s->sensor,
             (unsigned long long)s->last_seq);
  }
  if (s->env->async_acks) {
    /* What this receiver took may not be kept yet: the sensor hears
     * only of what was acknowledged; the rest is acknowledged with the
     * round's acknowledgements once it is kept. */
    if (s->stream->seq > s->stream->acked) {
      s->ack_due = 1;
    }
    s->acked_sent = s->stream->acked;
    return ps__enc_ack(&s->out, s->stream->acked) ? refuse(s, PS_ERR_NOMEM) : 0;
  }
  s->acked_sent = s->last_seq;
  return ps__enc_ack(&s->out, s->last_seq) ? refuse(s, PS_ERR_NOMEM) : 0;
}

/* The stream this sensor names is held by an older connection, which
 * claim_stream() will end. Looked up without creating an entry: a
 * sensor that is refused leaves nothing behind. */
static int takes_over(const ps__session *s) {
  if (!s->has_stream || s->env->streams == NULL) {
    return 0;
  }
  const ps__stream_ent *e = ps__streamtab_find(s->env->streams, s->sensor,
                                               strlen(s->sensor), s->stream_id);
  return e != NULL && e->owner != NULL && e->owner != s;
}

/* The sensor is who it says (or nobody asked): it counts as a sensor
 * now, if the receiver has room, and the sinks hear of it. */
static int start(ps__session *s) {
  int rc;
  if (s->env->admit != NULL &&
      (rc = s->env->admit(s->env->ud, s, takes_over(s))) != 0) {
    return refuse(s, rc);
  }
  if ((rc = claim_stream(s)) != 0) {
    return rc;
  }
  if (s->env->fleet != NULL) {
    s->fleet =
        ps__fleet_join(s->env->fleet, s->sensor, s->peer, s, ps__wall_ms());
    if (s->fleet == NULL) {
      ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
      return refuse(s, PS_ERR_NOMEM);
    }
  }
  for (unsigned i = 0; i < s->env->n_sinks; i++) {
    ps_sink *sk = s->env->sinks[i];
    if ((rc = ps__sink_session_start(sk, &s->info)) != 0) {
      return sink_error(s, sk, rc);
    }
    s->started = i + 1; /* these sinks get session_end */
  }
  s->state = PS_SESS_ACTIVE;
  char tls[600] = "";
  if (s->info.tls_subject) {
    snprintf(tls, sizeof(tls), ", TLS client %s", s->info.tls_subject);
  }
  ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "connected", s->sensor,
           NULL, 0,
           "sensor %s connected from %s (session %llu, compression %s%s%s)",
           s->sensor, s->peer, (unsigned long long)s->info.id,
           ps__codec_name(s->codec),
           s->env->auth_key ? ", shared key verified" : "", tls);
  return 0;
}

static int on_auth(ps__session *s, const ps__frame *f) {
  uint8_t theirs[PS_MAC_LEN], mac[PS_MAC_LEN];
  if (f->type != PS_FRAME_AUTH) {
    ps__seterr(s->errmsg, PS_ERR_AUTH,
               "authentication required: sensor %s sent %s instead of its "
               "proof (it needs --auth-key-file)",
               s->sensor, ps__frame_name(f->type));
    return refuse(s, PS_ERR_AUTH);
  }
  int rc = ps__dec_mac(f, theirs, s->errmsg);
  if (rc != 0) {
    return refuse(s, rc);
  }
  size_t n = strlen(s->sensor);
  if (ps__auth_mac(s->env->auth_key, s->env->auth_len, 0, s->rnonce, s->snonce,
                   s->sensor, n, mac) != 0 ||
      gnutls_memcmp(mac, theirs, PS_MAC_LEN) != 0) {
    ps__seterr(s->errmsg, PS_ERR_AUTH,
               "authentication failed: wrong shared key for sensor %s",
               s->sensor);
    return refuse(s, PS_ERR_AUTH);
  }
  if (ps__auth_mac(s->env->auth_key, s->env->auth_len, 1, s->rnonce, s->snonce,
                   s->sensor, n, mac) != 0 ||
      ps__enc_mac(&s->out, PS_FRAME_AUTH_OK, mac) != 0) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  int rc2 = start(s);
  return rc2 ? rc2 : resume(s);
}

static const char *tsres_name(uint8_t r) {
  return r == PS_TSRES_NSEC ? "nanoseconds" : "microseconds";
}

static int on_iface(ps__session *s, const ps__frame *f) {
  ps__iface m;
  int rc = ps__dec_iface_v(f, s->version, &m, s->errmsg);
  if (rc != 0) {
    return refuse(s, rc);
  }
  if (ps__sess_ifc(s, m.id) != NULL) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL, "interface %u announced twice",
               m.id);
    return refuse(s, PS_ERR_PROTOCOL);
  }
  if (m.id >= s->n_slots) {
    unsigned n = s->n_slots ? s->n_slots : 2;
    while (n <= m.id) {
      n *= 2;
    }
    ps__sess_iface **t = realloc(s->ifaces, n * sizeof(*t));
    if (t == NULL) {
      ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
      return refuse(s, PS_ERR_NOMEM);
    }
    memset(t + s->n_slots, 0, (n - s->n_slots) * sizeof(*t));
    s->ifaces = t;
    s->n_slots = n;
  }
  size_t extra = 0;
  for (unsigned i = 0; i < m.n_opts; i++) {
    extra += m.opt[i].key_len + m.opt[i].value_len + 2;
  }
  ps__sess_iface *ifc = calloc(1, sizeof(*ifc) + extra);
  if (ifc == NULL) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  memcpy(ifc->name, m.name, m.name_len);
  ifc->info.id = m.id;
  ifc->info.name = ifc->name;
  ifc->info.linktype = m.linktype;
  ifc->info.snaplen = m.snaplen;
  ifc->info.tsres = m.tsres;
  char *mem = (char *)(ifc + 1);
  size_t n = 0;
  for (unsigned i = 0; i < m.n_opts; i++) {
    char *k = mem, *v = mem + m.opt[i].key_len + 1;
    memcpy(k, m.opt[i].key, m.opt[i].key_len);
    memcpy(v, m.opt[i].value, m.opt[i].value_len);
    mem = v + m.opt[i].value_len + 1;
    if (strcmp(k, "description") == 0) {
      ifc->info.description = v;
    } else {
      ifc->opts[n++] = (ps_interface_option){k, v};
    }
  }
  s->ifaces[m.id] = ifc;
  /* capture.id names the capture on demand its packets are (also when
   * resent on a later connection): kept only if this receiver knows the
   * capture and this sensor is one of it, so a sensor cannot put its
   * packets into another's capture. */
  for (size_t i = 0; i < n; i++) {
    if (strcmp(ifc->opts[i].key, "capture.id") != 0) {
      continue;
    }
    char *end;
    unsigned long long id = strtoull(ifc->opts[i].value, &end, 10);
    int ok = 0;
    if (*end == '\0' && id != 0 && ifc->opts[i].value[0] != '0' &&
        s->env->on_capture_iface != NULL) {
      ok = s->env->on_capture_iface(s->env->ud, s, ifc, id, s->errmsg);
      if (ok < 0) {
        ps__enc_error(&s->out, ps__wire_error(ok), "the receiver cannot write");
        s->state = PS_SESS_DONE;
        return ok;
      }
    }
    if (!ok) {
      ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "interface", s->sensor,
               NULL, 0,
               "sensor %s interface %u %s: capture %s is not one this "
               "receiver asked of it (its packets go to the outputs as any)",
               s->sensor, m.id, ifc->name, ifc->opts[i].value);
      memmove(&ifc->opts[i], &ifc->opts[i + 1],
              (n - i - 1) * sizeof(ifc->opts[0]));
      n--;
    }
    break;
  }
  ifc->info.options = n ? ifc->opts : NULL;
  ifc->info.n_options = n;
  if (s->fleet != NULL) {
    /* NULL beyond the fleet's limit: that interface is not counted. */
    ifc->fl = ps__fleet_iface_get(s->fleet, ifc->name, m.linktype, m.snaplen);
  }
  ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "interface", s->sensor,
           NULL, 0, "sensor %s interface %u %s: link type %u, snaplen %u, %s",
           s->sensor, m.id, ifc->name, m.linktype, m.snaplen,
           tsres_name(m.tsres));
  if (ifc->info.description != NULL || n > 0) {
    /* The workload's identity, in one line per interface. */
    char line[2048];
    int len = snprintf(line, sizeof(line), "%s",
                       ifc->info.description ? ifc->info.description : "");
    for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof(line); i++) {
      len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%s=%s",
                      len ? "; " : "", ifc->opts[i].key, ifc->opts[i].value);
    }
    ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "interface", s->sensor,
             NULL, 0, "sensor %s interface %u %s: %s", s->sensor, m.id,
             ifc->name, line);
  }
  for (unsigned i = 0; i < s->env->n_sinks; i++) {
    ps_sink *sk = s->env->sinks[i];
    if ((rc = ps__sink_iface(sk, &s->info, &ifc->info, &ifc->slot[i])) != 0) {
      return sink_error(s, sk, rc);
    }
  }
  return 0;
}

static int flush_sinks(ps__session *s) {
  for (unsigned i = 0; i < s->env->n_sinks; i++) {
    ps_sink *sk = s->env->sinks[i];
    int rc = ps__sink_flush(sk);
    if (rc != 0) {
      return sink_error(s, sk, rc);
    }
  }
  /* What went to an output that failed is not written: no ack for it. */
  return ps__session_check_outputs(s, 0);
}

/* Whether batch seq's packets on ifc are still to be counted for its
 * capture on demand: a batch counts once, by the stream's sequence
 * numbers, so the counts a restarted receiver kept (ps_capstate.c) stay
 * exact whether the batch was written before the restart (resent, then
 * skipped) or not (written again). */
static int cap_due(const ps__session *s, const ps__sess_iface *ifc,
                   uint64_t seq) {
  ps__cap_target *t = ifc->cap;
  if (t == NULL) {
    return 0;
  }
  uint64_t sid = s->has_stream ? s->stream_id : (1ull << 63) | s->info.id;
  if (t->stream != sid) {
    t->stream = sid;
    t->seq = 0;
  }
  return seq > t->seq;
}

/* After batch seq was counted: its captures have it. */
static void cap_done(ps__session *s, uint64_t seq) {
  for (unsigned i = 0; i < s->n_slots; i++) {
    ps__sess_iface *ifc = s->ifaces[i];
    if (ifc != NULL && ifc->cap != NULL && ifc->cap->seq < seq) {
      ifc->cap->seq = seq;
    }
  }
}

static int batch_raw(ps__session *s, const ps__batch *b, const uint8_t **raw);

/* A batch already written, sent again: its packets for a capture that
 * has not counted it yet (they were written before a restart after the
 * counts were last kept) are counted now. */
static int count_resent(ps__session *s, const ps__batch *b) {
  int due = 0;
  for (unsigned i = 0; i < s->n_slots && !due; i++) {
    due = s->ifaces[i] != NULL && s->ifaces[i]->cap != NULL &&
          cap_due(s, s->ifaces[i], b->seq);
  }
  if (!due) {
    return 0;
  }
  const uint8_t *raw;
  int rc = batch_raw(s, b, &raw);
  if (rc != 0) {
    return rc;
  }
  ps_packet pkt;
  size_t off = 0;
  while ((rc = ps__batch_next(raw, b->raw_len, &off, &pkt, s->errmsg)) == 1) {
    ps__sess_iface *ifc = ps__sess_ifc(s, pkt.iface);
    if (ifc != NULL && cap_due(s, ifc, b->seq)) {
      ps__capture_count(ifc->cap, pkt.caplen);
    }
  }
  cap_done(s, b->seq);
  return rc < 0 ? refuse(s, rc) : 0;
}

/* The batch's packet records: stored batches where they lie, others
 * inflated into s->raw. */
static int batch_raw(ps__session *s, const ps__batch *b, const uint8_t **raw) {
  *raw = b->data;
  if (b->codec != PS_WIRE_CODEC_STORED && s->raw_cap < b->raw_len) {
    uint8_t *p = realloc(s->raw, b->raw_len);
    if (p == NULL) {
      ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
      return refuse(s, PS_ERR_NOMEM);
    }
    s->raw = p;
    s->raw_cap = b->raw_len;
  }
  if (b->codec != PS_WIRE_CODEC_STORED) {
    int rc = ps__codec_decompress(s->cc, b->codec, b->data, b->data_len, s->raw,
                                  b->raw_len, s->errmsg);
    if (rc != 0) {
      return refuse(s, rc);
    }
    *raw = s->raw;
  } else if (b->data_len != b->raw_len) {
    ps__seterr(s->errmsg, PS_ERR_CODEC,
               "stored batch of %zu bytes declared as %u", b->data_len,
               b->raw_len);
    return refuse(s, PS_ERR_CODEC);
  }
  return 0;
}

static int on_batch(ps__session *s, const ps__frame *f) {
  ps__batch b;
  int rc = ps__dec_batch(f, &s->env->lim, &b, s->errmsg);
  if (rc != 0) {
    return refuse(s, rc);
  }
  if (b.seq <= s->last_seq) {
    /* A batch resent after a reconnect that we already wrote. */
    if ((rc = count_resent(s, &b)) != 0) {
      return rc;
    }
    s->duplicates++;
    if (s->fleet != NULL) {
      s->fleet->duplicates++;
    }
    if (s->env->async_acks) {
      /* Taken, but perhaps not yet kept (Kafka): acknowledged with the
       * round's acknowledgements, once the outputs say it is. */
      s->ack_due = 1;
      return 0;
    }
    return send_ack(s, s->last_seq);
  }
  if (b.seq != s->last_seq + 1 && s->stream == NULL) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
               "batch %llu follows batch %llu: batches are missing",
               (unsigned long long)b.seq, (unsigned long long)s->last_seq);
    return refuse(s, PS_ERR_PROTOCOL);
  }
  if (b.codec != PS_WIRE_CODEC_STORED && b.codec != s->codec) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
               "batch %llu uses codec %s, negotiated %s",
               (unsigned long long)b.seq, ps__codec_name(b.codec),
               ps__codec_name(s->codec));
    return refuse(s, PS_ERR_PROTOCOL);
  }
  const uint8_t *raw;
  if ((rc = batch_raw(s, &b, &raw)) != 0) {
    return rc;
  }
  /* A session whose output failed for good is refused before any of
   * the batch reaches its other outputs. */
  if ((rc = ps__session_check_outputs(s, 1)) != 0) {
    return rc;
  }
  /* Check the whole batch before a byte of it reaches an output, so a
   * malformed batch is refused whole, never written in part. */
  ps_packet pkt;
  size_t off = 0;
  uint32_t n = 0;
  int counted = 0;
  while ((rc = ps__batch_next(raw, b.raw_len, &off, &pkt, s->errmsg)) == 1) {
    if (ps__sess_ifc(s, pkt.iface) == NULL) {
      ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                 "batch %llu has a packet for unannounced interface %u",
                 (unsigned long long)b.seq, pkt.iface);
      return refuse(s, PS_ERR_PROTOCOL);
    }
    /* A value an output cannot hold (a time stamp past its range) is
     * this sensor's error: refused now, before anything is written. */
    const ps__sess_iface *ci = s->ifaces[pkt.iface];
    if (ci->cap != NULL && ci->cap->c->req.output[0] != '\0' &&
        ci->cap_slot == NULL) {
      /* Its capture's own output could not take the interface: nothing
       * of it is acknowledged (the sensor sends it again). */
      ps__seterr(s->errmsg, PS_ERR_IO,
                 "capture %llu: its output cannot be written",
                 (unsigned long long)ci->cap->c->id);
      ps__enc_error(&s->out, ps__wire_error(PS_ERR_IO),
                    "the receiver cannot write");
      s->state = PS_SESS_DONE;
      return PS_ERR_IO;
    }
    if (ci->cap_slot != NULL &&
        (rc = ps__sink_check(ci->cap_sink, &ci->info, &pkt)) != 0) {
      ps__seterr(s->errmsg, rc, "batch %llu, packet %u: %s",
                 (unsigned long long)b.seq, n + 1, ci->cap_sink->errmsg);
      return refuse(s, rc);
    }
    for (unsigned i = 0; i < s->env->n_sinks; i++) {
      ps_sink *sk = s->env->sinks[i];
      if ((rc = ps__sink_check(sk, &ps__sess_ifc(s, pkt.iface)->info, &pkt)) !=
          0) {
        ps__seterr(s->errmsg, rc, "batch %llu, packet %u: %s",
                   (unsigned long long)b.seq, n + 1, sk->errmsg);
        return refuse(s, rc);
      }
    }
    n++;
  }
  if (rc < 0) {
    return refuse(s, rc);
  }
  if (n != b.count) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
               "batch %llu holds %u packets but declares %u",
               (unsigned long long)b.seq, n, b.count);
    return refuse(s, PS_ERR_PROTOCOL);
  }
  off = 0;
  while (ps__batch_next(raw, b.raw_len, &off, &pkt, s->errmsg) == 1) {
    ps__sess_iface *ifc = ps__sess_ifc(s, pkt.iface);
    for (unsigned i = 0; i < s->env->n_sinks; i++) {
      ps_sink *sk = s->env->sinks[i];
      rc = ps__sink_packet(sk, ifc->slot[i], &s->info, &ifc->info, &pkt);
      if (rc != 0) {
        return sink_error(s, sk, rc);
      }
    }
    s->bytes += pkt.caplen;
    if (ifc->fl != NULL) {
      ifc->fl->packets++;
      ifc->fl->bytes += pkt.caplen;
    }
    if (ifc->cap_slot != NULL) {
      rc = ps__sink_packet(ifc->cap_sink, ifc->cap_slot, &s->info, &ifc->info,
                           &pkt);
      if (rc != 0) {
        return sink_error(s, ifc->cap_sink, rc);
      }
    }
    if (cap_due(s, ifc, b.seq)) {
      ps__capture_count(ifc->cap, pkt.caplen);
      counted = 1;
    }
  }
  if (counted) {
    cap_done(s, b.seq);
  }
  s->packets += n;
  s->batches++;
  if (b.seq != s->last_seq + 1) {
    /* A stream may skip batches its sensor had to drop (its counters
     * say how many packets); everything sent arrives in order. */
    s->missing += b.seq - s->last_seq - 1;
    ps__logx(s->env->log, s->env->log_ud, PS_LOG_INFO, "batches_skipped",
             s->sensor, NULL, 0,
             "sensor %s: batches %llu..%llu never sent (dropped by the "
             "sensor)",
             s->sensor, (unsigned long long)s->last_seq + 1,
             (unsigned long long)b.seq - 1);
  }
  s->last_seq = b.seq;
  if (s->stream != NULL) {
    ps__streamtab_advance(s->env->streams, s->stream, b.seq);
  }
  for (unsigned i = 0; i < s->env->n_sinks; i++) {
    ps__sink_batch(s->env->sinks[i], &s->info,
                   s->has_stream ? s->stream_id : s->info.id, b.seq);
  }
  if (s->env->defer_acks) {
    /* The receiver flushes once for every session of its loop round,
     * then calls ps__session_ack(). */
    s->ack_due = 1;
    return 0;
  }
  /* Acknowledge only what the outputs have taken. */
  if ((rc = flush_sinks(s)) != 0) {
    return rc;
  }
  return send_ack(s, b.seq);
}

int ps__session_ack_seq(ps__session *s, uint64_t seq) {
  if (s->state == PS_SESS_DONE) {
    return 0;
  }
  if (s->stream != NULL && seq > s->stream->acked) {
    s->stream->acked = seq;
  }
  if (s->close_due && seq == s->last_seq) {
    s->clean_close = 1;
    s->state = PS_SESS_DONE;
    count_acked(s, s->last_seq);
    return ps__enc_close(&s->out, s->last_seq) ? PS_ERR_NOMEM : 0;
  }
  return send_ack(s, seq);
}

int ps__session_ack(ps__session *s) {
  if (!s->ack_due || s->state == PS_SESS_DONE) {
    return 0;
  }
  s->ack_due = 0;
  if (s->close_due) {
    s->clean_close = 1;
    s->state = PS_SESS_DONE;
    count_acked(s, s->last_seq);
    return ps__enc_close(&s->out, s->last_seq) ? PS_ERR_NOMEM : 0;
  }
  return send_ack(s, s->last_seq);
}

static int on_stats(ps__session *s, const ps__frame *f) {
  ps__stats m;
  int rc = ps__dec_stats(f, &m, s->errmsg);
  if (rc != 0) {
    return refuse(s, rc);
  }
  /* Each version has its one layout (version 2 adds sampled_out). */
  if (m.v2 != (s->version >= 2)) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
               "stats frame of %u bytes in a version %u session", f->len,
               s->version);
    return refuse(s, PS_ERR_PROTOCOL);
  }
  ps__sess_iface *ifc = ps__sess_ifc(s, m.iface);
  if (ifc == NULL) {
    ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
               "statistics for unannounced interface %u", m.iface);
    return refuse(s, PS_ERR_PROTOCOL);
  }
  const ps_log_field lf[] = {
      {"captured", m.c.captured},           {"kernel_dropped", m.c.dropped},
      {"interface_dropped", m.c.ifdropped}, {"overflow_dropped", m.c.overflow},
      {"truncated", m.c.truncated},
  };
  ps__logx(s->env->log, s->env->log_ud, PS_LOG_DEBUG, "interface_stats",
           s->sensor, lf, sizeof(lf) / sizeof(lf[0]),
           "sensor %s interface %s: captured %llu, kernel drops %llu, "
           "interface drops %llu, sensor buffer drops %llu, truncated %llu",
           s->sensor, ifc->name, (unsigned long long)m.c.captured,
           (unsigned long long)m.c.dropped, (unsigned long long)m.c.ifdropped,
           (unsigned long long)m.c.overflow, (unsigned long long)m.c.truncated);
  if (m.c.overflow > ifc->stats.overflow) {
    ps__logx(s->env->log, s->env->log_ud, PS_LOG_WARNING, "overflow", s->sensor,
             NULL, 0,
             "sensor %s interface %s: %llu packets dropped by the sensor's "
             "replay buffer (receiver unreachable or too slow)",
             s->sensor, ifc->name, (unsigned long long)m.c.overflow);
  }
  uint64_t before = ifc->stats.dropped + ifc->stats.ifdropped;
  uint64_t now = m.c.dropped + m.c.ifdropped;
  if (now > before) {
    ps__logx(s->env->log, s->env->log_ud, PS_LOG_WARNING, "capture_drops",
             s->sensor, NULL, 0,
             "sensor %s interface %s: %llu packets dropped before capture "
             "(kernel %llu, interface %llu)",
             s->sensor, ifc->name, (unsigned long long)now,
             (unsigned long long)m.c.dropped,
             (unsigned long long)m.c.ifdropped);
  }
  ifc->stats = m.c;
  ifc->have_stats = 1;
  if (ifc->fl != NULL) {
    ifc->fl->st = m.c;
  }
  for (unsigned i = 0; i < s->env->n_sinks; i++) {
    ps_sink *sk = s->env->sinks[i];
    ps__sink_stats(sk, ifc->slot[i], &s->info, &ifc->info, &m.c);
  }
  return 0;
}

/* Version 2: who the sensor is, for the inventory and the metrics'
 * labels. */
static int on_announce(ps__session *s, const ps__frame *f) {
  ps__announce *m = malloc(sizeof(*m));
  if (m == NULL) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  int rc = ps__dec_announce(f, m, s->errmsg);
  if (rc != 0) {
    free(m);
    return refuse(s, rc);
  }
  ps__fleet_sensor *e = s->fleet;
  if (e != NULL) {
    e->announced = 1;
    e->announce_flags = m->flags;
    snprintf(e->version, sizeof(e->version), "%.*s", (int)m->version.len,
             m->version.p);
    snprintf(e->host, sizeof(e->host), "%.*s", (int)m->host.len, m->host.p);
    e->n_labels = 0;
    if (m->n_labels > 0 && e->labels == NULL &&
        (e->labels = calloc(PS_FLEET_MAX_LABELS, sizeof(*e->labels))) == NULL) {
      free(m);
      ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
      return refuse(s, PS_ERR_NOMEM);
    }
    for (unsigned i = 0; i < m->n_labels; i++) {
      /* Keys the receiver sets itself (sensor, iface, ...) are not
       * taken: a sensor cannot pose as another in the metrics. */
      if (!ps__fleet_label_key_ok(m->labels[i].key.p, m->labels[i].key.len)) {
        continue;
      }
      ps__fleet_label *l = &e->labels[e->n_labels++];
      snprintf(l->key, sizeof(l->key), "%.*s", (int)m->labels[i].key.len,
               m->labels[i].key.p);
      snprintf(l->value, sizeof(l->value), "%.*s", (int)m->labels[i].value.len,
               m->labels[i].value.p);
    }
    free(e->avail);
    e->avail = NULL;
    e->n_avail = 0;
    if (m->n_ifaces > 0) {
      e->avail = calloc(m->n_ifaces, sizeof(*e->avail));
      if (e->avail == NULL) {
        free(m);
        ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
        return refuse(s, PS_ERR_NOMEM);
      }
      for (unsigned i = 0; i < m->n_ifaces; i++) {
        snprintf(e->avail[i].name, sizeof(e->avail[i].name), "%.*s",
                 (int)m->ifaces[i].name.len, m->ifaces[i].name.p);
        e->avail[i].linktype = m->ifaces[i].linktype;
      }
      e->n_avail = m->n_ifaces;
    }
  }
  ps__log(s->env->log, s->env->log_ud, PS_LOG_INFO,
          "sensor %s announced: version %.*s on %.*s, %u interfaces, %u "
          "labels%s%s",
          s->sensor, (int)m->version.len, m->version.p, (int)m->host.len,
          m->host.p, m->n_ifaces, m->n_labels,
          (m->flags & PS_ANNOUNCE_STANDBY) ? ", standby" : "",
          (m->flags & PS_ANNOUNCE_REMOTE) ? ", takes remote captures" : "");
  free(m);
  return 0;
}

static int on_capture_state(ps__session *s, const ps__frame *f) {
  ps__capture_state_msg m;
  int rc = ps__dec_capture_state(f, &m, s->errmsg);
  if (rc != 0) {
    return refuse(s, rc);
  }
  for (unsigned i = 0; i < m.n_ifaces; i++) {
    if (ps__sess_ifc(s, m.ifaces[i]) == NULL) {
      ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                 "capture %llu names unannounced interface %u",
                 (unsigned long long)m.id, m.ifaces[i]);
      return refuse(s, PS_ERR_PROTOCOL);
    }
  }
  if (s->env->on_capture_state != NULL) {
    s->env->on_capture_state(s->env->ud, s, &m);
  }
  return 0;
}

int ps__session_controllable(const ps__session *s) {
  return s->state == PS_SESS_ACTIVE && s->version >= 2;
}

static int on_frame(ps__session *s, const ps__frame *f) {
  if (s->state == PS_SESS_HELLO) {
    if (f->type != PS_FRAME_HELLO) {
      ps__seterr(s->errmsg, PS_ERR_PROTOCOL, "expected a hello, got a %s frame",
                 ps__frame_name(f->type));
      return refuse(s, PS_ERR_PROTOCOL);
    }
    return on_hello(s, f);
  }
  if (s->state == PS_SESS_AUTH) {
    return on_auth(s, f);
  }
  uint64_t seq;
  int rc;
  switch (f->type) {
  case PS_FRAME_IFACE:
    return on_iface(s, f);
  case PS_FRAME_BATCH:
    return on_batch(s, f);
  case PS_FRAME_STATS:
    return on_stats(s, f);
  case PS_FRAME_ANNOUNCE:
    if (s->version < 2) {
      break;
    }
    return on_announce(s, f);
  case PS_FRAME_CAPTURE_STATE:
    if (s->version < 2) {
      break;
    }
    return on_capture_state(s, f);
  case PS_FRAME_HEARTBEAT:
    if ((rc = ps__dec_empty(f, s->errmsg)) != 0) {
      return refuse(s, rc);
    }
    return ps__enc_heartbeat(&s->out) ? refuse(s, PS_ERR_NOMEM) : 0;
  case PS_FRAME_CLOSE:
    if ((rc = ps__dec_seq(f, &seq, s->errmsg)) != 0) {
      return refuse(s, rc);
    }
    if (seq != s->last_seq) {
      ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                 "sensor closed after batch %llu, but batch %llu is the "
                 "last received",
                 (unsigned long long)seq, (unsigned long long)s->last_seq);
      return refuse(s, PS_ERR_PROTOCOL);
    }
    if (s->env->defer_acks) {
      /* Confirmed with the round's acknowledgements, once the outputs
       * took everything (and the journal says so). */
      s->close_due = 1;
      s->ack_due = 1;
      return 0;
    }
    /* The confirmation says everything is written: make it true. */
    if ((rc = flush_sinks(s)) != 0) {
      return rc;
    }
    s->clean_close = 1;
    s->state = PS_SESS_DONE;
    count_acked(s, s->last_seq);
    return ps__enc_close(&s->out, s->last_seq) ? PS_ERR_NOMEM : 0;
  case PS_FRAME_ERROR: {
    ps__error_msg m;
    if ((rc = ps__dec_error(f, &m, s->errmsg)) != 0) {
      return refuse(s, rc);
    }
    char text[128];
    size_t k = 0;
    for (size_t i = 0; i < m.text_len && k < sizeof(text) - 1; i++) {
      unsigned char c = (unsigned char)m.text[i];
      text[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    text[k] = '\0';
    ps__seterr(s->errmsg, PS_ERR_CLOSED, "the sensor reported: %s", text);
    s->state = PS_SESS_DONE;
    return PS_ERR_CLOSED;
  }
  default:
    break;
  }
  ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
             "unexpected %s frame from a sensor (protocol version %u)",
             ps__frame_name(f->type), s->version);
  return refuse(s, PS_ERR_PROTOCOL);
}

/* Parses and handles every whole frame in the input buffer. */
static int process(ps__session *s) {
  /* Before the hello the sensor is unknown: allow only a small frame. */
  ps__limits hello_lim = {.max_frame = 34 + 255 + 8};
  while (s->state != PS_SESS_DONE && !s->close_due) {
    ps__frame f;
    size_t used;
    int rc =
        ps__frame_parse(ps__buf_head(&s->in), ps__buf_size(&s->in),
                        s->state == PS_SESS_ACTIVE ? &s->env->lim : &hello_lim,
                        &f, &used, s->errmsg);
    if (rc < 0) {
      if (s->state == PS_SESS_HELLO && *ps__buf_head(&s->in) == 0x16) {
        ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                   "the sensor starts TLS, but this receiver serves none "
                   "(give it --tls-cert and --tls-key)");
      }
      return refuse(s, rc);
    }
    if (rc == 0) {
      return 0;
    }
    rc = on_frame(s, &f);
    ps__buf_consume(&s->in, used);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

int ps__session_input(ps__session *s, const uint8_t *data, size_t len) {
  if (s->state == PS_SESS_DONE) {
    return 0; /* bytes after the end are ignored */
  }
  if (ps__buf_append(&s->in, data, len) != 0) {
    ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    return refuse(s, PS_ERR_NOMEM);
  }
  return process(s);
}

uint8_t *ps__session_space(ps__session *s, size_t n) {
  return ps__buf_reserve(&s->in, n);
}

int ps__session_commit(ps__session *s, size_t k) {
  s->in.len += k;
  if (s->state == PS_SESS_DONE) {
    ps__buf_reset(&s->in);
    return 0;
  }
  return process(s);
}

void ps__session_trim(ps__session *s) {
  free(s->raw);
  s->raw = NULL;
  s->raw_cap = 0;
  if (ps__buf_size(&s->in) == 0) {
    ps__buf_free(&s->in);
  }
  if (ps__buf_size(&s->out) == 0) {
    ps__buf_free(&s->out);
  }
}

void ps__session_totals(const ps__session *s, ps_capture_stats *out) {
  memset(out, 0, sizeof(*out));
  for (unsigned i = 0; i < s->n_slots; i++) {
    const ps__sess_iface *ifc = s->ifaces[i];
    if (ifc != NULL) {
      out->received += ifc->stats.received;
      out->dropped += ifc->stats.dropped;
      out->ifdropped += ifc->stats.ifdropped;
      out->truncated += ifc->stats.truncated;
      out->overflow += ifc->stats.overflow;
    }
  }
  out->captured = s->packets;
  out->bytes = s->bytes;
}

void ps__session_end(ps__session *s) {
  if (s->fleet != NULL) {
    ps__fleet_leave(s->fleet, s, ps__wall_ms());
    s->fleet = NULL;
  }
  if (s->stream != NULL) {
    if (s->stream->owner == s) {
      s->stream->owner = NULL;
      s->stream->used_ms = ps__now_ms();
    }
    s->stream = NULL;
  }
  for (unsigned i = 0; i < s->n_slots; i++) {
    ps__sess_iface *ifc = s->ifaces[i];
    if (ifc == NULL) {
      continue;
    }
    for (unsigned k = 0; k < s->env->n_sinks; k++) {
      ps_sink *sk = s->env->sinks[k];
      ps__sink_iface_end(sk, ifc->slot[k], &s->info, &ifc->info,
                         ifc->have_stats ? &ifc->stats : NULL);
    }
    ps__capture_iface_gone(s, ifc);
    free(ifc);
    s->ifaces[i] = NULL;
  }
  free(s->ifaces);
  s->ifaces = NULL;
  s->n_slots = 0;
  if (s->started) {
    for (unsigned k = 0; k < s->started; k++) {
      ps_sink *sk = s->env->sinks[k];
      ps__sink_session_end(sk, &s->info);
    }
    s->started = 0;
  }
  ps__codec_free(s->cc);
  s->cc = NULL;
  free(s->raw);
  s->raw = NULL;
  s->raw_cap = 0;
  ps__buf_free(&s->in);
  ps__buf_free(&s->out);
}
