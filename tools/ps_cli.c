/* Command-line helpers for the tools. */
#include "config.h"

#include "ps_cli.h"
#include "ps_config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *g_prog = "ps";
static int g_verbosity = 1;
/* The --config file, whose values the tools' options point into (kept
 * to the end of the process), and "FILE:LINE:COL: " of the item being
 * handled, for the usage errors it causes. */
static ps_config g_cfg;
static char g_where[320];

/* What --print-config shows, per key: the values applied last. */
typedef struct ps__shown {
  const char *key;
  char **v;
  size_t n;
} ps__shown;
static ps__shown g_shown[PS_CLI_MAX_OPTS + 16];
static size_t g_n_shown;

static ps__shown *ps__cli_shown_key(const char *key) {
  for (size_t i = 0; i < g_n_shown; i++) {
    if (strcmp(g_shown[i].key, key) == 0) {
      return &g_shown[i];
    }
  }
  if (g_n_shown == sizeof(g_shown) / sizeof(g_shown[0])) {
    return NULL;
  }
  ps__shown *e = &g_shown[g_n_shown++];
  e->key = key;
  e->v = NULL;
  e->n = 0;
  return e;
}

static void ps__cli_show(const char *key, const char *value, int append) {
  ps__shown *e = ps__cli_shown_key(key);
  if (e == NULL) {
    return;
  }
  if (!append) {
    for (size_t i = 0; i < e->n; i++) {
      free(e->v[i]);
    }
    e->n = 0;
  }
  if (value == NULL) {
    return;
  }
  char **nv = realloc(e->v, (e->n + 1) * sizeof(*nv));
  if (nv == NULL) {
    return;
  }
  e->v = nv;
  if ((e->v[e->n] = strdup(value)) != NULL) {
    e->n++;
  }
}

void ps_cli_set_shown(const char *key, const char *value) {
  ps__cli_show(key, value, 0);
}

static void ps__cli_reset(void) {
  for (size_t i = 0; i < g_n_shown; i++) {
    for (size_t j = 0; j < g_shown[i].n; j++) {
      free(g_shown[i].v[j]);
    }
    free(g_shown[i].v);
  }
  g_n_shown = 0;
  if (g_cfg.path != NULL || g_cfg.items != NULL) {
    ps_config_free(&g_cfg);
  }
  g_where[0] = '\0';
}
static int g_format = PS_CLI_LOG_TEXT;
static char g_sensor[256];

