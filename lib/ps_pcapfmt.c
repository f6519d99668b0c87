/* What pcap and pcapng share: time stamps as files hold them, and output
 * file names. The formats' own byte layouts are in ps_fmt_pcap.c and
 * ps_fmt_pcapng.c. */
#include "config.h"

#include "ps_pcapfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t pow10u[] = {1,      10,      100,      1000,
                                  10000,  100000,  1000000,  10000000,
                                  100000000, 1000000000};

/* The fraction of a time stamp in resolution from_res, in to_res: the
 * whole seconds it holds (*carry) and the rest, scaled. Both resolutions
 * are at most 9, so the scaled rest is below 10^9 and nothing wraps. */
static uint32_t frac_to(uint32_t frac, uint8_t from_res, uint8_t to_res,
                        uint32_t *carry) {
  uint32_t unit = pow10u[from_res];
  uint32_t f = frac % unit;
  *carry = frac / unit;
  return to_res > from_res ? f * pow10u[to_res - from_res]
                           : f / pow10u[from_res - to_res];
}

int ps__ts_convert(int64_t *sec, uint32_t *frac, uint8_t from_res,
                   uint8_t to_res) {
  if (from_res > 9 || to_res > 9) {
    return -1;
  }
  if (from_res == to_res) {
    return 0;
  }
  uint32_t carry;
  uint32_t f = frac_to(*frac, from_res, to_res, &carry);
  /* A hostile sensor sends seconds near INT64_MAX: signed overflow here
   * is undefined behaviour, so test before adding. */
  if (*sec > INT64_MAX - (int64_t)carry) {
    return -1;
  }
  *sec += carry;
  *frac = f;
  return 0;
}

/* sec.frac as files read it: unsigned seconds and the fraction in to_res
 * (see the header). -1 if no file holds it. */
static int file_ts(uint64_t *out_sec, uint32_t *out_frac, int64_t sec,
                   uint32_t frac, uint8_t from_res, uint8_t to_res) {
  if (from_res > 9 || to_res > 9 || sec < INT32_MIN) {
    return -1;
  }
  /* A sign-extended 32-bit value means its unsigned self. */
  uint64_t s = sec < 0 ? (uint64_t)(sec + INT64_C(4294967296)) : (uint64_t)sec;
  if (from_res != to_res) {
    uint32_t carry;
    frac = frac_to(frac, from_res, to_res, &carry);
    s += carry; /* s < 2^63 and carry < 2^32: no wrap */
  }
  *out_sec = s;
  *out_frac = frac;
  return 0;
}

int ps__pcap_ts(uint32_t *out_sec, uint32_t *out_frac, int64_t sec,
                uint32_t frac, uint8_t tsres, int nano) {
  uint64_t s;
  uint32_t f;
  uint8_t to_res = nano ? PS_TSRES_NSEC : PS_TSRES_USEC;
  if (file_ts(&s, &f, sec, frac, tsres, to_res) != 0 || s > PS_PCAP_MAX_SEC) {
    return -1;
  }
  *out_sec = (uint32_t)s;
  *out_frac = f;
  return 0;
}

uint64_t ps__pcapng_max_sec(uint32_t frac, uint8_t tsres) {
  return tsres > 9 ? 0 : (UINT64_MAX - frac) / pow10u[tsres];
}

int ps__pcapng_ts(uint64_t *out, int64_t sec, uint32_t frac, uint8_t tsres) {
  uint64_t s;
  uint32_t f;
  if (file_ts(&s, &f, sec, frac, tsres, tsres) != 0 ||
      s > ps__pcapng_max_sec(f, tsres)) {
    return -1;
  }
  *out = s * pow10u[tsres] + f;
  return 0;
}

/* --- names --- */

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
