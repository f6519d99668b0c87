/* File sinks: classic pcap (one file per link type) and pcapng, to a path
 * template (strftime conversions, {sensor}), optionally one set of files
 * per sensor, rotated by size, time or signal into a ring of files.
 *
 * The pieces: the format (ps_fmt.h: a table per format) turns interfaces
 * and packets into bytes; file output (ps_fileout.h) writes them whole
 * and opens files under names nobody else's file has; rotation
 * (ps_rotate.h) keeps each sequence of files. This file picks the
 * sequence an interface goes to - one per sensor with split_by_sensor,
 * and a sibling per link type where the format holds only one - and
 * implements the sink operations over them. */
#include "config.h"

#include "ps_fmt.h"
#include "ps_rotate.h"
#include "ps_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OUT_HIGH_WATER (1u << 20)
#define MAX_LINKTYPES 32

typedef struct file_sink {
  ps_sink base;
  ps__files files;
  ps__fmt_params params;
  ps__series *series;
  struct fs_slot *slots; /* every interface's, freed with the sink */
  int noted;             /* the format's remark on an interface was logged */
  int closed;
  int gone; /* standard output or a pipe failed for good */
  char gone_msg[PS_ERRMSG_MAX];
} file_sink;

/* What a session holds for each of its interfaces. A sink freed while
 * interfaces are still on it (no iface_end) frees theirs too. */
typedef struct fs_slot {
  struct fs_slot *prev, *next;
  ps__series *se;
  void *fmt; /* the format's state of the interface (its writer's) */
} fs_slot;

static const ps__sink_ops file_ops;

static int refused(ps_sink *sk, const ps__series *se) {
  return ps__seterr(sk->errmsg, PS_ERR_REFUSED,
                    "the receiver cannot write this sensor's output: %s",
                    se->fail_msg ? se->fail_msg : "no file");
}

/* Standard output, or the named pipe or device -w names, can never be
 * written again (its reader left): nothing more is taken, and flush and
 * close say so (PS_ERR_CLOSED), so the receiver stops. */
static void output_gone(file_sink *fs, ps__series *se) {
  snprintf(fs->gone_msg, sizeof(fs->gone_msg), "%s", fs->base.errmsg);
  fs->gone = 1;
  ps__buf_free(&se->f.buf);
  ps__buf_free(&se->f.hdr);
}

/* ---------------- series ---------------- */

static ps__series *add_series(file_sink *fs, const char *sensor,
                              const char *capture) {
  ps__series *se = ps__series_new(&fs->files, sensor);
  if (se != NULL && capture != NULL &&
      (se->capture = strdup(capture)) == NULL) {
    ps__series_free(se);
    se = NULL;
  }
  if (se != NULL) {
    ps__series **pp = &fs->series;
    while (*pp != NULL) {
      pp = &(*pp)->next;
    }
    *pp = se;
  }
  return se;
}