int ps_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     char *err, size_t errlen) {
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

int ps_cli_parse_size(const char *s, uint64_t unit, uint64_t min, uint64_t max,
                      uint64_t *out, char *err, size_t errlen) {
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
                          char *host, size_t hostlen, uint16_t *port, char *err,
                          size_t errlen) {
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
               "'%.80s' is not [IPV6]:PORT (a ']' and ':PORT' are missing)", s);
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

/* Where log lines go: standard error, or the --log-file. */
static FILE *g_logf;

static FILE *ps__cli_logf(void) {
  return g_logf != NULL ? g_logf : stderr;
}

/* Opens path for appending log lines (created 0640, never through a
 * symbolic link, never a directory or device but a FIFO): 0, or -1
 * with the reason in err. Line-buffered, so each line is one write. */
static int ps__cli_open_log(const char *path, char *err, size_t errlen) {
  int fd = open(path,
                O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
                    O_NOCTTY | O_NONBLOCK,
                0640);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot open --log-file %s: %s", path,
             strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    snprintf(err, errlen,
             "--log-file %s is not a regular file: give a file to append to",
             path);
    close(fd);
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) {
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  FILE *f = fdopen(fd, "a");
  if (f == NULL) {
    snprintf(err, errlen, "cannot open --log-file %s: %s", path,
             strerror(errno));
    close(fd);
    return -1;
  }
  setvbuf(f, NULL, _IOLBF, 0);
  g_logf = f;
  return 0;
}

void ps_cli_log_init(const char *prog, int verbosity) {
  g_prog = prog;
  g_verbosity = verbosity;
}

void ps_cli_log_set_format(int format) {
  g_format = format;
}

void ps_cli_log_set_sensor(const char *sensor) {
  snprintf(g_sensor, sizeof(g_sensor), "%s", sensor ? sensor : "");
}

static const char *ps__cli_level_name(ps_log_level level) {
  switch (level) {
  case PS_LOG_ERROR:
    return "error";
  case PS_LOG_WARNING:
    return "warning";
  case PS_LOG_INFO:
    return "info";
  default:
    return "debug";
  }
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t ps__cli_utf8_len(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xbf;
  if (c < 0x80) {
    return 1;
  } else if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (s[1] < lo || s[1] > hi) {
    return 0;
  }
  for (size_t i = 2; i < n; i++) {
    if (s[i] < 0x80 || s[i] > 0xbf) {
      return 0;
    }
  }
  return n;
}

/* A JSON string of any bytes: what is not UTF-8 (a sensor name is
 * bytes) becomes U+FFFD, one per byte; jansson escapes quotes,
 * backslashes and control characters. */
static json_t *ps__cli_jstr(const char *s) {
  size_t len = strlen(s);
  char *u = malloc(len * 3 + 1);
  if (u == NULL) {
    return NULL;
  }
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = ps__cli_utf8_len((const unsigned char *)s + i);
    if (n == 0) {
      memcpy(u + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    } else {
      memcpy(u + o, s + i, n);
      o += n;
      i += n;
    }
  }
  json_t *j = json_stringn(u, o);
  free(u);
  return j;
}

static void ps__cli_jset(json_t *obj, const char *key, json_t *value) {
  if (value != NULL) {
    json_object_set_new(obj, key, value);
  }
}

/* "2024-05-01T12:00:00.123456Z": RFC 3339, UTC, microseconds. */
static void ps__cli_ts(char *out, size_t outlen) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char sec[32];
  strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, outlen, "%s.%06uZ", sec,
           (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

/* One JSON object on one line, written with one call so that lines of
 * one process never interleave; -1 on failure (out of memory). */
static int ps__cli_json_line(ps_log_level level, const char *event,
                             const char *sensor, const ps_cli_field *fields,
                             size_t n, const ps_log_field *lfields, size_t ln,
                             const char *msg) {
  json_t *o = json_object();
  if (o == NULL) {
    return -1;
  }
  char ts[48];
  ps__cli_ts(ts, sizeof(ts));
  ps__cli_jset(o, "ts", json_string(ts));
  ps__cli_jset(o, "level", json_string(ps__cli_level_name(level)));
  ps__cli_jset(o, "tool", ps__cli_jstr(g_prog));
  if (sensor == NULL && g_sensor[0] != '\0') {
    sensor = g_sensor;
  }
  if (sensor != NULL) {
    ps__cli_jset(o, "sensor", ps__cli_jstr(sensor));
  }
  ps__cli_jset(o, "event", ps__cli_jstr(event ? event : "log"));
  ps__cli_jset(o, "msg", ps__cli_jstr(msg));
  /* A field never replaces the fixed keys above. */
  for (size_t i = 0; i < n + ln; i++) {
    const char *key = i < n ? fields[i].key : lfields[i - n].name;
    if (key == NULL || json_object_get(o, key) != NULL) {
      continue;
    }
    json_t *v;
    if (i < n && fields[i].str != NULL) {
      v = ps__cli_jstr(fields[i].str);
    } else {
      uint64_t num = i < n ? fields[i].num : lfields[i - n].value;
      v = json_integer(num > INT64_MAX ? INT64_MAX : (json_int_t)num);
    }
    ps__cli_jset(o, key, v);
  }
  char *line = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (line == NULL) {
    return -1;
  }
  fprintf(ps__cli_logf(), "%s\n", line);
  free(line);
  return 0;
}

static int ps__cli_shown(ps_log_level level) {
  return !((level == PS_LOG_INFO && g_verbosity < 1) ||
           (level == PS_LOG_DEBUG && g_verbosity < 2));
}

static void ps__cli_text_line(ps_log_level level, const char *msg) {
  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *lv = level == PS_LOG_ERROR     ? "error: "
                   : level == PS_LOG_WARNING ? "warning: "
                                             : "";
  fprintf(ps__cli_logf(), "%s %s: %s%s\n", ts, g_prog, lv, msg);
}

void ps_cli_log_event(ps_log_level level, const char *event, const char *sensor,
                      const ps_cli_field *fields, size_t n, const char *msg) {
  if (!ps__cli_shown(level)) {
    return;
  }
  if (g_format == PS_CLI_LOG_JSON &&
      ps__cli_json_line(level, event, sensor, fields, n, NULL, 0, msg) == 0) {
    return;
  }
  ps__cli_text_line(level, msg);
}

void ps_cli_log(ps_log_level level, const char *msg, void *user_data) {
  (void)user_data;
  ps_cli_log_event(level, NULL, NULL, NULL, 0, msg);
}

void ps_cli_log_ex(const ps_log_record *rec, void *user_data) {
  (void)user_data;
  if (!ps__cli_shown(rec->level)) {
    return;
  }
  if (g_format == PS_CLI_LOG_JSON &&
      ps__cli_json_line(rec->level, rec->event, rec->sensor, NULL, 0,
                        rec->fields, rec->n_fields, rec->msg) == 0) {
    return;
  }
  ps__cli_text_line(rec->level, rec->msg);
}

void ps_cli_err(const char *fmt, ...) {
  va_list ap;
  if (g_format == PS_CLI_LOG_JSON) {
    char msg[2048];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ps__cli_json_line(PS_LOG_ERROR, "error", NULL, NULL, 0, NULL, 0, msg) ==
        0) {
      return;
    }
    fprintf(ps__cli_logf(), "%s: %s\n", g_prog, msg);
    return;
  }
  /* A runtime error goes where the log goes, and to standard error as
   * well when that is a file (a service manager shows why it failed). */
  char msg[2048];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(ps__cli_logf(), "%s: %s\n", g_prog, msg);
  if (g_logf != NULL) {
    fprintf(stderr, "%s: %s\n", g_prog, msg);
  }
}

/* An ordinary user started with capabilities (systemd's
 * AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN, setcap on the binary)
 * needs them only to open the capture: drop them all before handling
 * network input, as the switch from root does. No libcap: two calls. */
static int ps__cli_drop_caps(char *err, size_t errlen) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof(d));
  if (syscall(SYS_capget, &hdr, d) != 0) {
    snprintf(err, errlen, "cannot read capabilities: %s", strerror(errno));
    return -1;
  }
  if ((d[0].permitted | d[1].permitted | d[0].effective | d[1].effective |
       d[0].inheritable | d[1].inheritable) == 0) {
    return 0; /* none: nothing to say (ambient ones are also permitted) */
  }
  /* The ambient set is cleared with the permitted one, but say so first:
   * kernels before 4.3 have none (EINVAL), which is fine. */
  (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  memset(d, 0, sizeof(d));
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  if (syscall(SYS_capset, &hdr, d) != 0) {
    snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
    return -1;
  }
  if (syscall(SYS_capget, &hdr, d) != 0 ||
      (d[0].permitted | d[1].permitted | d[0].effective | d[1].effective) !=
          0) {
    snprintf(err, errlen, "capabilities were not dropped");
    return -1;
  }
  char line[96];
  snprintf(line, sizeof(line), "dropped capabilities (running as uid %u)",
           (unsigned)getuid());
  const ps_cli_field f[] = {PS_CLI_NUM("uid", getuid())};
  ps_cli_log_event(PS_LOG_INFO, "privileges", NULL, f, 1, line);
  return 0;
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
    return ps__cli_drop_caps(err, errlen);
  }
  if (user != NULL && strcmp(user, "root") == 0) {
    ps_cli_log_event(PS_LOG_WARNING, "privileges", NULL, NULL, 0,
                     "-Z root: keeping root privileges");
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
      ps_cli_log_event(PS_LOG_WARNING, "privileges", NULL, NULL, 0,
                       "running as root: no unprivileged user found to drop "
                       "to (give -Z USER)");
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
  snprintf(line, sizeof(line), "dropped privileges to user %s (uid %u)", name,
           (unsigned)uid);
  const ps_cli_field f[] = {PS_CLI_STR("user", name), PS_CLI_NUM("uid", uid)};
  ps_cli_log_event(PS_LOG_INFO, "privileges", NULL, f, 2, line);
  return 0;
}

void ps_cli_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* The common options. */

typedef struct ps__cli_opt {
  const char *name;
  int letter; /* short option, or 0 */
  int has_arg;
  unsigned tools; /* PS_CLI_SENSOR | PS_CLI_RECEIVER */
  int section;    /* PS_CLI_HELP_* */
  /* Help lines; NULL: given with the option before (--tls-key). */
  const char *help;
  const char *help_receiver; /* when the receiver's text differs */
  /* An empty value never means "default" or "off" (an unset shell
   * variable gives one; an empty --tls-server-name used to switch the
   * host-name check off): what to give instead. */
  const char *empty;
  /* -1 to go on, or the exit status. */
  int (*handle)(ps_cli_parser *p, ps_cli_common *c, const char *arg);
} ps__cli_opt;

static int ps__cli_keep(const char **slot, const char *arg,
                        const ps_cli_parser *p) {
  return ps_cli_once(slot, arg, p->opt) ? PS_EXIT_USAGE : -1;
}

static int ps__cli_tls(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  (void)p;
  (void)a;
  c->use_tls = 1;
  return -1;
}

static int ps__cli_tls_ca(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  c->use_tls = 1;
  return ps__cli_keep(&c->tls.ca_file, a, p);
}

static int ps__cli_tls_name(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  c->use_tls = 1;
  return ps__cli_keep(&c->tls.server_name, a, p);
}

static int ps__cli_tls_cert(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  c->use_tls = 1;
  return ps__cli_keep(&c->tls.cert_file, a, p);
}

static int ps__cli_tls_key(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  c->use_tls = 1;
  return ps__cli_keep(&c->tls.key_file, a, p);
}

static int ps__cli_tls_pin(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  c->use_tls = 1;
  return ps__cli_keep(&c->tls.pin, a, p);
}

static int ps__cli_tls_insecure(ps_cli_parser *p, ps_cli_common *c,
                                const char *a) {
  (void)p;
  (void)a;
  c->use_tls = 1;
  c->tls.insecure = 1;
  return -1;
}

static int ps__cli_client_ca(ps_cli_parser *p, ps_cli_common *c,
                             const char *a) {
  c->use_tls = 1;
  return ps__cli_keep(&c->tls.client_ca_file, a, p);
}

static int ps__cli_auth(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  return ps__cli_keep(&c->key_file, a, p);
}

static int ps__cli_user(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  return ps__cli_keep(&c->run_as, a, p);
}

static int ps__cli_quiet(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  (void)p;
  (void)a;
  c->verbosity = 0;
  return -1;
}

static int ps__cli_verbose(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  (void)p;
  (void)a;
  c->verbosity = 2;
  return -1;
}

static int ps__cli_config(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  return ps__cli_keep(&c->config, a, p);
}

static int ps__cli_print_config(ps_cli_parser *p, ps_cli_common *c,
                                const char *a) {
  (void)p;
  (void)a;
  c->print_config = 1;
  return -1;
}

static int ps__cli_log_format(ps_cli_parser *p, ps_cli_common *c,
                              const char *a) {
  (void)p;
  if (strcmp(a, "text") == 0) {
    c->log_format = PS_CLI_LOG_TEXT;
  } else if (strcmp(a, "json") == 0) {
    c->log_format = PS_CLI_LOG_JSON;
  } else {
    return ps_cli_usage_error("unknown --log-format '%s': use text or json", a);
  }
  return -1;
}

static int ps__cli_log_file(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  return ps__cli_keep(&c->log_file, a, p);
}

static int ps__cli_help(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  (void)c;
  (void)a;
  p->usage(stdout);
  return PS_EXIT_OK;
}

static int ps__cli_version(ps_cli_parser *p, ps_cli_common *c, const char *a) {
  (void)c;
  (void)a;
  printf("%s %s (libpacketstreamer %s)\n", p->prog, PS_VERSION,
         ps_version_string());
  return PS_EXIT_OK;
}

#define S PS_CLI_SENSOR
#define R PS_CLI_RECEIVER
/* In the order of --help. */
static const ps__cli_opt ps__cli_opts[] = {
    {"tls", 0, no_argument, S, PS_CLI_HELP_CRED,
     "      --tls               connect with TLS, verifying the receiver's\n"
     "                          certificate and host name (implied by "
     "--tls-*)\n",
     NULL, NULL, ps__cli_tls},
    {"tls-ca", 0, required_argument, S, PS_CLI_HELP_CRED,
     "      --tls-ca FILE       CA certificates to verify the receiver with\n"
     "                          (default: the system trust store)\n",
     NULL,
     "give a file of CA certificates, or leave the option out for the "
     "system trust store",
     ps__cli_tls_ca},
    {"tls-server-name", 0, required_argument, S, PS_CLI_HELP_CRED,
     "      --tls-server-name NAME  name the receiver's certificate must "
     "carry\n"
     "                          (default: the HOST of --receiver)\n",
     NULL,
     "give the name the receiver's certificate must carry, or leave the "
     "option out to check the host of --receiver",
     ps__cli_tls_name},
    {"tls-cert", 0, required_argument, S | R, PS_CLI_HELP_CRED,
     "      --tls-cert FILE, --tls-key FILE  client certificate (mutual "
     "TLS)\n",
     "      --tls-cert FILE, --tls-key FILE  serve TLS 1.2/1.3 only, with "
     "this\n"
     "                          certificate chain and key (PEM, RSA or "
     "ECDSA)\n",
     "give a PEM file", ps__cli_tls_cert},
    {"tls-key", 0, required_argument, S | R, PS_CLI_HELP_CRED, NULL, NULL,
     "give a PEM file", ps__cli_tls_key},
    {"tls-pin", 0, required_argument, S, PS_CLI_HELP_CRED,
     "      --tls-pin sha256:BASE64  accept only this receiver public key\n",
     NULL, "give sha256:BASE64", ps__cli_tls_pin},
    {"tls-insecure", 0, no_argument, S, PS_CLI_HELP_CRED,
     "      --tls-insecure      do not verify the receiver (labs only)\n", NULL,
     NULL, ps__cli_tls_insecure},
    {"tls-client-ca", 0, required_argument, R, PS_CLI_HELP_CRED,
     "      --tls-client-ca FILE  require sensor certificates issued by "
     "these\n"
     "                          CAs (mutual TLS); the subject is logged\n",
     NULL,
     "give a file of CA certificates, or leave the option out to accept "
     "sensors without certificates",
     ps__cli_client_ca},
    {"auth-key-file", 0, required_argument, S | R, PS_CLI_HELP_CRED,
     "      --auth-key-file FILE  prove a shared key (never sent) to the\n"
     "                          receiver, and require its proof in return\n",
     "      --auth-key-file FILE  require sensors to prove this shared key\n",
     "give the file holding the shared key", ps__cli_auth},
    {"relinquish-privileges", 'Z', required_argument, S | R, PS_CLI_HELP_USER,
     "  -Z, --relinquish-privileges USER  run as USER once the capture is\n"
     "                          open (default as root: packetstreamer or "
     "nobody)\n",
     "  -Z, --relinquish-privileges USER  run as USER once listening and "
     "the\n"
     "                          output is open\n",
     "give a user name, or leave the option out", ps__cli_user},
    {"config", 0, required_argument, S | R, PS_CLI_HELP_LOG,
     "      --config FILE       read options from FILE (YAML; keys are the "
     "long\n"
     "                          options; the command line overrides them)\n",
     NULL, "give a YAML file", ps__cli_config},
    {"print-config", 0, no_argument, S | R, PS_CLI_HELP_LOG,
     "      --print-config      print the effective options as a config "
     "file,\n"
     "                          and exit\n",
     NULL, NULL, ps__cli_print_config},
    {"quiet", 'q', no_argument, S | R, PS_CLI_HELP_LOG,
     "  -q, --quiet             log only warnings and errors\n", NULL, NULL,
     ps__cli_quiet},
    {"verbose", 'v', no_argument, S | R, PS_CLI_HELP_LOG,
     "  -v, --verbose           log more\n", NULL, NULL, ps__cli_verbose},
    {"log-format", 0, required_argument, S | R, PS_CLI_HELP_LOG,
     "      --log-format text|json  log lines as text (default) or one JSON\n"
     "                          object a line (ts, level, tool, sensor, "
     "event,\n"
     "                          msg, counters) for log collectors\n",
     NULL, "give text or json", ps__cli_log_format},
    {"log-file", 0, required_argument, S | R, PS_CLI_HELP_LOG,
     "      --log-file FILE     append log lines to FILE instead of standard\n"
     "                          error (usage errors stay on standard error)\n",
     NULL,
     "give a file to append the log to, or leave the option out for "
     "standard error",
     ps__cli_log_file},
    {"help", 'h', no_argument, S | R, PS_CLI_HELP_LOG,
     "  -h, --help              this text\n", NULL, NULL, ps__cli_help},
    {"version", 'V', no_argument, S | R, PS_CLI_HELP_LOG,
     "  -V, --version           print the version\n", NULL, NULL,
     ps__cli_version},
};
#undef S
#undef R

#define PS__CLI_N (sizeof(ps__cli_opts) / sizeof(ps__cli_opts[0]))
#define PS__N_OPTS PS__CLI_N
/* getopt_long's value of a common long option without a letter: above
 * the tools' own (256 up). */
#define PS__CLI_VAL 1024

void ps_cli_getopt_init(ps_cli_parser *p, ps_cli_common *common,
                        const char *prog, unsigned tool,
                        const struct option *own, const char *own_short,
                        void (*usage)(FILE *f),
                        const char *(*empty_hint)(int c)) {
  memset(p, 0, sizeof(*p));
  memset(common, 0, sizeof(*common));
  ps__cli_reset();
  ps_tls_options tls = PS_TLS_OPTIONS_INIT;
  common->tls = tls;
  common->verbosity = 1;
  p->prog = prog;
  p->tool = tool;
  p->usage = usage;
  p->empty_hint = empty_hint;
  size_t n = 0;
  while (own[n].name != NULL && n < PS_CLI_MAX_OPTS - 1) {
    p->longopts[n] = own[n];
    n++;
  }
  snprintf(p->shortopts, sizeof(p->shortopts), "%s", own_short);
  size_t sl = strlen(p->shortopts);
  for (size_t i = 0; i < PS__CLI_N && n < PS_CLI_MAX_OPTS - 1; i++) {
    const ps__cli_opt *o = &ps__cli_opts[i];
    if (!(o->tools & tool)) {
      continue;
    }
    struct option lo = {o->name, o->has_arg, NULL,
                        o->letter ? o->letter : PS__CLI_VAL + (int)i};
    p->longopts[n++] = lo;
    if (o->letter && sl + 3 < sizeof(p->shortopts)) {
      p->shortopts[sl++] = (char)o->letter;
      if (o->has_arg == required_argument) {
        p->shortopts[sl++] = ':';
      }
      p->shortopts[sl] = '\0';
    }
  }
  /* (longopts[n] stays zero: the end.) A table that outgrew its arrays
   * is a programming error: say so rather than drop options. */
  if (n >= PS_CLI_MAX_OPTS - 1 || sl + 3 >= sizeof(p->shortopts)) {
    fprintf(stderr, "%s: internal error: more options than PS_CLI_MAX_OPTS\n",
            prog);
    abort();
  }
  ps_cli_log_init(prog, 1);
  ps_cli_log_set_format(PS_CLI_LOG_TEXT);
  opterr = 0;
}

static const ps__cli_opt *ps__cli_find(unsigned tool, int c) {
  for (size_t i = 0; i < PS__CLI_N; i++) {
    const ps__cli_opt *o = &ps__cli_opts[i];
    if ((o->tools & tool) &&
        (c == PS__CLI_VAL + (int)i || (o->letter && c == o->letter))) {
      return o;
    }
  }
  return NULL;
}

/* Options that are no key of a config file. */
static const char *const ps__cli_not_keys[] = {"help", "version", "config",
                                               "print-config", NULL};
/* Keys of a file that are no option: a shared key is no command-line
 * argument (every user could read it in ps). */
static const char *const ps__cli_common_extra[] = {"auth-key", NULL};

static void ps__cli_warn(const char *line) {
  ps_cli_err("%s", line);
}

static int ps__cli_longopt(const ps_cli_parser *p, int c) {
  for (int i = 0; p->longopts[i].name != NULL; i++) {
    if (p->longopts[i].val == c) {
      return i;
    }
  }
  return -1;
}

static int ps__cli_in(const char *s, const char *const *list) {
  for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
    if (strcmp(s, list[i]) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Records what --print-config shows: the last value of an option, or
 * every value of one that takes a list. */
static void ps__cli_record(const ps_cli_parser *p, int li, const char *arg) {
  if (li < 0) {
    return;
  }
  const char *name = p->longopts[li].name;
  if (ps__cli_in(name, ps__cli_not_keys)) {
    return;
  }
  ps__cli_show(name, arg ? arg : "true", ps__cli_in(name, p->repeatable));
}

/* Before the first option: which options the command line gives (they
 * replace the file's), and --config read whole. */
static int ps__cli_prepare(ps_cli_parser *p, ps_cli_common *common, int argc,
                           char **argv) {
  const char *config = NULL;
  int cfg_val = -1;
  for (size_t i = 0; i < PS__N_OPTS; i++) {
    if (strcmp(ps__cli_opts[i].name, "config") == 0) {
      cfg_val = PS__CLI_VAL + (int)i;
    }
  }
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, p->shortopts, p->longopts, NULL)) != -1) {
    if (c == cfg_val && config == NULL) {
      config = optarg;
    }
    if (c != '?' && c != ':' && p->n_cli_vals < PS_CLI_MAX_OPTS * 2) {
      p->cli_vals[p->n_cli_vals++] = c;
    }
  }
  optind = 0; /* glibc: start over, scanning argv afresh */
  if (config == NULL || *config == '\0') {
    return 0; /* (an empty --config is refused in the second pass) */
  }
  const char *extra[32];
  size_t n = 0;
  for (size_t i = 0; ps__cli_common_extra[i] != NULL; i++) {
    extra[n++] = ps__cli_common_extra[i];
  }
  for (size_t i = 0; p->extra != NULL && p->extra[i] != NULL && n < 31; i++) {
    extra[n++] = p->extra[i];
  }
  extra[n] = NULL;
  ps_config_keys k = {p->longopts,
                      p->repeatable,
                      extra,
                      ps__cli_not_keys,
                      p->tool == PS_CLI_SENSOR,
                      ps__cli_warn};
  char err[1024];
  if (ps_config_load(&g_cfg, config, &k, err, sizeof(err)) != 0) {
    ps_cli_err("%s", err);
    p->status = PS_EXIT_USAGE;
    return -1;
  }
  (void)common;
  return 0;
}

