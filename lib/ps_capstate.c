/* The captures on demand as the receiver keeps them in its state
 * (ps_capture.h: ps__captures_dump, ps__captures_load): JSON by
 * jansson. Sans I/O: the receiver writes and reads the file. */
#include "config.h"

#include "ps_capture.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_VERSION 1

static const char *const state_names[] = {[PS_T_PENDING] = "pending",
                                          [PS_T_RUNNING] = "running",
                                          [PS_T_REFUSED] = "refused",
                                          [PS_T_ENDED] = "ended",
                                          [PS_T_NO_ANSWER] = "no answer"};

static json_t *req_json(const ps__capreq *q) {
  json_t *names = json_array(), *labels = json_object(), *ifs = json_array();
  for (unsigned i = 0; i < q->sel.n_names; i++) {
    json_array_append_new(names, json_string(q->sel.names[i]));
  }
  for (unsigned i = 0; i < q->sel.n_labels; i++) {
    json_object_set_new(labels, q->sel.labels[i].key,
                        json_string(q->sel.labels[i].value));
  }
  for (unsigned i = 0; i < q->n_ifaces; i++) {
    json_array_append_new(ifs, json_string(q->ifaces[i]));
  }
  return json_pack(
      "{s:o, s:o, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:s}", "names", names,
      "labels", labels, "filter", q->filter, "interfaces", ifs, "snaplen",
      (json_int_t)q->snaplen, "max_pps", (json_int_t)q->max_pps, "sample_n",
      (json_int_t)q->sample_n, "duration_ms", (json_int_t)q->duration_ms,
      "count", (json_int_t)q->count, "output", q->output);
}

char *ps__captures_dump(const ps__captures *cs) {
  json_t *arr = json_array();
  for (const ps__capture *c = cs->head; c != NULL; c = c->next) {
    json_t *ts = json_array(), *paths = json_array();
    for (unsigned i = 0; i < c->n_t; i++) {
      const ps__cap_target *t = &c->t[i];
      /* (A stream id takes all 64 bits: hex text, not a JSON number.) */
      char stream[20];
      snprintf(stream, sizeof(stream), "%016llx",
               (unsigned long long)t->stream);
      json_array_append_new(
          ts, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I}",
                        "sensor", t->sensor, "state", state_names[t->state],
                        "reason", t->reason, "packets", (json_int_t)t->packets,
                        "bytes", (json_int_t)t->bytes, "sensor_packets",
                        (json_int_t)t->sensor_packets, "sampled_out",
                        (json_int_t)t->sampled_out, "stream", stream, "seq",
                        (json_int_t)t->seq));
      char wire[20];
      snprintf(wire, sizeof(wire), "%016llx", (unsigned long long)t->wire_id);
      json_object_set_new(json_array_get(ts, i), "wire_id", json_string(wire));
    }
    for (unsigned i = 0; i < c->n_paths; i++) {
      json_array_append_new(paths, json_string(c->paths[i]));
    }
    json_t *o =
        json_pack("{s:I, s:I, s:b, s:b, s:o, s:o, s:o, s:b, s:b}", "id",
                  (json_int_t)c->id, "created_ms", (json_int_t)c->created_ms,
                  "stop_requested", c->stop_requested, "output_opened",
                  c->sink_opened, "request", req_json(&c->req), "paths", paths,
                  "sensors", ts, "own", c->own, "read_only", c->read_only);
    json_array_append_new(arr, o);
  }
  json_t *j = json_pack("{s:i, s:I, s:o}", "version", STATE_VERSION, "next_id",
                        (json_int_t)cs->next_id, "captures", arr);
  char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII) : NULL;
  json_decref(j);
  return text;
}

/* ---- loading: everything is checked before anything is taken ---- */

static int bad(char *errbuf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(char *errbuf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, PS_ERRMSG_MAX, fmt, ap);
  va_end(ap);
  return PS_ERR_INVALID;
}

