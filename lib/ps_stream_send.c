/* The stream's packet path: interfaces, packets into batches, counters.
 * Nothing here waits: a full batch goes to the replay queue and the
 * connection takes what it can now (ps__stream_step()). */
#include "config.h"

#include "ps_stream.h"

#include <stdlib.h>
#include <string.h>

void ps_stream_get_counters(ps_stream *s, ps_stream_counters *out,
                            size_t size) {
  ps__copy_out(out, size, &s->rq.ctr, sizeof(s->rq.ctr));
}

int ps_stream_get_interface_counters(ps_stream *s,
                                     ps_stream_interface_counters *out,
                                     size_t size, uint32_t iface) {
  if (out == NULL || iface >= s->env.n_ifaces) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "unknown interface %u", iface);
  }
  ps__copy_out(out, size, &s->rq.ifc[iface], sizeof(s->rq.ifc[iface]));
  return 0;
}

unsigned ps_stream_interface_count(ps_stream *s) {
  return s->env.n_ifaces;
}

int ps_stream_add_interface(ps_stream *s, uint32_t *out, const char *name,
                            uint32_t linktype, uint32_t snaplen,
                            uint8_t tsres) {
  return ps_stream_add_interface_options(s, out, name, linktype, snaplen, tsres,
                                         NULL, 0);
}

static void free_opts(ps__ssession_iface *f) {
  for (unsigned i = 0; i < f->n_opts; i++) {
    free(f->opt_key[i]);
    free(f->opt_value[i]);
  }
  f->n_opts = 0;
}

/* Checks and copies the options into f (the description first, under
 * the key "description"). */
