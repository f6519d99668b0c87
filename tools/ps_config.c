/* Configuration files: YAML (libyaml's document API) to option items. */
#include "config.h"

#include "ps_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

typedef struct ps__cfg {
  ps_config *c;
  const ps_config_keys *k;
  const char *name;
  yaml_document_t *doc;
  char *err;
  size_t errlen;
} ps__cfg;

#define PS__MAX_PORTS 256
#define PS__MAX_IFACES 64

/* One line: "FILE:LINE:COL: what"; returns -1. */
__attribute__((format(printf, 3, 4))) static int
ps__cfg_err(ps__cfg *x, const yaml_node_t *at, const char *fmt, ...) {
  int n = snprintf(x->err, x->errlen, "%s:%d:%d: ", x->name,
                   at ? (int)at->start_mark.line + 1 : 1,
                   at ? (int)at->start_mark.column + 1 : 1);
  if (n < 0 || (size_t)n >= x->errlen) {
    return -1;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

static void ps__cfg_warn(ps__cfg *x, const yaml_node_t *at, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
static void ps__cfg_warn(ps__cfg *x, const yaml_node_t *at, const char *fmt,
                         ...) {
  if (x->k->warn == NULL) {
    return;
  }
  char line[1024];
  int n = snprintf(line, sizeof(line), "%s:%d:%d: ", x->name,
                   at ? (int)at->start_mark.line + 1 : 1,
                   at ? (int)at->start_mark.column + 1 : 1);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof(line)) {
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
  }
  va_end(ap);
  x->k->warn(line);
}

static const char *ps__cfg_str(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}

static int ps__cfg_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE &&
         n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int ps__cfg_is_null(const yaml_node_t *n) {
  if (!ps__cfg_plain(n)) {
    return 0;
  }
  const char *s = ps__cfg_str(n);
  return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
         strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* 1 true, 0 false, -1 not a boolean (YAML 1.2's core schema). */
static int ps__cfg_bool(const yaml_node_t *n) {
  if (!ps__cfg_plain(n)) {
    return -1;
  }
  const char *s = ps__cfg_str(n);
  if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
      strcmp(s, "TRUE") == 0) {
    return 1;
  }
  if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
      strcmp(s, "FALSE") == 0) {
    return 0;
  }
  return -1;
}

static const char *ps__cfg_type(const yaml_node_t *n) {
  return n->type == YAML_MAPPING_NODE    ? "a mapping"
         : n->type == YAML_SEQUENCE_NODE ? "a list"
                                         : "a single value";
}

static int ps__cfg_add(ps__cfg *x, const char *key, const char *value,
                       const yaml_node_t *at) {
  ps_config *c = x->c;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    ps_config_item *ni = realloc(c->items, cap * sizeof(*ni));
    if (ni == NULL) {
      return ps__cfg_err(x, at, "out of memory");
    }
    c->items = ni;
    c->cap = cap;
  }
  ps_config_item *it = &c->items[c->n];
  it->key = strdup(key);
  it->value = strdup(value);
  it->line = at ? (int)at->start_mark.line + 1 : 1;
  it->col = at ? (int)at->start_mark.column + 1 : 1;
  if (it->key == NULL || it->value == NULL) {
    free(it->key);
    free(it->value);
    return ps__cfg_err(x, at, "out of memory");
  }
  c->n++;
  return 0;
}

static int ps__cfg_in(const char *s, const char *const *list) {
  for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
    if (strcmp(s, list[i]) == 0) {
      return 1;
    }
  }
  return 0;
}

/* getopt's has_arg of key, or -1 when it is no key of this tool. */
static int ps__cfg_key_arg(const ps_config_keys *k, const char *key) {
  if (ps__cfg_in(key, k->refused)) {
    return -1;
  }
  if (ps__cfg_in(key, k->extra)) {
    return required_argument;
  }
  for (size_t i = 0; k->opts[i].name != NULL; i++) {
    if (strcmp(k->opts[i].name, key) == 0) {
      return k->opts[i].has_arg;
    }
  }
  return -1;
}

static size_t ps__cfg_dist(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) {
    return 99;
  }
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) {
    row[j] = j;
  }
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = diag + cost;
      if (row[j] + 1 < v) {
        v = row[j] + 1;
      }
      if (row[j - 1] + 1 < v) {
        v = row[j - 1] + 1;
      }
      row[j] = v;
      diag = up;
    }
  }
  return row[lb];
}

const char *ps_config_nearest(const char *s, const char *const *names) {
  const char *best = NULL;
  size_t bd = 99;
  for (size_t i = 0; names[i] != NULL; i++) {
    size_t d = ps__cfg_dist(s, names[i]);
    if (d < bd) {
      bd = d;
      best = names[i];
    }
  }
  /* Near enough to be a typo: a third of the name, at least 2 edits. */
  size_t len = strlen(s);
  return best != NULL && bd <= (len / 3 > 2 ? len / 3 : 2) ? best : NULL;
}

static int ps__cfg_unknown(ps__cfg *x, const yaml_node_t *kn, const char *key) {
  const char *names[128];
  size_t n = 0;
  const ps_config_keys *k = x->k;
  for (size_t i = 0; k->opts[i].name != NULL && n < 120; i++) {
    if (!ps__cfg_in(k->opts[i].name, k->refused)) {
      names[n++] = k->opts[i].name;
    }
  }
  for (size_t i = 0; k->extra != NULL && k->extra[i] != NULL && n < 127; i++) {
    names[n++] = k->extra[i];
  }
  names[n] = NULL;
  if (ps__cfg_in(key, k->refused)) {
    return ps__cfg_err(x, kn, "'%s' is a command-line option, not a key", key);
  }
  const char *near = ps_config_nearest(key, names);
  if (near != NULL) {
    return ps__cfg_err(x, kn, "unknown key '%.100s' (did you mean '%s'?)", key,
                       near);
  }
  return ps__cfg_err(x, kn,
                     "unknown key '%.100s': the keys are the long options "
                     "(see %s --help)",
                     key, k->sensor ? "ps-sensor" : "ps-receiver");
}

