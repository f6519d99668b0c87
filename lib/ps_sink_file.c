/* File sinks: classic pcap (one file per link type) and pcapng, to a path
 * template (strftime conversions, {sensor}), optionally one set of files
 * per sensor, rotated by size, time or signal into a ring of files.
 *
 * Records are serialised into a buffer and written with one write(2) per
 * flush. A buffer only ever holds whole records, and a failed write is
 * cut back (ftruncate) to the last whole record on disk while the buffer
 * keeps everything for the next flush: a full disk delays the output but
 * never corrupts it. Files are closed and opened only in flush, after a
 * successful write, so a rotation never splits what one flush wrote. */
#include "config.h"

#include "ps_fileout.h"
#include "ps_fmt.h"
#include "ps_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_HIGH_WATER (1u << 20)
#define MAX_LINKTYPES 32

typedef struct series series;

/* What a session holds for each of its interfaces. A sink freed while
 * interfaces are still on it (no iface_end) frees theirs too. */
typedef struct fs_slot {
  struct fs_slot *prev, *next;
  series *se;
  void *fmt; /* the format's state of the interface (its writer's) */
} fs_slot;

/* A sequence of files: the whole output, or one sensor's (split), and
 * where the format holds one link type, one link type of it. */
struct series {
  series *next;
  char *sensor;       /* split: the sensor's name; else NULL */
  uint32_t linktype;  /* its first interface's (a sibling's name says it) */
  int has_linktype;
  int sibling;        /* not its output's first series for this sensor */
  unsigned n_active;  /* interfaces using it now */
  ps__fmtw *w;        /* the format's state */
  ps__outfile f;
  int need_open;      /* a new file is due: opened at the next chance */
  int64_t period;     /* -G: the period its file was opened in */
  ps__outnames names; /* for its next file's name */
  int failed;         /* failed for good (series_fail; 1 or 2) ... */
  char *fail_msg;     /* ... and why: its sensors are refused */
  char **history;     /* files it created in this run, oldest first */
  unsigned n_history, cap_history;
};

typedef struct file_sink {
  ps_sink base;
  const ps__fmt *fmt;
  ps__fmt_params params;
  int append;
  int literal;        /* ps_pcap_sink/ps_pcapng_sink: path as is, truncated */
  int split;
  uint64_t rotate_bytes;
  unsigned rotate_seconds;
  unsigned max_files;
  char *post_rotate;
  char *tmpl;
  series *series;
  fs_slot *slots; /* every interface's, freed with the sink */
  volatile sig_atomic_t reopen;
  int noted; /* the format's remark on an interface was logged */
  int closed;
  int gone; /* standard output or a pipe failed for good */
  char gone_msg[PS_ERRMSG_MAX];
  pid_t *children;
  unsigned n_children, cap_children;
} file_sink;

static const ps__sink_ops file_ops;

/* ---------------- post-rotate commands ---------------- */

static void reap_children(file_sink *fs) {
  for (unsigned i = 0; i < fs->n_children;) {
    int st;
    pid_t p = waitpid(fs->children[i], &st, WNOHANG);
    if (p == 0) {
      i++;
      continue;
    }
    if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      char how[64];
      if (WIFEXITED(st)) {
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(st));
      } else {
        snprintf(how, sizeof(how), "was killed by signal %d",
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
      }
      ps__sink_log(&fs->base, PS_LOG_WARNING,
                   "post-rotate command (process %ld) %s",
                   (long)fs->children[i], how);
    }
    fs->children[i] = fs->children[--fs->n_children];
  }
}

/* Runs "CMD FILE" through /bin/sh without waiting. The file name is the
 * shell's $1, never part of the command text, so no name can inject
 * shell syntax. */
