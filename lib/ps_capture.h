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
#include "ps_sink.h"

struct ps__session;
struct ps__sess_iface;

#define PS_MAX_CAPTURES 256u /* records kept; the oldest ended go first */
#define PS_SELECTOR_MAX_NAMES 64u
#define PS_CAPTURE_ANSWER_MS 5000   /* how long the API waits for sensors */
#define PS_CAPTURE_OUTPUT_MAX 1024u /* an "output" template's bytes */
#define PS_CAPTURE_MAX_PATHS 16u    /* its files shown (GET), kept */

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
  /* The capture's own file ("output"): the template as given, "" for
   * none (its packets go to the receiver's outputs only). */
  char output[PS_CAPTURE_OUTPUT_MAX + 1];
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
  uint64_t packets, bytes; /* this receiver took for the capture */
  uint64_t sensor_packets; /* the sensor's count (its last state) */
  uint64_t sampled_out;    /* the sensor's (sampling, rate cap) */
  /* The sensor stream and its last batch counted in packets: a batch
   * is counted once, also when it comes again after a restart (kept in
   * the state with the counts). */
  uint64_t stream, seq;
  struct ps__capture *c;    /* the capture it is of */
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
  /* With an output: its sink (a file sink of the template, {capture}
   * filled in), open while interfaces write to it or it holds data;
   * the interfaces on it; the files it opened (what GET shows). */
  ps_sink *sink;
  unsigned n_slots;
  int sink_opened; /* once: a later sink continues its files */
  void *owner;     /* the receiver, for the sink's callbacks */
  int counted;     /* packets counted since its state was last kept */
  unsigned n_paths;
  char *paths[PS_CAPTURE_MAX_PATHS];
} ps__capture;

typedef struct ps__captures {
  ps__capture *head; /* newest first */
  unsigned n;
  uint64_t next_id;
  /* The receiver writes what a session has queued. */
  void (*kick)(void *ud, struct ps__session *s);
  /* All answers to a waiting request are in (or its time is up). */
  void (*answered)(void *ud, ps__capture *c);
  /* Opens c->sink for a capture with an output, NULL: none. Returns 0,
   * or an error with the reason in errbuf. */
  int (*open_sink)(void *ud, ps__capture *c, char *errbuf);
  void *ud;
  /* Something worth keeping changed (for the receiver's state file):
   * 1 a record or state, 2 counts only. Cleared by its writer. */
  int dirty;
} ps__captures;

/* Checks an "output" template: 1..PS_CAPTURE_OUTPUT_MAX bytes, no
 * control byte, no ".." component, no directory, fields {sensor} and
 * {capture} only, and with dir (the capture directory) an absolute one
 * only under it. 0, or PS_ERR_INVALID with the reason. Pure. */
int ps__capture_output_check(const char *tmpl, const char *dir, char *errbuf);
/* The file template of capture id: tmpl under dir (unless absolute),
 * {capture} filled in (strftime conversions and {sensor} stay, for the
 * file sink). malloc'ed, NULL when out of memory. Pure. */
char *ps__capture_output_path(const char *dir, const char *tmpl, uint64_t id);

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
/* Interface ifc of session s was announced with the option capture.id
 * = id: its packets are that capture's if s's sensor is one of its
 * targets (also after the capture ended: a batch resent later is still
 * its). Returns 1 if so, 0 if not (the caller drops the option), or a
 * negative ps_error when the capture's output cannot take it (errbuf). */
int ps__captures_iface(ps__captures *cs, struct ps__session *s,
                       struct ps__sess_iface *ifc, uint64_t id, char *errbuf);
/* Interface ifc of s goes away: it leaves its capture's output. */
void ps__capture_iface_gone(struct ps__session *s, struct ps__sess_iface *ifc);
/* After a commit of the outputs: the output of a capture that is over
 * and has no interface on it is closed (a later one continues it). */
void ps__captures_close_idle(ps__captures *cs);
/* Whether c is over (no sensor pending or running). */
int ps__capture_over(const ps__capture *c);
/* Records path as one of c's files (once). */
void ps__capture_add_path(ps__capture *c, const char *path);
/* Adds a record restored from the state file (ids, requests, targets
 * and counts); next_id is kept at least at its id. Returns 0 or
 * PS_ERR_NOMEM. */
int ps__captures_restore(ps__captures *cs, ps__capture *c);
/* The records as the receiver's state file keeps them (JSON text,
 * malloc'ed; NULL when out of memory), and back: ps__captures_load
 * checks the whole text before it adds anything (0, or PS_ERR_INVALID
 * with the reason). Pure (ps_capstate.c). */
char *ps__captures_dump(const ps__captures *cs);
int ps__captures_load(ps__captures *cs, const char *text, size_t len,
                      char *errbuf);
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
  t->c->counted = 1;
}

#endif