/* Secrets kept in files others may read are no secrets. */
static void ps__cfg_secret(ps__cfg *x, const yaml_node_t *at, const char *key,
                           const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
    ps__cfg_warn(x, at,
                 "warning: %s %s can be read by group or others: chmod 600 %s",
                 key, path, path);
  }
}

/* Our own key: a value, a list of values (repeatable options), or
 * true/false (options without argument). */
static int ps__cfg_ours(ps__cfg *x, const yaml_node_t *kn, const char *key,
                        const yaml_node_t *v) {
  int arg = ps__cfg_key_arg(x->k, key);
  if (arg < 0) {
    return ps__cfg_unknown(x, kn, key);
  }
  if (arg == no_argument) {
    int b = ps__cfg_bool(v);
    if (b < 0) {
      return ps__cfg_err(x, v, "'%s' takes true or false, not %s%s%.40s%s", key,
                         ps__cfg_type(v),
                         v->type == YAML_SCALAR_NODE ? " '" : "",
                         v->type == YAML_SCALAR_NODE ? ps__cfg_str(v) : "",
                         v->type == YAML_SCALAR_NODE ? "'" : "");
    }
    return b ? ps__cfg_add(x, key, "true", v) : 0;
  }
  int secret = strcmp(key, "tls-key") == 0 || strcmp(key, "auth-key-file") == 0;
  if (v->type == YAML_SCALAR_NODE) {
    /* An empty value goes to the option's handler, which says what to
     * give instead (as for an empty command-line argument). */
    const char *s = ps__cfg_is_null(v) ? "" : ps__cfg_str(v);
    if (strlen(s) != v->data.scalar.length) {
      return ps__cfg_err(x, v, "'%s': a NUL character in the value", key);
    }
    if (secret) {
      ps__cfg_secret(x, v, key, s);
    }
    return ps__cfg_add(x, key, s, v);
  }
  if (v->type == YAML_SEQUENCE_NODE && ps__cfg_in(key, x->k->repeatable)) {
    yaml_node_item_t *i;
    if (v->data.sequence.items.start == v->data.sequence.items.top) {
      return ps__cfg_err(x, v,
                         "'%s': an empty list; leave the key out for the "
                         "default",
                         key);
    }
    for (i = v->data.sequence.items.start; i < v->data.sequence.items.top;
         i++) {
      yaml_node_t *e = yaml_document_get_node(x->doc, *i);
      if (e == NULL || e->type != YAML_SCALAR_NODE) {
        return ps__cfg_err(x, e ? e : v, "'%s': list items are single values",
                           key);
      }
      const char *s = ps__cfg_is_null(e) ? "" : ps__cfg_str(e);
      if (strlen(s) != e->data.scalar.length) {
        return ps__cfg_err(x, e, "'%s': a NUL character in the value", key);
      }
      if (ps__cfg_add(x, key, s, e) != 0) {
        return -1;
      }
    }
    return 0;
  }
  return ps__cfg_err(x, v, "'%s' takes %s, not %s", key,
                     ps__cfg_in(key, x->k->repeatable)
                         ? "a value or a list of values"
                         : "one value",
                     ps__cfg_type(v));
}

/* ---------------------------------------------------------------- */
/* deepfence PacketStreamer's keys (pkg/config/config.go).            */

static const char *const ps__pkts_keys[] = {"input",
                                            "output",
                                            "tls",
                                            "auth",
                                            "compressBlockSize",
                                            "inputPacketLen",
                                            "gatherMaxWaitSec",
                                            "logFilename",
                                            "pcapMode",
                                            "capturePorts",
                                            "captureInterfacesPorts",
                                            "ignorePorts",
                                            NULL};

typedef struct ps__pkts {
  const yaml_node_t *first; /* the first PacketStreamer key */
  const yaml_node_t *server_addr, *server_port, *server_at;
  const yaml_node_t *input_addr, *input_port, *input_at;
  int mode; /* 0 all, 1 allow, 2 deny */
  const yaml_node_t *mode_at;
  int capture[PS__MAX_PORTS], n_capture;
  int ignore[PS__MAX_PORTS], n_ignore;
  const yaml_node_t *ports_at;
  char ifnames[PS__MAX_IFACES][IF_NAMESIZE + 1];
  int ifports[PS__MAX_IFACES][PS__MAX_PORTS / 4], n_ifports[PS__MAX_IFACES];
  int n_ifs;
} ps__pkts;

/* The value of key in mapping m, or NULL; a duplicate is refused by the
 * caller's walk. */
static const yaml_node_t *ps__cfg_get(ps__cfg *x, const yaml_node_t *m,
                                      const char *key) {
  yaml_node_pair_t *p;
  for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
    if (kn != NULL && kn->type == YAML_SCALAR_NODE &&
        strcmp(ps__cfg_str(kn), key) == 0) {
      return yaml_document_get_node(x->doc, p->value);
    }
  }
  return NULL;
}

/* The key node of key in mapping m (for messages), or m. */
static const yaml_node_t *ps__cfg_key_at(ps__cfg *x, const yaml_node_t *m,
                                         const char *key) {
  yaml_node_pair_t *p;
  for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
    if (kn != NULL && kn->type == YAML_SCALAR_NODE &&
        strcmp(ps__cfg_str(kn), key) == 0) {
      return kn;
    }
  }
  return m;
}

/* A mapping whose keys are all among allowed (NULL ended) and given
 * once; what is "what" in the messages ("output.server"). */
