/* The receiver's admin API (see ps_admin.h): /metrics for Prometheus,
 * the sensor inventory, and the captures started on demand. */
#include "config.h"

#include "ps_admin.h"
#include "ps_net.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ps__admin {
  struct MHD_Daemon *d;
  struct ps_receiver *r;
  uint8_t *token;
  size_t token_len;
  /* A client certificate that verifies against the trust CAs is
   * required (MHD asks for one, but lets a client without through). */
  int need_client_cert;
  uint16_t port;
};

/* One request while its body arrives. */
typedef struct req {
  ps__buf body;
  int too_big;
  /* Suspended until the sensors answered capture cap_id. */
  int waiting;
  uint64_t cap_id;
  unsigned status; /* of the answer then */
} req;

/* ------------------------------------------------------------ auth */

int ps__admin_token_ok(const char *header, const uint8_t *token,
                       size_t token_len) {
  static const char scheme[] = "Bearer ";
  if (header == NULL || strncasecmp(header, scheme, sizeof(scheme) - 1) != 0) {
    return 0;
  }
  const char *cred = header + sizeof(scheme) - 1;
  /* Digests of both are compared, so the time taken tells nothing of the
   * token, its length included. */
  uint8_t want[32], got[32];
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, token, token_len, want) != 0 ||
      gnutls_hash_fast(GNUTLS_DIG_SHA256, cred, strlen(cred), got) != 0) {
    return 0;
  }
  return gnutls_memcmp(want, got, sizeof(want)) == 0;
}

void ps__admin_tls_clear(ps__admin_tls *t) {
  if (t->key != NULL) {
    gnutls_memset(t->key, 0, strlen(t->key));
  }
  free(t->cert);
  free(t->key);
  free(t->trust);
  t->cert = t->key = t->trust = NULL;
}

/* Whether the client of connection c showed a certificate that verifies
 * against the admin client CAs (MHD has loaded them into the session's
 * credentials and requested a certificate). Why not, in why. */
static int client_cert_ok(struct MHD_Connection *c, char *why, size_t len) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (ci == NULL || ci->tls_session == NULL) {
    snprintf(why, len, "not a TLS connection");
    return 0;
  }
  gnutls_session_t s = (gnutls_session_t)ci->tls_session;
  unsigned n = 0;
  if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0) {
    snprintf(why, len, "no client certificate was sent");
    return 0;
  }
  unsigned status = 0;
  int rc = gnutls_certificate_verify_peers2(s, &status);
  if (rc < 0) {
    snprintf(why, len, "%s", gnutls_strerror(rc));
    return 0;
  }
  if (status != 0) {
    gnutls_datum_t txt = {NULL, 0};
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
                                                     &txt, 0) == 0) {
      snprintf(why, len, "%s", (const char *)txt.data);
      gnutls_free(txt.data);
    } else {
      snprintf(why, len, "the client certificate does not verify");
    }
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ metrics */

