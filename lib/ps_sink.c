/* The generic sink: what every output shares (its log with the lines
 * kept from before the receiver set one, its error text) and the calls
 * the receiver makes, each of which an output may leave out. */
#include "config.h"

#include "ps_sink.h"

#include <stdio.h>
#include <string.h>

void ps__sink_init(ps_sink *sk, const ps__sink_ops *ops) {
  sk->ops = ops;
  sk->tick_at = -1;
}

void ps__sink_log(ps_sink *sk, ps_log_level level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (sk->log != NULL) {
    sk->log(level, line, sk->log_ud);
  } else if (level <= PS_LOG_WARNING) {
    /* A constructor's warnings (an existing file not overwritten) are
     * kept for the log function the receiver sets. */
    uint8_t lv = (uint8_t)level;
    if (ps__buf_append(&sk->early_log, &lv, 1) != 0 ||
        ps__buf_append(&sk->early_log, line, strlen(line) + 1) != 0) {
      ps__buf_reset(&sk->early_log);
    }
  }
}

void ps__sink_set_log(ps_sink *sk, ps_log_fn fn, void *ud) {
  sk->log = fn;
  sk->log_ud = ud;
  if (fn == NULL) {
    return;
  }
  const uint8_t *p = ps__buf_head(&sk->early_log);
  size_t n = ps__buf_size(&sk->early_log);
  while (n > 1) {
    size_t k = strlen((const char *)p + 1);
    fn((ps_log_level)p[0], (const char *)p + 1, ud);
    p += k + 2;
    n -= k + 2;
  }
  ps__buf_free(&sk->early_log);
}

int ps__sink_session_start(ps_sink *sk, const ps_session_info *s) {
  return sk->ops->session_start ? sk->ops->session_start(sk, s) : 0;
}

int ps__sink_iface(ps_sink *sk, const ps_session_info *s,
                   const ps_interface_info *ifc, void **slot) {
  return sk->ops->iface ? sk->ops->iface(sk, s, ifc, slot) : 0;
}

int ps__sink_check(ps_sink *sk, const ps_interface_info *ifc,
                   const ps_packet *pkt) {
  return sk->ops->check ? sk->ops->check(sk, ifc, pkt) : 0;
}

int ps__sink_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_packet *pkt) {
  return sk->ops->packet ? sk->ops->packet(sk, slot, s, ifc, pkt) : 0;
}

void ps__sink_stats(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_capture_stats *st) {
  if (sk->ops->stats) {
    sk->ops->stats(sk, slot, s, ifc, st);
  }
}

void ps__sink_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                        const ps_interface_info *ifc,
                        const ps_capture_stats *st) {
  if (sk->ops->iface_end) {
    sk->ops->iface_end(sk, slot, s, ifc, st);
  }
}

void ps__sink_session_end(ps_sink *sk, const ps_session_info *s) {
  if (sk->ops->session_end) {
    sk->ops->session_end(sk, s);
  }
}

int ps__sink_flush(ps_sink *sk) {
  return sk->ops->flush ? sk->ops->flush(sk) : 0;
}

int ps__sink_failed(ps_sink *sk, void *slot, char *why, size_t len) {
  return sk->ops->failed && slot != NULL ? sk->ops->failed(sk, slot, why, len)
                                         : 0;
}

unsigned ps__sink_marks(ps_sink *sk, ps__file_mark *out, unsigned max) {
  return sk->ops->marks ? sk->ops->marks(sk, out, max) : 0;
}

int ps__sink_close(ps_sink *sk) {
  return sk->ops->close ? sk->ops->close(sk) : 0;
}

void ps__sink_batch(ps_sink *sk, const ps_session_info *s, uint64_t stream,
                    uint64_t seq) {
  if (sk->ops->batch) {
    sk->ops->batch(sk, s, stream, seq);
  }
}

int ps__sink_attach(ps_sink *sk, ps__sink_loop *loop) {
  return sk->ops->attach ? sk->ops->attach(sk, loop) : 0;
}

int64_t ps__sink_tick(ps_sink *sk, int64_t now_ms) {
  sk->tick_at = sk->ops->tick ? sk->ops->tick(sk, now_ms) : -1;
  return sk->tick_at;
}

int ps_sink_reopen(ps_sink *sink) {
  if (sink == NULL || sink->ops->reopen == NULL) {
    return PS_ERR_INVALID;
  }
  sink->ops->reopen(sink);
  return 0;
}

void ps__sink_fini(ps_sink *sk) {
  ps__buf_free(&sk->early_log);
}

void ps_sink_free(ps_sink *sink) {
  if (sink != NULL) {
    sink->ops->destroy(sink);
  }
}

const char *ps_sink_errmsg(ps_sink *sink) {
  return sink ? sink->errmsg : "no sink";
}
