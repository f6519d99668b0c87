/* The receiver's journal of acknowledged positions; see ps_journal.h. */
#include "config.h"

#include "ps_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "PSJ1\0\0\0\0"
#define MAGIC_LEN 8
#define COMPACT_AT (1u << 20) /* rewrite the journal past this size */
#define MAX_RECORD (64u << 20)
#define MAX_JOURNAL (512 << 20) /* refused above: not one of ours */

typedef struct jfile {
  struct jfile *next;
  uint64_t size;
  uint64_t ino; /* which file: a path reused by another file is left be */
  int seen;     /* in this commit's marks */
  /* Not in the journal's directory: never recorded, never cut back. */
  int untracked;
  char *path;  /* as the output names it; NULL: read from the journal */
  char name[]; /* relative to the journal's directory */
} jfile;

struct ps__journal {
  int fd;
  /* The journal's directory. Every file, the journal's own included, is
   * reached from it with openat() and never through a symbolic link, so
   * nothing beside the output can send a write or a cut elsewhere. */
  int dfd;
  char *path;        /* as given, for messages */
  char *base;        /* the journal's name in dfd */
  char *tmp;         /* base.new: the compacted journal before its rename */
  char *prefix;      /* path's directory part with its slash, for messages */
  char *real;        /* the directory, resolved: where output paths must lead */
  uid_t owner;       /* the journal's owner: its files may be cut back */
  uint64_t len;      /* bytes in the journal file */
  uint64_t snap_len; /* of it, the snapshot at its start */
  /* A record failed to go out: memory is ahead of the file, so the next
   * commit records every file again. */
  int unsynced;
  jfile *files; /* files that may still grow */
  ps__buf rec;
  ps_log_fn log;
  void *log_ud;
};

static jfile *find_path(ps__journal *j, const char *path) {
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (f->path != NULL && strcmp(f->path, path) == 0) {
      return f;
    }
  }
  return NULL;
}

static jfile *find_name(ps__journal *j, const char *name) {
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (!f->untracked && strcmp(f->name, name) == 0) {
      return f;
    }
  }
  return NULL;
}

static void file_drop(ps__journal *j, jfile *victim) {
  for (jfile **pp = &j->files; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == victim) {
      *pp = victim->next;
      free(victim->path);
      free(victim);
      return;
    }
  }
}

/* Records name (path: the output's name for it, or NULL) at size. */
static jfile *file_set(ps__journal *j, const char *name, const char *path,
                       uint64_t size, uint64_t ino) {
  jfile *f = find_name(j, name);
  if (f == NULL) {
    size_t n = strlen(name);
    f = calloc(1, sizeof(*f) + n + 1);
    if (f == NULL) {
      return NULL;
    }
    memcpy(f->name, name, n + 1);
    f->next = j->files;
    j->files = f;
  }
  if (path != NULL && (f->path == NULL || strcmp(f->path, path) != 0)) {
    char *p = strdup(path);
    if (p == NULL) {
      return NULL;
    }
    free(f->path);
    f->path = p;
  }
  f->size = size;
  f->ino = ino;
  return f;
}

/* 1 if name is a plain relative name: no empty, "." or ".." part, so it
 * stays inside the journal's directory. */
static int name_ok(const char *name) {
  if (*name == '\0' || *name == '/') {
    return 0;
  }
  for (const char *p = name;;) {
    const char *e = strchr(p, '/');
    size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
    if (n == 0 || (n == 1 && p[0] == '.') ||
        (n == 2 && p[0] == '.' && p[1] == '.')) {
      return 0;
    }
    if (e == NULL) {
      return 1;
    }
    p = e + 1;
  }
}

/* Opens the directory holding name, from the journal's directory down,
 * following no symbolic link; *leaf is name's last part. Returns the
 * directory (j->dfd itself or one to close with dir_close), or -1 with
 * errno. */