static int ps__cli_given(const ps_cli_parser *p, int val, const char *key) {
  for (size_t i = 0; i < p->n_cli_vals; i++) {
    if (p->cli_vals[i] == val) {
      return 1;
    }
    for (size_t j = 0; p->overrides != NULL && p->overrides[j].key != NULL;
         j++) {
      if (p->overrides[j].val == p->cli_vals[i] &&
          strcmp(p->overrides[j].key, key) == 0) {
        return 1;
      }
    }
  }
  return 0;
}

const char *ps_cli_config_extra(const char *key) {
  const char *v = NULL;
  for (size_t i = 0; i < g_cfg.n; i++) {
    if (strcmp(g_cfg.items[i].key, key) == 0) {
      v = g_cfg.items[i].value;
    }
  }
  return v;
}

const char *ps_cli_config_where(const char *key) {
  static char where[320];
  where[0] = '\0';
  for (size_t i = 0; i < g_cfg.n; i++) {
    if (strcmp(g_cfg.items[i].key, key) == 0) {
      snprintf(where, sizeof(where), "%s:%d:%d: ", g_cfg.path,
               g_cfg.items[i].line, g_cfg.items[i].col);
    }
  }
  return where;
}

/* The next item of the config file as an option: its getopt value, or
 * -1 at the end of the file. */