static int bprintf(ps__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bprintf(ps__buf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) {
    return PS_ERR_INVALID;
  }
  return ps__buf_append(b, tmp,
                        (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A label value as the exposition format wants it: \, " and newline
 * escaped. Names may hold any byte but controls (PROTOCOL.md §1). */
static int put_label(ps__buf *b, const char *key, const char *value,
                     int first) {
  int rc = bprintf(b, "%s%s=\"", first ? "" : ",", key);
  for (const char *p = value; rc == 0 && *p; p++) {
    if (*p == '\\' || *p == '"') {
      rc = bprintf(b, "\\%c", *p);
    } else if (*p == '\n') {
      rc = bprintf(b, "\\n");
    } else {
      rc = ps__buf_append(b, p, 1);
    }
  }
  return rc ? rc : ps__buf_append(b, "\"", 1);
}

static int put_sensor_labels(ps__buf *b, const ps__fleet_sensor *e,
                             const char *iface) {
  int rc = put_label(b, "sensor", e->name, 1);
  if (rc == 0 && iface != NULL) {
    rc = put_label(b, "iface", iface, 0);
  }
  for (unsigned i = 0; rc == 0 && i < e->n_labels; i++) {
    rc = put_label(b, e->labels[i].key, e->labels[i].value, 0);
  }
  return rc;
}

static int put_head(ps__buf *b, const char *name, const char *type,
                    const char *help) {
  return bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct rmetric {
  const char *name, *type, *help;
  size_t off; /* in ps_receiver_counters */
} rmetric;

#define RC(f) offsetof(ps_receiver_counters, f)
static const rmetric receiver_metrics[] = {
    {"ps_receiver_connections_total", "counter",
     "TCP connections accepted from sensors.", RC(connections)},
    {"ps_receiver_connections_no_hello_total", "counter",
     "Connections closed before they said hello.", RC(connections_no_hello)},
    {"ps_receiver_sessions", "gauge", "Sensor connections open now.",
     RC(sessions_active)},
    {"ps_receiver_sessions_total", "counter",
     "Sensor sessions (connections that said hello).", RC(sessions_total)},
    {"ps_receiver_sessions_failed_total", "counter",
     "Sensor sessions that ended with an error.", RC(sessions_failed)},
    {"ps_receiver_packets_total", "counter", "Packets written to the outputs.",
     RC(packets)},
    {"ps_receiver_bytes_total", "counter",
     "Captured bytes written to the outputs.", RC(bytes)},
    {"ps_receiver_output_bytes_total", "counter",
     "Bytes the output files took (headers and blocks included).",
     RC(output_bytes)},
    {"ps_receiver_duplicate_batches_total", "counter",
     "Resent batches skipped as already written.", RC(duplicate_batches)},
    {"ps_receiver_write_stalls_total", "counter",
     "Times an output could not write (sensors held back).", RC(write_stalls)},
    {"ps_receiver_kafka_sent_messages_total", "counter",
     "Messages the Kafka output handed to the producer.", RC(kafka_sent)},
    {"ps_receiver_kafka_delivered_messages_total", "counter",
     "Messages the broker confirmed kept (delivery reports).",
     RC(kafka_delivered)},
    {"ps_receiver_kafka_read_messages_total", "counter",
     "Messages the Kafka input read.", RC(kafka_messages)},
    {"ps_receiver_kafka_duplicate_messages_total", "counter",
     "Messages the Kafka input skipped as already taken.",
     RC(kafka_duplicates)},
    {"ps_receiver_kafka_gaps_total", "counter",
     "Places where a stream's batches in the topic jump.", RC(kafka_gaps)},
    {"ps_receiver_kafka_bad_messages_total", "counter",
     "Messages the Kafka input skipped as not ours or damaged.", RC(kafka_bad)},
};

typedef struct smetric {
  const char *name, *type, *help;
  int per_iface;
  uint64_t (*get)(const ps__fleet_sensor *e, const ps__fleet_iface *f);
} smetric;

static uint64_t g_up(const ps__fleet_sensor *e, const ps__fleet_iface *f) {
  (void)f;
  return e->n_conn > 0;
}
static uint64_t g_sessions(const ps__fleet_sensor *e,
                           const ps__fleet_iface *f) {
  (void)f;
  return e->sessions;
}
static uint64_t g_reconnects(const ps__fleet_sensor *e,
                             const ps__fleet_iface *f) {
  (void)f;
  return e->sessions > 0 ? e->sessions - 1 : 0;
}
static uint64_t g_dups(const ps__fleet_sensor *e, const ps__fleet_iface *f) {
  (void)f;
  return e->duplicates;
}
static uint64_t g_acked(const ps__fleet_sensor *e, const ps__fleet_iface *f) {
  (void)f;
  return e->acked_batches;
}
#define IFACE_GETTER(fn, expr)                                                 \
  static uint64_t fn(const ps__fleet_sensor *e, const ps__fleet_iface *f) {    \
    (void)e;                                                                   \
    return (expr);                                                             \
  }
IFACE_GETTER(g_packets, f->packets)
IFACE_GETTER(g_bytes, f->bytes)
IFACE_GETTER(g_captured, f->st.captured)
IFACE_GETTER(g_kernel, f->st.dropped)
IFACE_GETTER(g_ifdrop, f->st.ifdropped)
IFACE_GETTER(g_overflow, f->st.overflow)
IFACE_GETTER(g_truncated, f->st.truncated)
IFACE_GETTER(g_sampled, f->st.sampled_out)

static const smetric sensor_metrics[] = {
    {"ps_sensor_up", "gauge", "1 while the sensor is connected.", 0, g_up},
    {"ps_sensor_sessions_total", "counter",
     "Connections of the sensor this receiver admitted.", 0, g_sessions},
    {"ps_sensor_reconnects_total", "counter",
     "Connections of the sensor after its first.", 0, g_reconnects},
    {"ps_sensor_duplicate_batches_total", "counter",
     "Batches the sensor resent that were already written (skipped).", 0,
     g_dups},
    {"ps_sensor_acknowledged_batches_total", "counter",
     "Batches acknowledged to the sensor (every durable output keeps them).", 0,
     g_acked},
    {"ps_sensor_packets_total", "counter",
     "Packets of the interface this receiver took from the sensor.", 1,
     g_packets},
    {"ps_sensor_bytes_total", "counter",
     "Captured bytes of the interface this receiver took.", 1, g_bytes},
    {"ps_sensor_captured_packets_total", "counter",
     "Packets the sensor captured on the interface (its report).", 1,
     g_captured},
    {"ps_sensor_kernel_drops_total", "counter",
     "Packets the sensor's kernel dropped (pcap_stats ps_drop).", 1, g_kernel},
    {"ps_sensor_interface_drops_total", "counter",
     "Packets the interface dropped (pcap_stats ps_ifdrop).", 1, g_ifdrop},
    {"ps_sensor_buffer_drops_total", "counter",
     "Packets the sensor's replay buffer dropped or lost unacknowledged.", 1,
     g_overflow},
    {"ps_sensor_truncated_packets_total", "counter",
     "Packets the sensor's capture source shortened.", 1, g_truncated},
    {"ps_sensor_sampled_out_packets_total", "counter",
     "Packets of the interface the sensor's filter took but sampling or a "
     "rate cap left out (its report; not loss).",
     1, g_sampled},
};

int ps__admin_metrics(ps__buf *out, const ps_receiver_counters *c,
                      uint64_t journal_commits, const ps__fleet *fl) {
  int rc = 0;
  for (size_t i = 0;
       rc == 0 && i < sizeof(receiver_metrics) / sizeof(receiver_metrics[0]);
       i++) {
    const rmetric *m = &receiver_metrics[i];
    uint64_t v;
    memcpy(&v, (const char *)c + m->off, sizeof(v));
    rc = put_head(out, m->name, m->type, m->help);
    if (rc == 0) {
      rc = bprintf(out, "%s %llu\n", m->name, (unsigned long long)v);
    }
  }
  if (rc == 0) {
    rc = put_head(out, "ps_receiver_journal_commits_total", "counter",
                  "Records the receiver's journal committed.");
  }
  if (rc == 0) {
    rc = bprintf(out, "ps_receiver_journal_commits_total %llu\n",
                 (unsigned long long)journal_commits);
  }
  if (rc == 0) {
    rc = put_head(out, "ps_receiver_sensors", "gauge",
                  "Sensors known to the receiver (connected or not).");
  }
  if (rc == 0) {
    rc = bprintf(out, "ps_receiver_sensors %u\n", fl->n);
  }
  for (size_t i = 0;
       rc == 0 && i < sizeof(sensor_metrics) / sizeof(sensor_metrics[0]); i++) {
    const smetric *m = &sensor_metrics[i];
    rc = put_head(out, m->name, m->type, m->help);
    for (const ps__fleet_sensor *e = fl->head; rc == 0 && e != NULL;
         e = e->next) {
      unsigned n = m->per_iface ? e->n_ifaces : 1;
      for (unsigned k = 0; rc == 0 && k < n; k++) {
        const ps__fleet_iface *f = m->per_iface ? e->ifaces[k] : NULL;
        rc = bprintf(out, "%s{", m->name);
        if (rc == 0) {
          rc = put_sensor_labels(out, e, f ? f->name : NULL);
        }
        if (rc == 0) {
          rc = bprintf(out, "} %llu\n", (unsigned long long)m->get(e, f));
        }
      }
    }
  }
  return rc ? PS_ERR_NOMEM : 0;
}

/* ------------------------------------------------------------ JSON */

static void iso_time(char *out, size_t len, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[32];
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, len, "%s.%03dZ", base, (int)(ms % 1000));
}

static json_t *sensor_json(const ps__fleet_sensor *e) {
  char since[48] = "";
  if (e->since_ms > 0) {
    iso_time(since, sizeof(since), e->since_ms);
  }
  json_t *labels = json_object();
  for (unsigned i = 0; i < e->n_labels; i++) {
    json_object_set_new(labels, e->labels[i].key,
                        json_string(e->labels[i].value));
  }
  json_t *avail = json_array();
  for (unsigned i = 0; i < e->n_avail; i++) {
    json_array_append_new(avail, json_pack("{s:s, s:I}", "name",
                                           e->avail[i].name, "linktype",
                                           (json_int_t)e->avail[i].linktype));
  }
  json_t *counters = json_array();
  for (unsigned i = 0; i < e->n_ifaces; i++) {
    const ps__fleet_iface *f = e->ifaces[i];
    json_array_append_new(
        counters,
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "iface",
                  f->name, "linktype", (json_int_t)f->linktype, "packets",
                  (json_int_t)f->packets, "bytes", (json_int_t)f->bytes,
                  "captured", (json_int_t)f->st.captured, "kernel_drops",
                  (json_int_t)f->st.dropped, "interface_drops",
                  (json_int_t)f->st.ifdropped, "buffer_drops",
                  (json_int_t)f->st.overflow, "truncated",
                  (json_int_t)f->st.truncated));
  }
  json_t *o = json_pack(
      "{s:s, s:s, s:b, s:s, s:I, s:I, s:o, s:o, s:o}", "name", e->name,
      "address", e->peer, "connected", e->n_conn > 0, "connected_since", since,
      "sessions", (json_int_t)e->sessions, "reconnects",
      (json_int_t)(e->sessions > 0 ? e->sessions - 1 : 0), "labels", labels,
      "interfaces", avail, "counters", counters);
  if (o != NULL) {
    json_object_set_new(o, "announced", json_boolean(e->announced));
    if (e->announced) {
      json_object_set_new(o, "version", json_string(e->version));
      json_object_set_new(o, "host", json_string(e->host));
      json_object_set_new(
          o, "standby",
          json_boolean((e->announce_flags & PS_ANNOUNCE_STANDBY) != 0));
      json_object_set_new(
          o, "remote_capture",
          json_boolean((e->announce_flags & PS_ANNOUNCE_REMOTE) != 0));
    }
  }
  return o;
}

/* ------------------------------------------------------------ requests */

static int bad(char *errbuf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(char *errbuf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, PS_ERRMSG_MAX, fmt, ap);
  va_end(ap);
  return PS_ERR_INVALID;
}

static json_t *load(const char *body, size_t len, char *errbuf) {
  json_error_t je;
  json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) {
    bad(errbuf, "invalid JSON: %s (line %d, column %d)", je.text, je.line,
        je.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    bad(errbuf, "the request must be a JSON object");
    return NULL;
  }
  return j;
}

/* A JSON integer within min..max. */
static int get_uint(json_t *v, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out, char *errbuf) {
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (uint64_t)json_integer_value(v) < min ||
      (uint64_t)json_integer_value(v) > max) {
    return bad(errbuf, "'%s' must be an integer %llu..%llu", key,
               (unsigned long long)min, (unsigned long long)max);
  }
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

/* "1/N", N 1..1000000. */
static int get_sample(json_t *v, uint32_t *out, char *errbuf) {
  const char *t = json_string_value(v);
  char *end;
  if (t == NULL || strncmp(t, "1/", 2) != 0 || t[2] < '1' || t[2] > '9') {
    return bad(errbuf, "'sample' must be a string \"1/N\", N 1..1000000");
  }
  unsigned long n = strtoul(t + 2, &end, 10);
  if (*end != '\0' || n < 1 || n > 1000000) {
    return bad(errbuf, "'sample' must be a string \"1/N\", N 1..1000000");
  }
  *out = (uint32_t)n;
  return 0;
}

static int get_filter(json_t *v, char *out, char *errbuf) {
  const char *t = json_string_value(v);
  size_t n = t ? json_string_length(v) : 0;
  if (t == NULL || strlen(t) != n || n > PS_MAX_FILTER ||
      !ps__valid_filter(t, n)) {
    return bad(errbuf,
               "'filter' must be a string of at most %u bytes without "
               "control characters",
               PS_MAX_FILTER);
  }
  memcpy(out, t, n + 1);
  return 0;
}

static int get_name(json_t *v, const char *what, char *out, char *errbuf) {
  const char *t = json_string_value(v);
  size_t n = t ? json_string_length(v) : 0;
  if (t == NULL || strlen(t) != n || n == 0 || n > 255 ||
      !ps__valid_name(t, n)) {
    return bad(errbuf,
               "%s must be a string of 1 to 255 bytes without control "
               "characters",
               what);
  }
  memcpy(out, t, n + 1);
  return 0;
}

static int get_selector(json_t *v, ps__selector *sel, char *errbuf) {
  memset(sel, 0, sizeof(*sel));
  json_t *names = NULL, *labels = NULL;
  if (json_is_string(v) || json_is_array(v)) {
    names = v;
  } else if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
      if (strcmp(k, "names") == 0) {
        names = x;
      } else if (strcmp(k, "labels") == 0) {
        labels = x;
      } else {
        return bad(errbuf,
                   "unknown key '%s' in 'sensors' (known: names, labels)", k);
      }
    }
    if (names == NULL && labels == NULL) {
      return bad(errbuf, "'sensors' selects nothing: give names or labels");
    }
  } else {
    return bad(errbuf, "'sensors' must be a name or glob, a list of them, or "
                       "{\"labels\": {KEY: VALUE}}");
  }
  if (names != NULL && json_is_string(names)) {
    sel->n_names = 1;
    return get_name(names, "a sensor name or glob", sel->names[0], errbuf);
  }
  if (names != NULL) {
    if (!json_is_array(names) || json_array_size(names) == 0 ||
        json_array_size(names) > PS_SELECTOR_MAX_NAMES) {
      return bad(errbuf, "sensor names must be a list of 1 to %u names",
                 PS_SELECTOR_MAX_NAMES);
    }
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x) {
      if (get_name(x, "a sensor name or glob", sel->names[i], errbuf) != 0) {
        return PS_ERR_INVALID;
      }
    }
    sel->n_names = (unsigned)json_array_size(names);
  }
  if (labels != NULL) {
    if (!json_is_object(labels) || json_object_size(labels) == 0 ||
        json_object_size(labels) > PS_FLEET_MAX_LABELS) {
      return bad(errbuf, "'labels' must be an object of 1 to %u labels",
                 PS_FLEET_MAX_LABELS);
    }
    const char *k;
    json_t *x;
    json_object_foreach(labels, k, x) {
      const char *val = json_string_value(x);
      size_t vl = val ? json_string_length(x) : 0;
      if (!ps__valid_label_key(k, strlen(k))) {
        return bad(errbuf, "invalid label key '%.64s'", k);
      }
      if (val == NULL || strlen(val) != vl || vl > PS_FLEET_LABEL_VALUE ||
          (vl > 0 && !ps__valid_name(val, vl))) {
        return bad(errbuf,
                   "label %s: the value must be a string of at most "
                   "255 bytes without control characters",
                   k);
      }
      ps__fleet_label *l = &sel->labels[sel->n_labels++];
      snprintf(l->key, sizeof(l->key), "%s", k);
      memcpy(l->value, val, vl + 1);
    }
  }
  return 0;
}

