/*
 * The receiver's fleet: every sensor it has seen, by name, with its
 * interfaces and counters kept across its connections (a sensor that
 * reconnects keeps counting where it was), what it announced about
 * itself (protocol version 2), and the session it is connected on now.
 * Sans I/O: the sessions and the admin API read and update it; the
 * receiver owns it. This is what GET /metrics and GET /api/v1/sensors
 * show.
 */
#ifndef PS_FLEET_H
#define PS_FLEET_H

#include "ps_common.h"

/* Sensors kept (connected or not); the one gone longest is forgotten
 * first when a new name would exceed it. */
#define PS_FLEET_MAX_SENSORS 4096u
#define PS_FLEET_MAX_IFACES 256u
#define PS_FLEET_MAX_LABELS 16u
#define PS_FLEET_LABEL_KEY 63u
#define PS_FLEET_LABEL_VALUE 255u

typedef struct ps__fleet_iface {
  char name[256];
  uint32_t linktype;
  uint32_t snaplen;
  uint64_t packets, bytes; /* written by this receiver */
  ps_capture_stats st;     /* the sensor's latest report */
} ps__fleet_iface;

typedef struct ps__fleet_label {
  char key[PS_FLEET_LABEL_KEY + 1];
  char value[PS_FLEET_LABEL_VALUE + 1];
} ps__fleet_label;

/* An interface the sensor says it can capture on (its announce). */
typedef struct ps__fleet_avail {
  char name[256];
  uint32_t linktype;
} ps__fleet_avail;

typedef struct ps__fleet_sensor {
  struct ps__fleet_sensor *next;
  char name[256];
  char peer[80];
  unsigned n_conn;   /* sessions connected now (usually 0 or 1) */
  void *sess;        /* the latest connected session (ps__session) */
  int64_t since_ms;  /* wall clock (ms since 1970) of the latest connect */
  int64_t left_ms;   /* wall clock of the latest disconnect */
  uint64_t sessions; /* connections admitted */
  uint64_t duplicates;
  uint64_t acked_batches; /* acknowledged to it (ACK and CLOSE frames) */
  uint64_t sampled_out;   /* left out by sampling in remote captures */
  /* What the sensor announced (protocol version 2), else zero. */
  int announced;
  uint32_t announce_flags;
  char version[64];
  char host[256];
  /* PS_FLEET_MAX_LABELS of them, allocated at the first announcement
   * with labels (thousands of sensors without any keep 5 KiB each). */
  ps__fleet_label *labels;
  unsigned n_labels;
  ps__fleet_avail *avail;
  unsigned n_avail;
  ps__fleet_iface **ifaces; /* n_ifaces of cap_ifaces, grown as needed */
  unsigned n_ifaces, cap_ifaces;
} ps__fleet_sensor;

typedef struct ps__fleet {
  ps__fleet_sensor *head; /* most recently connected first */
  unsigned n;
} ps__fleet;

/* The sensor name connected on session sess (from peer) at wall-clock
 * now_ms: its entry, created if new. NULL when out of memory. */
ps__fleet_sensor *ps__fleet_join(ps__fleet *fl, const char *name,
                                 const char *peer, void *sess, int64_t now_ms);
/* Session sess of e ended at wall-clock now_ms. */
void ps__fleet_leave(ps__fleet_sensor *e, void *sess, int64_t now_ms);
ps__fleet_sensor *ps__fleet_find(const ps__fleet *fl, const char *name);
/* The counters of e's interface name (created if new; NULL when out of
 * memory or beyond PS_FLEET_MAX_IFACES). */
ps__fleet_iface *ps__fleet_iface_get(ps__fleet_sensor *e, const char *name,
                                     uint32_t linktype, uint32_t snaplen);
void ps__fleet_free(ps__fleet *fl);

/* Whether s is a label key the metrics and selectors can carry:
 * [a-zA-Z_][a-zA-Z0-9_]*, at most PS_FLEET_LABEL_KEY bytes, not one of
 * the names the receiver sets itself (sensor, iface, capture) and not
 * starting with "__" (Prometheus keeps those). */
int ps__fleet_label_key_ok(const char *s, size_t len);

#endif