static void post_rotate(file_sink *fs, const char *path) {
  if (fs->post_rotate == NULL) {
    return;
  }
  reap_children(fs);
  if (fs->n_children == fs->cap_children) {
    unsigned cap = fs->cap_children ? fs->cap_children * 2 : 8;
    pid_t *p = realloc(fs->children, cap * sizeof(*p));
    if (p == NULL) {
      ps__sink_log(&fs->base, PS_LOG_ERROR,
                   "out of memory: post-rotate command not run for %s", path);
      return;
    }
    fs->children = p;
    fs->cap_children = cap;
  }
  size_t n = strlen(fs->post_rotate) + 8;
  char *script = malloc(n);
  if (script == NULL) {
    return;
  }
  snprintf(script, n, "%s \"$1\"", fs->post_rotate);
  pid_t pid = fork();
  if (pid == 0) {
    /* Only async-signal-safe calls between fork and exec. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execl("/bin/sh", "sh", "-c", script, "sh", path, (char *)NULL);
    _exit(127);
  }
  free(script);
  if (pid < 0) {
    ps__sink_log(&fs->base, PS_LOG_WARNING,
                 "cannot run the post-rotate command for %s: fork: %s", path,
                 strerror(errno));
    return;
  }
  ps__sink_log(&fs->base, PS_LOG_DEBUG, "post-rotate: %s %s (process %ld)",
               fs->post_rotate, path, (long)pid);
  fs->children[fs->n_children++] = pid;
}

/* ---------------- names ---------------- */

static void linktype_tag(char *out, size_t n, uint32_t linktype) {
  const char *name = ps__linktype_name(linktype);
  if (name != NULL && (linktype & 0xfc000000u) == 0) {
    snprintf(out, n, "%s", name);
  } else {
    snprintf(out, n, "LINKTYPE_%u", linktype);
  }
}

/* The name of se's next file before numbering: the template expanded at
 * now, the sensor inserted when the template does not name it, the link
 * type for a sibling. */
static char *base_path(file_sink *fs, series *se, time_t now) {
  char *p;
  if (fs->literal) {
    p = strdup(fs->tmpl);
  } else {
    struct tm tm;
    localtime_r(&now, &tm);
    p = ps__path_expand(fs->tmpl, &tm, se->sensor);
  }
  if (p != NULL && se->sensor != NULL && strstr(fs->tmpl, "{sensor}") == NULL) {
    char name[256];
    ps__name_for_file(name, sizeof(name), se->sensor);
    char *q = ps__path_insert(p, name);
    free(p);
    p = q;
  }
  if (p != NULL && se->sibling) {
    char lt[64];
    linktype_tag(lt, sizeof(lt), se->linktype);
    char *q = ps__path_insert(p, lt);
    free(p);
    p = q;
  }
  return p;
}

/* ---------------- opening files ---------------- */

static int history_add(file_sink *fs, series *se, const char *path) {
  /* A name used again (a reopen after logrotate moved the file away) is
   * the newest file now. */
  for (unsigned i = 0; i < se->n_history; i++) {
    if (strcmp(se->history[i], path) == 0) {
      char *h = se->history[i];
      memmove(se->history + i, se->history + i + 1,
              (se->n_history - i - 1) * sizeof(*se->history));
      se->history[se->n_history - 1] = h;
      return 0;
    }
  }
  if (se->n_history == se->cap_history) {
    unsigned cap = se->cap_history ? se->cap_history * 2 : 8;
    char **h = realloc(se->history, cap * sizeof(*h));
    if (h == NULL) {
      return ps__seterr(fs->base.errmsg, PS_ERR_NOMEM, "out of memory");
    }
    se->history = h;
    se->cap_history = cap;
  }
  if ((se->history[se->n_history] = strdup(path)) == NULL) {
    return ps__seterr(fs->base.errmsg, PS_ERR_NOMEM, "out of memory");
  }
  se->n_history++;
  return 0;
}

/* -W: a ring of files, the oldest deleted once a newer one holds packets
 * (so a file rotation opened but never used costs no older file). */
static void ring_prune(file_sink *fs, series *se) {
  while (fs->max_files > 0 && se->n_history > fs->max_files) {
    if (unlink(se->history[0]) == 0) {
      ps__sink_log(&fs->base, PS_LOG_INFO,
                   "deleted %s: at most %u files are kept", se->history[0],
                   fs->max_files);
    } else if (errno != ENOENT) {
      ps__sink_log(&fs->base, PS_LOG_WARNING,
                   "cannot delete %s (at most %u files are kept): %s",
                   se->history[0], fs->max_files, strerror(errno));
    }
    free(se->history[0]);
    memmove(se->history, se->history + 1,
            --se->n_history * sizeof(*se->history));
  }
}

/* Builds se's header if it has none yet and the format can give it
 * (final: it must, see ps__fmt.header). 0 or PS_ERR_NOMEM. */
static int series_header(file_sink *fs, series *se, int final) {
  if (se->f.has_header) {
    return 0;
  }
  int h = fs->fmt->header(se->w, &se->f.hdr, final);
  if (h < 0) {
    return ps__seterr(fs->base.errmsg, PS_ERR_NOMEM, "out of memory");
  }
  se->f.has_header = h;
  return 0;
}

/* Opens se's next file (see ps__outfile_open()); its header is built. */
static int open_file(file_sink *fs, series *se, int from_zero) {
  time_t now = time(NULL);
  char *base = base_path(fs, se, now);
  if (base == NULL) {
    return ps__seterr(fs->base.errmsg, PS_ERR_NOMEM, "out of memory");
  }
  if (fs->rotate_seconds > 0) {
    se->period = (int64_t)now / fs->rotate_seconds;
  }
  ps__outfile_how how = {
      .literal = fs->literal,
      .append = fs->append,
      .as_is = !fs->literal && !fs->split && !se->sibling &&
               strcmp(base, fs->tmpl) == 0,
      .from_zero = from_zero,
      .w = se->w,
      .made = se->history,
      .n_made = se->n_history,
  };
  int made;
  int rc = ps__outfile_open(&fs->base, &se->f, &se->names, base, &how, &made);
  if (rc == 0 && made) {
    rc = history_add(fs, se, se->f.path);
  }
  return rc;
}

/* Closes se's file (everything in it is written) and runs the
 * post-rotate command on it. keep: remember it to take it up again. */
static int close_file(file_sink *fs, series *se, int keep) {
  ps__outfile *o = &se->f;
  uint64_t size = o->size;
  int rc = ps__outfile_close(&fs->base, o);
  if (o->path != NULL && !o->is_stdout) {
    post_rotate(fs, o->path);
  }
  ps__outnames *nm = &se->names;
  free(nm->last_path);
  nm->last_path = NULL;
  if (keep && o->path != NULL) {
    nm->last_path = o->path;
    nm->last_size = size;
    nm->last_dev = o->dev;
    nm->last_ino = o->ino;
  } else {
    free(o->path);
  }
  o->path = NULL;
  return rc;
}

/* Starts se's next file. The new file's header is built at once (the
 * interface ids of pcapng change here), even if the file itself cannot
 * be opened yet: then need_open says to try again at the next flush. */
static int start_file(file_sink *fs, series *se, int from_zero) {
  ps__buf_reset(&se->f.hdr);
  se->f.has_header = 0;
  if (series_header(fs, se, 0) != 0) {
    return PS_ERR_NOMEM;
  }
  int rc = open_file(fs, se, from_zero);
  se->need_open = rc != 0;
  return rc;
}

/* se's file can never be written as named (ps__fileout_errno_final; the
 * reason is
 * in errmsg): its file is closed (whole records only, as after any
 * failed write), what it held is dropped - never acknowledged, for its
 * sensors are refused (fs_failed) - and it is left out until an
 * interface comes to it with nobody else on it: that one tries again
 * (the cause may be gone: a directory made, a permission given). When
 * it held nothing (a rotation's new file failed after everything was
 * written) what its sensors sent is acknowledged, and they are refused
 * when they send more. */
static void series_fail(file_sink *fs, series *se) {
  ps__outfile *o = &se->f;
  se->failed = ps__buf_size(&o->buf) > 0 ? 1 : 2;
  ps__sink_log(
      &fs->base, PS_LOG_ERROR,
      "%s: this output cannot be written; refusing the sensors written "
      "to it (the others go on)",
      fs->base.errmsg);
  free(se->fail_msg);
  se->fail_msg = strdup(fs->base.errmsg);
  /* Closed without a word: errmsg says why it failed. */
  if (o->fd >= 0 && o->fd != STDOUT_FILENO) {
    close(o->fd);
  }
  o->fd = -1;
  uint64_t size = o->size;
  ps__outfile_close(&fs->base, o);
  if (o->path != NULL && size > 0) {
    post_rotate(fs, o->path);
  }
  free(o->path);
  o->path = NULL;
  o->write_failed = 0;
  o->rotated = 0;
  se->need_open = 0;
  fs->base.failures++;
}

/* Standard output, or the named pipe or device -w names, can never be
 * written again (its reader left): nothing more is taken, and flush and
 * close say so (PS_ERR_CLOSED), so the receiver stops. */
static void output_gone(file_sink *fs, series *se) {
  snprintf(fs->gone_msg, sizeof(fs->gone_msg), "%s", fs->base.errmsg);
  fs->gone = 1;
  ps__buf_free(&se->f.buf);
  ps__buf_free(&se->f.hdr);
}

/* ---------------- series ---------------- */

static series *series_new(file_sink *fs, const char *sensor) {
  series *se = calloc(1, sizeof(*se));
  if (se == NULL) {
    return NULL;
  }
  se->f.fd = -1;
  if ((sensor != NULL && (se->sensor = strdup(sensor)) == NULL) ||
      (se->w = fs->fmt->create(fs->fmt, &fs->params)) == NULL) {
    free(se->sensor);
    free(se);
    return NULL;
  }
  series **pp = &fs->series;
  while (*pp != NULL) {
    pp = &(*pp)->next;
  }
  *pp = se;
  return se;
}

static void series_free(series *se) {
  free(se->f.path);
  ps__buf_free(&se->f.buf);
  ps__buf_free(&se->f.hdr);
  free(se->sensor);
  ps__outnames_free(&se->names);
  free(se->fail_msg);
  for (unsigned i = 0; i < se->n_history; i++) {
    free(se->history[i]);
  }
  free(se->history);
  se->w->fmt->destroy(se->w);
  free(se);
}

static int same_key(const series *se, const char *sensor) {
  return se->sensor == NULL ? sensor == NULL
                            : sensor != NULL && strcmp(se->sensor, sensor) == 0;
}

/* The series a new interface joins. */
static int series_for(file_sink *fs, const ps_session_info *s,
                      const ps_interface_info *ifc, series **out) {
  const ps__fmt *fmt = fs->fmt;
  const char *key = fs->split ? s->sensor : NULL;
  series *se = NULL, *first = NULL;
  unsigned n_key = 0;
  for (series *x = fs->series; x != NULL; x = x->next) {
    if (!same_key(x, key)) {
      continue;
    }
    n_key++;
    if (first == NULL) {
      first = x;
    }
    if (fmt->accepts(x->w, ifc->linktype)) {
      se = x;
      break;
    }
  }
  if (se == NULL) {
    if (first != NULL && first->f.is_stdout) {
      return ps__seterr(
          fs->base.errmsg, PS_ERR_LINKTYPE,
          "interface %s/%s has link type %s (%u) but the %s stream on "
          "standard output is %s (%u); classic pcap holds one link type: "
          "use --format pcapng",
          s->sensor, ifc->name, ps__linktype_name(ifc->linktype) ?: "unknown",
          ifc->linktype, fmt->name,
          ps__linktype_name(first->linktype) ?: "unknown", first->linktype);
    }
    if (n_key >= MAX_LINKTYPES) {
      return ps__seterr(fs->base.errmsg, PS_ERR_LIMIT,
                        "too many link types for %s output (%u)", fmt->name,
                        MAX_LINKTYPES);
    }
    if ((se = series_new(fs, key)) == NULL) {
      return ps__seterr(fs->base.errmsg, PS_ERR_NOMEM, "out of memory");
    }
    se->sibling = first != NULL;
  }
  *out = se;
  return 0;
}

/* After an interface joined se: make sure se has a file. A file that
 * cannot be opened now for a reason that may pass is retried at each
 * flush (the flush reports it), so a full disk delays sensors instead of
 * refusing them. One that can never be created under its name fails se
 * and refuses the interface: PS_ERR_REFUSED. */
static int series_ensure_file(file_sink *fs, series *se,
                              const ps_session_info *s,
                              const ps_interface_info *ifc) {
  if (se->f.fd >= 0 || se->need_open) {
    /* A stream begun before its header could be written (classic pcap
     * on standard output) gets it from the first interface. */
    return series_header(fs, se, 0);
  }
  int rc = start_file(fs, se, 0);
  if (rc == PS_ERR_REFUSED) {
    series_fail(fs, se);
    return ps__seterr(fs->base.errmsg, PS_ERR_REFUSED,
                      "the receiver cannot write this sensor's output: %s",
                      se->fail_msg ? se->fail_msg : "no file");
  }
  if (rc != 0) {
    ps__sink_log(&fs->base, PS_LOG_ERROR,
                 "%s (for %s/%s; retried at the next flush)", fs->base.errmsg,
                 s->sensor, ifc->name);
    return 0;
  }
  if (se->sibling) {
    ps__sink_log(&fs->base, PS_LOG_INFO,
                 "sensor %s interface %s has link type %s (%u), unlike %s: "
                 "writing it to %s",
                 s->sensor, ifc->name,
                 ps__linktype_name(ifc->linktype) ?: "unknown", ifc->linktype,
                 fs->tmpl, se->f.path);
  }
  return 0;
}

/* ---------------- sink operations ---------------- */

static int refused(ps_sink *sk, const series *se) {
  return ps__seterr(sk->errmsg, PS_ERR_REFUSED,
                    "the receiver cannot write this sensor's output: %s",
                    se->fail_msg ? se->fail_msg : "no file");
}

static int fs_iface(ps_sink *sk, const ps_session_info *s,
                    const ps_interface_info *ifc, void **slot) {
  file_sink *fs = (file_sink *)sk;
  const ps__fmt *fmt = fs->fmt;
  series *se = NULL;
  int rc = series_for(fs, s, ifc, &se);
  if (rc != 0) {
    return rc;
  }
  if (se->failed) {
    if (se->n_active > 0) {
      /* Its sensors are being refused: this one joins them. */
      return refused(sk, se);
    }
    se->failed = 0;
  }
  fs_slot *sl = calloc(1, sizeof(*sl));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char note[400];
  /* A file that has its header gets what the format needs for a new
   * interface at once; otherwise the header lists it. */
  if (sl == NULL ||
      fmt->join(se->w, s, ifc, &now, se->f.has_header ? &se->f.buf : NULL,
                &sl->fmt, note, sizeof(note)) != 0) {
    free(sl);
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  sl->se = se;
  if (!se->has_linktype) {
    se->linktype = ifc->linktype;
    se->has_linktype = 1;
  }
  se->n_active++;
  if ((rc = series_ensure_file(fs, se, s, ifc)) != 0) {
    /* Refused: the session never gets this slot, nor its iface_end. */
    fmt->leave(se->w, sl->fmt);
    se->n_active--;
    free(sl);
    return rc;
  }
  sl->next = fs->slots;
  if (fs->slots != NULL) {
    fs->slots->prev = sl;
  }
  fs->slots = sl;
  *slot = sl;
  if (note[0] != '\0' && !fs->noted) {
    fs->noted = 1;
    ps__sink_log(&fs->base, PS_LOG_INFO, "%s", note);
  }
  return 0;
}

static int fs_check(ps_sink *sk, const ps_interface_info *ifc,
                    const ps_packet *pkt) {
  file_sink *fs = (file_sink *)sk;
  return fs->fmt->check(&fs->params, ifc, pkt, sk->errmsg);
}

static int fs_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                     const ps_interface_info *ifc, const ps_packet *pkt) {
  file_sink *fs = (file_sink *)sk;
  fs_slot *sl = slot;
  series *se = sl->se;
  (void)s;
  if (se->failed) {
    return refused(sk, se);
  }
  if (fs->gone) {
    return 0; /* nothing more is written, nor acknowledged */
  }
  int rc = fs->fmt->record(se->w, sl->fmt, ifc, pkt, &se->f.buf);
  if (rc == PS_ERR_INVALID) {
    /* The session checks every packet first (fs_check): only a caller
     * that skipped that gets here. */
    return fs_check(sk, ifc, pkt) ? PS_ERR_PROTOCOL
                                  : ps__seterr(sk->errmsg, PS_ERR_PROTOCOL,
                                               "packet caplen %u above %u",
                                               pkt->caplen, PS_MAX_CAPLEN);
  }
  if (rc != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  se->f.packets++;
  /* A large round is written as it goes (whole records: the buffer holds
   * nothing else). A failure waits for the flush, which reports it. */
  if (ps__buf_size(&se->f.buf) >= OUT_HIGH_WATER && !se->f.write_failed) {
    ps__outfile_write(&fs->base, &se->f);
  }
  return 0;
}

static void fs_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                         const ps_interface_info *ifc,
                         const ps_capture_stats *st) {
  file_sink *fs = (file_sink *)sk;
  fs_slot *sl = slot;
  if (sl == NULL) {
    return;
  }
  series *se = sl->se;
  if (st != NULL && !se->failed && !fs->gone) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (fs->fmt->stats(se->w, sl->fmt, st, &now, &se->f.buf) != 0) {
      ps__sink_log(&fs->base, PS_LOG_ERROR,
                   "out of memory writing statistics of %s/%s", s->sensor,
                   ifc->name);
    }
  }
  fs->fmt->leave(se->w, sl->fmt);
  se->n_active--;
  if (sl->prev != NULL) {
    sl->prev->next = sl->next;
  } else {
    fs->slots = sl->next;
  }
  if (sl->next != NULL) {
    sl->next->prev = sl->prev;
  }
  free(sl);
}

/* Whether se's file is done with, after a successful write: 1 rotate,
 * 2 close (its sensor left), 0 keep. */
static int due(file_sink *fs, series *se, int reopen, time_t now) {
  ps__outfile *o = &se->f;
  if (o->fd < 0 || o->is_stdout || !o->has_header) {
    return 0;
  }
  if (fs->split && se->n_active == 0) {
    return 2;
  }
  if (reopen) {
    return 1;
  }
  if (fs->rotate_bytes > 0 && o->size >= fs->rotate_bytes && o->packets > 0) {
    return 1;
  }
  /* An idle output keeps its file rather than a string of empty ones. */
  if (fs->rotate_seconds > 0 && o->packets > 0 &&
      (int64_t)now / fs->rotate_seconds != se->period) {
    return 1;
  }
  return 0;
}

static int fs_flush(ps_sink *sk) {
  file_sink *fs = (file_sink *)sk;
  int reopen = fs->reopen != 0, rc = 0;
  time_t now = time(NULL);
  if (fs->n_children > 0) {
    reap_children(fs);
  }
  if (fs->gone) {
    return ps__seterr(sk->errmsg, PS_ERR_CLOSED, "%s", fs->gone_msg);
  }
  for (series *se = fs->series; se != NULL; se = se->next) {
    int r = 0;
    if (se->failed) {
      continue;
    }
    if (se->need_open) {
      r = open_file(fs, se, reopen);
      se->need_open = r != 0;
    }
    if (r == 0) {
      r = ps__outfile_write(&fs->base, &se->f);
    }
    if (r == PS_ERR_REFUSED && se->f.is_stdout) {
      output_gone(fs, se);
      return ps__seterr(sk->errmsg, PS_ERR_CLOSED, "%s", fs->gone_msg);
    }
    if (r == PS_ERR_REFUSED) {
      series_fail(fs, se);
      continue;
    }
    if (r != 0) {
      rc = rc ? rc : r;
      continue;
    }
    se->f.flushed = se->f.size;
    if (se->f.packets > 0) {
      ring_prune(fs, se);
    }
    int d = due(fs, se, reopen, now);
    if (d == 0) {
      continue;
    }
    r = close_file(fs, se, d == 2);
    if (r == 0 && d == 1) {
      r = start_file(fs, se, reopen);
      se->f.rotated = 1;
      if (r == 0) {
        r = ps__outfile_write(&fs->base, &se->f);
      }
    }
    if (r == PS_ERR_REFUSED) {
      /* The rotation's new name cannot be created (or written). */
      series_fail(fs, se);
    } else if (r != 0) {
      rc = rc ? rc : r;
    }
  }
  if (reopen && rc == 0) {
    fs->reopen = 0;
  }
  return rc;
}

static int fs_failed(ps_sink *sk, void *slot, char *why, size_t len) {
  const series *se = ((fs_slot *)slot)->se;
  (void)sk;
  if (!se->failed) {
    return 0;
  }
  snprintf(why, len, "the receiver cannot write this sensor's output: %s",
           se->fail_msg ? se->fail_msg : "no file");
  return se->failed;
}

static unsigned fs_marks(ps_sink *sk, ps__file_mark *out, unsigned max) {
  file_sink *fs = (file_sink *)sk;
  unsigned n = 0;
  for (series *se = fs->series; se != NULL && n < max; se = se->next) {
    ps__outfile *o = &se->f;
    if (o->fd >= 0 && !o->is_stdout && o->has_header &&
        ps__buf_size(&o->hdr) == 0) {
      out[n].path = o->path;
      out[n].size = o->flushed;
      out[n].fd = o->fd;
      n++;
    }
  }
  return n;
}

static int fs_close(ps_sink *sk) {
  file_sink *fs = (file_sink *)sk;
  if (fs->closed) {
    return 0;
  }
  fs->closed = 1;
  int rc = 0;
  if (!fs->split && !fs->append && fs->series == NULL) {
    /* No interface ever came: still leave a valid, empty capture. */
    series *se = series_new(fs, NULL);
    if (se == NULL) {
      return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    se->need_open = 1;
  }
  for (series *se = fs->series; se != NULL; se = se->next) {
    if (se->failed) {
      continue; /* closed when it failed */
    }
    if (fs->gone && se->f.is_stdout) {
      if (se->f.fd != STDOUT_FILENO && se->f.fd >= 0) {
        close(se->f.fd);
      }
      se->f.fd = -1;
      rc = ps__seterr(sk->errmsg, PS_ERR_CLOSED, "%s", fs->gone_msg);
      continue;
    }
    /* An output no interface came to is still a valid, empty
     * capture. */
    if (se->f.fd >= 0 || se->need_open) {
      series_header(fs, se, 1);
    }
    int r = 0;
    if (se->need_open) {
      r = open_file(fs, se, 0);
      se->need_open = r != 0;
    }
    if (r == 0) {
      r = ps__outfile_write(&fs->base, &se->f);
    }
    if (r == 0 && se->f.packets > 0) {
      ring_prune(fs, se);
    }
    if (rc == 0) {
      rc = r == PS_ERR_REFUSED ? PS_ERR_IO : r;
    }
    if (se->f.is_stdout) {
      if (se->f.fd != STDOUT_FILENO) {
        close(se->f.fd);
      }
      se->f.fd = -1;
      continue;
    }
    if (r == 0 && se->f.rotated && se->f.packets == 0 && se->f.fd >= 0) {
      /* Rotation starts the next file right away; one that got nothing
       * before the end is not worth keeping (tcpdump never makes it). */
      close(se->f.fd);
      se->f.fd = -1;
      if (unlink(se->f.path) == 0) {
        ps__sink_log(&fs->base, PS_LOG_DEBUG,
                     "removed %s: no packets since rotation", se->f.path);
        if (se->n_history > 0) {
          free(se->history[--se->n_history]);
        }
      }
      free(se->f.path);
      se->f.path = NULL;
    }
    r = close_file(fs, se, 0);
    if (rc == 0) {
      rc = r;
    }
  }
  reap_children(fs);
  return rc;
}

static void fs_reopen(ps_sink *sk) {
  ((file_sink *)sk)->reopen = 1;
}

static void fs_destroy(ps_sink *sk) {
  file_sink *fs = (file_sink *)sk;
  fs_close(sk);
  while (fs->slots != NULL) {
    fs_slot *sl = fs->slots;
    fs->slots = sl->next;
    free(sl);
  }
  while (fs->series != NULL) {
    series *se = fs->series;
    fs->series = se->next;
    series_free(se);
  }
  /* Commands still running are left to finish on their own. */
  free(fs->children);
  free(fs->post_rotate);
  free(fs->tmpl);
  ps__sink_fini(sk);
  free(fs);
}

static const ps__sink_ops file_ops = {
    .kind = "file",
    .iface = fs_iface,
    .check = fs_check,
    .packet = fs_packet,
    .iface_end = fs_iface_end,
    .flush = fs_flush,
    .failed = fs_failed,
    .marks = fs_marks,
    .close = fs_close,
    .reopen = fs_reopen,
    .destroy = fs_destroy,
};

/* ---------------- construction ---------------- */

static int file_sink_new(ps_sink **out, const ps__fmt *fmt, const char *tmpl,
                         const ps_file_sink_options *opts, int literal) {
  file_sink *fs = calloc(1, sizeof(*fs));
  if (fs == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__sink_init(&fs->base, &file_ops);
  *out = &fs->base;
  fs->fmt = fmt;
  ps__fmt_params_init(&fs->params, (opts->flags & PS_SINK_NANO) != 0);
  fs->literal = literal;
  fs->append = (opts->flags & PS_SINK_APPEND) != 0;
  fs->split = opts->split_by_sensor != 0;
  fs->rotate_bytes = opts->rotate_bytes;
  fs->rotate_seconds = opts->rotate_seconds;
  fs->max_files = opts->max_files;
  if ((fs->tmpl = strdup(tmpl)) == NULL ||
      (opts->post_rotate != NULL &&
       (fs->post_rotate = strdup(opts->post_rotate)) == NULL)) {
    return PS_ERR_NOMEM;
  }
  series *se = fs->split ? NULL : series_new(fs, NULL);
  if (!fs->split && se == NULL) {
    return PS_ERR_NOMEM;
  }
  if (strcmp(tmpl, "-") == 0) {
    if ((se->f.path = strdup("-")) == NULL) {
      return PS_ERR_NOMEM;
    }
    se->f.fd = STDOUT_FILENO;
    se->f.is_stdout = 1;
    int rc = series_header(fs, se, 0);
    if (rc == 0) {
      rc = ps__outfile_write(&fs->base, &se->f);
    }
    return rc == PS_ERR_REFUSED ? PS_ERR_IO : rc;
  }
  if (se != NULL && series_header(fs, se, 0) != 0) {
    return PS_ERR_NOMEM;
  }
  if (se == NULL || (!literal && !se->f.has_header)) {
    /* Files come with the sensors: a classic pcap file with its header
     * once the first interface tells the link type (so it is never seen
     * without one, and appending can check it). Check now that they
     * can be. */
    if (se != NULL) {
      fs->series = NULL;
      series_free(se);
    }
    return ps__fileout_probe(&fs->base, tmpl, fs->split, fs->append);
  }
  /* Open now so an unwritable path fails before any sensor is accepted;
   * a pcap header follows when the first interface tells the link
   * type. */
  int rc = start_file(fs, se, 0);
  if (rc == 0) {
    rc = ps__outfile_write(&fs->base, &se->f);
  }
  /* Whether it might pass or not, the caller learns it now. */
  return rc == PS_ERR_REFUSED ? PS_ERR_IO : rc;
}

/* An invalid option: a sink that holds only the message, for
 * ps_sink_errmsg(). */
static int bad_option(ps_sink **out, const char *msg) {
  file_sink *fs = calloc(1, sizeof(*fs));
  if (fs != NULL) {
    ps__sink_init(&fs->base, &file_ops);
    fs->closed = 1;
    ps__seterr(fs->base.errmsg, PS_ERR_INVALID, "%s", msg);
  }
  *out = fs ? &fs->base : NULL;
  return PS_ERR_INVALID;
}

static const ps__fmt *const formats[] = {
    [PS_FORMAT_PCAP] = &ps__fmt_pcap,
    [PS_FORMAT_PCAPNG] = &ps__fmt_pcapng,
};

int ps_file_sink(ps_sink **out, ps_file_format format,
                 const char *path_template,
                 const ps_file_sink_options *opts) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  if (opts != NULL) {
    if (opts->version < 1) {
      return bad_option(out, "options version 0: start from "
                             "PS_FILE_SINK_OPTIONS_INIT");
    }
    /* Version 1 is all there is: later versions append fields, read only
     * up to the caller's version. */
    o = *opts;
  }
  if (format != PS_FORMAT_PCAP && format != PS_FORMAT_PCAPNG) {
    return bad_option(out, "unknown file format: use PS_FORMAT_PCAP or "
                           "PS_FORMAT_PCAPNG");
  }
  if (path_template == NULL || *path_template == '\0') {
    return bad_option(out, "no output path");
  }
  if ((o.flags & ~(PS_SINK_NANO | PS_SINK_APPEND)) != 0) {
    return bad_option(out, "unknown flags: use PS_SINK_NANO and "
                           "PS_SINK_APPEND");
  }
  if (format == PS_FORMAT_PCAPNG && (o.flags & PS_SINK_NANO)) {
    return bad_option(out, "PS_SINK_NANO applies to pcap: pcapng keeps "
                           "each interface's own precision");
  }
  if (strcmp(path_template, "-") == 0 &&
      (o.rotate_bytes || o.rotate_seconds || o.max_files ||
       o.split_by_sensor || (o.flags & PS_SINK_APPEND) || o.post_rotate)) {
    return bad_option(out, "standard output cannot be rotated, split, "
                           "appended to or post-processed: write to a file");
  }
  if (o.max_files > 0 && o.rotate_bytes == 0 && o.rotate_seconds == 0) {
    return bad_option(out, "a maximum number of files needs rotation by "
                           "size or time");
  }
  if (!o.split_by_sensor && strstr(path_template, "{sensor}") != NULL) {
    return bad_option(out, "the path names {sensor}: that needs the output "
                           "split by sensor");
  }
  if (o.post_rotate != NULL && *o.post_rotate == '\0') {
    return bad_option(out, "empty post-rotate command");
  }
  int rc = file_sink_new(out, formats[format], path_template, &o, 0);
  if (rc == PS_ERR_NOMEM) {
    ps_sink_free(*out);
    *out = NULL;
  }
  return rc;
}

int ps_pcap_sink(ps_sink **out, const char *path, unsigned flags) {
  if (out == NULL || path == NULL || *path == '\0' ||
      (flags & ~PS_SINK_NANO) != 0) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.flags = flags;
  int rc = file_sink_new(out, &ps__fmt_pcap, path, &o, 1);
  if (rc == PS_ERR_NOMEM) {
    ps_sink_free(*out);
    *out = NULL;
  }
  return rc;
}

int ps_pcapng_sink(ps_sink **out, const char *path, unsigned flags) {
  if (out == NULL || path == NULL || *path == '\0' || flags != 0) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  int rc = file_sink_new(out, &ps__fmt_pcapng, path, &o, 1);
  if (rc == PS_ERR_NOMEM) {
    ps_sink_free(*out);
    *out = NULL;
  }
  return rc;
}