int ps__admin_parse_capture(const char *body, size_t len, ps__capreq *out,
                            char *errbuf) {
  memset(out, 0, sizeof(*out));
  json_t *j = load(body, len, errbuf);
  if (j == NULL) {
    return PS_ERR_INVALID;
  }
  int rc = 0, have_sensors = 0;
  const char *k;
  json_t *v;
  uint64_t u;
  json_object_foreach(j, k, v) {
    if (rc != 0) {
      break;
    }
    if (strcmp(k, "sensors") == 0) {
      have_sensors = 1;
      rc = get_selector(v, &out->sel, errbuf);
    } else if (strcmp(k, "filter") == 0) {
      rc = get_filter(v, out->filter, errbuf);
    } else if (strcmp(k, "interfaces") == 0) {
      if (!json_is_array(v) || json_array_size(v) > PS_MAX_CAPTURE_IFACES) {
        rc = bad(errbuf, "'interfaces' must be a list of at most %u names",
                 PS_MAX_CAPTURE_IFACES);
        break;
      }
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        if ((rc = get_name(x, "an interface name", out->ifaces[i], errbuf)) !=
            0) {
          break;
        }
      }
      out->n_ifaces = (unsigned)json_array_size(v);
    } else if (strcmp(k, "snaplen") == 0) {
      rc = get_uint(v, k, 1, PS_MAX_CAPLEN, &u, errbuf);
      out->snaplen = (uint32_t)u;
    } else if (strcmp(k, "duration_s") == 0) {
      rc = get_uint(v, k, 1, 31536000, &u, errbuf);
      out->duration_ms = u * 1000;
    } else if (strcmp(k, "count") == 0) {
      rc = get_uint(v, k, 1, UINT64_MAX >> 1, &u, errbuf);
      out->count = u;
    } else if (strcmp(k, "max_pps") == 0) {
      rc = get_uint(v, k, 1, UINT32_MAX, &u, errbuf);
      out->max_pps = (uint32_t)u;
    } else if (strcmp(k, "sample") == 0) {
      rc = get_sample(v, &out->sample_n, errbuf);
    } else if (strcmp(k, "output") == 0) {
      const char *o = json_string_value(v);
      if (o == NULL || strlen(o) != json_string_length(v)) {
        rc = bad(errbuf, "'output' must be a path template (text)");
      } else if ((rc = ps__capture_output_check(o, NULL, errbuf)) == 0) {
        memcpy(out->output, o, strlen(o) + 1);
      }
    } else {
      rc = bad(errbuf,
               "unknown key '%.64s' (known: sensors, filter, interfaces, "
               "snaplen, duration_s, count, sample, max_pps, output)",
               k);
    }
  }
  json_decref(j);
  if (rc == 0 && !have_sensors) {
    rc = bad(errbuf, "'sensors' is required: a name, a glob, a list of them, "
                     "or {\"labels\": {KEY: VALUE}}");
  }
  return rc;
}

