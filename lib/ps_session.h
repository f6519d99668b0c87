/*
 * One sensor session on the receiver, sans I/O: bytes from the sensor go
 * in (ps__session_input), bytes for the sensor come out (the out buffer),
 * and decoded packets go to the sinks. The receiver's loop owns the
 * socket and the clock.
 */
#ifndef PS_SESSION_H
#define PS_SESSION_H

#include "ps_capture.h"
#include "ps_codec.h"
#include "ps_fleet.h"
#include "ps_proto.h"
#include "ps_sink.h"
#include "ps_streamtab.h"

#define PS_MAX_SINKS 8

typedef struct ps__sess_iface {
  ps_interface_info info;
  char name[256];
  /* Options of a version 2 announcement; their texts follow the struct
   * in the same allocation. */
  ps_interface_option opts[PS_MAX_IFACE_OPTS];
  void *slot[PS_MAX_SINKS];
  ps_capture_stats stats;
  int have_stats;
  ps__fleet_iface *fl; /* its counters in the fleet, or NULL */
  /* The capture on demand its packets belong to now (ps_capture.c
   * sets and clears it), or NULL. */
  struct ps__cap_target *cap;
  /* ... and, when that capture has an output of its own, its slot
   * there (ps_capture.c). */
  ps_sink *cap_sink;
  void *cap_slot;
} ps__sess_iface;

/* What a session shares with its receiver. */
typedef struct ps__session_env {
  ps_sink **sinks;
  unsigned n_sinks;
  ps__limits lim;
  ps_log_fn log;
  void *log_ud;
  const uint8_t *auth_key; /* NULL: no shared-key authentication */
  size_t auth_len;
  /* Set: batches are acknowledged by ps__session_ack() after the caller
   * flushed the sinks (once per loop round for all sessions); unset:
   * each batch is flushed and acknowledged at once. */
  int defer_acks;
  /* Set (with defer_acks) when an output keeps data only some time after
   * its flush (Kafka): the caller acknowledges with ps__session_ack_seq()
   * once it is kept, resent batches and the resume point wait for that
   * too. */
  int async_acks;
  /* Streams seen by this receiver (NULL: every connection stands alone,
   * as for sensors that send no stream id). */
  ps__streamtab *streams;
  /* Called when a sensor's stream arrives on a new connection while an
   * older one still holds it (a cut the receiver has not noticed): the
   * caller must end the old session (ps__session_end) before returning. */
  void (*supersede)(void *ud, struct ps__session *old);
  /* Called once the sensor is who it says (it proved the shared key, or
   * sent its hello when no key is asked), before it counts as a sensor
   * and before the sinks hear of it. takes_over: its stream is held by
   * an older connection, which ends when this one is taken (so the
   * sensor count does not grow). Returns 0 to take the sensor, or
   * PS_ERR_BUSY with the reason in s->errmsg: the session then refuses
   * the sensor with ERROR 520, which the sensor retries. NULL: every
   * sensor is taken. */
  int (*admit)(void *ud, struct ps__session *s, int takes_over);
  /* The sensors seen (NULL: none kept): every admitted session joins
   * its sensor's entry, counts its packets there and leaves it. */
  ps__fleet *fleet;
  /* Version 2: a sensor's CAPTURE_STATE (validated; the message points
   * into the frame, valid only during the call). NULL: ignored. */
  void (*on_capture_state)(void *ud, struct ps__session *s,
                           const ps__capture_state_msg *m);
  /* Version 2: an interface announced with the option capture.id (see
   * ps__captures_iface(), which it calls): 1 it is that capture's, 0
   * not (the option is dropped before any output sees it), or a
   * negative ps_error (errbuf) that ends the session. NULL: every such
   * option is dropped. */
  int (*on_capture_iface)(void *ud, struct ps__session *s, ps__sess_iface *ifc,
                          uint64_t id, char *errbuf);
  void *ud;
} ps__session_env;

enum ps__sess_state {
  PS_SESS_HELLO,  /* waiting for the sensor's hello */
  PS_SESS_AUTH,   /* waiting for the sensor's proof of the shared key */
  PS_SESS_ACTIVE, /* admitted (env->admit) and streaming */
  PS_SESS_DONE    /* closed cleanly or failed: flush out, then close */
};

