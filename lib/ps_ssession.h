/*
 * One connection of a sensor's stream, sans I/O: the hello, the shared-key
 * proofs, the resume point, the interface announcements, batches fed
 * from the replay queue, acknowledgements, heartbeats, the receiver's
 * silence and the confirmed close, as explicit states. Bytes from the
 * receiver go in (ps__ssession_input), bytes for it come out of the out
 * buffer (ps__ssession_output tops it up), and the caller passes the clock
 * and the nonce in: the stream owns the socket, TLS and the clock, so this
 * is driven by scripted bytes in tests and by the fuzzer alike. The
 * receiver's side of the same exchange is ps_session.
 */
#ifndef PS_SSESSION_H
#define PS_SSESSION_H

#include "ps_proto.h"
#include "ps_replay.h"

/* An interface of the stream, announced at the start of every session. */
typedef struct ps__ssession_iface {
  char *name;
  /* Options sent with the announcement in version 2 sessions (keys and
   * values copied, "description" among them). */
  char *opt_key[PS_MAX_IFACE_OPTS];
  char *opt_value[PS_MAX_IFACE_OPTS];
  unsigned n_opts;
  uint32_t linktype;
  uint32_t snaplen;
  uint8_t tsres;
  int has_stats;
  ps_capture_stats stats; /* the latest, sent again on a new session */
} ps__ssession_iface;

/* What the sessions of one stream share; the stream owns it. */
typedef struct ps__ssession_env {
  const char *name; /* the sensor's */
  uint64_t stream_id;
  uint8_t codec_pref; /* offered besides stored */
  /* Set once batches are queued in codec: a receiver that would not take
   * it cannot take them. */
  int have_codec;
  uint8_t codec;
  const uint8_t *auth_key; /* NULL: no shared-key authentication */
  size_t auth_len;
  int tls;                 /* sessions run over TLS */
  int64_t peer_timeout_ms; /* a receiver silent this long is dead */
  uint32_t n_ifaces;
  const ps__ssession_iface *ifaces;
  ps__replay *rq;
  ps_log_fn log;
  void *log_ud;
  /* Protocol version 2. announce: a whole ANNOUNCE frame, sent at the
   * start of every version 2 session (NULL: none). on_control: called
   * with each control frame from the receiver (CAPTURE_START, _CHANGE,
   * _STOP), already validated; the handler copies what it keeps (the
   * frame lives only during the call). NULL: such frames are answered
   * with a refusal by the session itself. */
  const uint8_t *announce;
  size_t announce_len;
  /* Frames sent at the start of every version 2 session right after the
   * interfaces, before any batch, resent ones included (the sensor's
   * own capture, so the receiver attributes its packets from the
   * first); NULL: none. */
  const uint8_t *session_state;
  size_t session_state_len;
  void (*on_control)(void *ud, const ps__frame *f);
  void *ctl_ud;
} ps__ssession_env;

enum ps__ss_state {
  PS_SS_WELCOME, /* hello sent: waiting for the welcome */
  PS_SS_AUTH,    /* our proof sent: waiting for the receiver's */
  PS_SS_RESUME,  /* waiting for the resume point */
  PS_SS_ACTIVE,  /* streaming */
  PS_SS_CLOSED,  /* the receiver confirmed the end of the stream */
  PS_SS_FAILED   /* errmsg says why */
};

/* A frame other than BATCH, sent once every batch up to after_seq has
 * gone out (interfaces before their packets, counters after the packets
 * they count, CLOSE last). */
typedef struct ps__ss_ctl {
  struct ps__ss_ctl *next;
  uint64_t after_seq;
  size_t len;
  uint8_t bytes[];
} ps__ss_ctl;

typedef struct ps__ssession {
  enum ps__ss_state state;
  const ps__ssession_env *env;
  char host[256]; /* the receiver's, for messages */
  uint16_t port;
  uint8_t snonce[PS_NONCE_LEN];
  uint8_t rnonce[PS_NONCE_LEN];
  ps__limits lim;    /* what we may send: from the welcome */
  ps__limits in_lim; /* what we accept: receivers send only small frames */
  uint64_t session_id;
  uint8_t codec;    /* the receiver's choice */
  uint16_t version; /* the protocol version the receiver chose */
  ps__buf in;
  ps__buf out;
  ps__ss_ctl *ctl, **ctl_tail;
  int close_queued;
  uint64_t close_seq;
  int64_t timeout_ms; /* of the hello exchange */
  int64_t deadline_ms;
  int64_t last_read_ms;
  int64_t last_write_ms;
  int started;    /* reached the active state (it may have ended since) */
  uint64_t acks;  /* acknowledgements after the resume point */
  int peer_error; /* the code of the receiver's ERROR frame, 0 if none */
  /* The receiver acknowledged a batch not acknowledged before, answered
   * a heartbeat or confirmed the close: the connection really worked. */
  int worked;
  char errmsg[PS_ERRMSG_MAX];
} ps__ssession;

