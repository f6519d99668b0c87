/* The sensor's on-disk spool; see ps_spool.h. */
#include "config.h"

#include "ps_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SEGMENT_BYTES (1u << 20) /* a new segment after this much */
#define MAX_RECORD (64u << 20)

typedef struct segment {
  uint64_t first, last; /* seqs in it */
} segment;

struct ps__spool {
  char *dir;
  /* The directory: every file in it is reached with openat() from here,
   * never through a symbolic link, and only files of this sensor's user
   * that nobody else can write are read, cut or removed. */
  int dfd;
  ps_log_fn log;
  void *log_ud;
  int lock_fd;
  int fd; /* segment being appended to, -1 before the first */
  uint64_t fd_bytes;
  segment *seg; /* oldest first; the last one is the open one */
  size_t n_seg, cap_seg;
  ps__buf rec;
};

static void seg_name(char *buf, size_t n, uint64_t first) {
  snprintf(buf, n, "seg-%020" PRIu64, first);
}

/* Why the spool's file st is not to be trusted; NULL if it is ours. */
static const char *distrust(const struct stat *st, char *buf, size_t n) {
  return ps__distrust(st, -1, "this sensor", buf, n);
}

/* Opens name in the spool, following no link: the fd, -1 with errno, or
 * -2 with *why when it is there but not ours (left untouched). */
static int open_ours(ps__spool *sp, const char *name, int flags,
                     const char **why, char *buf, size_t n) {
  int fd = openat(sp->dfd, name,
                  flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
  struct stat st;
  if (fd < 0) {
    if (errno != ELOOP) {
      return -1;
    }
    *why = "it is a symbolic link";
    return -2;
  }
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if ((*why = distrust(&st, buf, n)) != NULL) {
    close(fd);
    return -2;
  }
  return fd;
}

/* Creates name (mode 0600), never over a file and never through a link;
 * a stale one of ours is replaced. -1 with the reason in errbuf. */
static int create_new(ps__spool *sp, const char *name, int flags,
                      char *errbuf) {
  for (int tries = 0;; tries++) {
    int fd = openat(sp->dfd, name,
                    flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      return fd;
    }
    struct stat st;
    const char *why;
    char buf[96];
    if (errno != EEXIST || tries > 0 ||
        fstatat(sp->dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ps__seterr(errbuf, PS_ERR_IO, "cannot write in the spool %s: %s: %s",
                 sp->dir, name, strerror(errno));
      return -1;
    }
    if ((why = distrust(&st, buf, sizeof(buf))) != NULL) {
      ps__seterr(errbuf, PS_ERR_IO,
                 "cannot write in the spool %s: %s is there and %s: remove "
                 "it (the sensor never follows, overwrites or removes a "
                 "file that is not its own)",
                 sp->dir, name, why);
      return -1;
    }
    if (unlinkat(sp->dfd, name, 0) != 0 && errno != ENOENT) {
      ps__seterr(errbuf, PS_ERR_IO, "cannot write in the spool %s: %s: %s",
                 sp->dir, name, strerror(errno));
      return -1;
    }
  }
}

/* Removes the first k segment files (all: k = n_seg). */
static void remove_first(ps__spool *sp, size_t k) {
  if (k == 0) {
    return;
  }
  for (size_t i = 0; i < k; i++) {
    char name[64];
    seg_name(name, sizeof(name), sp->seg[i].first);
    unlinkat(sp->dfd, name, 0);
  }
  memmove(sp->seg, sp->seg + k, (sp->n_seg - k) * sizeof(*sp->seg));
  sp->n_seg -= k;
}

static void remove_segments(ps__spool *sp) {
  remove_first(sp, sp->n_seg);
}

int ps__spool_open(ps__spool **out, const char *dir, ps_log_fn log,
                   void *log_ud, char *errbuf) {
  *out = NULL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    return ps__seterr(errbuf, PS_ERR_IO, "cannot create the spool %s: %s", dir,
                      strerror(errno));
  }
  ps__spool *sp = calloc(1, sizeof(*sp));
  if (sp == NULL || (sp->dir = strdup(dir)) == NULL) {
    free(sp);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  sp->fd = -1;
  sp->lock_fd = -1;
  sp->log = log;
  sp->log_ud = log_ud;
  sp->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat ds;
  if (sp->dfd < 0 || fstat(sp->dfd, &ds) != 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO, "cannot use the spool %s: %s", dir,
                        strerror(errno));
    ps__spool_close(sp, 0);
    return rc;
  }
  /* Whoever else can write it could plant batches or remove ours. */
  if (ds.st_uid != geteuid() && ds.st_uid != 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "the spool %s is owned by uid %u, not by this sensor "
                        "(uid %u): give the sensor its own directory, or "
                        "chown it",
                        dir, (unsigned)ds.st_uid, (unsigned)geteuid());
    ps__spool_close(sp, 0);
    return rc;
  }
  if ((ds.st_mode & S_IWOTH) != 0 && (ds.st_mode & S_ISVTX) == 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "the spool %s is writable by anyone (mode %04o): give "
                        "the sensor its own directory, or chmod o-w it",
                        dir, (unsigned)(ds.st_mode & 07777));
    ps__spool_close(sp, 0);
    return rc;
  }
  const char *why = NULL;
  char buf[96];
  sp->lock_fd = open_ours(sp, "lock", O_RDWR | O_CREAT, &why, buf, sizeof(buf));
  if (sp->lock_fd == -2) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "cannot use the spool %s: its file lock: %s: remove it",
                        dir, why);
    ps__spool_close(sp, 0);
    return rc;
  }
  if (sp->lock_fd < 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "cannot use the spool %s: %s (it must be writable "
                        "by the user ps-sensor runs as, see -Z)",
                        dir, strerror(errno));
    ps__spool_close(sp, 0);
    return rc;
  }
  if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int rc = ps__seterr(errbuf, PS_ERR_IO,
                        "the spool %s is in use by another sensor: give "
                        "each sensor its own --spool-dir",
                        dir);
    ps__spool_close(sp, 0);
    return rc;
  }
  *out = sp;
  return 0;
}