int ps__admin_parse_change(const char *body, size_t len, uint32_t *what,
                           char *filter, uint32_t *sample_n, uint32_t *max_pps,
                           char *errbuf) {
  *what = 0;
  *sample_n = *max_pps = 0;
  filter[0] = '\0';
  json_t *j = load(body, len, errbuf);
  if (j == NULL) {
    return PS_ERR_INVALID;
  }
  int rc = 0;
  const char *k;
  json_t *v;
  uint64_t u;
  json_object_foreach(j, k, v) {
    if (rc != 0) {
      break;
    }
    if (strcmp(k, "filter") == 0) {
      rc = get_filter(v, filter, errbuf);
      *what |= PS_CHANGE_FILTER;
    } else if (strcmp(k, "sample") == 0) {
      rc = get_sample(v, sample_n, errbuf);
      *what |= PS_CHANGE_SAMPLE;
    } else if (strcmp(k, "max_pps") == 0) {
      rc = get_uint(v, k, 1, UINT32_MAX, &u, errbuf);
      *max_pps = (uint32_t)u;
      *what |= PS_CHANGE_MAX_PPS;
    } else {
      rc = bad(errbuf,
               "unknown key '%.64s' (a running capture changes its filter, "
               "sample or max_pps)",
               k);
    }
  }
  json_decref(j);
  if (rc == 0 && *what == 0) {
    rc = bad(errbuf, "nothing to change: give filter, sample or max_pps");
  }
  return rc;
}

