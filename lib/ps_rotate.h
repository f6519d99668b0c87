/* Rotation: an output's files over time. A series is one sequence of
 * files (the whole output, one sensor's, and in classic pcap one link
 * type of it) under one format writer. Each file starts with the
 * format's header; it is closed and replaced by size (-C), time (-G) or
 * signal (SIGHUP, ps_sink_reopen()) - only in a flush, after a
 * successful write, so a rotation never splits what one flush wrote -
 * the oldest deleted past max_files (-W, a ring), and every file closed
 * is handed to the post-rotate command. */
#ifndef PS_ROTATE_H
#define PS_ROTATE_H

#include "ps_fileout.h"
#include "ps_fmt.h"
#include "ps_sink.h"

#include <signal.h>
#include <sys/types.h>
#include <time.h>

/* What the series of one output share: names, rules, children. */
typedef struct ps__files {
  ps_sink *sk; /* errmsg, log, on_open, failures */
  const ps__fmt *fmt;
  const ps__fmt_params *params;
  char *tmpl;  /* the path template */
  int literal; /* ps_pcap_sink/ps_pcapng_sink: path as is, truncated */
  int append;
  int split; /* one series per sensor */
  /* The template names {capture}: one series per capture on demand
   * (the interface option capture.id; "none" for other packets). */
  int by_capture;
  uint64_t rotate_bytes;
  unsigned rotate_seconds;
  unsigned max_files;
  char *post_rotate;
  volatile sig_atomic_t reopen; /* set by a signal handler */
  pid_t *children;              /* post-rotate commands running */
  unsigned n_children, cap_children;
} ps__files;

typedef struct ps__series {
  struct ps__series *next;
  char *sensor;      /* split: the sensor's name; else NULL */
  char *capture;     /* by_capture: the capture's id, or "none"; else NULL */
  uint32_t linktype; /* its first interface's (a sibling's name says it) */
  int has_linktype;
  int sibling;       /* not its output's first series for this sensor */
  unsigned n_active; /* interfaces using it now */
  ps__fmtw *w;
  ps__outfile f;
  ps__outnames names;
  int need_open;  /* a new file is due: opened at the next chance */
  int64_t period; /* -G: the period its file was opened in */
  int failed;     /* failed for good (ps__series_fail; 1 or 2) ... */
  char *fail_msg; /* ... and why: its sensors are refused */
  char **history; /* files it created in this run, oldest first */
  unsigned n_history, cap_history;
} ps__series;

/* A series with no file yet; NULL when out of memory. */
ps__series *ps__series_new(ps__files *fs, const char *sensor);
void ps__series_free(ps__series *se);

/* Builds se's header if it has none yet and the format can give it
 * (final: it must, see ps__fmt.header). 0 or PS_ERR_NOMEM. */
int ps__series_header(ps__files *fs, ps__series *se, int final);
/* Starts se's next file. The new file's header is built at once (the
 * interface ids of pcapng change here), even if the file itself cannot
 * be opened yet: then need_open says to try again at the next flush.
 * Returns as ps__outfile_open(). */
int ps__series_start(ps__files *fs, ps__series *se, int from_zero);
/* se can never be written as named (the reason is in errmsg): see
 * ps_rotate.c. */
void ps__series_fail(ps__files *fs, ps__series *se);
/* Writes what se holds, then rotates its file when due, or closes it
 * when its sensor left (remembered, to be taken up again). Returns 0,
 * an error that may pass (PS_ERR_IO, PS_ERR_NOMEM: retried at the next
 * flush) or PS_ERR_CLOSED (standard output or the pipe went away); a
 * file that cannot be written as named fails se alone (0). */
int ps__series_flush(ps__files *fs, ps__series *se, int reopen, time_t now);
/* The end: writes what se holds and closes its file. Returns 0 or the
 * first error. */
int ps__series_finish(ps__files *fs, ps__series *se);

/* Collects the post-rotate commands that ended, logging failures. */
void ps__files_reap(ps__files *fs);
void ps__files_free(ps__files *fs);

#endif