static int ps__cli_next_item(ps_cli_parser *p, ps_cli_common *common, int *li) {
  while (p->next < g_cfg.n) {
    const ps_config_item *it = &g_cfg.items[p->next++];
    snprintf(g_where, sizeof(g_where), "%s:%d:%d: ", g_cfg.path, it->line,
             it->col);
    if (strcmp(it->key, "auth-key") == 0) {
      int kf = -1;
      for (int i = 0; p->longopts[i].name != NULL; i++) {
        if (strcmp(p->longopts[i].name, "auth-key-file") == 0) {
          kf = p->longopts[i].val;
        }
      }
      if (ps__cli_given(p, kf, "auth-key-file")) {
        continue; /* --auth-key-file on the command line replaces it */
      }
      common->key = it->value;
      ps__cli_show("auth-key", it->value, 0);
      continue;
    }
    if (strcmp(it->key, "tls") == 0 && common->ps_tls_where[0] == '\0' &&
        g_cfg.ps_tls_line > 0) {
      snprintf(common->ps_tls_where, sizeof(common->ps_tls_where),
               "%s:%d:%d: ", g_cfg.path, g_cfg.ps_tls_line, g_cfg.ps_tls_col);
    }
    int i;
    for (i = 0; p->longopts[i].name != NULL; i++) {
      if (strcmp(p->longopts[i].name, it->key) == 0) {
        break;
      }
    }
    if (p->longopts[i].name == NULL) {
      /* An extra key (the filter): the tool takes it, unless the
       * command line gives its own. */
      ps__cli_show(ps__cli_in(it->key, p->extra) ? it->key : "?", it->value, 0);
      continue;
    }
    if (ps__cli_given(p, p->longopts[i].val, it->key)) {
      continue; /* the command line overrides the file */
    }
    *li = i;
    snprintf(p->opt, sizeof(p->opt), "--%s", it->key);
    optarg = p->longopts[i].has_arg == no_argument ? NULL : it->value;
    return p->longopts[i].val;
  }
  g_where[0] = '\0';
  return -1;
}