int ps__admin_check_filter(const char *filter, uint32_t linktype, char *errbuf,
                           size_t errlen) {
  if (filter[0] == '\0') {
    return 0;
  }
  /* pcap_open_dead takes a DLT_ value; they differ from LINKTYPE_ for
   * a few types, of which raw IP is the one sensors offer. */
  int dlt = (linktype & 0xffff) == 101 ? DLT_RAW : (int)(linktype & 0xffff);
  pcap_t *p = pcap_open_dead(dlt, (int)PS_MAX_CAPLEN);
  if (p == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return PS_ERR_NOMEM;
  }
  struct bpf_program prog;
  int rc = 0;
  if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    snprintf(errbuf, errlen, "%s", pcap_geterr(p));
    rc = PS_ERR_FILTER;
  } else {
    pcap_freecode(&prog);
  }
  pcap_close(p);
  return rc;
}

static json_t *capture_json(const ps__capture *c) {
  char created[48];
  iso_time(created, sizeof(created), c->created_ms);
  json_t *ts = json_array();
  uint64_t packets = 0;
  int active = 0, accepted = 0;
  for (unsigned i = 0; i < c->n_t; i++) {
    const ps__cap_target *t = &c->t[i];
    packets += t->packets;
    active |= t->state == PS_T_RUNNING || t->state == PS_T_PENDING;
    accepted |= t->state == PS_T_RUNNING || t->state == PS_T_ENDED;
    json_t *o =
        json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I}", "sensor", t->sensor,
                  "state", ps__target_state_name(t->state), "accepted",
                  t->state == PS_T_RUNNING || t->state == PS_T_ENDED, "packets",
                  (json_int_t)t->packets, "bytes", (json_int_t)t->bytes,
                  "sensor_packets", (json_int_t)t->sensor_packets,
                  "sampled_out", (json_int_t)t->sampled_out);
    if (o != NULL && t->reason[0]) {
      json_object_set_new(o, "reason", json_string(t->reason));
    }
    if (o != NULL && t->change[0]) {
      json_object_set_new(o, "change", json_string(t->change));
    }
    json_array_append_new(ts, o);
  }
  json_t *ifs = json_array();
  for (unsigned i = 0; i < c->req.n_ifaces; i++) {
    json_array_append_new(ifs, json_string(c->req.ifaces[i]));
  }
  const char *state = active     ? (c->stop_requested ? "stopping" : "running")
                      : accepted ? "ended"
                      : c->stop_requested ? "ended"
                                          : "refused";
  json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:I}", "id",
                        (json_int_t)c->id, "state", state, "created", created,
                        "filter", c->req.filter, "interfaces", ifs, "sensors",
                        ts, "packets", (json_int_t)packets);
  if (o == NULL) {
    return NULL;
  }
  /* Who started it: the API, or the sensor's command line (its own). */
  json_object_set_new(o, "origin", json_string(c->own ? "sensor" : "api"));
  if (c->own) {
    json_object_set_new(o, "read_only", json_boolean(c->read_only));
  }
  if (c->req.duration_ms) {
    json_object_set_new(o, "duration_s",
                        json_integer((json_int_t)(c->req.duration_ms / 1000)));
    /* When its sensors end it (each counts from its own start). */
    char deadline[48];
    iso_time(deadline, sizeof(deadline),
             c->created_ms + (int64_t)c->req.duration_ms);
    json_object_set_new(o, "deadline", json_string(deadline));
  }
  if (c->req.count) {
    json_object_set_new(o, "count", json_integer((json_int_t)c->req.count));
  }
  if (c->req.snaplen) {
    json_object_set_new(o, "snaplen", json_integer(c->req.snaplen));
  }
  if (c->req.max_pps) {
    json_object_set_new(o, "max_pps", json_integer(c->req.max_pps));
  }
  if (c->req.sample_n > 1) {
    char smp[32];
    snprintf(smp, sizeof(smp), "1/%u", c->req.sample_n);
    json_object_set_new(o, "sample", json_string(smp));
  }
  if (c->req.output[0] != '\0') {
    json_t *files = json_array();
    for (unsigned i = 0; i < c->n_paths; i++) {
      json_array_append_new(files, json_string(c->paths[i]));
    }
    json_object_set_new(o, "output", json_string(c->req.output));
    json_object_set_new(o, "output_files", files);
  }
  return o;
}

