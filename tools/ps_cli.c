/* Command-line helpers for the tools. */
#include "config.h"

#include "ps_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_prog = "ps";
static int g_verbosity = 1;

int ps_cli_parse_u64(const char *s, uint64_t min, uint64_t max,
                     uint64_t *out, char *err, size_t errlen) {
  if (s == NULL || *s == '\0') {
    snprintf(err, errlen, "empty number");
    return -1;
  }
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') {
      snprintf(err, errlen, "'%.40s' is not a whole number", s);
      return -1;
    }
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE || *end != '\0' || v < min || v > max) {
    snprintf(err, errlen, "'%.40s' is outside %llu..%llu", s,
             (unsigned long long)min, (unsigned long long)max);
    return -1;
  }
  *out = v;
  return 0;
}

int ps_cli_parse_hostport(const char *s, int allow_no_host, int allow_port0,
                          char *host, size_t hostlen, uint16_t *port,
                          char *err, size_t errlen) {
  const char *portstr;
  size_t hl;
  if (s == NULL || *s == '\0') {
    snprintf(err, errlen, "empty address");
    return -1;
  }
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':') {
      snprintf(err, errlen,
               "'%.80s' is not [IPV6]:PORT (a ']' and ':PORT' are missing)",
               s);
      return -1;
    }
    hl = (size_t)(close - s - 1);
    s++;
    portstr = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon == NULL) {
      if (!allow_no_host) {
        snprintf(err, errlen, "'%.80s' has no port: write HOST:PORT", s);
        return -1;
      }
      hl = 0;
      portstr = s;
    } else {
      if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        snprintf(err, errlen,
                 "'%.80s': write IPv6 addresses in brackets, [ADDR]:PORT", s);
        return -1;
      }
      hl = (size_t)(colon - s);
      portstr = colon + 1;
    }
  }
  if (hl == 0 && !allow_no_host) {
    snprintf(err, errlen, "'%.80s' has no host: write HOST:PORT", s);
    return -1;
  }
  if (hl >= hostlen) {
    snprintf(err, errlen, "host name too long");
    return -1;
  }
  for (size_t i = 0; i < hl; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == 0x7f || c == '/' || c == '[' || c == ']') {
      snprintf(err, errlen, "invalid character in host '%.*s'", (int)hl, s);
      return -1;
    }
  }
  uint64_t v;
  char why[128];
  if (ps_cli_parse_u64(portstr, allow_port0 ? 0 : 1, 65535, &v, why,
                       sizeof(why)) != 0) {
    snprintf(err, errlen, "invalid port: %s", why);
    return -1;
  }
  memcpy(host, s, hl);
  host[hl] = '\0';
  *port = (uint16_t)v;
  return 0;
}

char *ps_cli_read_filter_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, errlen, "cannot read filter file %s: %s", path,
             strerror(errno));
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  int c, in_comment = 0;
  while (buf != NULL && (c = fgetc(f)) != EOF) {
    if (c == '#') {
      in_comment = 1;
    } else if (c == '\n') {
      in_comment = 0;
    }
    if (in_comment) {
      continue;
    }
    if (len + 2 > cap) {
      if (cap >= (1u << 20)) {
        snprintf(err, errlen, "filter file %s is larger than 1 MiB", path);
        free(buf);
        fclose(f);
        return NULL;
      }
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    buf[len++] = (char)(c == '\n' || c == '\t' || c == '\r' ? ' ' : c);
  }
  fclose(f);
  if (buf == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

char *ps_cli_join(int argc, char **argv) {
  size_t n = 1;
  for (int i = 0; i < argc; i++) {
    n += strlen(argv[i]) + 1;
  }
  char *s = malloc(n);
  if (s == NULL) {
    return NULL;
  }
  s[0] = '\0';
  for (int i = 0; i < argc; i++) {
    if (i) {
      strcat(s, " ");
    }
    strcat(s, argv[i]);
  }
  return s;
}

void ps_cli_log_init(const char *prog, int verbosity) {
  g_prog = prog;
  g_verbosity = verbosity;
}

void ps_cli_log(ps_log_level level, const char *msg, void *user_data) {
  (void)user_data;
  if ((level == PS_LOG_INFO && g_verbosity < 1) ||
      (level == PS_LOG_DEBUG && g_verbosity < 2)) {
    return;
  }
  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *lv = level == PS_LOG_ERROR     ? "error: "
                   : level == PS_LOG_WARNING ? "warning: "
                                             : "";
  fprintf(stderr, "%s %s: %s%s\n", ts, g_prog, lv, msg);
}

void ps_cli_err(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", g_prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