static int ps__cfg_mapping(ps__cfg *x, const yaml_node_t *m, const char *what,
                           const char *const *allowed, const char *instead) {
  if (m->type != YAML_MAPPING_NODE) {
    return ps__cfg_err(x, m, "'%s' takes a mapping, not %s", what,
                       ps__cfg_type(m));
  }
  yaml_node_pair_t *p, *q;
  for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
    if (kn == NULL || kn->type != YAML_SCALAR_NODE) {
      return ps__cfg_err(x, kn ? kn : m, "'%s': keys are names", what);
    }
    for (q = m->data.mapping.pairs.start; q < p; q++) {
      yaml_node_t *k2 = yaml_document_get_node(x->doc, q->key);
      if (k2 != NULL && k2->type == YAML_SCALAR_NODE &&
          strcmp(ps__cfg_str(k2), ps__cfg_str(kn)) == 0) {
        return ps__cfg_err(x, kn,
                           "duplicate key '%s.%.100s' (first at line %d)", what,
                           ps__cfg_str(kn), (int)k2->start_mark.line + 1);
      }
    }
    if (allowed != NULL && !ps__cfg_in(ps__cfg_str(kn), allowed)) {
      const char *near = ps_config_nearest(ps__cfg_str(kn), allowed);
      return ps__cfg_err(x, kn, "unknown key '%s.%.100s'%s%s%s%s", what,
                         ps__cfg_str(kn), near ? " (did you mean '" : "",
                         near ? near : "", near ? "'?)" : "",
                         instead ? instead : "");
    }
  }
  return 0;
}

static int ps__cfg_scalar(ps__cfg *x, const yaml_node_t *v, const char *what) {
  if (v->type != YAML_SCALAR_NODE || ps__cfg_is_null(v)) {
    return ps__cfg_err(x, v, "'%s' takes a value, not %s", what,
                       v->type == YAML_SCALAR_NODE ? "an empty one"
                                                   : ps__cfg_type(v));
  }
  return 0;
}

static int ps__cfg_int(ps__cfg *x, const yaml_node_t *v, const char *what,
                       long min, long max, long *out) {
  if (v->type != YAML_SCALAR_NODE || !ps__cfg_plain(v)) {
    return ps__cfg_err(x, v, "'%s' takes a whole number, not %s", what,
                       v->type == YAML_SCALAR_NODE ? "a string"
                                                   : ps__cfg_type(v));
  }
  const char *s = ps__cfg_str(v);
  if (*s == '\0' || strspn(s, "0123456789") != strlen(s)) {
    return ps__cfg_err(x, v, "'%s' takes a whole number, not '%.40s'", what, s);
  }
  errno = 0;
  long n = strtol(s, NULL, 10);
  if (errno == ERANGE || n < min || n > max) {
    return ps__cfg_err(x, v, "'%s': %.40s is outside %ld..%ld", what, s, min,
                       max);
  }
  *out = n;
  return 0;
}

static int ps__cfg_bool_key(ps__cfg *x, const yaml_node_t *v, const char *what,
                            int *out) {
  int b = ps__cfg_bool(v);
  if (b < 0) {
    return ps__cfg_err(x, v, "'%s' takes true or false", what);
  }
  *out = b;
  return 0;
}

/* A list of ports into out (duplicates kept once). */
static int ps__cfg_ports(ps__cfg *x, const yaml_node_t *v, const char *what,
                         int *out, int *n, int max) {
  if (ps__cfg_is_null(v)) {
    return 0;
  }
  if (v->type != YAML_SEQUENCE_NODE) {
    return ps__cfg_err(x, v, "'%s' takes a list of ports, not %s", what,
                       ps__cfg_type(v));
  }
  yaml_node_item_t *i;
  for (i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
    yaml_node_t *e = yaml_document_get_node(x->doc, *i);
    long port;
    if (e == NULL || ps__cfg_int(x, e, what, 1, 65535, &port) != 0) {
      return e ? -1 : ps__cfg_err(x, v, "'%s': a bad item", what);
    }
    int seen = 0;
    for (int j = 0; j < *n; j++) {
      seen |= out[j] == (int)port;
    }
    if (!seen) {
      if (*n == max) {
        return ps__cfg_err(x, e, "'%s': at most %d ports", what, max);
      }
      out[(*n)++] = (int)port;
    }
  }
  return 0;
}

/* "HOST:PORT", IPv6 in brackets. */
static int ps__cfg_hostport(ps__cfg *x, const yaml_node_t *addr,
                            const yaml_node_t *port, const yaml_node_t *at,
                            const char *what, int no_host, char *out,
                            size_t len) {
  long p;
  if (port == NULL) {
    return ps__cfg_err(x, at, "'%s' needs port:", what);
  }
  if (ps__cfg_int(x, port, "port", 0, 65535, &p) != 0) {
    return -1;
  }
  const char *a = "";
  if (addr != NULL && !ps__cfg_is_null(addr)) {
    if (ps__cfg_scalar(x, addr, "address") != 0) {
      return -1;
    }
    a = ps__cfg_str(addr);
  } else if (!no_host) {
    return ps__cfg_err(x, at, "'%s' needs address:", what);
  }
  int v6 = strchr(a, ':') != NULL && a[0] != '[';
  snprintf(out, len, "%s%s%s:%ld", v6 ? "[" : "", a, v6 ? "]" : "", p);
  return 0;
}

/* A size as PacketStreamer writes them (go-bytesize): a number, then
 * B, KB, MB or GB (K, M, G too; any case; multiples of 1024). */