static int walk(const ps__journal *j, const char *name, const char **leaf) {
  int cur = j->dfd;
  const char *p = name, *slash;
  while ((slash = strchr(p, '/')) != NULL) {
    char part[NAME_MAX + 1];
    size_t n = (size_t)(slash - p);
    int next = -1;
    if (n < sizeof(part)) {
      memcpy(part, p, n);
      part[n] = '\0';
      next = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else {
      errno = ENAMETOOLONG;
    }
    int e = errno;
    if (cur != j->dfd) {
      close(cur);
    }
    if (next < 0) {
      errno = e;
      return -1;
    }
    cur = next;
    p = slash + 1;
  }
  *leaf = p;
  return cur;
}

static void dir_close(const ps__journal *j, int dfd) {
  if (dfd >= 0 && dfd != j->dfd) {
    close(dfd);
  }
}

/* Finds name's file as walk() does: 0 with *st (never a link followed)
 * and *dev the device of the directory holding it, or -1 with errno. */
static int locate(const ps__journal *j, const char *name, struct stat *st,
                  dev_t *dev) {
  const char *leaf;
  int dfd = walk(j, name, &leaf);
  struct stat ds;
  int rc = -1;
  if (dfd >= 0 && fstat(dfd, &ds) == 0 &&
      fstatat(dfd, leaf, st, AT_SYMLINK_NOFOLLOW) == 0) {
    *dev = ds.st_dev;
    rc = 0;
  }
  int e = errno;
  dir_close(j, dfd);
  errno = e;
  return rc;
}

/* Why st (in the directory ds) is not f's file as this receiver created
 * it (NULL: it is). Its owner is the receiver's user, the journal's, or
 * the directory's: a receiver started as root with -Z USER finds the
 * files USER created after the switch. */
static const char *not_ours(const ps__journal *j, const jfile *f,
                            const struct stat *st, const struct stat *ds,
                            char *buf, size_t n) {
  if (S_ISLNK(st->st_mode)) {
    return "is a symbolic link";
  }
  if (!S_ISREG(st->st_mode)) {
    return "is not a regular file";
  }
  if ((uint64_t)st->st_ino != f->ino || st->st_dev != ds->st_dev) {
    return "is not the file this receiver wrote (it was replaced)";
  }
  if (st->st_uid != geteuid() && st->st_uid != j->owner &&
      st->st_uid != ds->st_uid) {
    snprintf(buf, n, "is owned by uid %u, not by this receiver",
             (unsigned)st->st_uid);
    return buf;
  }
  if (st->st_nlink != 1) {
    snprintf(buf, n, "has %u hard links, not only the one this receiver made",
             (unsigned)st->st_nlink);
    return buf;
  }
  return NULL;
}

/* path (as an output names it) relative to the journal's directory in
 * out; -1 if it is neither in that directory nor below it. */
static int rel_name(const ps__journal *j, const char *path, char *out,
                    size_t n) {
  const char *slash = strrchr(path, '/');
  const char *leaf = slash != NULL ? slash + 1 : path;
  char *dir = slash == NULL   ? strdup(".")
              : slash == path ? strdup("/")
                              : strndup(path, (size_t)(slash - path));
  char *real = dir != NULL ? realpath(dir, NULL) : NULL;
  free(dir);
  if (real == NULL) {
    return -1;
  }
  size_t rl = strlen(j->real);
  const char *sub = NULL;
  if (strcmp(real, j->real) == 0) {
    sub = "";
  } else if (strcmp(j->real, "/") == 0) {
    sub = real + 1;
  } else if (strncmp(real, j->real, rl) == 0 && real[rl] == '/') {
    sub = real + rl + 1;
  }
  int rc = -1;
  if (sub != NULL) {
    int w = snprintf(out, n, "%s%s%s", sub, *sub ? "/" : "", leaf);
    rc = w > 0 && (size_t)w < n && w <= 65535 && name_ok(out) ? 0 : -1;
  }
  free(real);
  return rc;
}

/* The entry of an output's file that just opened (fd: it, or -1): by its
 * name in the journal's directory and its inode from the open file, both
 * checked to be the same file reached without a link. NULL: no memory. */
static jfile *track(ps__journal *j, const char *path, int fd, uint64_t size) {
  char name[PATH_MAX];
  struct stat st, at;
  dev_t dev;
  int outside = rel_name(j, path, name, sizeof(name)) != 0;
  int unreachable =
      !outside && (locate(j, name, &at, &dev) != 0 || !S_ISREG(at.st_mode) ||
                   at.st_dev != dev ||
                   (fd >= 0 && (fstat(fd, &st) != 0 || st.st_ino != at.st_ino ||
                                st.st_dev != at.st_dev)));
  if (!outside && !unreachable) {
    jfile *old = find_path(j, path);
    if (old != NULL && (old->untracked || strcmp(old->name, name) != 0)) {
      file_drop(j, old);
    }
    return file_set(j, name, path, size, (uint64_t)at.st_ino);
  }
  jfile *f = find_path(j, path);
  if (f != NULL && f->untracked) {
    return f; /* said once */
  }
  if (f != NULL) {
    file_drop(j, f);
  }
  ps__log(j->log, j->log_ud, PS_LOG_WARNING,
          "%s %s the directory of the journal %s%s: it is not recorded, "
          "and a restart after a crash cannot cut it back (keep --state in "
          "the output's directory)",
          path, outside ? "is outside" : "cannot be reached from", j->path,
          outside ? "" : " without following a symbolic link");
  size_t n = strlen(path);
  f = calloc(1, sizeof(*f) + 1);
  if (f == NULL || (f->path = malloc(n + 1)) == NULL) {
    free(f);
    return NULL;
  }
  memcpy(f->path, path, n + 1);
  f->untracked = 1;
  f->size = size;
  f->next = j->files;
  j->files = f;
  return f;
}

static int put_file(ps__buf *b, const jfile *f) {
  size_t n = strlen(f->name);
  if (n > 65535) {
    return PS_ERR_INVALID;
  }
  uint8_t *p = ps__buf_reserve(b, 19 + n);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  p[0] = 'F';
  ps__put64(p + 1, f->size);
  ps__put64(p + 9, f->ino);
  ps__put16(p + 17, (uint16_t)n);
  memcpy(p + 19, f->name, n);
  b->len += 19 + n;
  return 0;
}

static void put_stream(void *ud, const ps__stream_ent *e) {
  ps__buf *b = ud;
  if (e->seq == 0) {
    return; /* nothing written: nothing to remember */
  }
  uint8_t *p = ps__buf_reserve(b, 18 + (size_t)e->name_len);
  if (p == NULL) {
    return; /* caught by the caller's size check */
  }
  p[0] = 'S';
  ps__put64(p + 1, e->id);
  ps__put64(p + 9, e->seq);
  p[17] = e->name_len;
  memcpy(p + 18, e->name, e->name_len);
  b->len += 18 + (size_t)e->name_len;
}

/* Frames rec (payload from byte 8 on) as a record in place. */
static void seal(ps__buf *rec) {
  uint8_t *p = ps__buf_head(rec);
  uint32_t n = (uint32_t)(ps__buf_size(rec) - 8);
  ps__put32(p, n);
  ps__put32(p + 4, (uint32_t)crc32(0, p + 8, n));
}

static int append(ps__journal *j, char *errbuf) {
  seal(&j->rec);
  if (ps__write_all(j->fd, ps__buf_head(&j->rec), ps__buf_size(&j->rec)) != 0) {
    int e = errno;
    /* A torn record would hide every later one: cut it off. */
    if (ftruncate(j->fd, (off_t)j->len) != 0) {
      (void)0;
    }
    return ps__seterr(errbuf, PS_ERR_IO, "writing the journal %s: %s", j->path,
                      strerror(e));
  }
  j->len += ps__buf_size(&j->rec);
  return 0;
}

static int begin(ps__journal *j) {
  ps__buf_reset(&j->rec);
  if (ps__buf_reserve(&j->rec, 8) == NULL) {
    return PS_ERR_NOMEM;
  }
  j->rec.len = 8;
  return 0;
}

/* Applies one record's payload. Returns 0, or -1 if malformed. */
static int apply(ps__journal *j, ps__streamtab *tab, const uint8_t *p,
                 size_t n) {
  size_t off = 0;
  char path[65536];
  while (off < n) {
    if (p[off] == 'F' && n - off >= 19) {
      uint64_t size = ps__get64(p + off + 1);
      uint64_t ino = ps__get64(p + off + 9);
      size_t len = ps__get16(p + off + 17);
      if (len == 0 || n - off - 19 < len) {
        return -1;
      }
      memcpy(path, p + off + 19, len);
      path[len] = '\0';
      if (strlen(path) != len || file_set(j, path, NULL, size, ino) == NULL) {
        return -1;
      }
      off += 19 + len;
    } else if (p[off] == 'S' && n - off >= 18) {
      size_t len = p[off + 17];
      if (len == 0 || n - off - 18 < len) {
        return -1;
      }
      ps__stream_ent *e = ps__streamtab_get(tab, (const char *)p + off + 18,
                                            len, ps__get64(p + off + 1));
      if (e == NULL) {
        return -1;
      }
      e->seq = ps__get64(p + off + 9); /* the record says, even if lower */
      off += 18 + len;
    } else {
      return -1;
    }
  }
  return 0;
}

/* Reads every valid record; returns the length of the valid part. */
static uint64_t replay(ps__journal *j, ps__streamtab *tab, int *bad) {
  struct stat st;
  uint8_t magic[MAGIC_LEN];
  *bad = 0;
  if (fstat(j->fd, &st) != 0) {
    *bad = 1;
    return 0;
  }
  if (st.st_size == 0) {
    return 0; /* new */
  }
  /* Anything else must start like a journal before a byte more is read
   * (a capture file given as --state is refused, not loaded), and a
   * journal never grows near this size (it is compacted). */
  if (st.st_size < MAGIC_LEN || st.st_size > MAX_JOURNAL ||
      pread(j->fd, magic, MAGIC_LEN, 0) != MAGIC_LEN ||
      memcmp(magic, MAGIC, MAGIC_LEN) != 0) {
    *bad = 1;
    return 0;
  }
  uint8_t *all = malloc((size_t)st.st_size);
  if (all == NULL ||
      pread(j->fd, all, (size_t)st.st_size, 0) != (ssize_t)st.st_size) {
    free(all);
    *bad = 1;
    return 0;
  }
  size_t off = MAGIC_LEN, n = (size_t)st.st_size;
  while (n - off >= 8) {
    uint32_t len = ps__get32(all + off);
    uint32_t crc = ps__get32(all + off + 4);
    if (len > MAX_RECORD || n - off - 8 < len ||
        (uint32_t)crc32(0, all + off + 8, len) != crc ||
        apply(j, tab, all + off + 8, len) != 0) {
      break;
    }
    off += 8 + (size_t)len;
  }
  free(all);
  return off;
}

/* Cuts each file back to what was acknowledged: only a file in the
 * journal's directory (or below it), reached without a symbolic link,
 * with the inode recorded when this receiver created it, of its user. */
static void repair(ps__journal *j) {
  jfile *next;
  for (jfile *f = j->files; f != NULL; f = next) {
    next = f->next;
    if (!name_ok(f->name) || f->ino == 0) {
      /* Never written by a receiver: a forged or damaged journal (its
       * name is shown without control bytes: it forges no log line). */
      char shown[256];
      size_t k = 0;
      for (const char *c = f->name; *c != '\0' && k < sizeof(shown) - 1; c++) {
        shown[k++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
      }
      shown[k] = '\0';
      ps__log(j->log, j->log_ud, PS_LOG_WARNING,
              "journal %s: ignoring its entry for %s (%s): nothing outside "
              "the journal's directory, or not known by its inode, is cut",
              j->path, shown,
              f->ino == 0 ? "no inode recorded"
                          : "not a file in its directory");
      file_drop(j, f);
      continue;
    }
    const char *leaf, *why;
    char why_buf[128];
    struct stat st, ds;
    int dfd = walk(j, f->name, &leaf);
    if (dfd < 0 || fstat(dfd, &ds) != 0 ||
        fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ELOOP || errno == ENOTDIR) {
        ps__log(j->log, j->log_ud, PS_LOG_WARNING,
                "%s%s: a directory on its way is a symbolic link, or not a "
                "directory: left as it is",
                j->prefix, f->name);
      } else if (errno != ENOENT) {
        ps__log(j->log, j->log_ud, PS_LOG_WARNING, "%s%s: %s: left as it is",
                j->prefix, f->name, strerror(errno));
      } /* else rotated away, or removed by someone: nothing to do */
      dir_close(j, dfd);
      continue;
    }
    if ((why = not_ours(j, f, &st, &ds, why_buf, sizeof(why_buf))) != NULL) {
      ps__log(j->log, j->log_ud, PS_LOG_WARNING, "%s%s %s: left as it is",
              j->prefix, f->name, why);
    } else if ((uint64_t)st.st_size > f->size) {
      /* Checked again on the open file: it is the one cut. */
      int fd = openat(
          dfd, leaf, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      struct stat fs;
      int e = 0;
      if (fd < 0 || fstat(fd, &fs) != 0) {
        e = errno;
      } else if ((why = not_ours(j, f, &fs, &ds, why_buf, sizeof(why_buf))) !=
                 NULL) {
        e = -1;
      } else if (ftruncate(fd, (off_t)f->size) != 0) {
        e = errno;
      }
      if (e == 0) {
        ps__log(j->log, j->log_ud, PS_LOG_WARNING,
                "%s%s: removed %llu bytes written after the last "
                "acknowledged batch (the sensors resend them)",
                j->prefix, f->name,
                (unsigned long long)((uint64_t)fs.st_size - f->size));
      } else {
        ps__log(j->log, j->log_ud, PS_LOG_ERROR,
                "%s%s: cannot cut it back to %llu bytes: %s", j->prefix,
                f->name, (unsigned long long)f->size,
                e > 0 ? strerror(e) : why);
      }
      if (fd >= 0) {
        close(fd);
      }
    } else if ((uint64_t)st.st_size < f->size) {
      ps__log(j->log, j->log_ud, PS_LOG_WARNING,
              "%s%s: %llu bytes, shorter than the %llu recorded: changed "
              "by something else",
              j->prefix, f->name, (unsigned long long)st.st_size,
              (unsigned long long)f->size);
    }
    dir_close(j, dfd);
  }
}

/* Creates the journal's temporary file, never through a link and never
 * over a file: a stale one is removed only if it is a plain file of this
 * receiver's user. */
static int create_tmp(ps__journal *j, char *errbuf) {
  for (int tries = 0;; tries++) {
    int fd = openat(j->dfd, j->tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST || tries > 0) {
      if (fd < 0) {
        ps__seterr(errbuf, PS_ERR_IO, "rewriting the journal %s: %s%s: %s",
                   j->path, j->prefix, j->tmp, strerror(errno));
      }
      return fd;
    }
    struct stat st;
    const char *why = NULL;
    char buf[96];
    if (fstatat(j->dfd, j->tmp, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue; /* gone meanwhile */
    }
    if (S_ISLNK(st.st_mode)) {
      why = "is a symbolic link";
    } else if (!S_ISREG(st.st_mode)) {
      why = "is not a regular file";
    } else if (st.st_uid != geteuid()) {
      snprintf(buf, sizeof(buf), "is owned by uid %u, not by this receiver",
               (unsigned)st.st_uid);
      why = buf;
    }
    if (why != NULL) {
      ps__seterr(errbuf, PS_ERR_IO,
                 "the journal's temporary file %s%s %s: remove it (it is "
                 "never followed or overwritten)",
                 j->prefix, j->tmp, why);
      return -1;
    }
    /* Left by a receiver that died while compacting: ours, not needed. */
    if (unlinkat(j->dfd, j->tmp, 0) != 0 && errno != ENOENT) {
      ps__seterr(errbuf, PS_ERR_IO, "rewriting the journal %s: %s%s: %s",
                 j->path, j->prefix, j->tmp, strerror(errno));
      return -1;
    }
  }
}

/* Rewrites the journal as one record of what is known now. */
static int compact(ps__journal *j, ps__streamtab *tab, char *errbuf) {
  if (begin(j) != 0) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (!f->untracked && put_file(&j->rec, f) != 0) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
  }
  ps__streamtab_each(tab, 0, put_stream, &j->rec);
  seal(&j->rec);
  int fd = create_tmp(j, errbuf);
  if (fd < 0) {
    return PS_ERR_IO;
  }
  if (ps__write_all(fd, (const uint8_t *)MAGIC, MAGIC_LEN) != 0 ||
      ps__write_all(fd, ps__buf_head(&j->rec), ps__buf_size(&j->rec)) != 0 ||
      renameat(j->dfd, j->tmp, j->dfd, j->base) != 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO, "rewriting the journal %s: %s",
                        j->path, strerror(errno));
    close(fd);
    unlinkat(j->dfd, j->tmp, 0);
    return rc;
  }
  close(j->fd);
  j->fd = fd;
  j->len = MAGIC_LEN + ps__buf_size(&j->rec);
  j->snap_len = j->len;
  return 0;
}

/* Why the journal (st, in the directory ds) is not to be trusted, or
 * NULL. Its owner is this receiver's user, or the owner of a directory
 * nobody else can write (a receiver started as root with -Z USER finds
 * the journal its USER rewrote): anyone else could have written it. */
static const char *distrust(const struct stat *st, const struct stat *ds,
                            char *buf, size_t n) {
  long long dir_owner = (ds->st_mode & 022) == 0 ? (long long)ds->st_uid : -1;
  return ps__distrust(st, dir_owner, "this receiver", buf, n);
}

/* Opens (creating it, mode 0600) the journal in its directory: never
 * through a symbolic link, and only a journal this receiver can trust. */
static int open_trusted(ps__journal *j, char *errbuf) {
  struct stat st, ds;
  const char *why = NULL;
  char buf[128];
  if (fstat(j->dfd, &ds) != 0) {
    return ps__seterr(errbuf, PS_ERR_IO, "journal %s: %s", j->path,
                      strerror(errno));
  }
  j->fd = openat(j->dfd, j->base,
                 O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (j->fd < 0 && errno == ENOENT) {
    j->fd = openat(j->dfd, j->base,
                   O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }
  if (j->fd < 0) {
    if (errno == ELOOP) {
      why = "it is a symbolic link"; /* O_NOFOLLOW, dangling or not */
    } else {
      return ps__seterr(errbuf, PS_ERR_IO,
                        "cannot create the receiver's journal %s: %s (its "
                        "directory must exist and be writable; --state "
                        "puts it elsewhere)",
                        j->path, strerror(errno));
    }
  } else if (fstat(j->fd, &st) != 0) {
    return ps__seterr(errbuf, PS_ERR_IO, "journal %s: %s", j->path,
                      strerror(errno));
  } else {
    why = distrust(&st, &ds, buf, sizeof(buf));
    j->owner = st.st_uid;
  }
  if (why != NULL) {
    return ps__seterr(errbuf, PS_ERR_IO,
                      "refusing the receiver's journal %s: %s, so anyone "
                      "could have written it; remove it or fix its "
                      "owner/mode (a regular file of the receiver's user, "
                      "mode 0600)",
                      j->path, why);
  }
  return 0;
}

int ps__journal_open(ps__journal **out, const char *path, ps__streamtab *tab,
                     ps_log_fn log, void *log_ud, char *errbuf) {
  *out = NULL;
  ps__journal *j = calloc(1, sizeof(*j));
  if (j == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  j->fd = -1;
  j->dfd = -1;
  j->log = log;
  j->log_ud = log_ud;
  const char *slash = strrchr(path, '/');
  const char *base = slash != NULL ? slash + 1 : path;
  size_t dlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
  char *dir = NULL;
  if ((j->path = strdup(path)) == NULL || (j->base = strdup(base)) == NULL ||
      (j->tmp = malloc(strlen(base) + 5)) == NULL ||
      (j->prefix = strndup(path, dlen)) == NULL ||
      (dir = dlen == 0 ? strdup(".") : strndup(path, dlen)) == NULL) {
    free(dir);
    ps__journal_close(j);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  sprintf(j->tmp, "%s.new", base);
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
    free(dir);
    ps__journal_close(j);
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "the journal %s names a directory: give a file", path);
  }
  j->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dfd < 0 || (j->real = realpath(dir, NULL)) == NULL) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "cannot create the receiver's journal %s: %s (its "
                        "directory must exist and be writable; --state "
                        "puts it elsewhere)",
                        path, strerror(errno));
    free(dir);
    ps__journal_close(j);
    return rc;
  }
  free(dir);
  int rc = open_trusted(j, errbuf);
  if (rc != 0) {
    ps__journal_close(j);
    return rc;
  }
  struct stat st;
  int bad = 0;
  uint64_t valid = replay(j, tab, &bad);
  if (bad) {
    ps__journal_close(j);
    return ps__seterr(errbuf, PS_ERR_IO,
                      "%s is not a ps-receiver journal: remove it or give "
                      "another --state file",
                      path);
  }
  if (fstat(j->fd, &st) == 0 && st.st_size > 0 &&
      (uint64_t)st.st_size != valid) {
    ps__log(log, log_ud, PS_LOG_WARNING,
            "journal %s: ignoring %llu bytes of a record cut short", path,
            (unsigned long long)(st.st_size - valid));
  }
  repair(j);
  ps__streamtab_clean(tab);
  char eb[PS_ERRMSG_MAX];
  rc = compact(j, tab, eb); /* also drops a torn tail */
  if (rc != 0) {
    ps__journal_close(j);
    return ps__seterr(errbuf, rc, "%s", eb);
  }
  if (lseek(j->fd, 0, SEEK_END) < 0) {
    ps__journal_close(j);
    return ps__seterr(errbuf, PS_ERR_IO, "journal %s: %s", path,
                      strerror(errno));
  }
  *out = j;
  return 0;
}

