/* Which receiver a stream tries next, and when. */
#include "config.h"

#include "ps_failover.h"

#include <string.h>

#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000

int ps__failover_add(ps__failover *f, const char *host, uint16_t port,
                     int first, char *errbuf) {
  if (host == NULL || *host == '\0' || strlen(host) >= sizeof(f->rcv[0].host) ||
      port == 0) {
    return ps__seterr(errbuf, PS_ERR_INVALID, "invalid receiver address");
  }
  if (f->n >= PS_MAX_RECEIVERS) {
    return ps__seterr(errbuf, PS_ERR_LIMIT, "at most %d receivers",
                      PS_MAX_RECEIVERS);
  }
  unsigned at = first ? 0 : f->n;
  memmove(&f->rcv[at + 1], &f->rcv[at], (f->n - at) * sizeof(f->rcv[0]));
  strcpy(f->rcv[at].host, host);
  f->rcv[at].port = port;
  f->n++;
  return 0;
}

void ps__failover_start(ps__failover *f, int64_t now_ms, int64_t timeout_ms) {
  f->cur = 0;
  f->tried = 0;
  f->attempts = 0;
  f->first_delay_s = 1;
  f->backoff_ms = BACKOFF_FIRST_MS;
  f->give_up_ms = timeout_ms > 0 ? now_ms + timeout_ms : INT64_MAX;
  f->next_ms = now_ms;
}

/* The backoff with +-25% jitter, doubled for the next round. */
static int64_t backoff(ps__failover *f, uint32_t rnd) {
  int64_t ms = f->backoff_ms;
  f->backoff_ms = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
  return ms * 3 / 4 + (int64_t)(rnd % (uint32_t)(ms / 2 + 1));
}

enum ps__failover_next ps__failover_failed(ps__failover *f, int64_t now_ms,
                                           int first, uint32_t rnd) {
  f->attempts += first;
  f->cur = (f->cur + 1) % f->n;
  if (++f->tried < f->n) {
    f->next_ms = now_ms;
    return PS_FAILOVER_NEXT;
  }
  f->tried = 0;
  if (!first) {
    f->next_ms = now_ms + backoff(f, rnd);
    return PS_FAILOVER_WAIT;
  }
  if (now_ms + f->first_delay_s * 1000 > f->give_up_ms) {
    return PS_FAILOVER_GIVE_UP;
  }
  f->next_ms = now_ms + f->first_delay_s * 1000;
  f->first_delay_s = f->first_delay_s * 2 > BACKOFF_MAX_MS / 1000
                         ? BACKOFF_MAX_MS / 1000
                         : f->first_delay_s * 2;
  return PS_FAILOVER_WAIT;
}

void ps__failover_lost(ps__failover *f, int64_t now_ms, uint32_t rnd) {
  f->tried = 0;
  f->next_ms = now_ms + backoff(f, rnd);
}

void ps__failover_connected(ps__failover *f, int worked) {
  f->tried = 0;
  if (worked) {
    f->backoff_ms = BACKOFF_FIRST_MS;
  }
}

const char *ps__failover_host(const ps__failover *f) {
  return f->rcv[f->cur].host;
}

uint16_t ps__failover_port(const ps__failover *f) {
  return f->rcv[f->cur].port;
}