static int get_text(json_t *v, char *dst, size_t size, int name,
                    const char *what, char *errbuf) {
  const char *p = json_string_value(v);
  size_t n = p ? json_string_length(v) : 0;
  if (p == NULL || strlen(p) != n || n >= size ||
      (name && (n == 0 || !ps__valid_name(p, n)))) {
    return bad(errbuf, "%s: not a valid text of at most %zu bytes", what,
               size - 1);
  }
  memcpy(dst, p, n + 1);
  return 0;
}

static int get_u64(json_t *v, uint64_t max, uint64_t *out, const char *what,
                   char *errbuf) {
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (uint64_t)json_integer_value(v) > max) {
    return bad(errbuf, "%s: not a number from 0 to %llu", what,
               (unsigned long long)max);
  }
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int load_req(json_t *j, ps__capreq *q, char *errbuf) {
  json_t *names, *labels, *filter, *ifs, *snaplen, *max_pps, *sample_n, *dur,
      *count, *output;
  json_error_t je;
  if (json_unpack_ex(j, &je, JSON_STRICT,
                     "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "names", &names, "labels", &labels, "filter", &filter,
                     "interfaces", &ifs, "snaplen", &snaplen, "max_pps",
                     &max_pps, "sample_n", &sample_n, "duration_ms", &dur,
                     "count", &count, "output", &output) != 0) {
    return bad(errbuf, "request: %s", je.text);
  }
  if (!json_is_array(names) || json_array_size(names) > PS_SELECTOR_MAX_NAMES ||
      !json_is_object(labels) ||
      json_object_size(labels) > PS_FLEET_MAX_LABELS || !json_is_array(ifs) ||
      json_array_size(ifs) > PS_MAX_CAPTURE_IFACES) {
    return bad(errbuf, "request: names, labels or interfaces beyond limits");
  }
  int rc = 0;
  size_t i;
  json_t *x;
  json_array_foreach(names, i, x) {
    if ((rc = get_text(x, q->sel.names[i], sizeof(q->sel.names[i]), 1,
                       "request: a sensor name", errbuf)) != 0) {
      return rc;
    }
  }
  q->sel.n_names = (unsigned)json_array_size(names);
  const char *k;
  json_object_foreach(labels, k, x) {
    ps__fleet_label *l = &q->sel.labels[q->sel.n_labels++];
    if (!ps__valid_label_key(k, strlen(k)) || strlen(k) >= sizeof(l->key)) {
      return bad(errbuf, "request: invalid label key");
    }
    snprintf(l->key, sizeof(l->key), "%s", k);
    if ((rc = get_text(x, l->value, sizeof(l->value), 0,
                       "request: a label value", errbuf)) != 0) {
      return rc;
    }
  }
  json_array_foreach(ifs, i, x) {
    if ((rc = get_text(x, q->ifaces[i], sizeof(q->ifaces[i]), 1,
                       "request: an interface", errbuf)) != 0) {
      return rc;
    }
  }
  q->n_ifaces = (unsigned)json_array_size(ifs);
  if ((rc = get_text(filter, q->filter, sizeof(q->filter), 0, "request: filter",
                     errbuf)) != 0 ||
      !ps__valid_filter(q->filter, strlen(q->filter))) {
    return rc ? rc : bad(errbuf, "request: invalid filter text");
  }
  uint64_t u;
  if ((rc = get_u64(snaplen, PS_MAX_CAPLEN, &u, "snaplen", errbuf)) != 0) {
    return rc;
  }
  q->snaplen = (uint32_t)u;
  if ((rc = get_u64(max_pps, UINT32_MAX, &u, "max_pps", errbuf)) != 0) {
    return rc;
  }
  q->max_pps = (uint32_t)u;
  if ((rc = get_u64(sample_n, 1000000, &u, "sample_n", errbuf)) != 0) {
    return rc;
  }
  q->sample_n = (uint32_t)u;
  if ((rc = get_u64(dur, INT64_MAX / 4, &q->duration_ms, "duration_ms",
                    errbuf)) != 0 ||
      (rc = get_u64(count, UINT64_MAX >> 1, &q->count, "count", errbuf)) != 0) {
    return rc;
  }
  if ((rc = get_text(output, q->output, sizeof(q->output), 0, "request: output",
                     errbuf)) != 0) {
    return rc;
  }
  if (q->output[0] != '\0' &&
      (rc = ps__capture_output_check(q->output, NULL, errbuf)) != 0) {
    return rc;
  }
  return 0;
}

