/* Command-line helpers for the tools. */
#include "config.h"

#include "ps_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
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

int ps_cli_parse_size(const char *s, uint64_t unit, uint64_t min,
                      uint64_t max, uint64_t *out, char *err, size_t errlen) {
  size_t len = strlen(s);
  if (len > 0 && strchr("kKmMgG", s[len - 1]) != NULL) {
    char u = s[len - 1];
    unit = (u == 'k' || u == 'K')   ? 1024u
           : (u == 'm' || u == 'M') ? 1048576u
                                    : 1073741824u;
    len--;
  }
  if (len == 0) {
    snprintf(err, errlen, "'%.40s' is not a size", s);
    return -1;
  }
  if (strspn(s, "0123456789") != len) {
    snprintf(err, errlen, "'%.*s' is not a whole number",
             (int)(len < 40 ? len : 40), s);
    return -1;
  }
  /* Digits only: whatever is wrong now is the range, given in bytes
   * whatever the unit (an intermediate bound such as UINT64_MAX / unit
   * would say nothing the user typed). */
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  if (errno == ERANGE || v > max / unit || v * unit < min) {
    snprintf(err, errlen, "'%.40s' is outside %llu..%llu bytes", s,
             (unsigned long long)min, (unsigned long long)max);
    return -1;
  }
  *out = (uint64_t)v * unit;
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
    /* Brackets hold an IPv6 address (RFC 3986): hex digits and ':', an
     * embedded IPv4 part, a %zone. A name or an IPv4 address is written
     * without them. */
    size_t al = strcspn(s + 1, "%]");
    if (memchr(s + 1, ':', al) == NULL ||
        strspn(s + 1, "0123456789abcdefABCDEF:.") != al ||
        (s[1 + al] == '%' && al + 1 == hl)) {
      snprintf(err, errlen,
               "'%.80s': brackets are for IPv6 addresses; write a name or "
               "an IPv4 address as HOST:PORT",
               s);
      return -1;
    }
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
  struct stat st;
  if (f != NULL && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    /* fopen() opens a directory, and reading it just ends: that read
     * as an empty filter, i.e. capture everything. */
    fclose(f);
    f = NULL;
    errno = EISDIR;
  }
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
  if (buf != NULL && ferror(f)) {
    /* A read error is not the end of the expression. */
    snprintf(err, errlen, "cannot read filter file %s: %s", path,
             strerror(errno));
    free(buf);
    fclose(f);
    return NULL;
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

int ps_cli_drop_privileges(const char *user, char *err, size_t errlen) {
  if (getuid() != 0 && geteuid() != 0) {
    if (user != NULL && strcmp(user, "root") != 0) {
      /* Not root: we are already as unprivileged as we can make us. */
      struct passwd *pw = getpwnam(user);
      if (pw == NULL || pw->pw_uid != getuid()) {
        snprintf(err, errlen, "-Z %s: only root can change user", user);
        return -1;
      }
    }
    return 0;
  }
  if (user != NULL && strcmp(user, "root") == 0) {
    ps_cli_log(PS_LOG_WARNING, "-Z root: keeping root privileges", NULL);
    return 0;
  }
  struct passwd *pw = NULL;
  if (user != NULL) {
    pw = getpwnam(user);
    if (pw == NULL) {
      snprintf(err, errlen, "-Z %s: no such user", user);
      return -1;
    }
  } else {
    static const char *const candidates[] = {"packetstreamer", "nobody"};
    for (size_t i = 0; i < 2 && pw == NULL; i++) {
      pw = getpwnam(candidates[i]);
    }
    if (pw == NULL) {
      ps_cli_log(PS_LOG_WARNING,
                 "running as root: no unprivileged user found to drop to "
                 "(give -Z USER)",
                 NULL);
      return 0;
    }
  }
  char name[64];
  snprintf(name, sizeof(name), "%s", pw->pw_name);
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
    snprintf(err, errlen, "cannot drop privileges to %s: %s", name,
             strerror(errno));
    return -1;
  }
  if (uid != 0 && setuid(0) == 0) {
    snprintf(err, errlen, "privileges to %s were not dropped for good", name);
    return -1;
  }
  char line[128];
  snprintf(line, sizeof(line), "dropped privileges to user %s (uid %u)",
           name, (unsigned)uid);
  ps_cli_log(PS_LOG_INFO, line, NULL);
  return 0;
}

void ps_cli_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}