static int copy_opts(ps_stream *s, ps__ssession_iface *f,
                     const ps_stream_interface_options *o) {
  if (o->n_options > PS_MAX_IFACE_OPTS - 1 ||
      (o->n_options > 0 && o->options == NULL)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "at most %u interface options",
                      PS_MAX_IFACE_OPTS - 1);
  }
  size_t n = 0;
  const char *keys[PS_MAX_IFACE_OPTS], *vals[PS_MAX_IFACE_OPTS];
  if (o->description != NULL) {
    keys[n] = "description";
    vals[n++] = o->description;
  }
  for (size_t i = 0; i < o->n_options; i++) {
    keys[n] = o->options[i].key;
    vals[n++] = o->options[i].value;
  }
  for (size_t i = 0; i < n; i++) {
    if (keys[i] == NULL || vals[i] == NULL ||
        !ps__valid_opt_key(keys[i], strlen(keys[i])) ||
        !ps__valid_opt_value(vals[i], strlen(vals[i]))) {
      return ps__seterr(s->errmsg, PS_ERR_INVALID,
                        "invalid interface option %s",
                        keys[i] ? keys[i] : "(null)");
    }
    for (size_t k = 0; k < i; k++) {
      if (strcmp(keys[k], keys[i]) == 0) {
        return ps__seterr(s->errmsg, PS_ERR_INVALID,
                          "interface option %s given twice", keys[i]);
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    f->opt_key[i] = strdup(keys[i]);
    f->opt_value[i] = strdup(vals[i]);
    f->n_opts = (unsigned)i + 1;
    if (f->opt_key[i] == NULL || f->opt_value[i] == NULL) {
      free_opts(f);
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
  }
  return 0;
}

int ps_stream_add_interface_options(ps_stream *s, uint32_t *out,
                                    const char *name, uint32_t linktype,
                                    uint32_t snaplen, uint8_t tsres,
                                    const ps_stream_interface_options *opts,
                                    size_t size) {
  ps_stream_interface_options o;
  memset(&o, 0, sizeof(o));
  if (opts != NULL &&
      ps__copy_in(&o, sizeof(o), opts, size,
                  PS__SIZE_TO(ps_stream_interface_options, n_options)) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid interface options struct");
  }
  int rc = ps__stream_check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (out == NULL || name == NULL || !ps__valid_name(name, strlen(name)) ||
      (tsres != PS_TSRES_USEC && tsres != PS_TSRES_NSEC)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid interface name or timestamp resolution");
  }
  uint32_t id = s->env.n_ifaces;
  if (id >= PS_MAX_IFACES) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT,
                      "a stream carries at most %u interfaces", PS_MAX_IFACES);
  }
  /* The announcement must precede the packets: seal the batch so far,
   * and the announcement follows it. Without an active session, the
   * next one announces every interface first. */
  if ((rc = ps__stream_seal(s)) != 0 ||
      (rc = ps__stream_step(s, ps__stream_now(s))) != 0) {
    return rc;
  }
  ps__ssession_iface *f = &s->ifaces[id];
  if ((rc = copy_opts(s, f, &o)) != 0) {
    return rc;
  }
  if ((f->name = strdup(name)) == NULL) {
    free_opts(f);
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  f->linktype = linktype;
  f->snaplen = snaplen;
  f->tsres = tsres;
  s->env.n_ifaces = s->rq.n_ifaces = id + 1;
  if (s->state == ST_UP && ps__ssession_announce(&s->conn.sess, id) != 0) {
    return ps__stream_fail(
        s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
  }
  *out = id;
  ps__stream_spool_meta(&s->spool, &s->env);
  return ps__stream_step(s, ps__stream_now(s));
}

int ps_stream_send(ps_stream *s, const ps_packet *pkt) {
  int rc = ps__stream_check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (pkt == NULL || pkt->iface >= s->env.n_ifaces ||
      pkt->caplen > PS_MAX_CAPLEN || (pkt->caplen > 0 && pkt->data == NULL)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid packet (unknown interface %u or caplen %u "
                      "above %u)",
                      pkt ? pkt->iface : 0, pkt ? pkt->caplen : 0,
                      PS_MAX_CAPLEN);
  }
  size_t rec = PS_PKT_HDR + (size_t)pkt->caplen;
  size_t limit =
      s->batch_max < s->lim.max_batch_raw ? s->batch_max : s->lim.max_batch_raw;
  int64_t now = ps__stream_now(s);
  if (s->rq.batch_count > 0 &&
      (ps__buf_size(&s->rq.raw) + rec > limit ||
       s->rq.batch_count >= s->lim.max_batch_packets)) {
    if ((rc = ps__stream_seal(s)) != 0 || (rc = ps__stream_step(s, now)) != 0) {
      return rc;
    }
  }
  if (ps__replay_add(&s->rq, pkt, now) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  /* A full or due batch goes to the queue, and the connection takes what
   * it can now (one read of acknowledgements per batch, or a long stream
   * would fill the receiver's send queue with them). */
  if (ps__buf_size(&s->rq.raw) >= limit ||
      now - s->rq.batch_start_ms >= (int64_t)ps__stream_batch_delay(s)) {
    return (rc = ps__stream_seal(s)) != 0 ? rc : ps__stream_step(s, now);
  }
  if (s->state == ST_WAIT && now >= s->fo.next_ms) {
    return ps__stream_step(s, now);
  }
  return 0;
}

int ps_stream_flush(ps_stream *s) {
  int rc = ps__stream_check_open(s);
  if (rc == 0 && (rc = ps__stream_seal(s)) == 0) {
    rc = ps__stream_step(s, ps__stream_now(s));
  }
  return rc;
}

int ps_stream_has_room(ps_stream *s, uint32_t caplen) {
  return ps__replay_has_room(&s->rq, caplen, s->state == ST_UP);
}

int ps_stream_send_stats(ps_stream *s, uint32_t iface,
                         const ps_capture_stats *in, size_t size) {
  int rc = ps__stream_check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (iface >= s->env.n_ifaces) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "unknown interface %u", iface);
  }
  ps_capture_stats copy;
  const ps_capture_stats *stats = &copy;
  if (ps__copy_in(&copy, sizeof(copy), in, size,
                  PS__SIZE_TO(ps_capture_stats, overflow)) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "counters of %zu bytes: pass sizeof(ps_capture_stats) "
                      "of a zeroed struct",
                      size);
  }
  /* Counters describe the packets before them: seal those first. */
  if ((rc = ps__stream_seal(s)) != 0) {
    return rc;
  }
  ps__ssession_iface *f = &s->ifaces[iface];
  f->stats = *stats;
  f->stats.overflow =
      s->rq.ifc[iface].packets_dropped_overflow + s->rq.ifc[iface].packets_lost;
  f->has_stats = 1;
  if (s->state == ST_UP && ps__ssession_send_stats(&s->conn.sess, iface) != 0) {
    return ps__stream_fail(
        s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
  }
  return ps__stream_step(s, ps__stream_now(s));
}

int ps__stream_set_announce(ps_stream *s, const uint8_t *frame, size_t len) {
  uint8_t *copy = NULL;
  if (frame != NULL) {
    if ((copy = malloc(len)) == NULL) {
      return PS_ERR_NOMEM;
    }
    memcpy(copy, frame, len);
  }
  free((void *)s->env.announce);
  s->env.announce = copy;
  s->env.announce_len = copy ? len : 0;
  return 0;
}

int ps__stream_set_session_state(ps_stream *s, const uint8_t *frames,
                                 size_t len) {
  uint8_t *copy = NULL;
  if (frames != NULL) {
    if ((copy = malloc(len)) == NULL) {
      return PS_ERR_NOMEM;
    }
    memcpy(copy, frames, len);
  }
  free((void *)s->env.session_state);
  s->env.session_state = copy;
  s->env.session_state_len = copy ? len : 0;
  return 0;
}

void ps__stream_set_control(ps_stream *s,
                            void (*fn)(void *ud, const ps__frame *f),
                            void *ud) {
  s->env.on_control = fn;
  s->env.ctl_ud = ud;
}

int ps__stream_controllable(ps_stream *s) {
  return s->state == ST_UP && s->conn.sess.state == PS_SS_ACTIVE &&
         s->conn.sess.version >= 2;
}

int ps__stream_send_control(ps_stream *s, const uint8_t *frame, size_t len) {
  if (!ps__stream_controllable(s)) {
    return 0;
  }
  /* A state follows the packets it counts. */
  int rc = ps__stream_seal(s);
  if (rc != 0) {
    return rc;
  }
  if (ps__ssession_send_control(&s->conn.sess, frame, len) != 0) {
    return ps__stream_fail(
        s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
  }
  return ps__stream_step(s, ps__stream_now(s));
}