static int load_target(json_t *j, ps__cap_target *t, char *errbuf) {
  json_t *sensor, *state, *reason, *packets, *bytes, *spackets, *sampled,
      *stream, *seq;
  json_error_t je;
  /* The sensor's id of the capture (its own capture's differs). */
  const char *wx = json_string_value(json_object_get(j, "wire_id"));
  if (wx == NULL || strlen(wx) != 16 || strspn(wx, "0123456789abcdef") != 16) {
    return bad(errbuf, "sensor: wire_id must be 16 hex digits");
  }
  t->wire_id = strtoull(wx, NULL, 16);
  json_object_del(j, "wire_id");
  if (json_unpack_ex(
          j, &je, JSON_STRICT, "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
          "sensor", &sensor, "state", &state, "reason", &reason, "packets",
          &packets, "bytes", &bytes, "sensor_packets", &spackets, "sampled_out",
          &sampled, "stream", &stream, "seq", &seq) != 0) {
    return bad(errbuf, "sensor: %s", je.text);
  }
  const char *sx = json_string_value(stream);
  char *end = NULL;
  if (sx == NULL || strlen(sx) != 16 || strspn(sx, "0123456789abcdef") != 16) {
    return bad(errbuf, "sensor: stream must be 16 hex digits");
  }
  t->stream = strtoull(sx, &end, 16);
  int rc;
  if ((rc = get_text(sensor, t->sensor, sizeof(t->sensor), 1, "sensor name",
                     errbuf)) != 0 ||
      (rc = get_text(reason, t->reason, sizeof(t->reason), 0, "reason",
                     errbuf)) != 0) {
    return rc;
  }
  const char *st = json_string_value(state);
  int found = 0;
  for (unsigned i = 0; st != NULL && i < 5 && !found; i++) {
    if (strcmp(st, state_names[i]) == 0) {
      t->state = (enum ps__target_state)i;
      found = 1;
    }
  }
  if (!found) {
    return bad(errbuf, "sensor %s: unknown state", t->sensor);
  }
  if (t->state == PS_T_PENDING) {
    /* Its answer went to the receiver that is gone; a sensor that took
     * the capture says "running" again on its next connection. */
    t->state = PS_T_NO_ANSWER;
    snprintf(t->reason, sizeof(t->reason),
             "the receiver restarted before the sensor answered");
  }
  uint64_t max = UINT64_MAX >> 1;
  if ((rc = get_u64(packets, max, &t->packets, "packets", errbuf)) != 0 ||
      (rc = get_u64(bytes, max, &t->bytes, "bytes", errbuf)) != 0 ||
      (rc = get_u64(spackets, max, &t->sensor_packets, "sensor_packets",
                    errbuf)) != 0 ||
      (rc = get_u64(sampled, max, &t->sampled_out, "sampled_out", errbuf)) !=
          0 ||
      (rc = get_u64(seq, max, &t->seq, "seq", errbuf)) != 0) {
    return rc;
  }
  return 0;
}

static void free_list(ps__capture *c) {
  while (c != NULL) {
    ps__capture *n = c->next;
    for (unsigned i = 0; i < c->n_paths; i++) {
      free(c->paths[i]);
    }
    free(c->t);
    free(c);
    c = n;
  }
}