int ps_cli_getopt(ps_cli_parser *p, ps_cli_common *common, int argc,
                  char **argv) {
  if (p->phase == 0) {
    p->phase = 1;
    if (ps__cli_prepare(p, common, argc, argv) != 0) {
      return PS_CLI_STOP;
    }
  }
  for (;;) {
    int li = -1, c;
    if (p->phase == 1 && (c = ps__cli_next_item(p, common, &li)) != -1) {
      /* an item of the file */
    } else {
      p->phase = 2;
      g_where[0] = '\0';
      c = getopt_long(argc, argv, p->shortopts, p->longopts, &li);
      if (c == -1) {
        ps_cli_log_init(p->prog, common->verbosity);
        ps_cli_log_set_format(common->log_format);
        char why[512];
        if (common->log_file != NULL && !common->print_config &&
            g_logf == NULL &&
            ps__cli_open_log(common->log_file, why, sizeof(why)) != 0) {
          p->status = ps_cli_usage_error("%s", why);
          return PS_CLI_STOP;
        }
        return -1;
      }
      if (c == ':') {
        p->status =
            ps_cli_usage_error("option %s needs an argument", argv[optind - 1]);
        return PS_CLI_STOP;
      }
      if (c == '?') {
        p->status = ps_cli_usage_error("unknown option %s", argv[optind - 1]);
        return PS_CLI_STOP;
      }
      /* The option as typed: "--tls-ca", or "-r" for -r and --read
       * alike when typed short. */
      if (li >= 0) {
        snprintf(p->opt, sizeof(p->opt), "--%s", p->longopts[li].name);
      } else {
        snprintf(p->opt, sizeof(p->opt), "-%c", c);
        li = ps__cli_longopt(p, c);
      }
    }
    const ps__cli_opt *o = ps__cli_find(p->tool, c);
    const char *hint = o != NULL       ? o->empty
                       : p->empty_hint ? p->empty_hint(c)
                                       : NULL;
    if (optarg != NULL && *optarg == '\0' && hint != NULL) {
      p->status = ps_cli_usage_error("empty %s: %s", p->opt, hint);
      return PS_CLI_STOP;
    }
    ps__cli_record(p, li, optarg);
    if (o != NULL &&
        (strcmp(o->name, "quiet") == 0 || strcmp(o->name, "verbose") == 0)) {
      /* The one given last counts: show that one alone. */
      ps__cli_show(strcmp(o->name, "quiet") == 0 ? "verbose" : "quiet", NULL,
                   0);
    }
    if (o == NULL) {
      return c;
    }
    int st = o->handle(p, common, optarg);
    if (st >= 0) {
      p->status = st;
      return PS_CLI_STOP;
    }
  }
}

