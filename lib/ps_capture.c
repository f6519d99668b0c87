/* Captures on demand, on the receiver (see ps_capture.h). */
#include "config.h"

#include "ps_capture.h"
#include "ps_session.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ps__capture_output_check(const char *tmpl, const char *dir, char *errbuf) {
  size_t n = strlen(tmpl);
  if (n == 0 || n > PS_CAPTURE_OUTPUT_MAX) {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "'output' must be a path template of 1 to %u bytes",
                      PS_CAPTURE_OUTPUT_MAX);
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)tmpl[i];
    if (ch < 0x20 || ch == 0x7f) {
      return ps__seterr(errbuf, PS_ERR_INVALID,
                        "'output': no control characters in the path");
    }
  }
  /* No component "..": the file stays under the capture directory. */
  for (const char *p = tmpl; *p;) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      return ps__seterr(errbuf, PS_ERR_INVALID,
                        "'output' %.200s: '..' is not allowed (the file "
                        "stays in the receiver's capture directory)",
                        tmpl);
    }
    p += len + (e != NULL);
  }
  if (tmpl[n - 1] == '/') {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "'output' %.200s names a directory, not a file", tmpl);
  }
  for (const char *p = strchr(tmpl, '{'); p != NULL; p = strchr(p + 1, '{')) {
    if (strncmp(p, "{sensor}", 8) != 0 && strncmp(p, "{capture}", 9) != 0) {
      const char *e = strchr(p, '}');
      return ps__seterr(
          errbuf, PS_ERR_INVALID,
          "'output' %.200s: unknown field %.*s (known: "
          "{sensor}, {capture})",
          tmpl, e ? (int)(e - p + 1) > 40 ? 40 : (int)(e - p + 1) : 1, p);
    }
  }
  if (dir != NULL && tmpl[0] == '/') {
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') {
      dl--;
    }
    if (strncmp(tmpl, dir, dl) != 0 || tmpl[dl] != '/') {
      return ps__seterr(errbuf, PS_ERR_INVALID,
                        "'output' %.200s is outside the receiver's capture "
                        "directory %.200s (give a path relative to it)",
                        tmpl, dir);
    }
  }
  return 0;
}

char *ps__capture_output_path(const char *dir, const char *tmpl, uint64_t id) {
  char num[24];
  snprintf(num, sizeof(num), "%llu", (unsigned long long)id);
  ps__buf b = {0};
  int rc = 0;
  if (tmpl[0] != '/') {
    rc |= ps__buf_append(&b, dir, strlen(dir));
    rc |= ps__buf_append(&b, "/", 1);
  }
  for (const char *p = tmpl; *p && rc == 0;) {
    if (strncmp(p, "{capture}", 9) == 0) {
      rc |= ps__buf_append(&b, num, strlen(num));
      p += 9;
    } else {
      rc |= ps__buf_append(&b, p, 1);
      p++;
    }
  }
  rc |= ps__buf_append(&b, "", 1);
  if (rc != 0) {
    ps__buf_free(&b);
    return NULL;
  }
  char *out = strdup((const char *)ps__buf_head(&b));
  ps__buf_free(&b);
  return out;
}

const char *ps__target_state_name(enum ps__target_state st) {
  switch (st) {
  case PS_T_PENDING:
    return "pending";
  case PS_T_RUNNING:
    return "running";
  case PS_T_REFUSED:
    return "refused";
  case PS_T_ENDED:
    return "ended";
  case PS_T_NO_ANSWER:
    return "no answer";
  }
  return "?";
}

int ps__selector_match(const ps__selector *sel, const ps__fleet_sensor *e) {
  if (sel->n_names > 0) {
    int any = 0;
    for (unsigned i = 0; i < sel->n_names && !any; i++) {
      any = fnmatch(sel->names[i], e->name, 0) == 0;
    }
    if (!any) {
      return 0;
    }
  }
  for (unsigned i = 0; i < sel->n_labels; i++) {
    int found = 0;
    for (unsigned k = 0; k < e->n_labels && !found; k++) {
      found = strcmp(e->labels[k].key, sel->labels[i].key) == 0 &&
              strcmp(e->labels[k].value, sel->labels[i].value) == 0;
    }
    if (!found) {
      return 0;
    }
  }
  return 1;
}

