/* File output: whole-record writes cut back on failure, and opening
 * files under names nobody else's file has (ps_fileout.h). */
#include "config.h"

#include "ps_fileout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NAME_TRIES 100000u

static const char *disp(const ps__outfile *o) {
  return o->path == NULL || strcmp(o->path, "-") == 0 ? "standard output"
                                                      : o->path;
}

/* ---------------- writing ---------------- */

int ps__fileout_errno_final(int e) {
  switch (e) {
  case ENAMETOOLONG:
  case EACCES:
  case EPERM:
  case EISDIR:
  case ENOTDIR:
  case ENOENT:
  case ELOOP:
  case EROFS:
  case EEXIST:
  case EINVAL:
  case ENXIO:
  case ENODEV:
  case EPIPE:
  case EBADF:
  case ETXTBSY:
  case EOPNOTSUPP:
    return 1;
  default:
    return 0;
  }
}

int ps__outfile_write_buf(ps_sink *sk, ps__outfile *o, ps__buf *b) {
  size_t n = ps__buf_size(b), done = 0;
  while (done < n) {
    ssize_t w = write(o->fd, ps__buf_head(b) + done, n - done);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      char cut[160] = "";
      if (o->is_stdout) {
        /* A pipe cannot be taken back: what went out stays out. */
        ps__buf_consume(b, done);
        o->size += done;
        sk->written += done;
      } else if (done > 0 && (ftruncate(o->fd, (off_t)o->size) != 0 ||
                              lseek(o->fd, (off_t)o->size, SEEK_SET) < 0)) {
        snprintf(cut, sizeof(cut),
                 "; cutting the partial write back to %llu bytes failed: %s",
                 (unsigned long long)o->size, strerror(errno));
      }
      o->write_failed = 1;
      if (ps__fileout_errno_final(e)) {
        return ps__seterr(sk->errmsg, PS_ERR_REFUSED, "writing %s: %s%s",
                          disp(o), strerror(e), cut);
      }
      return ps__seterr(sk->errmsg, PS_ERR_IO,
                        "writing %s: %s (%zu bytes kept, retried at the "
                        "next flush)%s",
                        disp(o), strerror(e), ps__buf_size(b), cut);
    }
    done += (size_t)w;
  }
  ps__buf_reset(b);
  o->size += n;
  sk->written += n;
  return 0;
}

static void announce(ps_sink *sk, ps__outfile *o) {
  if (!o->announced && !o->is_stdout && o->has_header &&
      ps__buf_size(&o->hdr) == 0) {
    o->flushed = o->size;
    if (sk->on_open != NULL) {
      sk->on_open(sk->on_open_ud, o->path, o->fd, o->size);
      o->announced = 1;
    }
  }
}

int ps__outfile_write(ps_sink *sk, ps__outfile *o) {
  if (o->fd < 0) {
    return 0;
  }
  int rc = ps__outfile_write_buf(sk, o, &o->hdr);
  if (rc == 0) {
    announce(sk, o);
    rc = ps__outfile_write_buf(sk, o, &o->buf);
  }
  if (rc == 0) {
    o->write_failed = 0;
  }
  return rc;
}

int ps__outfile_close(ps_sink *sk, ps__outfile *o) {
  int rc = 0;
  if (o->fd >= 0 && o->fd != STDOUT_FILENO && close(o->fd) != 0) {
    rc = ps__seterr(sk->errmsg, PS_ERR_IO, "closing %s: %s", o->path,
                    strerror(errno));
  }
  o->fd = -1;
  o->size = o->flushed = o->packets = 0;
  o->has_header = 0;
  o->announced = 0;
  ps__buf_free(&o->buf);
  ps__buf_free(&o->hdr);
  return rc;
}

void ps__outnames_free(ps__outnames *nm) {
  free(nm->last_base);
  free(nm->last_path);
  nm->last_base = nm->last_path = NULL;
}

/* ---------------- append: validate and repair ---------------- */

static ssize_t fd_read(void *ud, uint64_t off, void *buf, size_t n) {
  int fd = *(const int *)ud;
  ssize_t k;
  do {
    k = pread(fd, buf, n, (off_t)off);
  } while (k < 0 && errno == EINTR);
  return k;
}