int ps__journal_file(ps__journal *j, const char *path, int fd, uint64_t size,
                     char *errbuf) {
  jfile *f;
  if (begin(j) != 0 || (f = track(j, path, fd, size)) == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  if (f->untracked) {
    return 0;
  }
  if (put_file(&j->rec, f) != 0) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  int rc = append(j, errbuf);
  if (rc != 0) {
    j->unsynced = 1;
  }
  return rc;
}

int ps__journal_commit(ps__journal *j, const ps__file_mark *marks, unsigned n,
                       ps__streamtab *tab, char *errbuf) {
  if (begin(j) != 0) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  for (jfile *f = j->files; f != NULL; f = f->next) {
    f->seen = 0;
  }
  for (unsigned i = 0; i < n; i++) {
    jfile *f = find_path(j, marks[i].path);
    if (f != NULL &&
        (f->untracked || (f->size == marks[i].size && !j->unsynced))) {
      f->seen = 1;
      continue;
    }
    if (f != NULL) {
      f->size = marks[i].size;
    } else if ((f = track(j, marks[i].path, marks[i].fd, marks[i].size)) ==
               NULL) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
    f->seen = 1;
    if (!f->untracked && put_file(&j->rec, f) != 0) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
  }
  /* Closed since the last commit (rotation, reopen): its size now is its
   * final one, all of it written before this commit. Forgotten only once
   * the record is out. */
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (f->seen || f->untracked) {
      continue;
    }
    struct stat st;
    dev_t dev;
    if (locate(j, f->name, &st, &dev) == 0 && S_ISREG(st.st_mode) &&
        st.st_dev == dev && (uint64_t)st.st_ino == f->ino &&
        ((uint64_t)st.st_size != f->size || j->unsynced)) {
      f->size = (uint64_t)st.st_size;
      if (put_file(&j->rec, f) != 0) {
        return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
      }
    }
  }
  /* Dirty entries have seq > 0, so each adds at least 19 bytes. */
  size_t before = ps__buf_size(&j->rec);
  ps__streamtab_each(tab, 1, put_stream, &j->rec);
  if (ps__buf_size(&j->rec) - before < tab->n_dirty * 19) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  if (ps__buf_size(&j->rec) > 8) {
    int rc = append(j, errbuf);
    if (rc != 0) {
      j->unsynced = 1;
      return rc;
    }
  }
  j->unsynced = 0;
  jfile *next;
  for (jfile *f = j->files; f != NULL; f = next) {
    next = f->next;
    if (!f->seen) {
      file_drop(j, f);
    }
  }
  ps__streamtab_clean(tab);
  if (j->len > COMPACT_AT && j->len > 4 * j->snap_len) {
    return compact(j, tab, errbuf);
  }
  return 0;
}

void ps__journal_close(ps__journal *j) {
  if (j == NULL) {
    return;
  }
  if (j->fd >= 0) {
    close(j->fd);
  }
  if (j->dfd >= 0) {
    close(j->dfd);
  }
  while (j->files != NULL) {
    file_drop(j, j->files);
  }
  ps__buf_free(&j->rec);
  free(j->path);
  free(j->base);
  free(j->tmp);
  free(j->prefix);
  free(j->real);
  free(j);
}