void ps__capture_iface_gone(ps__session *s, ps__sess_iface *ifc) {
  ps__cap_target *t = ifc->cap;
  if (ifc->cap_slot != NULL) {
    ps__sink_iface_end(ifc->cap_sink, ifc->cap_slot, &s->info, &ifc->info,
                       ifc->have_stats ? &ifc->stats : NULL);
    if (t != NULL && t->c->n_slots > 0) {
      t->c->n_slots--;
    }
  }
  ifc->cap_slot = NULL;
  ifc->cap_sink = NULL;
  ifc->cap = NULL;
}

/* Its packets are no longer this capture's (ended, refused, forgotten). */
static void detach(ps__cap_target *t) {
  if (t->sess != NULL) {
    for (unsigned i = 0; i < t->n_ifaces; i++) {
      ps__sess_iface *ifc = ps__sess_ifc(t->sess, t->ifaces[i]);
      if (ifc != NULL && ifc->cap == t) {
        ps__capture_iface_gone(t->sess, ifc);
      }
    }
  }
  t->n_ifaces = 0;
}

/* Interface ifc of session s carries t's packets from now on, into the
 * capture's output too when it has one. */
static int attach(ps__captures *cs, ps__cap_target *t, ps__session *s,
                  ps__sess_iface *ifc, char *errbuf) {
  if (ifc->cap == t) {
    return 0;
  }
  if (ifc->cap != NULL) {
    ps__capture_iface_gone(s, ifc);
  }
  if (t->sess != s) {
    detach(t); /* (an older session of the sensor's) */
  }
  if (t->n_ifaces >= PS_MAX_CAPTURE_IFACES) {
    /* Only interfaces it lists point at it (so forgetting the record
     * can clear them all). */
    return 0;
  }
  t->sess = s;
  ifc->cap = t;
  t->ifaces[t->n_ifaces++] = ifc->info.id;
  ps__capture *c = t->c;
  if (c->req.output[0] == '\0' || cs->open_sink == NULL) {
    return 0;
  }
  int rc = 0;
  if (c->sink == NULL && (rc = cs->open_sink(cs->ud, c, errbuf)) != 0) {
    return rc;
  }
  if ((rc = ps__sink_iface(c->sink, &s->info, &ifc->info, &ifc->cap_slot)) !=
      0) {
    snprintf(errbuf, PS_ERRMSG_MAX, "capture %llu: %.480s",
             (unsigned long long)c->id, c->sink->errmsg);
    return rc;
  }
  ifc->cap_sink = c->sink;
  c->n_slots++;
  return 0;
}

int ps__captures_iface(ps__captures *cs, ps__session *s, ps__sess_iface *ifc,
                       uint64_t id, char *errbuf) {
  ps__capture *c = ps__captures_find(cs, id);
  for (unsigned i = 0; c != NULL && i < c->n_t; i++) {
    ps__cap_target *t = &c->t[i];
    if (strcmp(t->sensor, s->sensor) == 0) {
      int rc = attach(cs, t, s, ifc, errbuf);
      return rc != 0 ? rc : 1;
    }
  }
  return 0;
}

void ps__capture_add_path(ps__capture *c, const char *path) {
  for (unsigned i = 0; i < c->n_paths; i++) {
    if (strcmp(c->paths[i], path) == 0) {
      return;
    }
  }
  if (c->n_paths < PS_CAPTURE_MAX_PATHS &&
      (c->paths[c->n_paths] = strdup(path)) != NULL) {
    c->n_paths++;
  }
}

static void close_sink(ps__capture *c) {
  if (c->sink != NULL) {
    ps__sink_close(c->sink);
    ps_sink_free(c->sink);
    c->sink = NULL;
  }
}

static void capture_free(ps__capture *c) {
  for (unsigned i = 0; i < c->n_t; i++) {
    detach(&c->t[i]);
  }
  close_sink(c);
  for (unsigned i = 0; i < c->n_paths; i++) {
    free(c->paths[i]);
  }
  free(c->t);
  free(c);
}

static int is_over(const ps__capture *c) {
  for (unsigned i = 0; i < c->n_t; i++) {
    if (c->t[i].state == PS_T_PENDING || c->t[i].state == PS_T_RUNNING) {
      return 0;
    }
  }
  return 1;
}