/* Decides whether fd (path) can be appended to: 1 yes (o->size set, the
 * header dropped if the file's own serves, a torn tail cut and logged),
 * 0 no (why says it), -1 on an I/O error (errmsg set). */
static int append_check(ps_sink *sk, ps__outfile *o, const ps__fmtw *w, int fd,
                        const char *path, char *why, size_t whylen) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_IO, "cannot stat %s: %s", path,
                      strerror(errno)),
           -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, whylen, "it is not a regular file");
    return 0;
  }
  /* Only a file this receiver's user could have made: not one planted
   * by another user, nor a second name of someone else's file (whose
   * torn end would be cut). Root starts as root and may write as the -Z
   * user later, so it takes up any owner's file. */
  if (st.st_nlink != 1) {
    snprintf(why, whylen, "it has %lu hard links", (unsigned long)st.st_nlink);
    return 0;
  }
  if (st.st_uid != geteuid() && geteuid() != 0) {
    snprintf(why, whylen,
             "it belongs to user %lu, not to this receiver's "
             "user %lu",
             (unsigned long)st.st_uid, (unsigned long)geteuid());
    return 0;
  }
  uint64_t size = (uint64_t)st.st_size;
  ps__fmt_tail t;
  int ok = w->fmt->tail_scan(w, fd_read, &fd, size, &t, why, whylen);
  if (ok < 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory"), -1;
  }
  if (ok == 0) {
    return 0;
  }
  if (t.good < size) {
    if (ftruncate(fd, (off_t)t.good) != 0) {
      return ps__seterr(sk->errmsg, PS_ERR_IO,
                        "cannot cut the torn end of %s: %s", path,
                        strerror(errno)),
             -1;
    }
    ps__sink_log(sk, PS_LOG_WARNING,
                 "%s ended in a torn record: cut %llu bytes, keeping %llu",
                 path, (unsigned long long)(size - t.good),
                 (unsigned long long)t.good);
  }
  if (lseek(fd, (off_t)t.good, SEEK_SET) < 0) {
    return ps__seterr(sk->errmsg, PS_ERR_IO, "cannot seek in %s: %s", path,
                      strerror(errno)),
           -1;
  }
  o->size = t.good;
  if (t.has_header && w->fmt->header_once) {
    ps__buf_reset(&o->hdr);
    o->has_header = 1;
  }
  if (t.good > 0) {
    ps__sink_log(sk, PS_LOG_INFO, "appending to %s after its %llu bytes", path,
                 (unsigned long long)t.good);
  }
  return 1;
}

/* --append: opens path to continue it, or creates it if it does not
 * exist. A name that is a symbolic link (never followed), not a regular
 * file, or not fit to continue (append_check) is left alone: 0, with
 * why. 1: *fdp is open and o set up to continue it. -1: an error (errno
 * set, or errmsg set and *fdp -2). */
static int append_open(ps_sink *sk, ps__outfile *o, const ps__fmtw *w,
                       const char *path, int *fdp, char *why, size_t whylen) {
  struct stat st;
  int fd;
  *fdp = -1;
  if (lstat(path, &st) != 0) {
    if (errno != ENOENT) {
      return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
      snprintf(why, whylen, "it was created meanwhile by someone else");
      return 0;
    }
  } else if (S_ISLNK(st.st_mode)) {
    snprintf(why, whylen, "it is a symbolic link, which is never followed");
    return 0;
  } else if (!S_ISREG(st.st_mode)) {
    snprintf(why, whylen, "it is not a regular file");
    return 0;
  } else {
    fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && (errno == ELOOP || errno == ENXIO)) {
      snprintf(why, whylen, "it was replaced meanwhile");
      return 0;
    }
  }
  if (fd < 0) {
    return -1;
  }
  int ok = append_check(sk, o, w, fd, path, why, whylen);
  if (ok != 1) {
    close(fd);
    *fdp = -2;
    return ok;
  }
  *fdp = fd;
  return 1;
}

/* ---------------- opening files ---------------- */

