/* The receiver's Kafka input (--from-kafka); see ps_kafka_in.c. */
#ifndef PS_KAFKA_IN_H
#define PS_KAFKA_IN_H

#include "ps_session.h"
#include "ps_streamtab.h"

typedef struct ps__kin ps__kin;

/* What the input shares with its receiver. commit: write what the
 * outputs took and record it in the journal; 0 once they hold it. */
typedef struct ps__kin_env {
  ps_sink **sinks;
  unsigned n_sinks;
  ps__streamtab *streams;
  ps_log_fn log;
  void *log_ud;
  int (*commit)(void *ud);
  void *ud;
  /* Streams open to the outputs at once (the receiver's --max-sensors,
   * read at each new stream); NULL or 0: 1024. */
  const unsigned *max_streams;
} ps__kin_env;

typedef struct ps__kin_counters {
  uint64_t messages, batches, packets, bytes;
  uint64_t duplicates; /* messages skipped: (stream, batch, part) seen */
  uint64_t gaps;       /* places where a stream's sequence jumps */
  uint64_t bad;        /* not ours, truncated, absurd: skipped */
  uint64_t refused;    /* messages of streams an output refused */
  uint64_t streams, commits, rebalances;
  uint64_t ended; /* streams ended at the limit of open ones */
} ps__kin_counters;

int ps__kin_new(ps__kin **out, const ps__kin_env *env, const char *brokers,
                const char *topic, const char *group, const char *const *props,
                char *errmsg);
/* Readable when the consumer has something (messages, a rebalance). */
int ps__kin_fd(ps__kin *k);
/* Takes what the consumer has (bounded), then commits; blocked: the
 * outputs cannot write, take nothing. 0, or -1 when the commit failed
 * (the outputs cannot write). */
int ps__kin_step(ps__kin *k, int blocked);
/* Commits what was taken, ends the streams (the outputs hear
 * session_end), leaves the group. */
int ps__kin_close(ps__kin *k);
void ps__kin_get_counters(ps__kin *k, ps__kin_counters *out);
void ps__kin_free(ps__kin *k);

#endif