/* Starts a session with the receiver host port (named in messages): the
 * hello is queued in out, and the whole exchange must be over within
 * timeout_ms. snonce: PS_NONCE_LEN fresh random bytes (the caller draws
 * them, so the session stays deterministic for tests). Returns 0 or
 * PS_ERR_NOMEM. */
int ps__ssession_init(ps__ssession *s, const ps__ssession_env *env,
                      const char *host, uint16_t port, const uint8_t *snonce,
                      int64_t now_ms, int64_t timeout_ms);

void ps__ssession_free(ps__ssession *s);

/*
 * Feeds bytes from the receiver (the plaintext, after TLS). Returns 0, or
 * a negative ps_error when the session is over (state PS_SS_FAILED,
 * reason in errmsg): PS_ERR_REFUSED for the receiver's ERROR frame
 * (peer_error has its code), PS_ERR_BUSY for an ERROR that is the
 * receiver's passing state (520 full, 501 out of memory, 514 cannot
 * write: retried, not final), PS_ERR_AUTH, PS_ERR_TLS (it answered with
 * TLS), PS_ERR_PROTOCOL, PS_ERR_LIMIT, PS_ERR_NOMEM. Bytes after the end
 * are ignored.
 */
int ps__ssession_input(ps__ssession *s, const uint8_t *data, size_t len,
                       int64_t now_ms);

/* While active, copies frames from the queues to out, in order, while out
 * and backlog (bytes already on their way, e.g. TLS records) hold less
 * than a socket needs. Returns 0 or PS_ERR_NOMEM. */
int ps__ssession_output(ps__ssession *s, size_t backlog);

/* Whether the session has bytes to write now, or queued frames to feed. */
int ps__ssession_want_write(ps__ssession *s);

/* Bytes of out reached the wire at now_ms. */
void ps__ssession_wrote(ps__ssession *s, int64_t now_ms);

/* Checks the deadlines at now_ms: PS_ERR_TIMEOUT (the hello exchange took
 * too long, or the receiver fell silent), else 0; queues a heartbeat when
 * nothing was written for a while and nothing (backlog bytes) waits. */
int ps__ssession_tick(ps__ssession *s, int64_t now_ms, size_t backlog);

/* Milliseconds from now_ms to the next deadline of tick (>= 0), or -1
 * when the session has none. */
int64_t ps__ssession_next_deadline(const ps__ssession *s, int64_t now_ms);

/* While active, queue interface id's announcement, or its latest
 * counters, to follow every batch sealed so far. Returns 0 or
 * PS_ERR_NOMEM. */
int ps__ssession_announce(ps__ssession *s, uint32_t id);
int ps__ssession_send_stats(ps__ssession *s, uint32_t id);

/* Asks the receiver to confirm the end of the stream: CLOSE follows the
 * last batch, naming the last one it can have. Not before the resume
 * point settled what a broken connection left (then it returns 0 and
 * does nothing yet: call again). Returns 0 or PS_ERR_NOMEM. */
int ps__ssession_close(ps__ssession *s);

/* Version 2: queues the whole frame (len bytes, a CAPTURE_STATE) to
 * follow every batch sealed so far. Does nothing (returns 0) before the
 * session is active or with a version 1 receiver. Returns 0 or
 * PS_ERR_NOMEM. */
int ps__ssession_send_control(ps__ssession *s, const uint8_t *frame,
                              size_t len);

/* Whether the connection really worked (resets the stream's backoff):
 * the receiver acknowledged a batch not acknowledged before, answered a
 * heartbeat or confirmed the close. Set by those events, not by reaching
 * the active state: a receiver that welcomes the sensor and then breaks
 * the protocol has not worked. */
int ps__ssession_worked(const ps__ssession *s);

#endif