static int seg_cmp(const void *a, const void *b) {
  const segment *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

static int seg_add(ps__spool *sp, uint64_t first, uint64_t last) {
  if (sp->n_seg == sp->cap_seg) {
    size_t cap = sp->cap_seg ? sp->cap_seg * 2 : 16;
    segment *n = realloc(sp->seg, cap * sizeof(*n));
    if (n == NULL) {
      return -1;
    }
    sp->seg = n;
    sp->cap_seg = cap;
  }
  sp->seg[sp->n_seg++] = (segment){first, last};
  return 0;
}

/* Reads the stream file; 0 when absent or invalid (nothing to resume). */
static int read_meta(ps__spool *sp, ps__spool_meta *m) {
  const char *why = NULL;
  char wb[96];
  int fd = open_ours(sp, "stream", O_RDONLY, &why, wb, sizeof(wb));
  if (fd == -2) {
    ps__log(sp->log, sp->log_ud, PS_LOG_WARNING,
            "spool %s: ignoring its stream file: %s (nothing is resumed)",
            sp->dir, why);
  }
  if (fd < 0) {
    return 0;
  }
  uint8_t buf[80000];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof(buf) && ((r = read(fd, buf + n, sizeof(buf) - n)) > 0 ||
                             (r < 0 && errno == EINTR))) {
    n += r > 0 ? (size_t)r : 0;
  }
  close(fd);
  if (n < 4 + 8 + 1 + 1 + 2 + 4 || memcmp(buf, "PSS1", 4) != 0 ||
      (uint32_t)crc32(0, buf, (uInt)(n - 4)) != ps__get32(buf + n - 4)) {
    return 0;
  }
  size_t off = 4, end = n - 4;
  memset(m, 0, sizeof(*m));
  m->stream_id = ps__get64(buf + off);
  m->codec = buf[off + 8];
  size_t nl = buf[off + 9];
  off += 10;
  if (nl == 0 || end - off < nl + 2) {
    return 0;
  }
  memcpy(m->name, buf + off, nl);
  off += nl;
  m->n_ifaces = ps__get16(buf + off);
  off += 2;
  if (m->n_ifaces > PS_MAX_IFACES) {
    return 0;
  }
  for (uint32_t i = 0; i < m->n_ifaces; i++) {
    ps__spool_iface *fi = &m->ifaces[i];
    if (end - off < 10) {
      return 0;
    }
    fi->linktype = ps__get32(buf + off);
    fi->snaplen = ps__get32(buf + off + 4);
    fi->tsres = buf[off + 8];
    size_t l = buf[off + 9];
    off += 10;
    if (l == 0 || end - off < l) {
      return 0;
    }
    memcpy(fi->name, buf + off, l);
    off += l;
  }
  return off == end;
}

