/* Internal helpers shared by every module: byte order, buffers, errors. */
#ifndef PS_COMMON_H
#define PS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <packetstreamer/packetstreamer.h>

#define PS_ERRMSG_MAX 512
#define PS_MAX_AUTH_KEY 1024u /* bytes of a shared key */

/* Big-endian (network order) field access, byte by byte: wire structs are
 * never cast. */
static inline void ps__put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void ps__put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void ps__put64(uint8_t *p, uint64_t v) {
  ps__put32(p, (uint32_t)(v >> 32));
  ps__put32(p + 4, (uint32_t)v);
}
static inline uint16_t ps__get16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t ps__get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t ps__get64(const uint8_t *p) {
  return ((uint64_t)ps__get32(p) << 32) | ps__get32(p + 4);
}

/* A growable byte buffer. Data lives in [off, len) of data[]. */
typedef struct ps__buf {
  uint8_t *data;
  size_t off;
  size_t len;
  size_t cap;
} ps__buf;

void ps__buf_free(ps__buf *b);
/* Makes room for n more bytes at the end; returns a pointer to them or
 * NULL when out of memory. Does not change len. */
uint8_t *ps__buf_reserve(ps__buf *b, size_t n);
int ps__buf_append(ps__buf *b, const void *p, size_t n);
/* Drops n bytes from the front. */
void ps__buf_consume(ps__buf *b, size_t n);
static inline size_t ps__buf_size(const ps__buf *b) {
  return b->len - b->off;
}
static inline uint8_t *ps__buf_head(const ps__buf *b) {
  /* An empty buffer may have no storage: NULL + 0 is undefined. */
  return b->data ? b->data + b->off : b->data;
}
static inline void ps__buf_reset(ps__buf *b) {
  b->off = b->len = 0;
}

/* The longest timeout a setter takes: a day, in ms. */
#define PS_TIMEOUT_MS_MAX 86400000u

/* Copies a struct that only grows out to a caller that knows size bytes
 * of it: the fields both know, and zero in those only the caller knows
 * (a caller built against a newer header). */
static inline void ps__copy_out(void *out, size_t size, const void *src,
                                size_t srcsize) {
  if (out == NULL) {
    return;
  }
  size_t n = size < srcsize ? size : srcsize;
  memcpy(out, src, n);
  if (size > n) {
    memset((char *)out + n, 0, size - n);
  }
}

/* Copies a struct that only grows in from a caller that knows size
 * bytes of it (the API's convention): the fields both know, and zero
 * (the default) in those only this library knows. Returns 0, or
 * PS_ERR_INVALID when size is below minsize (the struct's first
 * published size) or when the caller knows more and set a byte beyond
 * dstsize: a field of a newer header this library cannot honour.
 * Whoever appends a field to such a struct must not place it in the tail
 * padding of the previous size (a caller's padding need not be zero):
 * start it at the previous sizeof. */
#define PS__SIZE_TO(type, field)                                               \
  (offsetof(type, field) + sizeof(((type *)0)->field))
static inline int ps__copy_in(void *dst, size_t dstsize, const void *src,
                              size_t size, size_t minsize) {
  if (src == NULL || size < minsize) {
    return PS_ERR_INVALID;
  }
  for (size_t i = dstsize; i < size; i++) {
    if (((const unsigned char *)src)[i] != 0) {
      return PS_ERR_INVALID;
    }
  }
  size_t n = size < dstsize ? size : dstsize;
  memcpy(dst, src, n);
  memset((char *)dst + n, 0, dstsize - n);
  return 0;
}

struct stat;
/* Why a file this process keeps at rest (journal, spool) is not to be
 * trusted, or NULL: a symbolic link, not a regular file, owned by a user
 * other than this process's effective one and other than also_uid (-1:
 * none), writable by group or others, or hard-linked. who names this
 * process in the owner text ("this receiver"); the text is in buf or
 * static. */
const char *ps__distrust(const struct stat *st, long long also_uid,
                         const char *who, char *buf, size_t n);

/* Formats into an errmsg buffer of PS_ERRMSG_MAX bytes; returns code. */
int ps__seterr(char *errbuf, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats one log line and hands it to fn (if any). */
void ps__log(ps_log_fn fn, void *ud, ps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A structured log callback behind a ps_log_fn: a handle that has one
 * sets its ps_log_fn to ps__log_ex_adapter with a ps__logex as user
 * data, so the modules that log plain lines need not know (their lines
 * get event "log"), and ps__logx hands its names to the callback. */
typedef struct ps__logex {
  ps_log_ex_fn fn;
  void *ud;
} ps__logex;
void ps__log_ex_adapter(ps_log_level level, const char *msg, void *ud);

/* ps__log with an event name, the sensor the line is about (or NULL)
 * and its numbers, for a structured callback; a plain one gets the
 * line. */
void ps__logx(ps_log_fn fn, void *ud, ps_log_level level, const char *event,
              const char *sensor, const ps_log_field *fields, size_t n_fields,
              const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* Keeps a copy of a shared key (1..PS_MAX_AUTH_KEY bytes) in *key,
 * wiping the one it replaces. Returns 0, PS_ERR_INVALID (text in errbuf)
 * or PS_ERR_NOMEM. */
int ps__key_set(uint8_t **key, size_t *len, const uint8_t *src, size_t n,
                char *errbuf);
/* Wipes and frees a key kept by ps__key_set. */
void ps__key_clear(uint8_t **key, size_t *len);

/* Writes all n bytes to fd (retrying after EINTR and short writes).
 * Returns 0, or -1 with errno set. For files, not sockets. */
int ps__write_all(int fd, const void *p, size_t n);

/* Monotonic milliseconds. */
int64_t ps__now_ms(void);
/* The wall clock, ms since 1970: for times shown to people ("connected
 * since"), never for deadlines. */
int64_t ps__wall_ms(void);

/* Copies a name for the wire: 1..255 bytes of printable characters
 * (no control bytes, so a name never forges a log line). */
int ps__valid_name(const char *s, size_t len);

#endif
