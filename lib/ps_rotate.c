/* Rotation: series of files, the ring of -W, post-rotate commands
 * (ps_rotate.h). */
#include "config.h"

#include "ps_rotate.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------- post-rotate commands ---------------- */

void ps__files_reap(ps__files *fs) {
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
      ps__sink_log(fs->sk, PS_LOG_WARNING,
                   "post-rotate command (process %ld) %s",
                   (long)fs->children[i], how);
    }
    fs->children[i] = fs->children[--fs->n_children];
  }
}

/* Runs "CMD FILE" through /bin/sh without waiting. The file name is the
 * shell's $1, never part of the command text, so no name can inject
 * shell syntax. */
static void post_rotate(ps__files *fs, const char *path) {
  if (fs->post_rotate == NULL) {
    return;
  }
  ps__files_reap(fs);
  if (fs->n_children == fs->cap_children) {
    unsigned cap = fs->cap_children ? fs->cap_children * 2 : 8;
    pid_t *p = realloc(fs->children, cap * sizeof(*p));
    if (p == NULL) {
      ps__sink_log(fs->sk, PS_LOG_ERROR,
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
    ps__sink_log(fs->sk, PS_LOG_WARNING,
                 "cannot run the post-rotate command for %s: fork: %s", path,
                 strerror(errno));
    return;
  }
  ps__sink_log(fs->sk, PS_LOG_DEBUG, "post-rotate: %s %s (process %ld)",
               fs->post_rotate, path, (long)pid);
  fs->children[fs->n_children++] = pid;
}

void ps__files_free(ps__files *fs) {
  /* Commands still running are left to finish on their own. */
  free(fs->children);
  free(fs->post_rotate);
  free(fs->tmpl);
  fs->children = NULL;
  fs->post_rotate = fs->tmpl = NULL;
}

/* ---------------- the ring ---------------- */

static int history_add(ps__files *fs, ps__series *se, const char *path) {
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
      return ps__seterr(fs->sk->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    se->history = h;
    se->cap_history = cap;
  }
  if ((se->history[se->n_history] = strdup(path)) == NULL) {
    return ps__seterr(fs->sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  se->n_history++;
  return 0;
}

/* -W: a ring of files, the oldest deleted once a newer one holds packets
 * (so a file rotation opened but never used costs no older file). */
static void ring_prune(ps__files *fs, ps__series *se) {
  while (fs->max_files > 0 && se->n_history > fs->max_files) {
    if (unlink(se->history[0]) == 0) {
      ps__sink_log(fs->sk, PS_LOG_INFO, "deleted %s: at most %u files are kept",
                   se->history[0], fs->max_files);
    } else if (errno != ENOENT) {
      ps__sink_log(fs->sk, PS_LOG_WARNING,
                   "cannot delete %s (at most %u files are kept): %s",
                   se->history[0], fs->max_files, strerror(errno));
    }
    free(se->history[0]);
    memmove(se->history, se->history + 1,
            --se->n_history * sizeof(*se->history));
  }
}

/* ---------------- series ---------------- */

ps__series *ps__series_new(ps__files *fs, const char *sensor) {
  ps__series *se = calloc(1, sizeof(*se));
  if (se == NULL) {
    return NULL;
  }
  se->f.fd = -1;
  if ((sensor != NULL && (se->sensor = strdup(sensor)) == NULL) ||
      (se->w = fs->fmt->create(fs->fmt, fs->params)) == NULL) {
    free(se->sensor);
    free(se);
    return NULL;
  }
  return se;
}

void ps__series_free(ps__series *se) {
  free(se->f.path);
  ps__buf_free(&se->f.buf);
  ps__buf_free(&se->f.hdr);
  free(se->sensor);
  free(se->capture);
  ps__outnames_free(&se->names);
  free(se->fail_msg);
  for (unsigned i = 0; i < se->n_history; i++) {
    free(se->history[i]);
  }
  free(se->history);
  se->w->fmt->destroy(se->w);
  free(se);
}

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
static char *base_path(ps__files *fs, ps__series *se, time_t now) {
  char *p;
  if (fs->literal) {
    p = strdup(fs->tmpl);
  } else {
    struct tm tm;
    localtime_r(&now, &tm);
    p = ps__path_expand(fs->tmpl, &tm, se->sensor);
  }
  if (p != NULL && se->capture != NULL) {
    char *q = ps__path_fill(p, "{capture}", se->capture);
    free(p);
    p = q;
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

/* Opens se's next file (see ps__outfile_open()); its header is built. */
static int open_file(ps__files *fs, ps__series *se, int from_zero) {
  time_t now = time(NULL);
  char *base = base_path(fs, se, now);
  if (base == NULL) {
    return ps__seterr(fs->sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  if (fs->rotate_seconds > 0) {
    se->period = (int64_t)now / fs->rotate_seconds;
  }
  ps__outfile_how how = {
      .literal = fs->literal,
      .append = fs->append,
      .as_is = !fs->literal && !fs->split && !fs->by_capture && !se->sibling &&
               strcmp(base, fs->tmpl) == 0,
      .from_zero = from_zero,
      .w = se->w,
      .made = se->history,
      .n_made = se->n_history,
  };
  int made;
  int rc = ps__outfile_open(fs->sk, &se->f, &se->names, base, &how, &made);
  if (rc == 0 && made) {
    rc = history_add(fs, se, se->f.path);
  }
  return rc;
}

int ps__series_header(ps__files *fs, ps__series *se, int final) {
  if (se->f.has_header) {
    return 0;
  }
  int h = fs->fmt->header(se->w, &se->f.hdr, final);
  if (h < 0) {
    return ps__seterr(fs->sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  se->f.has_header = h;
  return 0;
}

int ps__series_start(ps__files *fs, ps__series *se, int from_zero) {
  ps__buf_reset(&se->f.hdr);
  se->f.has_header = 0;
  if (ps__series_header(fs, se, 0) != 0) {
    return PS_ERR_NOMEM;
  }
  int rc = open_file(fs, se, from_zero);
  se->need_open = rc != 0;
  return rc;
}

/* Closes se's file (everything in it is written) and runs the
 * post-rotate command on it. keep: remember it to take it up again. */
static int close_file(ps__files *fs, ps__series *se, int keep) {
  ps__outfile *o = &se->f;
  uint64_t size = o->size;
  int rc = ps__outfile_close(fs->sk, o);
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

/* se's file can never be written as named (ps__fileout_errno_final; the
 * reason is in errmsg): its file is closed (whole records only, as
 * after any failed write), what it held is dropped - never
 * acknowledged, for its sensors are refused (the sink's failed op) - and
 * it is left out until an interface comes to it with nobody else on it:
 * that one tries again (the cause may be gone: a directory made, a
 * permission given). When it held nothing (a rotation's new file failed
 * after everything was written) what its sensors sent is acknowledged,
 * and they are refused when they send more. */
void ps__series_fail(ps__files *fs, ps__series *se) {
  ps__outfile *o = &se->f;
  se->failed = ps__buf_size(&o->buf) > 0 ? 1 : 2;
  ps__sink_log(fs->sk, PS_LOG_ERROR,
               "%s: this output cannot be written; refusing the sensors "
               "written to it (the others go on)",
               fs->sk->errmsg);
  free(se->fail_msg);
  se->fail_msg = strdup(fs->sk->errmsg);
  /* Closed without a word: errmsg says why it failed. */
  if (o->fd >= 0 && o->fd != STDOUT_FILENO) {
    close(o->fd);
  }
  o->fd = -1;
  uint64_t size = o->size;
  ps__outfile_close(fs->sk, o);
  if (o->path != NULL && size > 0) {
    post_rotate(fs, o->path);
  }
  free(o->path);
  o->path = NULL;
  o->write_failed = 0;
  o->rotated = 0;
  se->need_open = 0;
  fs->sk->failures++;
}

/* Whether se's file is done with, after a successful write: 1 rotate,
 * 2 close (its sensor left), 0 keep. */
static int due(ps__files *fs, ps__series *se, int reopen, time_t now) {
  ps__outfile *o = &se->f;
  if (o->fd < 0 || o->is_stdout || !o->has_header) {
    return 0;
  }
  if ((fs->split || fs->by_capture) && se->n_active == 0) {
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

int ps__series_flush(ps__files *fs, ps__series *se, int reopen, time_t now) {
  int r = 0;
  if (se->failed) {
    return 0;
  }
  if (se->need_open) {
    r = open_file(fs, se, reopen);
    se->need_open = r != 0;
  }
  if (r == 0) {
    r = ps__outfile_write(fs->sk, &se->f);
  }
  if (r == PS_ERR_REFUSED && se->f.is_stdout) {
    return PS_ERR_CLOSED;
  }
  if (r == PS_ERR_REFUSED) {
    ps__series_fail(fs, se);
    return 0;
  }
  if (r != 0) {
    return r;
  }
  se->f.flushed = se->f.size;
  if (se->f.packets > 0) {
    ring_prune(fs, se);
  }
  int d = due(fs, se, reopen, now);
  if (d == 0) {
    return 0;
  }
  r = close_file(fs, se, d == 2);
  if (r == 0 && d == 1) {
    r = ps__series_start(fs, se, reopen);
    se->f.rotated = 1;
    if (r == 0) {
      r = ps__outfile_write(fs->sk, &se->f);
    }
  }
  if (r == PS_ERR_REFUSED) {
    /* The rotation's new name cannot be created (or written). */
    ps__series_fail(fs, se);
    return 0;
  }
  return r;
}

int ps__series_finish(ps__files *fs, ps__series *se) {
  ps__outfile *o = &se->f;
  if (se->failed) {
    return 0; /* closed when it failed */
  }
  /* An output no interface came to is still a valid, empty capture. */
  if (o->fd >= 0 || se->need_open) {
    ps__series_header(fs, se, 1);
  }
  int r = 0, rc;
  if (se->need_open) {
    r = open_file(fs, se, 0);
    se->need_open = r != 0;
  }
  if (r == 0) {
    r = ps__outfile_write(fs->sk, o);
  }
  if (r == 0 && o->packets > 0) {
    ring_prune(fs, se);
  }
  rc = r == PS_ERR_REFUSED ? PS_ERR_IO : r;
  if (o->is_stdout) {
    if (o->fd != STDOUT_FILENO) {
      close(o->fd);
    }
    o->fd = -1;
    return rc;
  }
  if (r == 0 && o->rotated && o->packets == 0 && o->fd >= 0) {
    /* Rotation starts the next file right away; one that got nothing
     * before the end is not worth keeping (tcpdump never makes it). */
    close(o->fd);
    o->fd = -1;
    if (unlink(o->path) == 0) {
      ps__sink_log(fs->sk, PS_LOG_DEBUG,
                   "removed %s: no packets since "
                   "rotation",
                   o->path);
      if (se->n_history > 0) {
        free(se->history[--se->n_history]);
      }
    }
    free(o->path);
    o->path = NULL;
  }
  r = close_file(fs, se, 0);
  return rc != 0 ? rc : r;
}