static int ps__cfg_bytesize(ps__cfg *x, const yaml_node_t *v, const char *what,
                            uint64_t min, uint64_t max, uint64_t *out) {
  if (ps__cfg_scalar(x, v, what) != 0) {
    return -1;
  }
  const char *s = ps__cfg_str(v);
  char *end;
  errno = 0;
  double n = strtod(s, &end);
  if (end == s || errno == ERANGE || !(n >= 0) || !isdigit((unsigned char)*s)) {
    return ps__cfg_err(x, v, "'%s' takes a size such as 64KB, not '%.40s'",
                       what, s);
  }
  while (*end == ' ') {
    end++;
  }
  static const char *const units[] = {"", "B", "K", "KB", "M", "MB", "G", "GB"};
  static const unsigned shift[] = {0, 0, 10, 10, 20, 20, 30, 30};
  size_t u;
  for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
    if (strcasecmp(end, units[u]) == 0) {
      break;
    }
  }
  if (u == sizeof(units) / sizeof(units[0])) {
    return ps__cfg_err(
        x, v, "'%s': unknown unit in '%.40s' (give B, KB, MB or GB)", what, s);
  }
  double b = n * (double)(1ull << shift[u]);
  if (b < (double)min || b > (double)max) {
    return ps__cfg_err(x, v, "'%s': %.40s is outside %llu..%llu bytes", what, s,
                       (unsigned long long)min, (unsigned long long)max);
  }
  *out = (uint64_t)b;
  return 0;
}

/* PacketStreamer's Kafka plugin (output.plugins.kafka) as our Kafka
 * output: brokers, topic (its default "packetstreamer"), clientId as
 * client.id, messageSize as the message limit (our batches are split at
 * packet boundaries to fit it). Its acks must be all: a sensor hears of
 * a batch only once every replica has it. fileSize and timeout do
 * nothing in its plugin and are checked, then unused. */
static int ps__cfg_kafka(ps__cfg *x, const yaml_node_t *kn,
                         const yaml_node_t *v) {
  static const char *const keys[] = {"brokers",     "clientId", "topic",
                                     "messageSize", "acks",     "fileSize",
                                     "timeout",     NULL};
  if (x->k->sensor) {
    return ps__cfg_err(x, kn,
                       "output.plugins.kafka: the sensor streams to a "
                       "ps-receiver; give the receiver the Kafka output "
                       "(kafka: BROKERS, kafka-topic: TOPIC)");
  }
  if (ps__cfg_mapping(x, v, "output.plugins.kafka", keys, NULL) != 0) {
    return -1;
  }
  const yaml_node_t *e = ps__cfg_get(x, v, "brokers");
  if (e == NULL) {
    return ps__cfg_err(x, kn, "output.plugins.kafka needs brokers: HOST:PORT");
  }
  if (ps__cfg_scalar(x, e, "output.plugins.kafka.brokers") != 0 ||
      ps__cfg_add(x, "kafka", ps__cfg_str(e), e) != 0) {
    return -1;
  }
  e = ps__cfg_get(x, v, "topic");
  if (e != NULL && ps__cfg_scalar(x, e, "output.plugins.kafka.topic") != 0) {
    return -1;
  }
  if (ps__cfg_add(x, "kafka-topic", e ? ps__cfg_str(e) : "packetstreamer",
                  e ? e : kn) != 0) {
    return -1;
  }
  char prop[600];
  if ((e = ps__cfg_get(x, v, "clientId")) != NULL) {
    if (ps__cfg_scalar(x, e, "output.plugins.kafka.clientId") != 0) {
      return -1;
    }
    snprintf(prop, sizeof(prop), "client.id=%.512s", ps__cfg_str(e));
    if (ps__cfg_add(x, "kafka-property", prop, e) != 0) {
      return -1;
    }
  }
  uint64_t n;
  if ((e = ps__cfg_get(x, v, "messageSize")) != NULL) {
    /* librdkafka's range for message.max.bytes. */
    if (ps__cfg_bytesize(x, e, "output.plugins.kafka.messageSize", 1000,
                         1000000000, &n) != 0) {
      return -1;
    }
    snprintf(prop, sizeof(prop), "message.max.bytes=%llu",
             (unsigned long long)n);
    if (ps__cfg_add(x, "kafka-property", prop, e) != 0) {
      return -1;
    }
  }
  if ((e = ps__cfg_get(x, v, "acks")) != NULL) {
    if (ps__cfg_scalar(x, e, "output.plugins.kafka.acks") != 0) {
      return -1;
    }
    const char *a = ps__cfg_str(e);
    if (strcmp(a, "all") != 0 && strcmp(a, "-1") != 0) {
      return ps__cfg_err(x, e,
                         "output.plugins.kafka.acks: %.20s is refused: a "
                         "sensor's batch is acknowledged only once every "
                         "in-sync replica has it (acks all); leave acks out",
                         a);
    }
  }
  if ((e = ps__cfg_get(x, v, "fileSize")) != NULL &&
      ps__cfg_bytesize(x, e, "output.plugins.kafka.fileSize", 0, 1ull << 40,
                       &n) != 0) {
    return -1;
  }
  if ((e = ps__cfg_get(x, v, "timeout")) != NULL &&
      ps__cfg_scalar(x, e, "output.plugins.kafka.timeout") != 0) {
    return -1;
  }
  return 0;
}