void ps_cli_yaml_quote(const char *s, FILE *f) {
  fputc('"', f);
  for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
    if (*u == '"' || *u == '\\') {
      fprintf(f, "\\%c", *u);
    } else if (*u < 0x20 || *u == 0x7f) {
      fprintf(f, "\\x%02x", *u);
    } else {
      fputc(*u, f);
    }
  }
  fputc('"', f);
}

static void ps__cli_print_key(const char *key, const ps__shown *e, int flag,
                              const ps_cli_default *d, int list, FILE *f) {
  if (e != NULL && e->n > 0) {
    fprintf(f, "%s: ", key);
    if (flag) {
      fputs("true", f);
    } else if (list) {
      fputc('[', f);
      for (size_t i = 0; i < e->n; i++) {
        if (i) {
          fputs(", ", f);
        }
        ps_cli_yaml_quote(e->v[i], f);
      }
      fputc(']', f);
    } else {
      ps_cli_yaml_quote(e->v[e->n - 1], f);
    }
    fputc('\n', f);
    return;
  }
  if (d != NULL && d->value != NULL) {
    /* A comment: a default written out would be an option given (-s
     * with -r is refused, say). */
    fprintf(f, "# %s: ", key);
    ps_cli_yaml_quote(d->value, f);
    fputs(" (default)\n", f);
    return;
  }
  fprintf(f, "# %s: %s\n", key,
          d != NULL && d->note != NULL ? d->note
          : flag                       ? "false"
                                       : "(not set)");
}

