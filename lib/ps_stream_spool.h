/*
 * The stream's spool (ps_stream_set_spool()): keeps the on-disk copy of
 * the replay queue (ps_spool) in step with it, and takes up what a
 * previous run of the same stream left: its stream id, its codec, its
 * interfaces and its unacknowledged batches.
 */
#ifndef PS_STREAM_SPOOL_H
#define PS_STREAM_SPOOL_H

#include "ps_replay.h"
#include "ps_spool.h"
#include "ps_ssession.h"

typedef struct ps__stream_spool {
  char *dir;     /* NULL: no spool */
  ps__spool *sp; /* open from the first connect on */
  int failed;    /* a write failed: logged, the queue goes on in memory */
  ps_log_fn log;
  void *log_ud;
} ps__stream_spool;

/*
 * Opens the spool and hooks it to rq. A previous run's stream is taken
 * up: env gets its stream id and codec (have_codec set), ifaces[] and
 * env->n_ifaces its interfaces (names strdup'ed), rq its batches, to be
 * sent first (the receiver's resume point says which it already has).
 * Returns 1 when it did, 0 when there was nothing to take up, or an
 * error with the reason in errbuf (PS_ERR_INVALID: the spool holds
 * another sensor's stream).
 */
int ps__stream_spool_open(ps__stream_spool *ss, ps__ssession_env *env,
                          ps__ssession_iface *ifaces, ps__replay *rq,
                          char *errbuf);

/* Records the stream (id, codec, interfaces) so a later run can take up
 * its spooled batches. */
void ps__stream_spool_meta(ps__stream_spool *ss, const ps__ssession_env *env);

/* done: every batch was acknowledged, the spool is emptied (the next run
 * starts a new stream). */
void ps__stream_spool_close(ps__stream_spool *ss, int done);

#endif