static int ps__cfg_output(ps__cfg *x, ps__pkts *pk, const yaml_node_t *v) {
  static const char *const keys[] = {"server", "file", "plugins", NULL};
  static const char *const addr_keys[] = {"address", "port", NULL};
  static const char *const file_keys[] = {"path", NULL};
  if (ps__cfg_mapping(x, v, "output", keys, NULL) != 0) {
    return -1;
  }
  const yaml_node_t *plugins = ps__cfg_get(x, v, "plugins");
  if (plugins != NULL && !ps__cfg_is_null(plugins)) {
    if (ps__cfg_mapping(x, plugins, "output.plugins", NULL, NULL) != 0) {
      return -1;
    }
    const yaml_node_t *s3 = ps__cfg_get(x, plugins, "s3");
    const yaml_node_t *kafka = ps__cfg_get(x, plugins, "kafka");
    if (kafka != NULL &&
        ps__cfg_kafka(x, ps__cfg_key_at(x, plugins, "kafka"), kafka) != 0) {
      return -1;
    }
    if (s3 != NULL) {
      return ps__cfg_err(
          x, ps__cfg_key_at(x, plugins, "s3"),
          "output.plugins.s3: S3 upload is not supported; %s",
          x->k->sensor
              ? "stream to a ps-receiver and upload its files there "
                "(ps-receiver rotation, -G/-C, with post-rotate: CMD)"
              : "rotate the output (rotate-seconds: or file-size:) and "
                "upload each closed file with post-rotate: CMD");
    }
    yaml_node_pair_t *p;
    for (p = plugins->data.mapping.pairs.start;
         p < plugins->data.mapping.pairs.top; p++) {
      const yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
      if (strcmp(ps__cfg_str(kn), "kafka") != 0) {
        return ps__cfg_err(x, kn,
                           "output.plugins.%.60s: no such output in "
                           "libpacketstreamer",
                           ps__cfg_str(kn));
      }
    }
  }
  const yaml_node_t *server = ps__cfg_get(x, v, "server");
  const yaml_node_t *file = ps__cfg_get(x, v, "file");
  if (server != NULL && !ps__cfg_is_null(server)) {
    if (!x->k->sensor) {
      return ps__cfg_err(x, server,
                         "output.server is a sensor's key: ps-receiver "
                         "writes files (output.file.path)");
    }
    if (ps__cfg_mapping(x, server, "output.server", addr_keys, NULL) != 0) {
      return -1;
    }
    pk->server_at = server;
    pk->server_addr = ps__cfg_get(x, server, "address");
    pk->server_port = ps__cfg_get(x, server, "port");
  }
  if (file != NULL && !ps__cfg_is_null(file)) {
    if (x->k->sensor) {
      return ps__cfg_err(x, file,
                         "output.file is a receiver's key: ps-sensor streams "
                         "to a ps-receiver (output.server)");
    }
    if (ps__cfg_mapping(x, file, "output.file", file_keys, NULL) != 0) {
      return -1;
    }
    const yaml_node_t *path = ps__cfg_get(x, file, "path");
    if (path == NULL) {
      return ps__cfg_err(x, file, "'output.file' needs path:");
    }
    if (ps__cfg_scalar(x, path, "output.file.path") != 0) {
      return -1;
    }
    const char *s = ps__cfg_str(path);
    /* "stdout" is PacketStreamer's reserved name; its example says
     * /dev/stdout. */
    if (strcmp(s, "stdout") == 0 || strcmp(s, "/dev/stdout") == 0) {
      s = "-";
    }
    return ps__cfg_add(x, "write", s, path);
  }
  return 0;
}