int ps__capture_over(const ps__capture *c) {
  return is_over(c);
}

void ps__captures_close_idle(ps__captures *cs) {
  for (ps__capture *c = cs->head; c != NULL; c = c->next) {
    if (c->sink != NULL && c->n_slots == 0 && is_over(c)) {
      close_sink(c);
    }
  }
}

int ps__captures_restore(ps__captures *cs, ps__capture *c) {
  for (unsigned i = 0; i < c->n_t; i++) {
    c->t[i].c = c;
  }
  /* Newest first, as started: the file lists them so. */
  ps__capture **pp = &cs->head;
  while (*pp != NULL && (*pp)->id > c->id) {
    pp = &(*pp)->next;
  }
  c->next = *pp;
  *pp = c;
  cs->n++;
  if (c->id > cs->next_id) {
    cs->next_id = c->id;
  }
  return 0;
}

/* Keeps at most PS_MAX_CAPTURES records: the oldest that is over (and
 * not waited for) goes. */
static void make_room(ps__captures *cs) {
  if (cs->n < PS_MAX_CAPTURES) {
    return;
  }
  ps__capture **victim = NULL;
  for (ps__capture **pp = &cs->head; *pp != NULL; pp = &(*pp)->next) {
    if (is_over(*pp) && (*pp)->waiter == NULL) {
      victim = pp;
    }
  }
  if (victim != NULL) {
    ps__capture *c = *victim;
    *victim = c->next;
    capture_free(c);
    cs->n--;
  }
}

static void kick(ps__captures *cs, ps__session *s) {
  if (cs->kick != NULL) {
    cs->kick(cs->ud, s);
  }
}

