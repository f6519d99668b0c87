/* The callback sink: hands every event to a program's functions. */
#include "config.h"

#include "ps_sink.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct cb_sink {
  ps_sink base;
  ps_sink_callbacks cb;
  void *ud;
} cb_sink;

static int refused(ps_sink *sk, const ps_session_info *s, const char *what) {
  return ps__seterr(sk->errmsg, PS_ERR_REFUSED,
                    "the callback sink refused sensor %s at %s", s->sensor,
                    what);
}

static int cb_session_start(ps_sink *sk, const ps_session_info *s) {
  cb_sink *c = (cb_sink *)sk;
  if (c->cb.session_start && c->cb.session_start(s, c->ud) != 0) {
    return refused(sk, s, "session start");
  }
  return 0;
}

static int cb_iface(ps_sink *sk, const ps_session_info *s,
                    const ps_interface_info *ifc, void **slot) {
  cb_sink *c = (cb_sink *)sk;
  if (c->cb.interface && c->cb.interface(s, ifc, c->ud) != 0) {
    return refused(sk, s, "interface announcement");
  }
  *slot = c; /* taken: it gets its interface_end */
  return 0;
}

static int cb_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                     const ps_interface_info *ifc, const ps_packet *pkt) {
  cb_sink *c = (cb_sink *)sk;
  if (c->cb.packet && c->cb.packet(s, ifc, pkt, c->ud) != 0) {
    return refused(sk, s, "a packet");
  }
  return 0;
}

static void cb_stats(ps_sink *sk, void *slot, const ps_session_info *s,
                     const ps_interface_info *ifc, const ps_capture_stats *st) {
  cb_sink *c = (cb_sink *)sk;
  if (c->cb.stats) {
    c->cb.stats(s, ifc, st, c->ud);
  }
}

static void cb_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                         const ps_interface_info *ifc,
                         const ps_capture_stats *st) {
  cb_sink *c = (cb_sink *)sk;
  if (slot != NULL && c->cb.interface_end) {
    c->cb.interface_end(s, ifc, st, c->ud);
  }
}

static void cb_session_end(ps_sink *sk, const ps_session_info *s) {
  cb_sink *c = (cb_sink *)sk;
  if (c->cb.session_end) {
    c->cb.session_end(s, c->ud);
  }
}

static void cb_destroy(ps_sink *sk) {
  ps__sink_fini(sk);
  free(sk);
}

static const ps__sink_ops cb_ops = {
    .kind = "callback",
    .session_start = cb_session_start,
    .iface = cb_iface,
    .packet = cb_packet,
    .stats = cb_stats,
    .iface_end = cb_iface_end,
    .session_end = cb_session_end,
    .destroy = cb_destroy,
};

/* The size of ps_sink_callbacks in 0.1, the first published: a caller
 * passes at least that. A caller built with a later header may pass a
 * longer struct; callbacks set in its tail this library cannot call, and
 * ps__copy_in() refuses them rather than dropping them silently. */
#define CB_SIZE_0_1 PS__SIZE_TO(ps_sink_callbacks, interface_end)

int ps_callback_sink(ps_sink **out, const ps_sink_callbacks *cb, size_t size,
                     void *user_data) {
  if (out != NULL) {
    *out = NULL; /* on every error */
  }
  ps_sink_callbacks copy;
  if (out == NULL ||
      ps__copy_in(&copy, sizeof(copy), cb, size, CB_SIZE_0_1) != 0) {
    return PS_ERR_INVALID;
  }
  cb_sink *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__sink_init(&c->base, &cb_ops);
  c->cb = copy;
  c->ud = user_data;
  *out = &c->base;
  return 0;
}