static int ps__cfg_pkts_key(ps__cfg *x, ps__pkts *pk, const yaml_node_t *kn,
                            const char *key, const yaml_node_t *v) {
  static const char *const tls_keys[] = {"enable", "certfile", "keyfile", NULL};
  static const char *const auth_keys[] = {"enable", "key", NULL};
  static const char *const input_keys[] = {"address", "port", NULL};
  long n;
  x->c->packetstreamer = 1;
  if (pk->first == NULL) {
    pk->first = kn;
  }
  if (strcmp(key, "output") == 0) {
    return ps__cfg_output(x, pk, v);
  }
  if (strcmp(key, "input") == 0) {
    if (x->k->sensor) {
      return ps__cfg_err(x, kn,
                         "input is a receiver's key: ps-sensor captures "
                         "interfaces (interface:) or a file (read:)");
    }
    if (ps__cfg_mapping(x, v, "input", input_keys, NULL) != 0) {
      return -1;
    }
    pk->input_at = v;
    pk->input_addr = ps__cfg_get(x, v, "address");
    pk->input_port = ps__cfg_get(x, v, "port");
    return 0;
  }
  if (strcmp(key, "tls") == 0) {
    int on = 0;
    const yaml_node_t *e;
    if (ps__cfg_mapping(x, v, "tls", tls_keys, NULL) != 0) {
      return -1;
    }
    if ((e = ps__cfg_get(x, v, "enable")) != NULL &&
        ps__cfg_bool_key(x, e, "tls.enable", &on) != 0) {
      return -1;
    }
    if (!on) {
      return 0; /* PacketStreamer ignores the rest then */
    }
    const yaml_node_t *cert = ps__cfg_get(x, v, "certfile");
    const yaml_node_t *keyf = ps__cfg_get(x, v, "keyfile");
    if (x->k->sensor) {
      /* PacketStreamer's sensor never verified the receiver; ours does:
       * checked once the command line is read too. */
      x->c->ps_tls_line = (int)e->start_mark.line + 1;
      x->c->ps_tls_col = (int)e->start_mark.column + 1;
      if (ps__cfg_add(x, "tls", "true", e) != 0) {
        return -1;
      }
      if (cert == NULL && keyf == NULL) {
        return 0;
      }
    } else if (cert == NULL || keyf == NULL) {
      return ps__cfg_err(x, e,
                         "tls.enable: a receiver needs tls.certfile and "
                         "tls.keyfile");
    }
    if (cert != NULL && (ps__cfg_scalar(x, cert, "tls.certfile") != 0 ||
                         ps__cfg_add(x, "tls-cert", ps__cfg_str(cert), cert))) {
      return -1;
    }
    if (keyf != NULL) {
      if (ps__cfg_scalar(x, keyf, "tls.keyfile") != 0) {
        return -1;
      }
      ps__cfg_secret(x, keyf, "tls.keyfile", ps__cfg_str(keyf));
      return ps__cfg_add(x, "tls-key", ps__cfg_str(keyf), keyf);
    }
    return 0;
  }
  if (strcmp(key, "auth") == 0) {
    int on = 0;
    const yaml_node_t *e, *k;
    if (ps__cfg_mapping(x, v, "auth", auth_keys, NULL) != 0) {
      return -1;
    }
    if ((e = ps__cfg_get(x, v, "enable")) != NULL &&
        ps__cfg_bool_key(x, e, "auth.enable", &on) != 0) {
      return -1;
    }
    if (!on) {
      return 0;
    }
    if ((k = ps__cfg_get(x, v, "key")) == NULL) {
      return ps__cfg_err(x, e, "auth.enable: give auth.key");
    }
    if (ps__cfg_scalar(x, k, "auth.key") != 0) {
      return -1;
    }
    return ps__cfg_add(x, "auth-key", ps__cfg_str(k), k);
  }
  if (strcmp(key, "compressBlockSize") == 0) {
    /* Batches are sized by the stream itself: checked, then unused. */
    return ps__cfg_int(x, v, key, 1, 1048576, &n);
  }
  if (strcmp(key, "gatherMaxWaitSec") == 0) {
    return ps__cfg_int(x, v, key, 1, 86400, &n);
  }
  if (strcmp(key, "inputPacketLen") == 0) {
    if (ps__cfg_int(x, v, key, 1, 1L << 30, &n) != 0) {
      return -1;
    }
    /* The receiver writes each sensor's own snapshot length. */
    return x->k->sensor ? ps__cfg_add(x, "snapshot-length", ps__cfg_str(v), v)
                        : 0;
  }
  if (strcmp(key, "logFilename") == 0) {
    if (ps__cfg_scalar(x, v, key) != 0) {
      return -1;
    }
    return ps__cfg_add(x, "log-file", ps__cfg_str(v), v);
  }
  /* The port selection: the sensor's alone. */
  if (!x->k->sensor) {
    return ps__cfg_err(x, kn,
                       "%s is a sensor's key: the receiver writes what the "
                       "sensors send",
                       key);
  }
  if (pk->ports_at == NULL) {
    pk->ports_at = kn;
  }
  if (strcmp(key, "pcapMode") == 0) {
    if (ps__cfg_scalar(x, v, key) != 0) {
      return -1;
    }
    const char *m = ps__cfg_str(v);
    /* Case-insensitive: PacketStreamer documents Allow|Deny|All but
     * accepts only the lower-case names. */
    pk->mode = strcasecmp(m, "all") == 0     ? 0
               : strcasecmp(m, "allow") == 0 ? 1
               : strcasecmp(m, "deny") == 0  ? 2
                                             : -1;
    if (pk->mode < 0) {
      return ps__cfg_err(x, v, "pcapMode '%.40s': give all, allow or deny", m);
    }
    pk->mode_at = v;
    return 0;
  }
  if (strcmp(key, "capturePorts") == 0) {
    return ps__cfg_ports(x, v, key, pk->capture, &pk->n_capture, PS__MAX_PORTS);
  }
  if (strcmp(key, "ignorePorts") == 0) {
    return ps__cfg_ports(x, v, key, pk->ignore, &pk->n_ignore, PS__MAX_PORTS);
  }
  /* captureInterfacesPorts: {IFACE: [PORT...]} */
  if (ps__cfg_is_null(v)) {
    return 0;
  }
  if (ps__cfg_mapping(x, v, key, NULL, NULL) != 0) {
    return -1;
  }
  yaml_node_pair_t *p;
  for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *ik = yaml_document_get_node(x->doc, p->key);
    yaml_node_t *iv = yaml_document_get_node(x->doc, p->value);
    const char *ifn = ps__cfg_str(ik);
    if (*ifn == '\0' || strlen(ifn) > IF_NAMESIZE ||
        strpbrk(ifn, " \t/=") != NULL) {
      return ps__cfg_err(x, ik,
                         "captureInterfacesPorts: '%.40s' is no "
                         "interface name",
                         ifn);
    }
    if (pk->n_ifs == PS__MAX_IFACES) {
      return ps__cfg_err(x, ik, "captureInterfacesPorts: at most %d",
                         PS__MAX_IFACES);
    }
    int i = pk->n_ifs++;
    snprintf(pk->ifnames[i], sizeof(pk->ifnames[i]), "%s", ifn);
    if (iv == NULL ||
        ps__cfg_ports(x, iv, "captureInterfacesPorts", pk->ifports[i],
                      &pk->n_ifports[i], PS__MAX_PORTS / 4) != 0) {
      return -1;
    }
  }
  return 0;
}

/* "port 80 or port 443" into out; 0, or -1 when it does not fit. */
static int ps__cfg_portlist(char *out, size_t len, const int *a, int na,
                            const int *b, int nb) {
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < na + nb; i++) {
    int port = i < na ? a[i] : b[i - na];
    int dup = 0;
    for (int j = 0; j < na && i >= na; j++) {
      dup |= a[j] == port;
    }
    if (dup) {
      continue;
    }
    int w = snprintf(out + n, len - n, "%sport %d", n ? " or " : "", port);
    if (w < 0 || (size_t)w >= len - n) {
      return -1;
    }
    n += (size_t)w;
  }
  return 0;
}

/* What PacketStreamer captures, as interfaces and one filter each:
 * every interface that is up, loopback aside (or the file's
 * interface: list), in pcapMode all; allow: only capturePorts on those,
 * plus captureInterfacesPorts' ports on its interfaces, and no other
 * interface; deny: everything but those ports. ignorePorts are left out
 * in every mode. */