typedef struct ps__session {
  enum ps__sess_state state;
  const ps__session_env *env;
  ps_session_info info;
  char sensor[256];
  char peer[80];
  char tls_subject[512];
  uint8_t rnonce[PS_NONCE_LEN];
  uint8_t snonce[PS_NONCE_LEN];
  uint8_t codec;
  uint16_t version; /* negotiated in the hello */
  ps__codec *cc;
  ps__buf in;
  ps__buf out;
  uint8_t *raw; /* decompression buffer */
  size_t raw_cap;
  uint64_t last_seq;   /* last batch written */
  uint64_t acked_sent; /* last batch acknowledged to the sensor */
  uint64_t stream_id;
  int has_stream;         /* the hello named a stream */
  ps__stream_ent *stream; /* while active with a stream */
  unsigned started;       /* how many sinks were told of the session */
  int clean_close;
  int ack_due;   /* a batch was taken but not yet acknowledged */
  int close_due; /* the sensor closed: confirm with the next acks */
  /* By interface id, n_slots of them (grown to the highest id announced:
   * most sensors have one or two, and thousands of sessions should not
   * keep 2 KiB of empty slots each). Read through ps__sess_ifc(). */
  ps__sess_iface **ifaces;
  unsigned n_slots;
  uint64_t packets, bytes, batches, duplicates;
  uint64_t missing;        /* batches the sensor never sent (dropped by it) */
  ps__fleet_sensor *fleet; /* its entry in env->fleet, while admitted */
  char errmsg[PS_ERRMSG_MAX];
} ps__session;

/* The interface id announced in s, or NULL. */
static inline ps__sess_iface *ps__sess_ifc(const ps__session *s, uint32_t id) {
  return id < s->n_slots ? s->ifaces[id] : NULL;
}

/* rnonce: PS_NONCE_LEN fresh random bytes for this session (the caller
 * draws them, so the session stays deterministic for tests). */
void ps__session_init(ps__session *s, const ps__session_env *env, uint64_t id,
                      const char *peer, const uint8_t *rnonce);

/* Records the verified TLS client certificate's subject (before the
 * hello), shown to sinks and logs. */
void ps__session_set_tls_subject(ps__session *s, const char *subject);

/*
 * Feeds bytes from the sensor. Returns 0 when all is well (frames may
 * have queued bytes in s->out), or a negative ps_error when the session
 * must end: the reason is in errmsg and, for the sensor's sake, an ERROR
 * frame is queued in out. PS_ERR_IO means an output failed (the
 * receiver's problem, not the sensor's).
 */
int ps__session_input(ps__session *s, const uint8_t *data, size_t len);

/* Zero-copy variant: ps__session_space() gives room for n bytes at the
 * end of the session's input buffer (NULL when out of memory); after
 * reading k <= n bytes there, ps__session_commit(s, k) processes them
 * like ps__session_input(). */
uint8_t *ps__session_space(ps__session *s, size_t n);
int ps__session_commit(ps__session *s, size_t k);

/* With env->defer_acks: queues the acknowledgement of everything taken
 * so far, once the caller has flushed the sinks. Returns 0 or an error
 * that ends the session. */
int ps__session_ack(ps__session *s);

/* With env->async_acks: acknowledges batches up to seq (at most
 * last_seq), now that the outputs keep them; the end-of-stream
 * confirmation goes out when seq is the last batch and the sensor
 * closed. */
int ps__session_ack_seq(ps__session *s, uint64_t seq);

/* Refuses the session (ERROR PS_ERR_REFUSED with the reason queued in
 * out, errmsg set, state DONE) if one of its interfaces writes to an
 * output that failed for good and dropped what it held
 * (ps__sink_ops.failed 1) or, with more (the session is about to write
 * more), that failed at all; the caller must then close it without
 * acknowledging anything more. Returns 0 or PS_ERR_REFUSED. */
int ps__session_check_outputs(ps__session *s, int more);

/* Ends the session: tells the sinks (with the last counters) and frees
 * everything but the struct. */
void ps__session_end(ps__session *s);

/* Gives back the memory a quiet session does not need now (buffers grow
 * to the largest batch seen); called when it has been idle a while. */
void ps__session_trim(ps__session *s);

/* Whether the session takes control frames (version 2, active). */
int ps__session_controllable(const ps__session *s);

/* Totals over the session's interfaces. */
void ps__session_totals(const ps__session *s, ps_capture_stats *out);

#endif
