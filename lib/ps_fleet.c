/* The receiver's registry of sensors (see ps_fleet.h). */
#include "config.h"

#include "ps_fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ps__fleet_sensor *ps__fleet_find(const ps__fleet *fl, const char *name) {
  for (ps__fleet_sensor *e = fl->head; e != NULL; e = e->next) {
    if (strcmp(e->name, name) == 0) {
      return e;
    }
  }
  return NULL;
}

static void sensor_free(ps__fleet_sensor *e) {
  for (unsigned i = 0; i < e->n_ifaces; i++) {
    free(e->ifaces[i]);
  }
  free(e->ifaces);
  free(e->labels);
  free(e->avail);
  free(e);
}

/* Forgets the sensor gone longest, to make room (a stranger could
 * otherwise grow the table with new names without bound). */
static void forget_oldest(ps__fleet *fl) {
  ps__fleet_sensor **victim = NULL;
  for (ps__fleet_sensor **pp = &fl->head; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->n_conn == 0 &&
        (victim == NULL || (*pp)->left_ms <= (*victim)->left_ms)) {
      victim = pp;
    }
  }
  if (victim != NULL) {
    ps__fleet_sensor *e = *victim;
    *victim = e->next;
    sensor_free(e);
    fl->n--;
  }
}

ps__fleet_sensor *ps__fleet_join(ps__fleet *fl, const char *name,
                                 const char *peer, void *sess, int64_t now_ms) {
  ps__fleet_sensor *e = ps__fleet_find(fl, name);
  if (e == NULL) {
    if (fl->n >= PS_FLEET_MAX_SENSORS) {
      forget_oldest(fl);
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
      return NULL;
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->next = fl->head;
    fl->head = e;
    fl->n++;
  }
  snprintf(e->peer, sizeof(e->peer), "%s", peer);
  e->n_conn++;
  e->sess = sess;
  e->since_ms = now_ms;
  e->sessions++;
  /* What it announced belongs to that connection: a sensor restarted
   * with other labels says so again. */
  e->announced = 0;
  e->n_labels = 0;
  e->n_avail = 0;
  return e;
}

void ps__fleet_leave(ps__fleet_sensor *e, void *sess, int64_t now_ms) {
  if (e->n_conn > 0) {
    e->n_conn--;
  }
  if (e->sess == sess) {
    e->sess = NULL;
  }
  e->left_ms = now_ms;
}

ps__fleet_iface *ps__fleet_iface_get(ps__fleet_sensor *e, const char *name,
                                     uint32_t linktype, uint32_t snaplen) {
  for (unsigned i = 0; i < e->n_ifaces; i++) {
    if (strcmp(e->ifaces[i]->name, name) == 0) {
      e->ifaces[i]->linktype = linktype;
      e->ifaces[i]->snaplen = snaplen;
      return e->ifaces[i];
    }
  }
  if (e->n_ifaces >= PS_FLEET_MAX_IFACES) {
    return NULL;
  }
  if (e->n_ifaces == e->cap_ifaces) {
    unsigned cap = e->cap_ifaces ? 2 * e->cap_ifaces : 2;
    ps__fleet_iface **t = realloc(e->ifaces, cap * sizeof(*t));
    if (t == NULL) {
      return NULL;
    }
    e->ifaces = t;
    e->cap_ifaces = cap;
  }
  ps__fleet_iface *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    return NULL;
  }
  snprintf(f->name, sizeof(f->name), "%s", name);
  f->linktype = linktype;
  f->snaplen = snaplen;
  e->ifaces[e->n_ifaces++] = f;
  return f;
}

void ps__fleet_free(ps__fleet *fl) {
  while (fl->head != NULL) {
    ps__fleet_sensor *e = fl->head;
    fl->head = e->next;
    sensor_free(e);
  }
  fl->n = 0;
}

int ps__fleet_label_key_ok(const char *s, size_t len) {
  if (len == 0 || len > PS_FLEET_LABEL_KEY) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) {
      return 0;
    }
  }
  if (len >= 2 && s[0] == '_' && s[1] == '_') {
    return 0;
  }
  static const char *const reserved[] = {"sensor", "iface", "capture"};
  for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
    if (strlen(reserved[i]) == len && memcmp(reserved[i], s, len) == 0) {
      return 0;
    }
  }
  return 1;
}