int ps__spool_recover(ps__spool *sp, ps__spool_meta *meta,
                      int (*fn)(void *ud, const ps__spool_rec *r), void *ud,
                      char *errbuf) {
  /* Its own open directory: readdir moves no offset another fd shares. */
  int lfd = openat(sp->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
  if (d == NULL) {
    if (lfd >= 0) {
      close(lfd);
    }
    return ps__seterr(errbuf, PS_ERR_IO, "cannot read the spool %s: %s",
                      sp->dir, strerror(errno));
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint64_t first;
    char tail;
    if (sscanf(de->d_name, "seg-%20" SCNu64 "%c", &first, &tail) == 1 &&
        seg_add(sp, first, first) != 0) {
      closedir(d);
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
  }
  closedir(d);
  if (sp->n_seg > 1) {
    qsort(sp->seg, sp->n_seg, sizeof(*sp->seg), seg_cmp);
  }
  int have = read_meta(sp, meta);
  uint64_t batches = 0, last = 0;
  uint32_t ifc[2 * PS_MAX_IFACES];
  for (size_t i = 0; i < sp->n_seg; i++) {
    char name[64], wb[96];
    const char *why = NULL;
    seg_name(name, sizeof(name), sp->seg[i].first);
    int fd = open_ours(sp, name, O_RDWR, &why, wb, sizeof(wb));
    if (fd == -2) {
      /* Not written by this sensor: never read, cut or removed. */
      ps__log(sp->log, sp->log_ud, PS_LOG_WARNING,
              "spool %s: ignoring %s: %s (remove it)", sp->dir, name, why);
      memmove(sp->seg + i, sp->seg + i + 1,
              (sp->n_seg - i - 1) * sizeof(*sp->seg));
      sp->n_seg--;
      i--;
      continue;
    }
    struct stat st;
    uint8_t *all = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
      all = malloc((size_t)st.st_size);
      if (all != NULL &&
          pread(fd, all, (size_t)st.st_size, 0) != (ssize_t)st.st_size) {
        free(all);
        all = NULL;
      }
    }
    size_t off = 0, size = all ? (size_t)st.st_size : 0;
    uint64_t here = 0;
    while (have && all != NULL && size - off >= 8) {
      uint32_t len = ps__get32(all + off);
      const uint8_t *q = all + off + 8;
      if (len > MAX_RECORD || size - off - 8 < len || len < 14 ||
          (uint32_t)crc32(0, q, len) != ps__get32(all + off + 4)) {
        break;
      }
      ps__spool_rec r = {.seq = ps__get64(q),
                         .count = ps__get32(q + 8),
                         .n_if = ps__get16(q + 12)};
      size_t h = 14 + 8 * (size_t)r.n_if;
      if (r.n_if > PS_MAX_IFACES || len < h || r.seq <= last) {
        break;
      }
      for (uint16_t k = 0; k < r.n_if; k++) {
        ifc[2 * k] = ps__get32(q + 14 + 8 * k);
        ifc[2 * k + 1] = ps__get32(q + 18 + 8 * k);
      }
      r.ifc = ifc;
      r.frame = q + h;
      r.len = len - h;
      int rc = fn(ud, &r);
      if (rc != 0) {
        free(all);
        close(fd);
        return rc;
      }
      last = r.seq;
      sp->seg[i].last = r.seq;
      batches++;
      here++;
      off += 8 + (size_t)len;
    }
    if (fd >= 0 && off < size && ftruncate(fd, (off_t)off) != 0) {
      (void)0; /* a torn record stays ignored either way */
    }
    free(all);
    if (fd >= 0) {
      close(fd);
    }
    if (have && here == 0) {
      /* Nothing intact in it: gone, so its name is free for the batch
       * numbers the next segment starts from. */
      unlinkat(sp->dfd, name, 0);
      memmove(sp->seg + i, sp->seg + i + 1,
              (sp->n_seg - i - 1) * sizeof(*sp->seg));
      sp->n_seg--;
      i--;
    }
  }
  if (!have || batches == 0) {
    remove_segments(sp); /* nothing to send: a fresh start */
    return 0;
  }
  return 1;
}

int ps__spool_set_meta(ps__spool *sp, const ps__spool_meta *m, char *errbuf) {
  ps__buf b = {0};
  size_t nl = strlen(m->name);
  uint8_t *p = ps__buf_reserve(&b, 16 + nl + 256 * (10 + 255) + 4);
  if (p == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  memcpy(p, "PSS1", 4);
  ps__put64(p + 4, m->stream_id);
  p[12] = m->codec;
  p[13] = (uint8_t)nl;
  memcpy(p + 14, m->name, nl);
  size_t off = 14 + nl;
  ps__put16(p + off, (uint16_t)m->n_ifaces);
  off += 2;
  for (uint32_t i = 0; i < m->n_ifaces; i++) {
    const ps__spool_iface *fi = &m->ifaces[i];
    size_t l = strlen(fi->name);
    ps__put32(p + off, fi->linktype);
    ps__put32(p + off + 4, fi->snaplen);
    p[off + 8] = fi->tsres;
    p[off + 9] = (uint8_t)l;
    memcpy(p + off + 10, fi->name, l);
    off += 10 + l;
  }
  ps__put32(p + off, (uint32_t)crc32(0, p, (uInt)off));
  off += 4;
  int rc = 0;
  int fd = create_new(sp, "stream.new", O_WRONLY, errbuf);
  if (fd < 0) {
    rc = PS_ERR_IO;
  } else {
    int w = ps__write_all(fd, p, off);
    int e = errno;
    if (close(fd) != 0 && w == 0) {
      w = -1;
      e = errno;
    }
    if (w == 0 && renameat(sp->dfd, "stream.new", sp->dfd, "stream") != 0) {
      w = -1;
      e = errno;
    }
    if (w != 0) {
      rc = ps__seterr(errbuf, PS_ERR_IO, "writing the spool %s: %s", sp->dir,
                      strerror(e));
      unlinkat(sp->dfd, "stream.new", 0);
    }
  }
  ps__buf_free(&b);
  return rc;
}

int ps__spool_append(ps__spool *sp, const ps__spool_rec *r, char *errbuf) {
  if (sp->fd < 0 || sp->fd_bytes >= SEGMENT_BYTES) {
    if (sp->fd >= 0) {
      close(sp->fd);
      sp->fd = -1;
    }
    char name[64];
    seg_name(name, sizeof(name), r->seq);
    sp->fd = create_new(sp, name, O_WRONLY | O_APPEND, errbuf);
    if (sp->fd < 0) {
      return PS_ERR_IO;
    }
    if (seg_add(sp, r->seq, r->seq) != 0) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
    sp->fd_bytes = 0;
  }
  size_t h = 14 + 8 * (size_t)r->n_if;
  ps__buf_reset(&sp->rec);
  uint8_t *p = ps__buf_reserve(&sp->rec, 8 + h);
  if (p == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  uint32_t len = (uint32_t)(h + r->len);
  ps__put32(p, len);
  ps__put64(p + 8, r->seq);
  ps__put32(p + 16, r->count);
  ps__put16(p + 20, r->n_if);
  for (uint16_t k = 0; k < r->n_if; k++) {
    ps__put32(p + 22 + 8 * k, r->ifc[2 * k]);
    ps__put32(p + 26 + 8 * k, r->ifc[2 * k + 1]);
  }
  uLong crc = crc32(0, p + 8, (uInt)h);
  crc = crc32(crc, r->frame, (uInt)r->len);
  ps__put32(p + 4, (uint32_t)crc);
  struct iovec_like {
    const uint8_t *p;
    size_t n;
  } parts[2] = {{p, 8 + h}, {r->frame, r->len}};
  for (int k = 0; k < 2; k++) {
    if (ps__write_all(sp->fd, parts[k].p, parts[k].n) != 0) {
      return ps__seterr(errbuf, PS_ERR_IO, "writing the spool %s: %s", sp->dir,
                        strerror(errno));
    }
  }
  sp->fd_bytes += 8 + len;
  sp->seg[sp->n_seg - 1].last = r->seq;
  return 0;
}

void ps__spool_release(ps__spool *sp, uint64_t below) {
  /* Never the segment being appended to. */
  while (sp->n_seg > 1 && sp->seg[0].last < below) {
    remove_first(sp, 1);
  }
}

void ps__spool_close(ps__spool *sp, int done) {
  if (sp == NULL) {
    return;
  }
  if (sp->fd >= 0) {
    close(sp->fd);
  }
  if (done) {
    remove_segments(sp);
    unlinkat(sp->dfd, "stream", 0);
  }
  if (sp->lock_fd >= 0) {
    close(sp->lock_fd);
  }
  if (sp->dfd >= 0) {
    close(sp->dfd);
  }
  ps__buf_free(&sp->rec);
  free(sp->seg);
  free(sp->dir);
  free(sp);
}