static int same_text(const char *a, const char *b) {
  return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static int same_key(const ps__series *se, const char *sensor,
                    const char *capture) {
  return same_text(se->sensor, sensor) && same_text(se->capture, capture);
}

/* The capture on demand an interface's packets are (by_capture). */
static const char *capture_of(const ps_interface_info *ifc) {
  for (size_t i = 0; i < ifc->n_options; i++) {
    if (strcmp(ifc->options[i].key, "capture.id") == 0) {
      return ifc->options[i].value;
    }
  }
  return "none";
}

/* The series a new interface joins. */
static int series_for(file_sink *fs, const ps_session_info *s,
                      const ps_interface_info *ifc, ps__series **out) {
  const ps__fmt *fmt = fs->files.fmt;
  const char *key = fs->files.split ? s->sensor : NULL;
  const char *cap = fs->files.by_capture ? capture_of(ifc) : NULL;
  ps__series *se = NULL, *first = NULL;
  unsigned n_key = 0;
  for (ps__series *x = fs->series; x != NULL; x = x->next) {
    if (!same_key(x, key, cap)) {
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
    if ((se = add_series(fs, key, cap)) == NULL) {
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
static int series_ensure_file(file_sink *fs, ps__series *se,
                              const ps_session_info *s,
                              const ps_interface_info *ifc) {
  if (se->f.fd >= 0 || se->need_open) {
    /* A stream begun before its header could be written (classic pcap
     * on standard output) gets it from the first interface. */
    return ps__series_header(&fs->files, se, 0);
  }
  int rc = ps__series_start(&fs->files, se, 0);
  if (rc == PS_ERR_REFUSED) {
    ps__series_fail(&fs->files, se);
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
                 fs->files.tmpl, se->f.path);
  }
  return 0;
}

/* ---------------- sink operations ---------------- */

static int fs_iface(ps_sink *sk, const ps_session_info *s,
                    const ps_interface_info *ifc, void **slot) {
  file_sink *fs = (file_sink *)sk;
  const ps__fmt *fmt = fs->files.fmt;
  ps__series *se = NULL;
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
    ps__sink_log(sk, PS_LOG_INFO, "%s", note);
  }
  return 0;
}

static int fs_check(ps_sink *sk, const ps_interface_info *ifc,
                    const ps_packet *pkt) {
  file_sink *fs = (file_sink *)sk;
  return fs->files.fmt->check(&fs->params, ifc, pkt, sk->errmsg);
}

static int fs_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                     const ps_interface_info *ifc, const ps_packet *pkt) {
  file_sink *fs = (file_sink *)sk;
  fs_slot *sl = slot;
  ps__series *se = sl->se;
  (void)s;
  if (se->failed) {
    return refused(sk, se);
  }
  if (fs->gone) {
    return 0; /* nothing more is written, nor acknowledged */
  }
  int rc = fs->files.fmt->record(se->w, sl->fmt, ifc, pkt, &se->f.buf);
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
    ps__outfile_write(sk, &se->f);
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
  ps__series *se = sl->se;
  if (st != NULL && !se->failed && !fs->gone) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (fs->files.fmt->stats(se->w, sl->fmt, st, &now, &se->f.buf) != 0) {
      ps__sink_log(sk, PS_LOG_ERROR,
                   "out of memory writing statistics of %s/%s", s->sensor,
                   ifc->name);
    }
  }
  fs->files.fmt->leave(se->w, sl->fmt);
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

static int fs_flush(ps_sink *sk) {
  file_sink *fs = (file_sink *)sk;
  int reopen = fs->files.reopen != 0, rc = 0;
  time_t now = time(NULL);
  if (fs->files.n_children > 0) {
    ps__files_reap(&fs->files);
  }
  if (fs->gone) {
    return ps__seterr(sk->errmsg, PS_ERR_CLOSED, "%s", fs->gone_msg);
  }
  for (ps__series *se = fs->series; se != NULL; se = se->next) {
    int r = ps__series_flush(&fs->files, se, reopen, now);
    if (r == PS_ERR_CLOSED) {
      output_gone(fs, se);
      return ps__seterr(sk->errmsg, PS_ERR_CLOSED, "%s", fs->gone_msg);
    }
    if (r != 0 && rc == 0) {
      rc = r;
    }
  }
  if (reopen && rc == 0) {
    fs->files.reopen = 0;
  }
  return rc;
}

static int fs_failed(ps_sink *sk, void *slot, char *why, size_t len) {
  const ps__series *se = ((fs_slot *)slot)->se;
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
  for (ps__series *se = fs->series; se != NULL && n < max; se = se->next) {
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
  if (!fs->files.split && !fs->files.by_capture && !fs->files.append &&
      fs->series == NULL) {
    /* No interface ever came: still leave a valid, empty capture. */
    ps__series *se = add_series(fs, NULL, NULL);
    if (se == NULL) {
      return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    se->need_open = 1;
  }
  for (ps__series *se = fs->series; se != NULL; se = se->next) {
    if (fs->gone && se->f.is_stdout) {
      if (se->f.fd != STDOUT_FILENO && se->f.fd >= 0) {
        close(se->f.fd);
      }
      se->f.fd = -1;
      rc = ps__seterr(sk->errmsg, PS_ERR_CLOSED, "%s", fs->gone_msg);
      continue;
    }
    int r = ps__series_finish(&fs->files, se);
    if (rc == 0) {
      rc = r;
    }
  }
  ps__files_reap(&fs->files);
  return rc;
}

static void fs_reopen(ps_sink *sk) {
  ((file_sink *)sk)->files.reopen = 1;
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
    ps__series *se = fs->series;
    fs->series = se->next;
    ps__series_free(se);
  }
  ps__files_free(&fs->files);
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
  ps__fmt_params_init(&fs->params, (opts->flags & PS_SINK_NANO) != 0);
  ps__files *f = &fs->files;
  f->sk = &fs->base;
  f->fmt = fmt;
  f->params = &fs->params;
  f->literal = literal;
  f->append = (opts->flags & PS_SINK_APPEND) != 0;
  f->split = opts->split_by_sensor != 0;
  f->by_capture = !literal && strstr(tmpl, "{capture}") != NULL;
  f->rotate_bytes = opts->rotate_bytes;
  f->rotate_seconds = opts->rotate_seconds;
  f->max_files = opts->max_files;
  if ((f->tmpl = strdup(tmpl)) == NULL ||
      (opts->post_rotate != NULL &&
       (f->post_rotate = strdup(opts->post_rotate)) == NULL)) {
    return PS_ERR_NOMEM;
  }
  int keyed = f->split || f->by_capture;
  ps__series *se = keyed ? NULL : add_series(fs, NULL, NULL);
  if (!keyed && se == NULL) {
    return PS_ERR_NOMEM;
  }
  if (strcmp(tmpl, "-") == 0) {
    if ((se->f.path = strdup("-")) == NULL) {
      return PS_ERR_NOMEM;
    }
    se->f.fd = STDOUT_FILENO;
    se->f.is_stdout = 1;
    int rc = ps__series_header(f, se, 0);
    if (rc == 0) {
      rc = ps__outfile_write(&fs->base, &se->f);
    }
    return rc == PS_ERR_REFUSED ? PS_ERR_IO : rc;
  }
  if (se != NULL && ps__series_header(f, se, 0) != 0) {
    return PS_ERR_NOMEM;
  }
  if (se == NULL || (!literal && !se->f.has_header)) {
    /* Files come with the sensors: a classic pcap file with its header
     * once the first interface tells the link type (so it is never seen
     * without one, and appending can check it). Check now that they
     * can be. */
    if (se != NULL) {
      fs->series = NULL;
      ps__series_free(se);
    }
    return ps__fileout_probe(&fs->base, tmpl, keyed, f->append);
  }
  /* Open now so an unwritable path fails before any sensor is accepted;
   * a pcap header follows when the first interface tells the link
   * type. */
  int rc = ps__series_start(f, se, 0);
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
                 const char *path_template, const ps_file_sink_options *opts,
                 size_t size) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  /* The caller's fields only (the size it was built with); an option of
   * a newer header set is refused, never silently ignored. */
  if (opts != NULL &&
      ps__copy_in(&o, sizeof(o), opts, size,
                  PS__SIZE_TO(ps_file_sink_options, post_rotate)) != 0) {
    return bad_option(out, "options struct of the wrong size: pass "
                           "sizeof(ps_file_sink_options) of a zeroed struct "
                           "(PS_FILE_SINK_OPTIONS_INIT)");
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
      (o.rotate_bytes || o.rotate_seconds || o.max_files || o.split_by_sensor ||
       (o.flags & PS_SINK_APPEND) || o.post_rotate)) {
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
  if (out != NULL) {
    *out = NULL; /* on every error */
  }
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
  if (out != NULL) {
    *out = NULL; /* on every error */
  }
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