void ps_cli_print_config(const ps_cli_parser *p, const ps_cli_common *c,
                         const ps_cli_default *defaults, FILE *f) {
  (void)c;
  fprintf(f,
          "# %s --print-config: the options in effect (command line, %s%s"
          "and defaults)\n",
          p->prog, g_cfg.path ? g_cfg.path : "", g_cfg.path ? ", " : "");
  const char *keys[PS_CLI_MAX_OPTS + 16];
  int flags[PS_CLI_MAX_OPTS + 16];
  size_t n = 0;
  for (int i = 0; p->longopts[i].name != NULL; i++) {
    if (!ps__cli_in(p->longopts[i].name, ps__cli_not_keys)) {
      flags[n] = p->longopts[i].has_arg == no_argument;
      keys[n++] = p->longopts[i].name;
    }
  }
  for (size_t i = 0; p->extra != NULL && p->extra[i] != NULL; i++) {
    flags[n] = 0;
    keys[n++] = p->extra[i];
  }
  flags[n] = 0;
  keys[n++] = "auth-key";
  for (size_t i = 0; i < n; i++) {
    const ps__shown *e = NULL;
    for (size_t j = 0; j < g_n_shown; j++) {
      if (strcmp(g_shown[j].key, keys[i]) == 0) {
        e = &g_shown[j];
      }
    }
    const ps_cli_default *d = NULL;
    for (size_t j = 0; defaults != NULL && defaults[j].name != NULL; j++) {
      if (strcmp(defaults[j].name, keys[i]) == 0) {
        d = &defaults[j];
      }
    }
    if (strcmp(keys[i], "auth-key") == 0 && (e == NULL || e->n == 0)) {
      continue; /* (a key of files only, seldom used: shown when set) */
    }
    ps__cli_print_key(keys[i], e, flags[i], d,
                      ps__cli_in(keys[i], p->repeatable), f);
  }
}