/* ------------------------------------------------------------ HTTP */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *ctype, char *body, size_t len) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  if (status == MHD_HTTP_UNAUTHORIZED) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Bearer realm=\"ps-receiver\"");
  }
  enum MHD_Result r = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status,
                                  json_t *j) {
  if (j == NULL) {
    return MHD_NO;
  }
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(j);
  if (s == NULL) {
    return MHD_NO;
  }
  size_t n = strlen(s);
  /* A newline at the end, as a shell user expects. */
  char *t = realloc(s, n + 2);
  if (t == NULL) {
    free(s);
    return MHD_NO;
  }
  t[n] = '\n';
  t[n + 1] = '\0';
  return reply(c, status, "application/json", t, n + 1);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
                                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
                                   const char *fmt, ...) {
  char msg[PS_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return reply_json(c, status, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result get_metrics(ps__admin *a, struct MHD_Connection *c) {
  ps__buf b = {0};
  if (ps__admin_metrics(&b, ps__receiver_ctr(a->r),
                        ps__receiver_journal_commits(a->r),
                        ps__receiver_fleet(a->r)) != 0) {
    ps__buf_free(&b);
    return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  size_t n = ps__buf_size(&b);
  char *body = malloc(n ? n : 1);
  if (body == NULL) {
    ps__buf_free(&b);
    return MHD_NO;
  }
  memcpy(body, ps__buf_head(&b), n);
  ps__buf_free(&b);
  return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
               n);
}

static enum MHD_Result get_sensors(ps__admin *a, struct MHD_Connection *c,
                                   const char *name) {
  ps__fleet *fl = ps__receiver_fleet(a->r);
  if (name != NULL) {
    ps__fleet_sensor *e = ps__fleet_find(fl, name);
    if (e == NULL) {
      return reply_error(c, MHD_HTTP_NOT_FOUND, "no sensor named '%s'", name);
    }
    return reply_json(c, MHD_HTTP_OK, sensor_json(e));
  }
  json_t *arr = json_array();
  for (const ps__fleet_sensor *e = fl->head; e != NULL; e = e->next) {
    json_array_append_new(arr, sensor_json(e));
  }
  return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "sensors", arr));
}

/* The filter must compile on every interface it will run on (those
 * asked for, else those the sensor offers), on each sensor's link type:
 * refused at the API with libpcap's words rather than by every sensor. */
static int check_filter_all(ps__fleet *fl, const ps__capreq *cr,
                            const char *filter, char *why, size_t whylen) {
  for (ps__fleet_sensor *e = fl->head; e != NULL; e = e->next) {
    if (!ps__selector_match(&cr->sel, e) || e->sess == NULL) {
      continue;
    }
    for (unsigned i = 0; i < e->n_avail; i++) {
      int asked = cr->n_ifaces == 0;
      for (unsigned k = 0; k < cr->n_ifaces && !asked; k++) {
        asked = strcmp(cr->ifaces[k], e->avail[i].name) == 0;
      }
      if (!asked || e->avail[i].linktype == 0) {
        continue;
      }
      char eb[PCAP_ERRBUF_SIZE + 64];
      if (ps__admin_check_filter(filter, e->avail[i].linktype, eb,
                                 sizeof(eb)) != 0) {
        snprintf(why, whylen,
                 "invalid filter '%s' for sensor %s interface %s (link type "
                 "%u): %s",
                 filter, e->name, e->avail[i].name, e->avail[i].linktype, eb);
        return PS_ERR_FILTER;
      }
    }
  }
  return 0;
}

/* Answers now, or once the sensors answered (the request is suspended;
 * ps__admin_answered() resumes it). */
static enum MHD_Result answer_capture(ps__admin *a, struct MHD_Connection *c,
                                      ps__capture *cap, unsigned status,
                                      req *q) {
  if (ps__capture_waiting(cap) && cap->waiter == NULL) {
    cap->waiter = c;
    q->waiting = 1;
    q->cap_id = cap->id;
    q->status = status;
    MHD_suspend_connection(c);
    return MHD_YES;
  }
  (void)a;
  return reply_json(c, status, capture_json(cap));
}

static enum MHD_Result post_capture(ps__admin *a, struct MHD_Connection *c,
                                    req *q) {
  char why[PS_ERRMSG_MAX + PCAP_ERRBUF_SIZE + 400];
  ps__capreq *r = malloc(sizeof(*r));
  if (r == NULL) {
    return MHD_NO;
  }
  if (ps__admin_parse_capture((const char *)ps__buf_head(&q->body),
                              ps__buf_size(&q->body), r, why) != 0) {
    free(r);
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", why);
  }
  const char *dir = ps__receiver_capture_dir(a->r);
  if (r->output[0] != '\0' &&
      (dir == NULL ? ps__seterr(why, PS_ERR_INVALID,
                                "'output': this receiver has no capture "
                                "directory (start it with --capture-dir DIR, "
                                "or -w FILE: its directory)") != 0
                   : ps__capture_output_check(r->output, dir, why) != 0)) {
    free(r);
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", why);
  }
  ps__fleet *fl = ps__receiver_fleet(a->r);
  if (check_filter_all(fl, r, r->filter, why, sizeof(why)) != 0) {
    free(r);
    return reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", why);
  }
  ps__capture *cap;
  int rc = ps__captures_start(ps__receiver_captures(a->r), fl, r, ps__now_ms(),
                              &cap, why);
  free(r);
  if (rc == PS_ERR_INVALID) {
    return reply_error(c, MHD_HTTP_NOT_FOUND, "%s", why);
  }
  if (rc != 0) {
    return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", why);
  }
  return answer_capture(a, c, cap, MHD_HTTP_CREATED, q);
}

static enum MHD_Result captures_route(ps__admin *a, struct MHD_Connection *c,
                                      const char *method, const char *rest,
                                      req *q) {
  ps__captures *cs = ps__receiver_captures(a->r);
  if (rest == NULL) {
    if (strcmp(method, "POST") == 0) {
      return post_capture(a, c, q);
    }
    if (strcmp(method, "GET") != 0) {
      return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "%s /api/v1/captures: GET or POST", method);
    }
    json_t *arr = json_array();
    for (ps__capture *cap = cs->head; cap != NULL; cap = cap->next) {
      json_array_append_new(arr, capture_json(cap));
    }
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "captures", arr));
  }
  char *end;
  unsigned long long id = strtoull(rest, &end, 10);
  ps__capture *cap = (*rest >= '0' && *rest <= '9' && *end == '\0')
                         ? ps__captures_find(cs, id)
                         : NULL;
  if (cap == NULL) {
    return reply_error(c, MHD_HTTP_NOT_FOUND, "no capture %s", rest);
  }
  if (cap->waiter != NULL) {
    return reply_error(c, MHD_HTTP_CONFLICT,
                       "capture %llu waits for its sensors' answers to "
                       "another request",
                       id);
  }
  if (strcmp(method, "GET") == 0) {
    return reply_json(c, MHD_HTTP_OK, capture_json(cap));
  }
  if (cap->own && cap->read_only &&
      (strcmp(method, "DELETE") == 0 || strcmp(method, "PATCH") == 0)) {
    /* The sensor said so in its announcement: asking it would only be
     * refused there. */
    return reply_error(c, MHD_HTTP_FORBIDDEN,
                       "capture %llu is sensor %s's own (its command line), "
                       "and that sensor takes no remote control (it was not "
                       "started with --allow-remote-capture): it can be "
                       "listed, not %s",
                       id, cap->t[0].sensor,
                       method[0] == 'D' ? "stopped" : "changed");
  }
  if (strcmp(method, "DELETE") == 0) {
    if (ps__captures_stop(cs, cap, ps__now_ms()) != 0) {
      return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    return answer_capture(a, c, cap, MHD_HTTP_OK, q);
  }
  if (strcmp(method, "PATCH") == 0) {
    char why[PS_ERRMSG_MAX + PCAP_ERRBUF_SIZE + 400];
    char *filter = malloc(PS_MAX_FILTER + 1);
    uint32_t what, sample_n, max_pps;
    if (filter == NULL) {
      return MHD_NO;
    }
    if (ps__admin_parse_change((const char *)ps__buf_head(&q->body),
                               ps__buf_size(&q->body), &what, filter, &sample_n,
                               &max_pps, why) != 0 ||
        ((what & PS_CHANGE_FILTER) &&
         check_filter_all(ps__receiver_fleet(a->r), &cap->req, filter, why,
                          sizeof(why)) != 0)) {
      free(filter);
      return reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", why);
    }
    int n = ps__captures_change(cs, cap, what, filter, sample_n, max_pps,
                                ps__now_ms());
    free(filter);
    if (n < 0) {
      return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    if (n == 0) {
      return reply_error(c, MHD_HTTP_CONFLICT,
                         "capture %llu runs on no connected sensor", id);
    }
    return answer_capture(a, c, cap, MHD_HTTP_OK, q);
  }
  return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                     "%s /api/v1/captures/ID: GET, PATCH or DELETE", method);
}

