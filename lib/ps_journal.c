/* The receiver's journal of acknowledged positions; see ps_journal.h. */
#include "config.h"

#include "ps_journal.h"

#include <errno.h>
#include <fcntl.h>
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
  char path[];
} jfile;

struct ps__journal {
  int fd;
  char *path;
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

static jfile *file_find(ps__journal *j, const char *path) {
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (strcmp(f->path, path) == 0) {
      return f;
    }
  }
  return NULL;
}

/* Records path at size; ino 0: the file's inode now. */
static jfile *file_set(ps__journal *j, const char *path, uint64_t size,
                       uint64_t ino) {
  if (ino == 0) {
    struct stat st;
    ino = stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
  }
  jfile *f = file_find(j, path);
  if (f == NULL) {
    size_t n = strlen(path);
    f = malloc(sizeof(*f) + n + 1);
    if (f == NULL) {
      return NULL;
    }
    memcpy(f->path, path, n + 1);
    f->next = j->files;
    j->files = f;
  }
  f->size = size;
  f->ino = ino;
  return f;
}

static void file_drop(ps__journal *j, jfile *victim) {
  for (jfile **pp = &j->files; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == victim) {
      *pp = victim->next;
      free(victim);
      return;
    }
  }
}

static int put_file(ps__buf *b, const jfile *f) {
  size_t n = strlen(f->path);
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
  memcpy(p + 19, f->path, n);
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
      if (strlen(path) != len || file_set(j, path, size, ino) == NULL) {
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

/* Cuts each file back to what was acknowledged. */
static void repair(ps__journal *j) {
  for (jfile *f = j->files; f != NULL; f = f->next) {
    struct stat st;
    if (stat(f->path, &st) != 0) {
      continue; /* rotated away, or removed by someone: nothing to do */
    }
    if (f->ino != 0 && (uint64_t)st.st_ino != f->ino) {
      ps__log(j->log, j->log_ud, PS_LOG_WARNING,
              "%s is not the file this receiver wrote (it was replaced): "
              "left as it is",
              f->path);
      continue;
    }
    if ((uint64_t)st.st_size > f->size) {
      if (truncate(f->path, (off_t)f->size) == 0) {
        ps__log(j->log, j->log_ud, PS_LOG_WARNING,
                "%s: removed %llu bytes written after the last "
                "acknowledged batch (the sensors resend them)",
                f->path, (unsigned long long)(st.st_size - f->size));
      } else {
        ps__log(j->log, j->log_ud, PS_LOG_ERROR,
                "%s: cannot cut it back to %llu bytes: %s", f->path,
                (unsigned long long)f->size, strerror(errno));
      }
    } else if ((uint64_t)st.st_size < f->size) {
      ps__log(j->log, j->log_ud, PS_LOG_WARNING,
              "%s: %llu bytes, shorter than the %llu recorded: changed "
              "by something else",
              f->path, (unsigned long long)st.st_size,
              (unsigned long long)f->size);
    }
  }
}

/* Rewrites the journal as one record of what is known now. */
static int compact(ps__journal *j, ps__streamtab *tab, char *errbuf) {
  if (begin(j) != 0) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (put_file(&j->rec, f) != 0) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
  }
  ps__streamtab_each(tab, 0, put_stream, &j->rec);
  seal(&j->rec);
  size_t n = strlen(j->path);
  char *tmp = malloc(n + 5);
  if (tmp == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  memcpy(tmp, j->path, n);
  memcpy(tmp + n, ".new", 5);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int rc = 0;
  if (fd < 0 || ps__write_all(fd, (const uint8_t *)MAGIC, MAGIC_LEN) != 0 ||
      ps__write_all(fd, ps__buf_head(&j->rec), ps__buf_size(&j->rec)) != 0 ||
      rename(tmp, j->path) != 0) {
    rc = ps__seterr(errbuf, PS_ERR_IO, "rewriting the journal %s: %s", j->path,
                    strerror(errno));
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
  } else {
    close(j->fd);
    j->fd = fd;
    j->len = MAGIC_LEN + ps__buf_size(&j->rec);
    j->snap_len = j->len;
  }
  free(tmp);
  return rc;
}

int ps__journal_open(ps__journal **out, const char *path, ps__streamtab *tab,
                     ps_log_fn log, void *log_ud, char *errbuf) {
  *out = NULL;
  ps__journal *j = calloc(1, sizeof(*j));
  if (j == NULL || (j->path = strdup(path)) == NULL) {
    free(j);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  j->log = log;
  j->log_ud = log_ud;
  j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->fd < 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "cannot create the receiver's journal %s: %s (its "
                        "directory must exist and be writable; --state "
                        "puts it elsewhere)",
                        path, strerror(errno));
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
  int rc = compact(j, tab, eb); /* also drops a torn tail */
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

int ps__journal_file(ps__journal *j, const char *path, uint64_t size,
                     char *errbuf) {
  jfile *f;
  if (begin(j) != 0 || (f = file_set(j, path, size, 0)) == NULL ||
      put_file(&j->rec, f) != 0) {
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
    jfile *f = file_find(j, marks[i].path);
    if (f != NULL && f->size == marks[i].size && !j->unsynced) {
      f->seen = 1;
      continue;
    }
    if ((f = file_set(j, marks[i].path, marks[i].size,
                      f != NULL ? f->ino : 0)) == NULL ||
        put_file(&j->rec, f) != 0) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
    f->seen = 1;
  }
  /* Closed since the last commit (rotation, reopen): its size now is its
   * final one, all of it written before this commit. Forgotten only once
   * the record is out. */
  for (jfile *f = j->files; f != NULL; f = f->next) {
    if (f->seen) {
      continue;
    }
    struct stat st;
    if (stat(f->path, &st) == 0 && (uint64_t)st.st_ino == f->ino &&
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
  while (j->files != NULL) {
    file_drop(j, j->files);
  }
  ps__buf_free(&j->rec);
  free(j->path);
  free(j);
}