int ps__captures_start(ps__captures *cs, ps__fleet *fl, const ps__capreq *req,
                       int64_t now_ms, ps__capture **out, char *errbuf) {
  *out = NULL;
  unsigned n = 0;
  for (ps__fleet_sensor *e = fl->head; e != NULL; e = e->next) {
    n += ps__selector_match(&req->sel, e);
  }
  if (n == 0) {
    return ps__seterr(errbuf, PS_ERR_INVALID, "no sensor matches the selector");
  }
  make_room(cs);
  ps__capture *c = calloc(1, sizeof(*c));
  if (c == NULL || (c->t = calloc(n, sizeof(*c->t))) == NULL) {
    free(c);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  c->id = ++cs->next_id;
  c->created_ms = ps__wall_ms();
  c->req = *req;
  for (unsigned i = 0; i < n; i++) {
    c->t[i].c = c;
  }
  if (req->output[0] != '\0') {
    /* Its file exists before any sensor is asked: a template that
     * cannot be written is refused here, with the reason. */
    int rc = cs->open_sink != NULL
                 ? cs->open_sink(cs->ud, c, errbuf)
                 : ps__seterr(errbuf, PS_ERR_STATE,
                              "'output': this receiver keeps no capture "
                              "files");
    if (rc != 0) {
      cs->next_id--; /* never shown: the number is not used */
      free(c->t);
      free(c);
      return rc == PS_ERR_NOMEM ? rc : PS_ERR_IO;
    }
  }
  c->answer_by_ms = now_ms + PS_CAPTURE_ANSWER_MS;
  ps__capture_start m = {.id = c->id,
                         .duration_ms = req->duration_ms,
                         .count = req->count,
                         .snaplen = req->snaplen,
                         .max_pps = req->max_pps,
                         .sample_n = req->sample_n,
                         .n_ifaces = req->n_ifaces,
                         .filter = {c->req.filter, strlen(c->req.filter)}};
  for (unsigned i = 0; i < req->n_ifaces; i++) {
    m.ifaces[i] = (ps__text){c->req.ifaces[i], strlen(c->req.ifaces[i])};
  }
  for (ps__fleet_sensor *e = fl->head; e != NULL; e = e->next) {
    if (!ps__selector_match(&req->sel, e)) {
      continue;
    }
    ps__cap_target *t = &c->t[c->n_t++];
    snprintf(t->sensor, sizeof(t->sensor), "%s", e->name);
    t->wire_id = c->id;
    ps__session *s = e->sess;
    if (s == NULL) {
      t->state = PS_T_REFUSED;
      snprintf(t->reason, sizeof(t->reason), "not connected");
    } else if (!ps__session_controllable(s)) {
      t->state = PS_T_REFUSED;
      snprintf(t->reason, sizeof(t->reason),
               "the sensor speaks protocol version %u: it takes no remote "
               "captures",
               s->version);
    } else if (ps__enc_capture_start(&s->out, &m) != 0) {
      t->state = PS_T_REFUSED;
      snprintf(t->reason, sizeof(t->reason), "out of memory");
    } else {
      t->state = PS_T_PENDING;
      t->sess = s;
      kick(cs, s);
    }
  }
  c->next = cs->head;
  cs->head = c;
  cs->n++;
  cs->dirty |= 1;
  *out = c;
  return 0;
}

ps__capture *ps__captures_find(ps__captures *cs, uint64_t id) {
  for (ps__capture *c = cs->head; c != NULL; c = c->next) {
    if (c->id == id) {
      return c;
    }
  }
  return NULL;
}

int ps__capture_waiting(const ps__capture *c) {
  for (unsigned i = 0; i < c->n_t; i++) {
    if (c->t[i].state == PS_T_PENDING || c->t[i].change_pending) {
      return 1;
    }
    if (c->stop_requested && c->t[i].state == PS_T_RUNNING &&
        c->t[i].sess != NULL) {
      return 1;
    }
  }
  return 0;
}

int ps__captures_change(ps__captures *cs, ps__capture *c, uint32_t what,
                        const char *filter, uint32_t sample_n, uint32_t max_pps,
                        int64_t now_ms) {
  ps__capture_change m = {
      .id = 0,
      .what = what,
      .sample_n = sample_n,
      .max_pps = max_pps,
      .filter = {filter ? filter : "", filter ? strlen(filter) : 0}};
  int sent = 0;
  for (unsigned i = 0; i < c->n_t; i++) {
    ps__cap_target *t = &c->t[i];
    if (t->state != PS_T_RUNNING || t->sess == NULL) {
      continue;
    }
    m.id = t->wire_id;
    if (ps__enc_capture_change(&t->sess->out, &m) != 0) {
      return PS_ERR_NOMEM;
    }
    t->change_pending = 1;
    t->change[0] = '\0';
    kick(cs, t->sess);
    sent++;
  }
  if (what & PS_CHANGE_FILTER) {
    snprintf(c->req.filter, sizeof(c->req.filter), "%s", filter);
  }
  if (what & PS_CHANGE_SAMPLE) {
    c->req.sample_n = sample_n;
  }
  if (what & PS_CHANGE_MAX_PPS) {
    c->req.max_pps = max_pps;
  }
  c->answer_by_ms = now_ms + PS_CAPTURE_ANSWER_MS;
  return sent;
}

int ps__captures_stop(ps__captures *cs, ps__capture *c, int64_t now_ms) {
  c->stop_requested = 1;
  c->answer_by_ms = now_ms + PS_CAPTURE_ANSWER_MS;
  for (unsigned i = 0; i < c->n_t; i++) {
    ps__cap_target *t = &c->t[i];
    if ((t->state != PS_T_RUNNING && t->state != PS_T_PENDING) ||
        t->sess == NULL) {
      continue;
    }
    if (ps__enc_capture_stop(&t->sess->out, t->wire_id) != 0) {
      return PS_ERR_NOMEM;
    }
    kick(cs, t->sess);
  }
  return 0;
}

static void text_copy(char *dst, size_t n, const ps__text *t) {
  size_t k = 0;
  for (size_t i = 0; i < t->len && k + 1 < n; i++) {
    unsigned char ch = (unsigned char)t->p[i];
    dst[k++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  dst[k] = '\0';
}

static void maybe_answered(ps__captures *cs, ps__capture *c) {
  if (c->waiter != NULL && !ps__capture_waiting(c) && cs->answered != NULL) {
    cs->answered(cs->ud, c);
  }
}

/* The record of sensor s's own capture id (the newest), or NULL. */
static ps__capture *find_own(ps__captures *cs, const ps__session *s,
                             uint64_t id) {
  for (ps__capture *c = cs->head; c != NULL; c = c->next) {
    if (c->own && c->t[0].wire_id == id &&
        strcmp(c->t[0].sensor, s->sensor) == 0) {
      return c;
    }
  }
  return NULL;
}

/* A new record for the capture sensor s says it runs on its own: shown
 * and counted like one the API started, with the sensor's filter,
 * sampling and interfaces. */
static ps__capture *own_record(ps__captures *cs, ps__session *s,
                               const ps__capture_state_msg *m) {
  make_room(cs);
  ps__capture *c = calloc(1, sizeof(*c));
  if (c == NULL || (c->t = calloc(1, sizeof(*c->t))) == NULL) {
    free(c);
    return NULL;
  }
  c->id = ++cs->next_id;
  c->created_ms = ps__wall_ms();
  c->own = 1;
  c->n_t = 1;
  c->req.sel.n_names = 1;
  snprintf(c->req.sel.names[0], sizeof(c->req.sel.names[0]), "%s", s->sensor);
  for (unsigned i = 0; i < m->n_ifaces; i++) {
    ps__sess_iface *ifc = ps__sess_ifc(s, m->ifaces[i]);
    if (ifc != NULL && c->req.n_ifaces < PS_MAX_CAPTURE_IFACES) {
      snprintf(c->req.ifaces[c->req.n_ifaces++], sizeof(c->req.ifaces[0]), "%s",
               ifc->name);
    }
  }
  snprintf(c->t[0].sensor, sizeof(c->t[0].sensor), "%s", s->sensor);
  c->t[0].wire_id = m->id;
  c->t[0].c = c;
  c->next = cs->head;
  cs->head = c;
  cs->n++;
  cs->dirty |= 1;
  return c;
}

void ps__captures_on_state(ps__captures *cs, ps__session *s,
                           const ps__capture_state_msg *m) {
  int own = (m->id & PS_CAPTURE_ID_OWN) != 0;
  ps__capture *c = own ? find_own(cs, s, m->id) : ps__captures_find(cs, m->id);
  if (own && m->state == PS_CAP_OWN &&
      (c == NULL || c->t[0].state == PS_T_ENDED)) {
    c = own_record(cs, s, m);
    if (c == NULL) {
      ps__log(s->env->log, s->env->log_ud, PS_LOG_WARNING,
              "sensor %s: out of memory for its own capture", s->sensor);
      return;
    }
  }
  ps__cap_target *t = NULL;
  for (unsigned i = 0; c != NULL && i < c->n_t && t == NULL; i++) {
    if (strcmp(c->t[i].sensor, s->sensor) == 0) {
      t = &c->t[i];
    }
  }
  if (t == NULL) {
    /* A capture this receiver does not know (another receiver's, or a
     * record forgotten): only said. */
    ps__log(s->env->log, s->env->log_ud, PS_LOG_INFO,
            "sensor %s: state %u of capture %llu, which this receiver does "
            "not know",
            s->sensor, m->state, (unsigned long long)m->id);
    return;
  }
  /* The sensor counts per capture; the fleet keeps its total. */
  if (s->fleet != NULL && m->sampled_out > t->sampled_out) {
    s->fleet->sampled_out += m->sampled_out - t->sampled_out;
  }
  t->sensor_packets = m->packets;
  t->sampled_out = m->sampled_out;
  if (m->state == PS_CAP_OWN) {
    /* Said at the start of each of its sessions: what it runs now. */
    text_copy(c->req.filter, sizeof(c->req.filter), &m->text);
    c->req.sample_n = m->sample_n;
    c->req.max_pps = m->max_pps;
    c->read_only =
        s->fleet == NULL || !(s->fleet->announce_flags & PS_ANNOUNCE_REMOTE);
  }
  switch (m->state) {
  case PS_CAP_OWN:
  case PS_CAP_RUNNING:
    if (t->sess == NULL && c->stop_requested &&
        ps__enc_capture_stop(&s->out, t->wire_id) == 0) {
      /* Stopped while the sensor was away (its "running" is said again
       * on its new connection): it hears the stop now. */
      kick(cs, s);
    }
    t->state = PS_T_RUNNING;
    for (unsigned i = 0; i < m->n_ifaces; i++) {
      ps__sess_iface *ifc = ps__sess_ifc(s, m->ifaces[i]);
      char eb[PS_ERRMSG_MAX];
      if (ifc != NULL && attach(cs, t, s, ifc, eb) != 0) {
        /* Its packets still count; the output refuses them at the
         * next batch (the session's check of its outputs). */
        ps__log(s->env->log, s->env->log_ud, PS_LOG_ERROR, "%s", eb);
      }
    }
    t->sess = s;
    if (c->own) {
      ps__log(s->env->log, s->env->log_ud, PS_LOG_INFO,
              "capture %llu: sensor %s runs its own capture (command line), "
              "filter '%s'%s",
              (unsigned long long)c->id, s->sensor, c->req.filter,
              c->read_only ? ", read-only (no --allow-remote-capture)" : "");
    } else {
      ps__log(s->env->log, s->env->log_ud, PS_LOG_INFO,
              "capture %llu: sensor %s accepted", (unsigned long long)m->id,
              s->sensor);
    }
    break;
  case PS_CAP_REFUSED:
  case PS_CAP_ENDED:
    detach(t);
    t->state = m->state == PS_CAP_REFUSED ? PS_T_REFUSED : PS_T_ENDED;
    text_copy(t->reason, sizeof(t->reason), &m->text);
    ps__log(s->env->log, s->env->log_ud,
            m->state == PS_CAP_REFUSED ? PS_LOG_WARNING : PS_LOG_INFO,
            "capture %llu: sensor %s %s: %s (%llu packets taken here, %llu "
            "sent by the sensor, %llu sampled out)",
            (unsigned long long)c->id, s->sensor,
            m->state == PS_CAP_REFUSED ? "refused" : "ended", t->reason,
            (unsigned long long)t->packets, (unsigned long long)m->packets,
            (unsigned long long)m->sampled_out);
    break;
  case PS_CAP_CHANGED:
  case PS_CAP_CHANGE_REFUSED:
    t->change_pending = 0;
    snprintf(t->change, sizeof(t->change), "%s",
             m->state == PS_CAP_CHANGED ? "" : "refused: ");
    text_copy(t->change + strlen(t->change),
              sizeof(t->change) - strlen(t->change), &m->text);
    ps__log(s->env->log, s->env->log_ud,
            m->state == PS_CAP_CHANGED ? PS_LOG_INFO : PS_LOG_WARNING,
            "capture %llu: sensor %s change %s", (unsigned long long)c->id,
            s->sensor, t->change);
    break;
  default:
    break;
  }
  cs->dirty |= 1;
  maybe_answered(cs, c);
}

void ps__captures_session_end(ps__captures *cs, ps__session *s) {
  for (ps__capture *c = cs->head; c != NULL; c = c->next) {
    for (unsigned i = 0; i < c->n_t; i++) {
      ps__cap_target *t = &c->t[i];
      if (t->sess == s) {
        detach(t);
        t->sess = NULL;
        t->change_pending = 0;
        if (t->state == PS_T_PENDING) {
          t->state = PS_T_NO_ANSWER;
          snprintf(t->reason, sizeof(t->reason),
                   "the sensor disconnected before answering");
        }
      }
    }
    maybe_answered(cs, c);
  }
}

void ps__captures_tick(ps__captures *cs, int64_t now_ms) {
  for (ps__capture *c = cs->head; c != NULL; c = c->next) {
    if (c->waiter == NULL || now_ms < c->answer_by_ms) {
      continue;
    }
    for (unsigned i = 0; i < c->n_t; i++) {
      ps__cap_target *t = &c->t[i];
      if (t->state == PS_T_PENDING) {
        t->state = PS_T_NO_ANSWER;
        snprintf(t->reason, sizeof(t->reason), "no answer within %d s",
                 PS_CAPTURE_ANSWER_MS / 1000);
      }
      if (t->change_pending) {
        t->change_pending = 0;
        snprintf(t->change, sizeof(t->change), "no answer within %d s",
                 PS_CAPTURE_ANSWER_MS / 1000);
      }
    }
    if (cs->answered != NULL) {
      cs->answered(cs->ud, c);
    }
  }
}

void ps__captures_free(ps__captures *cs) {
  while (cs->head != NULL) {
    ps__capture *c = cs->head;
    cs->head = c->next;
    capture_free(c);
  }
  cs->n = 0;
}