static char *numbered(const char *base, unsigned n) {
  char tag[16];
  snprintf(tag, sizeof(tag), "%u", n);
  return ps__path_insert(base, tag);
}

static int made_before(const ps__outfile_how *how, const char *path) {
  for (unsigned i = 0; i < how->n_made; i++) {
    if (strcmp(how->made[i], path) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Takes up the sequence's last file again, if it went idle in this run
 * and is still the file we left, as we left it: the same file (device
 * and inode), reached without a symbolic link, of the same size. 1 if
 * so. */
static int resume(ps__outfile *o, ps__outnames *nm, const char *base) {
  if (nm->last_path == NULL || nm->last_base == NULL ||
      strcmp(base, nm->last_base) != 0) {
    return 0;
  }
  /* O_NONBLOCK: a named pipe put in its place must not hang the loop. */
  int fd = open(nm->last_path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    return 0;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_dev != nm->last_dev || st.st_ino != nm->last_ino ||
      (uint64_t)st.st_size != nm->last_size ||
      lseek(fd, (off_t)nm->last_size, SEEK_SET) < 0) {
    close(fd);
    return 0;
  }
  o->path = nm->last_path;
  nm->last_path = NULL;
  o->fd = fd;
  o->size = nm->last_size;
  return 1;
}

/* A named pipe (Wireshark reading it) or a device (/dev/null) that -w
 * names, written as it is, like standard output. 1 if base is one and
 * o is set up for it (base taken), 0 if not, or an error. */
static int open_as_is(ps_sink *sk, ps__outfile *o, char *base) {
  struct stat st;
  if (stat(base, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    return 0;
  }
  int fd = open(base, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ps__seterr(sk->errmsg,
                      ps__fileout_errno_final(e) ? PS_ERR_REFUSED : PS_ERR_IO,
                      "cannot open %s for writing: %s", base, strerror(e));
  }
  o->path = base;
  o->fd = fd;
  o->is_stdout = 1;
  o->size = 0;
  return 1;
}

int ps__outfile_open(ps_sink *sk, ps__outfile *o, ps__outnames *nm, char *base,
                     const ps__outfile_how *how, int *made) {
  *made = 0;
  if (how->as_is) {
    /* Only the name given: one the receiver makes (a sensor's, a
     * sibling's, a rotation's) is never taken over from whoever put
     * something there. */
    int rc = open_as_is(sk, o, base);
    if (rc < 0) {
      free(base);
      return rc;
    }
    if (rc == 1) {
      goto opened;
    }
  }
  if (!how->from_zero && resume(o, nm, base)) {
    free(base);
    /* Its header is there: a format that has one per file needs no
     * other. */
    if (how->w->fmt->header_once) {
      ps__buf_reset(&o->hdr);
      o->has_header = 1;
    }
    goto opened;
  }
  unsigned n = 0;
  if (!how->from_zero && nm->last_base != NULL &&
      strcmp(base, nm->last_base) == 0) {
    n = nm->last_n + 1;
  }
  char *first_taken = NULL, why[200] = "";
  char *path = NULL;
  int fd = -1;
  for (unsigned tries = 0; tries < MAX_NAME_TRIES; tries++, n++) {
    free(path);
    path = n ? numbered(base, n) : strdup(base);
    if (path == NULL) {
      break;
    }
    if (how->literal) {
      /* ps_pcap_sink(), ps_pcapng_sink(): the caller's path, as fopen
       * "w" would (documented). */
      fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      break;
    }
    if (how->append) {
      /* Continue the sequence where it ended: its last existing file
       * (any kind of entry takes a name). */
      char *next = numbered(base, n + 1);
      struct stat nst;
      int later = next != NULL && lstat(next, &nst) == 0;
      free(next);
      if (later) {
        continue;
      }
      int ok = append_open(sk, o, how->w, path, &fd, why, sizeof(why));
      if (ok == 1) {
        break;
      }
      if (ok < 0) {
        if (fd == -2) {
          free(path);
          free(base);
          free(first_taken);
          return PS_ERR_IO;
        }
        break;
      }
      fd = -1;
      if (first_taken == NULL) {
        first_taken = strdup(path);
      }
      continue;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) {
      break;
    }
    if (first_taken == NULL && !made_before(how, path)) {
      first_taken = strdup(path);
    }
  }
  if (path == NULL || fd < 0) {
    int e = errno;
    int rc = path == NULL
                 ? ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory")
                 : ps__seterr(
                       sk->errmsg,
                       ps__fileout_errno_final(e) ? PS_ERR_REFUSED : PS_ERR_IO,
                       "cannot open %s for writing: %s", path, strerror(e));
    free(path);
    free(base);
    free(first_taken);
    return rc;
  }
  if (first_taken != NULL) {
    if (why[0] != '\0') {
      ps__sink_log(sk, PS_LOG_WARNING,
                   "cannot append to %s (%s): writing to %s instead",
                   first_taken, why, path);
    } else {
      ps__sink_log(sk, PS_LOG_WARNING,
                   "%s exists: writing to %s instead (files are never "
                   "overwritten; --append continues one)",
                   first_taken, path);
    }
    free(first_taken);
  }
  free(nm->last_base);
  nm->last_base = base;
  nm->last_n = n;
  o->path = path;
  o->fd = fd;
  if (!how->append) {
    o->size = 0;
  }
  *made = !how->literal;
opened:;
  struct stat st;
  if (fstat(o->fd, &st) == 0) {
    o->dev = st.st_dev;
    o->ino = st.st_ino;
  }
  o->flushed = o->size;
  o->announced = 0;
  o->packets = 0;
  o->write_failed = 0;
  o->rotated = 0;
  /* The header goes out at once, so the file is never seen empty (a
   * reader refuses an empty file); if it fails, flush retries it. A file
   * taken up again has its header: announced as it is. */
  if (ps__buf_size(&o->hdr) == 0 ||
      ps__outfile_write_buf(sk, o, &o->hdr) == 0) {
    announce(sk, o);
  }
  return 0;
}

/* ---------------- start-up check ---------------- */

/* Start-up check that the output's files can really be created, not
 * only that its directory looks writable (access(2) says yes to root
 * everywhere, and /proc or a read-only mount refuse all the same): the
 * first file's name is created and removed again or, if that name is
 * taken (the next free name will be used, or --append continues it), a
 * probe file beside it. With --split-by-sensor the name depends on the
 * sensor; "sensor" stands in for it. A pipe or device -w names is only
 * checked for write permission (it is opened at the first packet). */
int ps__fileout_probe(ps_sink *sk, const char *tmpl, int split, int append) {
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  char *p = ps__path_expand(tmpl, &tm, "sensor");
  if (p != NULL && strstr(p, "{capture}") != NULL) {
    char *q = ps__path_fill(p, "{capture}", "capture");
    free(p);
    p = q;
  }
  if (p != NULL && split && strstr(tmpl, "{sensor}") == NULL) {
    char *q = ps__path_insert(p, "sensor");
    free(p);
    p = q;
  }
  if (p == NULL) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  int rc = 0, fd;
  struct stat st;
  if (lstat(p, &st) != 0) {
    if (errno == ENOENT &&
        (fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0644)) >= 0) {
      close(fd);
      unlink(p);
    } else {
      rc = ps__seterr(sk->errmsg, PS_ERR_IO, "cannot create %s: %s", p,
                      strerror(errno));
    }
    free(p);
    return rc;
  }
  if (!split && strcmp(p, tmpl) == 0 && !S_ISREG(st.st_mode) &&
      !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode)) {
    if (access(p, W_OK) != 0) {
      rc = ps__seterr(sk->errmsg, PS_ERR_IO, "cannot open %s for writing: %s",
                      p, strerror(errno));
    }
    free(p);
    return rc;
  }
  if (append && S_ISREG(st.st_mode) && access(p, R_OK | W_OK) != 0) {
    rc = ps__seterr(sk->errmsg, PS_ERR_IO, "cannot append to %s: %s", p,
                    strerror(errno));
    free(p);
    return rc;
  }
  char *slash = strrchr(p, '/');
  const char *dir = ".";
  if (slash == p) {
    dir = "/";
  } else if (slash != NULL) {
    *slash = '\0';
    dir = p;
  }
  size_t n = strlen(dir) + 32;
  char *probe = malloc(n);
  if (probe == NULL) {
    free(p);
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  snprintf(probe, n, "%s/.ps-receiver-probe-XXXXXX", dir);
  if ((fd = mkostemp(probe, O_CLOEXEC)) >= 0) {
    close(fd);
    unlink(probe);
  } else {
    rc = ps__seterr(sk->errmsg, PS_ERR_IO, "cannot create files in %s: %s", dir,
                    strerror(errno));
  }
  free(probe);
  free(p);
  return rc;
}

/* ---------------- names ---------------- */

void ps__name_for_file(char *out, size_t outlen, const char *name) {
  size_t i = 0;
  for (; name[i] != '\0' && i + 1 < outlen; i++) {
    char c = name[i];
    out[i] = (c == '/' || (i == 0 && c == '.')) ? '_' : c;
  }
  out[i] = '\0';
}

/* Appends the strftime expansion of the n bytes at fmt. */
static int append_strftime(ps__buf *out, const char *fmt, size_t n,
                           const struct tm *tm) {
  /* strftime returns 0 both for an empty result and for one too long:
   * a leading byte that is cut off afterwards tells them apart. */
  char *f = malloc(n + 2);
  if (f == NULL) {
    return -1;
  }
  f[0] = 'x';
  memcpy(f + 1, fmt, n);
  f[n + 1] = '\0';
  size_t cap = 2 * n + 64;
  for (;;) {
    uint8_t *p = ps__buf_reserve(out, cap);
    if (p == NULL) {
      free(f);
      return -1;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t k = strftime((char *)p, cap, f, tm);
#pragma GCC diagnostic pop
    if (k > 0) {
      memmove(p, p + 1, k - 1);
      out->len += k - 1;
      free(f);
      return 0;
    }
    if (cap > 65536) {
      free(f);
      return -1;
    }
    cap *= 4;
  }
}

char *ps__path_expand(const char *tmpl, const struct tm *tm,
                      const char *sensor) {
  static const char tag[] = "{sensor}";
  ps__buf out = {0};
  const char *p = tmpl;
  for (;;) {
    const char *q = sensor ? strstr(p, tag) : NULL;
    size_t lit = q ? (size_t)(q - p) : strlen(p);
    if (lit > 0 && append_strftime(&out, p, lit, tm) != 0) {
      goto nomem;
    }
    if (q == NULL) {
      break;
    }
    char name[256];
    ps__name_for_file(name, sizeof(name), sensor);
    if (ps__buf_append(&out, name, strlen(name)) != 0) {
      goto nomem;
    }
    p = q + sizeof(tag) - 1;
  }
  if (ps__buf_append(&out, "", 1) != 0) {
    goto nomem;
  }
  return (char *)out.data;
nomem:
  ps__buf_free(&out);
  return NULL;
}

char *ps__path_fill(const char *path, const char *field, const char *value) {
  char name[256];
  ps__name_for_file(name, sizeof(name), value);
  ps__buf out = {0};
  size_t fl = strlen(field);
  int rc = 0;
  for (const char *p = path; rc == 0;) {
    const char *q = strstr(p, field);
    size_t lit = q ? (size_t)(q - p) : strlen(p);
    rc |= ps__buf_append(&out, p, lit);
    if (q == NULL) {
      break;
    }
    rc |= ps__buf_append(&out, name, strlen(name));
    p = q + fl;
  }
  rc |= ps__buf_append(&out, "", 1);
  if (rc != 0) {
    ps__buf_free(&out);
    return NULL;
  }
  return (char *)out.data;
}

char *ps__path_insert(const char *path, const char *tag) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  size_t stem = (dot && (!slash || dot > slash + 1)) ? (size_t)(dot - path)
                                                     : strlen(path);
  size_t need = strlen(path) + strlen(tag) + 2;
  char *p = malloc(need);
  if (p != NULL) {
    snprintf(p, need, "%.*s.%s%s", (int)stem, path, tag, path + stem);
  }
  return p;
}
