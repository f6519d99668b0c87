/*
 * Captures on demand, on the receiver: the records the admin API
 * creates (POST /api/v1/captures), the sensors each one went to and what
 * each answered, and the packets this receiver took for it. Sans I/O: a
 * request becomes CAPTURE_START / _CHANGE / _STOP frames queued in the
 * sessions' output buffers (the receiver's kick() then writes them), and
 * the sensors' CAPTURE_STATE frames update the records.
 */
#ifndef PS_CAPTURE_H
#define PS_CAPTURE_H

#include "ps_fleet.h"
#include "ps_proto.h"

struct ps__session;

#define PS_MAX_CAPTURES 256u /* records kept; the oldest ended go first */
#define PS_SELECTOR_MAX_NAMES 64u
#define PS_CAPTURE_ANSWER_MS 5000 /* how long the API waits for sensors */

/* Which sensors a capture is for: any of the names (shell globs, as
 * fnmatch(3) without flags), and every label given (all must match).
 * No name: every sensor with the labels. */
typedef struct ps__selector {
  unsigned n_names;
  char names[PS_SELECTOR_MAX_NAMES][256];
  unsigned n_labels;
  ps__fleet_label labels[PS_FLEET_MAX_LABELS];
} ps__selector;

/* A request as the API validated it. */
typedef struct ps__capreq {
  ps__selector sel;
  char filter[PS_MAX_FILTER + 1];
  unsigned n_ifaces;
  char ifaces[PS_MAX_CAPTURE_IFACES][256];
  uint32_t snaplen, max_pps, sample_n;
  uint64_t duration_ms, count;
} ps__capreq;

enum ps__target_state {
  PS_T_PENDING,   /* asked, no answer yet */
  PS_T_RUNNING,   /* accepted */
  PS_T_REFUSED,   /* refused (reason) */
  PS_T_ENDED,     /* over (reason) */
  PS_T_NO_ANSWER, /* no answer in PS_CAPTURE_ANSWER_MS */
};

typedef struct ps__cap_target {
  char sensor[256];
  uint64_t wire_id; /* the sensor's id of it: the capture's, or its own */
  enum ps__target_state state;
  char reason[PS_ERRMSG_MAX];
  char change[PS_ERRMSG_MAX]; /* the answer to the last change */
  int change_pending;
  uint64_t packets, bytes;  /* this receiver took for the capture */
  uint64_t sensor_packets;  /* the sensor's count (its last state) */
  uint64_t sampled_out;     /* the sensor's (sampling, rate cap) */
  struct ps__session *sess; /* while connected and attributed */
  unsigned n_ifaces;        /* the session interfaces of its packets */
  uint32_t ifaces[PS_MAX_CAPTURE_IFACES];
} ps__cap_target;

typedef struct ps__capture {
  struct ps__capture *next;
  uint64_t id;
  int64_t created_ms; /* wall clock */
  ps__capreq req;
  unsigned n_t;
  ps__cap_target *t;
  int stop_requested;
  /* A capture the sensor runs on its own (its command line), which it
   * announced (PS_CAP_OWN): one target. read_only: that sensor takes no
   * remote control (no --allow-remote-capture), so it is only shown. */
  int own, read_only;
  /* The admin API's request waiting for the sensors' answers (opaque
   * here), and until when (monotonic ms). */
  void *waiter;
  int64_t answer_by_ms;
} ps__capture;

typedef struct ps__captures {
  ps__capture *head; /* newest first */
  unsigned n;
  uint64_t next_id;
  /* The receiver writes what a session has queued. */
  void (*kick)(void *ud, struct ps__session *s);
  /* All answers to a waiting request are in (or its time is up). */
  void (*answered)(void *ud, ps__capture *c);
  void *ud;
} ps__captures;

/* Whether sensor e is one the selector takes. Pure. */
int ps__selector_match(const ps__selector *sel, const ps__fleet_sensor *e);

/* Creates a capture for req and asks every matching sensor of fl (see
 * ps_capture.c for who is refused at once and why). *out: the record
 * (owned by cs). Returns 0, PS_ERR_NOMEM, or PS_ERR_INVALID when no
 * sensor matches (errbuf says so). */
int ps__captures_start(ps__captures *cs, ps__fleet *fl, const ps__capreq *req,
                       int64_t now_ms, ps__capture **out, char *errbuf);
ps__capture *ps__captures_find(ps__captures *cs, uint64_t id);
/* Asks every running sensor of c to change (what: PS_CHANGE_* bits). */
int ps__captures_change(ps__captures *cs, ps__capture *c, uint32_t what,
                        const char *filter, uint32_t sample_n, uint32_t max_pps,
                        int64_t now_ms);
/* Asks every running or pending sensor of c to stop. */
int ps__captures_stop(ps__captures *cs, ps__capture *c, int64_t now_ms);
/* Whether some sensor of c has not answered what it was asked last. */
int ps__capture_waiting(const ps__capture *c);
/* A CAPTURE_STATE from session s (a PS_CAP_OWN state makes the record
 * of the sensor's own capture, or finds it again after a reconnect). */
void ps__captures_on_state(ps__captures *cs, struct ps__session *s,
                           const ps__capture_state_msg *m);
/* Session s ends: its targets lose their session. */
void ps__captures_session_end(ps__captures *cs, struct ps__session *s);
/* Requests waiting past their time are answered (NO_ANSWER). */
void ps__captures_tick(ps__captures *cs, int64_t now_ms);
void ps__captures_free(ps__captures *cs);

const char *ps__target_state_name(enum ps__target_state st);

/* One packet of caplen bytes taken for target t. */
static inline void ps__capture_count(ps__cap_target *t, uint32_t caplen) {
  t->packets++;
  t->bytes += caplen;
}

#endif