static int ps__cfg_pkts_finish(ps__cfg *x, ps__pkts *pk, int has_iface,
                               int has_read) {
  if (x->k->sensor && pk->server_at != NULL) {
    char hp[300];
    if (ps__cfg_hostport(x, pk->server_addr, pk->server_port, pk->server_at,
                         "output.server", 0, hp, sizeof(hp)) != 0 ||
        ps__cfg_add(x, "receiver", hp, pk->server_at) != 0) {
      return -1;
    }
  }
  if (!x->k->sensor && pk->input_at != NULL) {
    char hp[300];
    if (ps__cfg_hostport(x, pk->input_addr, pk->input_port, pk->input_at,
                         "input", 1, hp, sizeof(hp)) != 0 ||
        ps__cfg_add(x, "listen", hp, pk->input_at) != 0) {
      return -1;
    }
  }
  if (!x->k->sensor || has_read || pk->first == NULL) {
    return 0;
  }
  /* The interfaces. */
  char names[PS__MAX_IFACES * 2][IF_NAMESIZE + 1];
  int n = 0;
  const yaml_node_t *at = pk->mode_at ? pk->mode_at : pk->first;
  if (has_iface) {
    /* The file's interface: items come first in c->items. */
    for (size_t i = 0; i < x->c->n && n < PS__MAX_IFACES; i++) {
      if (strcmp(x->c->items[i].key, "interface") == 0) {
        snprintf(names[n++], sizeof(names[0]), "%s", x->c->items[i].value);
      }
    }
  } else if (pk->mode != 1 || pk->n_capture > 0) {
    struct ifaddrs *ifa = NULL, *a;
    if (getifaddrs(&ifa) != 0) {
      return ps__cfg_err(x, at, "cannot list the interfaces: %s",
                         strerror(errno));
    }
    for (a = ifa; a != NULL && n < PS__MAX_IFACES; a = a->ifa_next) {
      if (!(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK) ||
          strlen(a->ifa_name) > IF_NAMESIZE) {
        continue;
      }
      int dup = 0;
      for (int j = 0; j < n; j++) {
        dup |= strcmp(names[j], a->ifa_name) == 0;
      }
      if (!dup) {
        snprintf(names[n++], sizeof(names[0]), "%s", a->ifa_name);
      }
    }
    freeifaddrs(ifa);
  }
  /* (With the file's own interface: list, that list is captured.) */
  for (int i = 0; i < pk->n_ifs && !has_iface && n < PS__MAX_IFACES * 2; i++) {
    int dup = 0;
    for (int j = 0; j < n; j++) {
      dup |= strcmp(names[j], pk->ifnames[i]) == 0;
    }
    if (!dup && pk->mode != 0) {
      snprintf(names[n++], sizeof(names[0]), "%s", pk->ifnames[i]);
    }
  }
  if (n == 0) {
    return ps__cfg_err(x, at,
                       pk->mode == 1
                           ? "pcapMode allow captures nothing: give "
                             "capturePorts, or captureInterfacesPorts"
                           : "no interface is up (loopback aside) to capture "
                             "on: give interface:");
  }
  for (int i = 0; i < n; i++) {
    if (!has_iface && ps__cfg_add(x, "interface", names[i], at) != 0) {
      return -1;
    }
  }
  /* One filter each. */
  for (int i = 0; i < n; i++) {
    const int *own = NULL;
    int n_own = 0;
    for (int j = 0; j < pk->n_ifs; j++) {
      if (strcmp(pk->ifnames[j], names[i]) == 0) {
        own = pk->ifports[j];
        n_own = pk->n_ifports[j];
      }
    }
    char ports[4096], ign[2048], f[8192];
    if (ps__cfg_portlist(ports, sizeof(ports), pk->capture,
                         pk->mode == 0 ? 0 : pk->n_capture, own,
                         pk->mode == 0 ? 0 : n_own) != 0 ||
        ps__cfg_portlist(ign, sizeof(ign), pk->ignore, pk->n_ignore, NULL, 0) !=
            0) {
      return ps__cfg_err(x, at, "too many ports");
    }
    f[0] = '\0';
    if (pk->mode == 1 && *ports == '\0') {
      return ps__cfg_err(x, at,
                         "pcapMode allow: no port to capture on %s (give "
                         "capturePorts, or captureInterfacesPorts for it)",
                         names[i]);
    }
    if (pk->mode == 1) {
      snprintf(f, sizeof(f), "(%s)%s%s%s", ports, *ign ? " and not (" : "", ign,
               *ign ? ")" : "");
    } else if (*ports || *ign) {
      snprintf(f, sizeof(f), "not (%s%s%s)", ports,
               *ports && *ign ? " or " : "", ign);
    }
    if (*f != '\0') {
      char item[8300];
      snprintf(item, sizeof(item), "%s=%s", names[i], f);
      if (ps__cfg_add(x, "interface-filter", item, at) != 0) {
        return -1;
      }
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- */

static int ps__cfg_walk(ps__cfg *x) {
  yaml_node_t *root = yaml_document_get_root_node(x->doc);
  if (root == NULL || ps__cfg_is_null(root)) {
    return 0; /* an empty file: nothing set */
  }
  if (root->type != YAML_MAPPING_NODE) {
    return ps__cfg_err(x, root,
                       "the file must be a mapping of keys to "
                       "values (key: value), not %s",
                       ps__cfg_type(root));
  }
  ps__pkts *pk = calloc(1, sizeof(*pk));
  if (pk == NULL) {
    return ps__cfg_err(x, root, "out of memory");
  }
  int rc = 0, has_iface = 0, has_read = 0;
  yaml_node_pair_t *p, *q;
  for (p = root->data.mapping.pairs.start;
       rc == 0 && p < root->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(x->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
    if (kn == NULL || v == NULL || kn->type != YAML_SCALAR_NODE) {
      rc = ps__cfg_err(x, kn ? kn : root, "keys are names, not %s",
                       kn ? ps__cfg_type(kn) : "nothing");
      break;
    }
    const char *key = ps__cfg_str(kn);
    for (q = root->data.mapping.pairs.start; q < p; q++) {
      yaml_node_t *k2 = yaml_document_get_node(x->doc, q->key);
      if (k2 != NULL && k2->type == YAML_SCALAR_NODE &&
          strcmp(ps__cfg_str(k2), key) == 0) {
        rc = ps__cfg_err(x, kn,
                         "duplicate key '%.100s' (first at line %d): give "
                         "it once%s",
                         key, (int)k2->start_mark.line + 1,
                         ps__cfg_in(key, x->k->repeatable)
                             ? ", with a list for several values"
                             : "");
        break;
      }
    }
    if (rc != 0) {
      break;
    }
    has_iface |= strcmp(key, "interface") == 0;
    has_read |= strcmp(key, "read") == 0;
    /* tls is our sensor's switch (true/false) and PacketStreamer's
     * section (a mapping). */
    if (ps__cfg_in(key, ps__pkts_keys) &&
        (strcmp(key, "tls") != 0 || v->type == YAML_MAPPING_NODE)) {
      rc = ps__cfg_pkts_key(x, pk, kn, key, v);
    } else {
      rc = ps__cfg_ours(x, kn, key, v);
    }
  }
  if (rc == 0) {
    rc = ps__cfg_pkts_finish(x, pk, has_iface, has_read);
  }
  free(pk);
  /* Two sources for one option, one of them PacketStreamer's key
   * (output.server and receiver:): which one was meant is unclear. */
  for (size_t i = 0; rc == 0 && x->c->packetstreamer && i < x->c->n; i++) {
    for (size_t j = 0; j < i; j++) {
      ps_config_item *a = &x->c->items[j], *b = &x->c->items[i];
      if (strcmp(a->key, b->key) == 0 &&
          !ps__cfg_in(a->key, x->k->repeatable) &&
          strcmp(a->key, "interface-filter") != 0) {
        snprintf(x->err, x->errlen,
                 "%s:%d:%d: '%s' is set twice (also at line %d, one of them "
                 "by a PacketStreamer key): give it once",
                 x->name, b->line, b->col, a->key, a->line);
        rc = -1;
        break;
      }
    }
  }
  return rc;
}

void ps_config_free(ps_config *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->items[i].key);
    if (c->items[i].value != NULL) {
      /* (Values may be keys.) */
      memset(c->items[i].value, 0, strlen(c->items[i].value));
    }
    free(c->items[i].value);
  }
  free(c->items);
  free(c->path);
  memset(c, 0, sizeof(*c));
}

int ps_config_load_buffer(ps_config *c, const char *name, const char *buf,
                          size_t len, const ps_config_keys *k, char *err,
                          size_t errlen) {
  memset(c, 0, sizeof(*c));
  ps__cfg x = {c, k, name, NULL, err, errlen};
  c->path = strdup(name);
  if (c->path == NULL) {
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "%s: out of memory", name);
    ps_config_free(c);
    return -1;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
  int rc = -1;
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "%s:%d:%d: not valid YAML: %s%s%s", name,
             (int)parser.problem_mark.line + 1,
             (int)parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "error",
             parser.context ? " " : "", parser.context ? parser.context : "");
  } else {
    x.doc = &doc;
    rc = ps__cfg_walk(&x);
    yaml_document_t more;
    if (rc == 0) {
      /* One document: a second one would be silently ignored. */
      if (!yaml_parser_load(&parser, &more)) {
        rc = -1;
        snprintf(err, errlen, "%s:%d:%d: not valid YAML: %s", name,
                 (int)parser.problem_mark.line + 1,
                 (int)parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "error");
      } else {
        yaml_node_t *r2 = yaml_document_get_root_node(&more);
        if (r2 != NULL) {
          rc = -1;
          snprintf(err, errlen, "%s:%d:%d: a second YAML document: give one",
                   name, (int)r2->start_mark.line + 1,
                   (int)r2->start_mark.column + 1);
        }
        yaml_document_delete(&more);
      }
    }
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  if (rc != 0) {
    ps_config_free(c);
    return -1;
  }
  return 0;
}

int ps_config_load(ps_config *c, const char *path, const ps_config_keys *k,
                   char *err, size_t errlen) {
  memset(c, 0, sizeof(*c));
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot read config file %s: %s", path,
             strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    close(fd);
    snprintf(err, errlen, "config file %s is not a regular file", path);
    return -1;
  }
  char *buf = malloc(PS_CONFIG_MAX_BYTES + 1);
  size_t n = 0;
  ssize_t r = 0;
  while (buf != NULL && n <= PS_CONFIG_MAX_BYTES &&
         (r = read(fd, buf + n, PS_CONFIG_MAX_BYTES + 1 - n)) > 0) {
    n += (size_t)r;
  }
  int e = errno;
  close(fd);
  if (buf == NULL || r < 0 || n > PS_CONFIG_MAX_BYTES) {
    snprintf(err, errlen, "%s: %s", path,
             buf == NULL ? "out of memory"
             : r < 0     ? strerror(e)
                         : "larger than 1 MiB: not a config file");
    free(buf);
    return -1;
  }
  if (memchr(buf, '\0', n) != NULL) {
    free(buf);
    snprintf(err, errlen, "%s: a NUL byte: not a YAML file", path);
    return -1;
  }
  int rc = ps_config_load_buffer(c, path, buf, n, k, err, errlen);
  memset(buf, 0, n);
  free(buf);
  if (rc == 0 && (st.st_mode & 077) && S_ISREG(st.st_mode)) {
    for (size_t i = 0; i < c->n; i++) {
      if (strcmp(c->items[i].key, "auth-key") == 0 && k->warn != NULL) {
        char line[600];
        snprintf(line, sizeof(line),
                 "%s:%d:%d: warning: the file holds a shared key and can be "
                 "read by group or others: chmod 600 %s",
                 path, c->items[i].line, c->items[i].col, path);
        k->warn(line);
      }
    }
  }
  return rc;
}
