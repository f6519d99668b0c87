/* Buffers, error text, logging and time: the small shared pieces. */
#include "config.h"

#include "ps_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ps__buf_free(ps__buf *b) {
  free(b->data);
  b->data = NULL;
  b->off = b->len = b->cap = 0;
}

uint8_t *ps__buf_reserve(ps__buf *b, size_t n) {
  if (b->off > 0 && b->off == b->len) {
    b->off = b->len = 0;
  }
  if (b->cap - b->len >= n) {
    return b->data + b->len;
  }
  /* Move the live bytes to the front before growing: a consumer that
   * drains from the front would otherwise make the buffer creep. */
  if (b->off > 0) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->cap - b->len >= n) {
      return b->data + b->len;
    }
  }
  if (n > SIZE_MAX / 2 - b->len) {
    return NULL;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < n) {
    cap *= 2;
  }
  uint8_t *p = realloc(b->data, cap);
  if (p == NULL) {
    return NULL;
  }
  b->data = p;
  b->cap = cap;
  return b->data + b->len;
}

int ps__buf_append(ps__buf *b, const void *p, size_t n) {
  if (n == 0) {
    return 0;
  }
  uint8_t *dst = ps__buf_reserve(b, n);
  if (dst == NULL) {
    return PS_ERR_NOMEM;
  }
  if (n > 0) {
    memcpy(dst, p, n);
  }
  b->len += n;
  return 0;
}

void ps__buf_consume(ps__buf *b, size_t n) {
  b->off += n;
  if (b->off >= b->len) {
    b->off = b->len = 0;
  }
}

int ps__seterr(char *errbuf, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, PS_ERRMSG_MAX, fmt, ap);
  va_end(ap);
  return code;
}

void ps__log(ps_log_fn fn, void *ud, ps_log_level level, const char *fmt, ...) {
  if (fn == NULL) {
    return;
  }
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fn(level, line, ud);
}

static void ps__log_rec(const ps__logex *lx, ps_log_level level,
                        const char *event, const char *sensor,
                        const ps_log_field *fields, size_t n_fields,
                        const char *msg) {
  if (lx->fn == NULL) {
    return;
  }
  ps_log_record rec;
  memset(&rec, 0, sizeof(rec));
  rec.size = sizeof(rec);
  rec.level = level;
  rec.event = event;
  rec.sensor = sensor;
  rec.msg = msg;
  rec.fields = fields;
  rec.n_fields = n_fields;
  lx->fn(&rec, lx->ud);
}

void ps__log_ex_adapter(ps_log_level level, const char *msg, void *ud) {
  ps__log_rec(ud, level, "log", NULL, NULL, 0, msg);
}

void ps__logx(ps_log_fn fn, void *ud, ps_log_level level, const char *event,
              const char *sensor, const ps_log_field *fields, size_t n_fields,
              const char *fmt, ...) {
  if (fn == NULL) {
    return;
  }
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (fn == ps__log_ex_adapter) {
    ps__log_rec(ud, level, event, sensor, fields, n_fields, line);
  } else {
    fn(level, line, ud);
  }
}

void ps__key_clear(uint8_t **key, size_t *len) {
  if (*key != NULL) {
    explicit_bzero(*key, *len);
    free(*key);
  }
  *key = NULL;
  *len = 0;
}

int ps__key_set(uint8_t **key, size_t *len, const uint8_t *src, size_t n,
                char *errbuf) {
  if (src == NULL || n == 0 || n > PS_MAX_AUTH_KEY) {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "an authentication key has 1 to %u bytes",
                      PS_MAX_AUTH_KEY);
  }
  uint8_t *k = malloc(n);
  if (k == NULL) {
    return PS_ERR_NOMEM;
  }
  memcpy(k, src, n);
  ps__key_clear(key, len);
  *key = k;
  *len = n;
  return 0;
}

int64_t ps__now_ms(void) {
  /* The coarse clock (a few ms resolution) is all batching and timeouts
   * need, and the cheapest to read once per packet. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ps__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ps__valid_name(const char *s, size_t len) {
  if (len == 0 || len > 255) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) {
      return 0;
    }
  }
  return 1;
}

int ps__write_all(int fd, const void *p, size_t n) {
  const uint8_t *q = p;
  while (n > 0) {
    ssize_t k = write(fd, q, n);
    if (k < 0 && errno == EINTR) {
      continue;
    }
    if (k <= 0) {
      if (k == 0) {
        errno = EIO;
      }
      return -1;
    }
    q += k;
    n -= (size_t)k;
  }
  return 0;
}

const char *ps__distrust(const struct stat *st, long long also_uid,
                         const char *who, char *buf, size_t n) {
  if (S_ISLNK(st->st_mode)) {
    return "it is a symbolic link";
  }
  if (!S_ISREG(st->st_mode)) {
    return "it is not a regular file";
  }
  if (st->st_uid != geteuid() &&
      (also_uid < 0 || (long long)st->st_uid != also_uid)) {
    snprintf(buf, n, "it is owned by uid %u, not by %s (uid %u)",
             (unsigned)st->st_uid, who, (unsigned)geteuid());
    return buf;
  }
  if ((st->st_mode & 022) != 0) {
    snprintf(buf, n, "it is writable by others than its owner (mode %04o)",
             (unsigned)(st->st_mode & 07777));
    return buf;
  }
  if (st->st_nlink != 1) {
    snprintf(buf, n, "it has %u hard links", (unsigned)st->st_nlink);
    return buf;
  }
  return NULL;
}
