/* The recording callback sink of tests/recorder.h. */
#include "config.h"

#include "recorder.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rec_start(const ps_session_info *s, void *ud) {
  recorder *r = ud;
  r->starts++;
  r->session_id = s->id;
  snprintf(r->sensor, sizeof(r->sensor), "%s", s->sensor);
  snprintf(r->peer, sizeof(r->peer), "%s", s->peer);
  return r->refuse_start;
}

static int rec_iface(const ps_session_info *s, const ps_interface_info *i,
                     void *ud) {
  (void)s;
  recorder *r = ud;
  if (i->id < 8) {
    r->linktypes[i->id] = i->linktype;
  }
  r->ifaces++;
  return r->refuse_iface;
}

static int rec_packet(const ps_session_info *s, const ps_interface_info *i,
                      const ps_packet *p, void *ud) {
  (void)s;
  recorder *r = ud;
  if (r->refuse_packet_at && r->npkts + 1 == r->refuse_packet_at) {
    return 1;
  }
  if (r->npkts == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->pkts = realloc(r->pkts, r->cap * sizeof(*r->pkts));
    ck_assert_ptr_nonnull(r->pkts);
  }
  rec_pkt *k = &r->pkts[r->npkts++];
  k->p = *p;
  k->p.data = NULL;
  k->linktype = i->linktype;
  k->data = malloc(p->caplen + 1);
  ck_assert_ptr_nonnull(k->data);
  memcpy(k->data, p->data, p->caplen);
  r->bytes += p->caplen;
  return 0;
}

static void rec_stats(const ps_session_info *s, const ps_interface_info *i,
                      const ps_capture_stats *st, void *ud) {
  (void)s;
  recorder *r = ud;
  r->stats_calls++;
  r->last_stats = *st;
  r->last_stats_iface = i->id;
}

static void rec_end(const ps_session_info *s, void *ud) {
  (void)s;
  ((recorder *)ud)->ends++;
}

void rec_sink(ps_sink **out, recorder *r) {
  memset(r, 0, sizeof(*r));
  ps_sink_callbacks cb = PS_SINK_CALLBACKS_INIT;
  cb.session_start = rec_start;
  cb.interface = rec_iface;
  cb.packet = rec_packet;
  cb.stats = rec_stats;
  cb.session_end = rec_end;
  ck_assert_int_eq(ps_callback_sink(out, &cb, sizeof(cb), r), 0);
}

void rec_free(recorder *r) {
  for (size_t i = 0; i < r->npkts; i++) {
    free(r->pkts[i].data);
  }
  free(r->pkts);
  memset(r, 0, sizeof(*r));
}