static int load_one(json_t *j, ps__capture **out, char *errbuf) {
  json_t *id, *created, *stop, *opened, *req, *paths, *ts;
  json_error_t je;
  *out = NULL;
  json_t *own, *ro;
  if (json_unpack_ex(j, &je, JSON_STRICT,
                     "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", &id,
                     "created_ms", &created, "stop_requested", &stop,
                     "output_opened", &opened, "request", &req, "paths", &paths,
                     "sensors", &ts, "own", &own, "read_only", &ro) != 0) {
    return bad(errbuf, "a capture: %s", je.text);
  }
  if (!json_is_boolean(own) || !json_is_boolean(ro)) {
    return bad(errbuf, "a capture: own and read_only are true or false");
  }
  ps__capture *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return bad(errbuf, "out of memory");
  }
  *out = c;
  uint64_t u;
  int rc;
  if ((rc = get_u64(id, UINT64_MAX >> 1, &c->id, "id", errbuf)) != 0 ||
      (rc = get_u64(created, INT64_MAX, &u, "created_ms", errbuf)) != 0) {
    return rc;
  }
  c->created_ms = (int64_t)u;
  if (c->id == 0 || !json_is_boolean(stop) || !json_is_boolean(opened) ||
      !json_is_array(paths) || json_array_size(paths) > PS_CAPTURE_MAX_PATHS ||
      !json_is_array(ts) || json_array_size(ts) == 0 ||
      json_array_size(ts) > 65536) {
    return bad(errbuf, "capture %llu: a field of the wrong kind or size",
               (unsigned long long)c->id);
  }
  c->stop_requested = json_is_true(stop);
  c->own = json_is_true(own);
  c->read_only = json_is_true(ro);
  if (c->own && json_array_size(ts) != 1) {
    return bad(errbuf, "capture %llu: a sensor's own capture has one sensor",
               (unsigned long long)c->id);
  }
  c->sink_opened = json_is_true(opened);
  if ((rc = load_req(req, &c->req, errbuf)) != 0) {
    return rc;
  }
  size_t i;
  json_t *x;
  json_array_foreach(paths, i, x) {
    const char *p = json_string_value(x);
    if (p == NULL || *p == '\0' || (c->paths[i] = strdup(p)) == NULL) {
      return bad(errbuf, "capture %llu: a file name that is no text",
                 (unsigned long long)c->id);
    }
    c->n_paths++;
  }
  if ((c->t = calloc(json_array_size(ts), sizeof(*c->t))) == NULL) {
    return bad(errbuf, "out of memory");
  }
  json_array_foreach(ts, i, x) {
    if ((rc = load_target(x, &c->t[i], errbuf)) != 0) {
      return rc;
    }
    c->n_t++;
  }
  return 0;
}

int ps__captures_load(ps__captures *cs, const char *text, size_t len,
                      char *errbuf) {
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) {
    return bad(errbuf, "not JSON: %s at line %d", je.text, je.line);
  }
  int version = 0;
  json_int_t next = 0;
  json_t *arr = NULL;
  int rc = 0;
  if (json_unpack_ex(j, &je, JSON_STRICT, "{s:i, s:I, s:o}", "version",
                     &version, "next_id", &next, "captures", &arr) != 0) {
    rc = bad(errbuf, "%s", je.text);
  } else if (version != STATE_VERSION) {
    rc = bad(errbuf, "version %d (this receiver reads %d)", version,
             STATE_VERSION);
  } else if (next < 0 || !json_is_array(arr) ||
             json_array_size(arr) > PS_MAX_CAPTURES) {
    rc = bad(errbuf, "next_id or captures out of range");
  }
  ps__capture *list = NULL, **tail = &list;
  size_t i;
  json_t *x;
  if (rc == 0) {
    json_array_foreach(arr, i, x) {
      ps__capture *c;
      rc = load_one(x, &c, errbuf);
      if (c != NULL) {
        *tail = c;
        tail = &c->next;
      }
      if (rc != 0) {
        break;
      }
      if (c->id > (uint64_t)next) {
        rc = bad(errbuf, "capture %llu beyond next_id %lld",
                 (unsigned long long)c->id, (long long)next);
        break;
      }
      for (ps__capture *o = list; o != c && rc == 0; o = o->next) {
        if (o->id == c->id) {
          rc = bad(errbuf, "capture %llu listed twice",
                   (unsigned long long)c->id);
        }
      }
    }
  }
  json_decref(j);
  if (rc != 0) {
    free_list(list);
    return rc;
  }
  /* All good: taken whole. */
  while (list != NULL) {
    ps__capture *c = list;
    list = c->next;
    ps__captures_restore(cs, c);
  }
  if ((uint64_t)next > cs->next_id) {
    cs->next_id = (uint64_t)next;
  }
  return 0;
}