void ps_cli_help(unsigned tool, FILE *f, int section) {
  for (size_t i = 0; i < PS__CLI_N; i++) {
    const ps__cli_opt *o = &ps__cli_opts[i];
    if ((o->tools & tool) && o->section == section && o->help != NULL) {
      fputs(tool == PS_CLI_RECEIVER && o->help_receiver ? o->help_receiver
                                                        : o->help,
            f);
    }
  }
}

int ps_cli_check_common(const ps_cli_common *c) {
  if (c->ps_tls_where[0] != '\0' && c->tls.ca_file == NULL &&
      c->tls.pin == NULL && !c->tls.insecure) {
    ps_cli_err("%stls.enable: PacketStreamer never verified the receiver, "
               "ps-sensor does: add tls-ca: FILE (the CA of the receiver's "
               "certificate) to the file, or for a lab tls-insecure: true",
               c->ps_tls_where);
    return PS_EXIT_USAGE;
  }
  if (c->key != NULL && c->key_file != NULL) {
    return ps_cli_usage_error("auth-key (or auth.key) and --auth-key-file: "
                              "give the key once");
  }
  if (c->tls.insecure && (c->tls.ca_file || c->tls.pin || c->tls.server_name)) {
    return ps_cli_usage_error("--tls-insecure contradicts --tls-ca, "
                              "--tls-pin and --tls-server-name");
  }
  if ((c->tls.cert_file == NULL) != (c->tls.key_file == NULL)) {
    return ps_cli_usage_error("--tls-cert and --tls-key go together");
  }
  if (c->tls.client_ca_file != NULL && c->tls.cert_file == NULL) {
    return ps_cli_usage_error("--tls-client-ca needs --tls-cert and --tls-key");
  }
  return 0;
}

int ps_cli_usage_error(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  /* Plain text even with --log-format json: a person reads it, and
   * nothing ran to be collected. */
  fprintf(stderr, "%s: %s%s (see %s --help)\n", g_prog, g_where, line, g_prog);
  return PS_EXIT_USAGE;
}

int ps_cli_once(const char **slot, const char *value, const char *opt) {
  if (*slot != NULL) {
    return ps_cli_usage_error("%s given twice ('%s' and '%s'): give it once",
                              opt, *slot, value);
  }
  *slot = value;
  return 0;
}

void ps_cli_signals(void (*on_stop)(int), void (*on_hup)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (on_hup != NULL) {
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
  }
  signal(SIGPIPE, SIG_IGN);
}