void ps__admin_answered(ps__admin *a, ps__capture *c) {
  (void)a;
  if (c->waiter != NULL) {
    MHD_resume_connection(c->waiter);
    c->waiter = NULL;
  }
}

static enum MHD_Result route(ps__admin *a, struct MHD_Connection *c,
                             const char *url, const char *method, req *q) {
  int get = strcmp(method, "GET") == 0;
  static const char captures[] = "/api/v1/captures";
  if (strncmp(url, captures, sizeof(captures) - 1) == 0 &&
      (url[sizeof(captures) - 1] == '\0' ||
       (url[sizeof(captures) - 1] == '/' && url[sizeof(captures)] != '\0'))) {
    return captures_route(
        a, c, method, url[sizeof(captures) - 1] ? url + sizeof(captures) : NULL,
        q);
  }
  static const char sensors[] = "/api/v1/sensors";
  if (strcmp(url, "/metrics") == 0) {
    return get ? get_metrics(a, c)
               : reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "%s /metrics: only GET", method);
  }
  if (strncmp(url, sensors, sizeof(sensors) - 1) == 0 &&
      (url[sizeof(sensors) - 1] == '\0' ||
       (url[sizeof(sensors) - 1] == '/' && url[sizeof(sensors)] != '\0'))) {
    if (!get) {
      return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: only GET",
                         method, url);
    }
    return get_sensors(a, c,
                       url[sizeof(sensors) - 1] ? url + sizeof(sensors) : NULL);
  }
  return reply_error(c, MHD_HTTP_NOT_FOUND, "no such resource: %s", url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  ps__admin *a = cls;
  req *q = *con_cls;
  if (q == NULL) {
    /* Headers only so far. */
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
      return MHD_NO;
    }
    *con_cls = q;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    /* Kept up to the limit; the rest is read and dropped, and the answer
     * says 413 once the request is complete. */
    if (!q->too_big &&
        ps__buf_size(&q->body) + *upload_size > PS_ADMIN_MAX_BODY) {
      q->too_big = 1;
      ps__buf_free(&q->body);
    }
    if (!q->too_big && ps__buf_append(&q->body, upload, *upload_size) != 0) {
      return MHD_NO;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (q->waiting) {
    /* Resumed: the sensors answered (or their time is up). */
    q->waiting = 0;
    ps__capture *cap =
        ps__captures_find(ps__receiver_captures(a->r), q->cap_id);
    if (cap == NULL) {
      return reply_error(c, MHD_HTTP_NOT_FOUND, "no capture %llu",
                         (unsigned long long)q->cap_id);
    }
    return reply_json(c, q->status, capture_json(cap));
  }
  char why[256];
  if (a->need_client_cert && !client_cert_ok(c, why, sizeof(why))) {
    return reply_error(c, MHD_HTTP_FORBIDDEN,
                       "a client certificate issued by the receiver's "
                       "--admin-tls-client-ca is required: %s",
                       why);
  }
  if (a->token != NULL &&
      !ps__admin_token_ok(
          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
          a->token, a->token_len)) {
    return reply_error(c, MHD_HTTP_UNAUTHORIZED,
                       "a bearer token is required (Authorization: Bearer "
                       "TOKEN, the receiver's --admin-token-file)");
  }
  if (q->too_big) {
    return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                       "request body larger than %u bytes", PS_ADMIN_MAX_BODY);
  }
  return route(a, c, url, method, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  req *q = *con_cls;
  if (q != NULL) {
    ps__buf_free(&q->body);
    free(q);
    *con_cls = NULL;
  }
}

int ps__admin_new(ps__admin **out, struct ps_receiver *r, int fd,
                  const uint8_t *token, size_t token_len,
                  const ps__admin_tls *tls, char *errbuf) {
  *out = NULL;
  ps__admin *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    close(fd);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  a->r = r;
  if (token != NULL) {
    a->token = malloc(token_len);
    if (a->token == NULL) {
      free(a);
      close(fd);
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
    memcpy(a->token, token, token_len);
    a->token_len = token_len;
  }
  char addr[64];
  ps__net_endpoint(fd, 0, addr, sizeof(addr), &a->port);
  /* MHD_USE_EPOLL without a polling thread: the receiver's loop watches
   * MHD's epoll descriptor and calls MHD_run(); see ps_admin.h. */
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  /* The TLS options go at the end, MHD_OPTION_END in their place when
   * there is no TLS (MHD stops reading at the first END). */
  struct MHD_OptionItem tlsopt[4] = {{MHD_OPTION_END, 0, NULL}};
  if (tls != NULL && tls->cert != NULL) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      close(fd);
      free(a->token);
      free(a);
      return ps__seterr(errbuf, PS_ERR_TLS,
                        "this libmicrohttpd has no TLS: the admin API "
                        "cannot serve HTTPS");
    }
    flags |= MHD_USE_TLS;
    tlsopt[0] =
        (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert};
    tlsopt[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key};
    if (tls->trust != NULL) {
      tlsopt[2] =
          (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, tls->trust};
      a->need_client_cert = 1;
    }
  }
  a->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, a, MHD_OPTION_LISTEN_SOCKET,
      (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)PS_ADMIN_MAX_CONNS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY, tlsopt,
      MHD_OPTION_END);
  if (a->d == NULL) {
    close(fd);
    free(a->token);
    free(a);
    return ps__seterr(errbuf, PS_ERR_SYSTEM,
                      "cannot start the admin HTTP server");
  }
  *out = a;
  return 0;
}

void ps__admin_free(ps__admin *a) {
  if (a == NULL) {
    return;
  }
  /* MHD stops only with no request suspended. */
  for (ps__capture *c = ps__receiver_captures(a->r)->head; c != NULL;
       c = c->next) {
    ps__admin_answered(a, c);
  }
  MHD_stop_daemon(a->d);
  if (a->token != NULL) {
    gnutls_memset(a->token, 0, a->token_len);
    free(a->token);
  }
  free(a);
}

int ps__admin_fd(ps__admin *a) {
  const union MHD_DaemonInfo *i =
      MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_EPOLL_FD);
  return i ? i->epoll_fd : -1;
}

int ps__admin_timeout_ms(ps__admin *a) {
  MHD_UNSIGNED_LONG_LONG t;
  if (MHD_get_timeout(a->d, &t) != MHD_YES) {
    return -1;
  }
  return t > 1000 ? 1000 : (int)t;
}

void ps__admin_run(ps__admin *a) {
  MHD_run(a->d);
}

uint16_t ps__admin_port(ps__admin *a) {
  return a->port;
}
