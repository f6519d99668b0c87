/*
 * The sensor's stream inside: the struct behind ps_stream, shared by its
 * two files (ps_stream.c: settings, connections, failover, the waits;
 * ps_stream_send.c: interfaces, packets, counters), and the hook the
 * unit tests use. Nothing outside lib/ps_stream*.c and tests/ uses it:
 * ps_sensor and the library's users have the public API.
 */
#ifndef PS_STREAM_H
#define PS_STREAM_H

#include "ps_codec.h"
#include "ps_failover.h"
#include "ps_replay.h"
#include "ps_sconn.h"
#include "ps_ssession.h"
#include "ps_stream_spool.h"

#include <poll.h>
#include <signal.h>

/* Where a stream reads the time and waits: tests run it on a fake clock
 * (and step their peers while it "waits"). NULL members mean the real
 * ones (ps__now_ms(), poll()). */
typedef struct ps__stream_clock {
  int64_t (*now)(void *ud);
  int (*poll)(void *ud, struct pollfd *fds, unsigned n, int timeout_ms);
  void *ud;
} ps__stream_clock;

enum stream_state {
  ST_NEW,     /* settings */
  ST_ATTEMPT, /* connecting: TCP, TLS, the hello exchange */
  ST_UP,      /* the session streams */
  ST_WAIT,    /* waiting to try again */
  ST_CLOSED,  /* ended with everything acknowledged */
  ST_FAILED   /* ended for good */
};

struct ps_stream {
  enum stream_state state;
  char name[256];
  int level;
  size_t batch_max;
  unsigned delay_ms;
  /* A batch of fewer than PS_BATCH_GROW_PACKETS packets waits up to this
   * long instead (ps_stream_set_batch_max_delay_ms; 0: delay_ms). */
  unsigned max_delay_ms;
  unsigned connect_timeout_ms;
  ps_log_fn log;
  void *log_ud;
  ps__logex logex; /* ps_stream_set_log_ex() */
  int stop_fd;     /* eventfd, written by ps_stream_stop() */
  volatile sig_atomic_t stopped;
  ps__stream_clock clock; /* tests: a fake clock and poll */
  ps__ssession_env env;   /* what every session of the stream shares */
  ps__ssession_iface ifaces[PS_MAX_IFACES];
  ps__replay rq;  /* the batches, and the counters */
  ps__codec *cc;  /* the codec of the first connection */
  ps__limits lim; /* what we may send: from the last welcome */
  ps__failover fo;
  ps__sconn conn;      /* the connection being made or used */
  int worked;          /* the connection really worked (ps__ssession_worked) */
  uint64_t generation; /* connections made */
  int closing;         /* ps_stream_close() runs */
  ps__stream_spool spool;
  ps__tls_creds *tls_creds; /* set: connect with TLS */
  uint8_t *auth_key;
  size_t auth_len;
  char errmsg[PS_ERRMSG_MAX];
};

void ps__stream_set_clock(ps_stream *s, const ps__stream_clock *c);

/* The stream's clock. */
int64_t ps__stream_now(ps_stream *s);

/* 0 when the stream takes packets (connected once, not ended), else
 * PS_ERR_CLOSED (it failed) or PS_ERR_STATE with errmsg. */
int ps__stream_check_open(ps_stream *s);

/* Seals the open batch into the replay queue. */
int ps__stream_seal(ps_stream *s);

/* Does what is due at now without waiting (connections, reconnects,
 * reading and writing). Returns 0 or a final error. */
int ps__stream_step(ps_stream *s, int64_t now);

/* Protocol version 2, for ps_sensor: the ANNOUNCE frame every session
 * starts with (copied; NULL clears it), the handler of the receiver's
 * capture requests (see ps__ssession_env.on_control), and a
 * CAPTURE_STATE frame to send after the batches sealed so far (dropped
 * when no version 2 session is up: the receiver learns a capture's end
 * from its absence). Return 0 or PS_ERR_NOMEM. */
int ps__stream_set_announce(ps_stream *s, const uint8_t *frame, size_t len);
/* Frames every version 2 session sends after its interfaces and before
 * any batch (see ps__ssession_env.session_state; copied, NULL clears). */
int ps__stream_set_session_state(ps_stream *s, const uint8_t *frames,
                                 size_t len);
void ps__stream_set_control(ps_stream *s,
                            void (*fn)(void *ud, const ps__frame *f), void *ud);
int ps__stream_send_control(ps_stream *s, const uint8_t *frame, size_t len);
/* Whether the current session is version 2 and active. */
int ps__stream_controllable(ps_stream *s);

/* Ends the stream for good with code; what it holds is counted lost. */
int ps__stream_fail(ps_stream *s, int code);

/* How old the current batch may grow before it is sent: a quiet
 * stream's small batch waits longer, so one batch (one receive, one
 * acknowledgement at the receiver) carries more packets. */
#define PS_BATCH_GROW_PACKETS 64u
static inline unsigned ps__stream_batch_delay(const ps_stream *s) {
  return s->max_delay_ms > s->delay_ms &&
                 s->rq.batch_count < PS_BATCH_GROW_PACKETS
             ? s->max_delay_ms
             : s->delay_ms;
}

#endif
