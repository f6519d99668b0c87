/*
 * The receivers of a stream and when to try which, sans I/O (the time
 * and the jitter's randomness are passed in). Attempts take the receivers
 * in order, round robin: a failed attempt moves on to the next receiver
 * at once, and a round in which none answered waits. Before the first
 * connection (the user is watching) rounds wait 1 s, 2 s, 4 s ... 30 s
 * until the connect timeout; after it, 0.5 s doubling to 30 s with
 * +-25% jitter, so that sensors cut off together do not come back
 * together. A lost connection tries its receiver again after the
 * backoff; a session that worked starts the backoff over.
 */
#ifndef PS_FAILOVER_H
#define PS_FAILOVER_H

#include "ps_common.h" /* PS_MAX_RECEIVERS, from the public header */

typedef struct ps__failover {
  struct {
    char host[256];
    uint16_t port;
  } rcv[PS_MAX_RECEIVERS];
  unsigned n;
  unsigned cur;   /* receiver of the connection or of the next attempt */
  unsigned tried; /* attempts in this round */
  int64_t backoff_ms;
  int first_delay_s;
  unsigned attempts; /* before the first connection */
  int64_t give_up_ms;
  int64_t next_ms; /* when the next attempt is due */
} ps__failover;

/* What to do after a failed attempt. */
enum ps__failover_next {
  PS_FAILOVER_NEXT, /* another receiver, at once */
  PS_FAILOVER_WAIT, /* the round is over: at next_ms */
  PS_FAILOVER_GIVE_UP
};

/* Adds a receiver (host copied), first or last. Returns 0,
 * PS_ERR_INVALID or PS_ERR_LIMIT with the text in errbuf. */
int ps__failover_add(ps__failover *f, const char *host, uint16_t port,
                     int first, char *errbuf);

/* The first connection starts now; it gives up after timeout_ms (0:
 * never). */
void ps__failover_start(ps__failover *f, int64_t now_ms, int64_t timeout_ms);

/* The attempt at the current receiver failed at now_ms: cur and next_ms
 * say where and when the next one goes. first: no connection was made
 * yet. rnd: a random number for the jitter. */
enum ps__failover_next ps__failover_failed(ps__failover *f, int64_t now_ms,
                                           int first, uint32_t rnd);

/* The connection was lost at now_ms: its receiver again after the
 * backoff (next_ms). */
void ps__failover_lost(ps__failover *f, int64_t now_ms, uint32_t rnd);

/* A connection was made; worked: its session was of use, so the backoff
 * starts over. */
void ps__failover_connected(ps__failover *f, int worked);

/* The receiver of the connection or of the next attempt. */
const char *ps__failover_host(const ps__failover *f);
uint16_t ps__failover_port(const ps__failover *f);

#endif
