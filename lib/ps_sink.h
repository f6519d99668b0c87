/* The sink interface every output implements. The receiver drives it:
 * session_start, iface (once per interface), packet..., flush after each
 * batch, stats, iface_end per interface, session_end; close at the end. */
#ifndef PS_SINK_H
#define PS_SINK_H

#include "ps_common.h"

typedef struct ps__sink_ops {
  const char *kind;
  int (*session_start)(ps_sink *sk, const ps_session_info *s);
  /* *slot is this sink's per-interface state: set it here, get it back
   * in the calls below. A negative return refuses the session. */
  int (*iface)(ps_sink *sk, const ps_session_info *s,
               const ps_interface_info *ifc, void **slot);
  int (*packet)(ps_sink *sk, void *slot, const ps_session_info *s,
                const ps_interface_info *ifc, const ps_packet *pkt);
  void (*stats)(ps_sink *sk, void *slot, const ps_session_info *s,
                const ps_interface_info *ifc, const ps_capture_stats *st);
  /* st is the last counters the sensor sent, or NULL if none. */
  void (*iface_end)(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_capture_stats *st);
  void (*session_end)(ps_sink *sk, const ps_session_info *s);
  /* Hands everything taken so far to the output (write(2) done). */
  int (*flush)(ps_sink *sk);
  int (*close)(ps_sink *sk);
  void (*destroy)(ps_sink *sk);
} ps__sink_ops;

struct ps_sink {
  const ps__sink_ops *ops;
  ps_log_fn log;
  void *log_ud;
  char errmsg[PS_ERRMSG_MAX];
};

void ps__sink_set_log(ps_sink *sk, ps_log_fn fn, void *ud);

#endif
