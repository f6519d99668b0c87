/*
 * The receiver's memory of sensor streams: for each (sensor name, stream
 * id) the last batch written, so a batch resent on a new connection (after
 * a cut, or a receiver restart with its journal) is recognised and not
 * written twice. Sans I/O; the journal (ps_journal) persists it.
 */
#ifndef PS_STREAMTAB_H
#define PS_STREAMTAB_H

#include "ps_common.h"

/* Streams remembered; idle ones are forgotten first. At most ~5 MiB even
 * if hostile sensors invent stream ids (without TLS and a shared key,
 * anyone who can reach the receiver can, see SECURITY.md). */
#define PS_STREAMTAB_MAX 16384

struct ps__session;

typedef struct ps__stream_ent {
  struct ps__stream_ent *next; /* hash chain */
  uint64_t id;
  uint64_t seq;              /* last batch written */
  uint64_t acked;            /* last batch acknowledged (async outputs) */
  struct ps__session *owner; /* the session streaming it now, or NULL */
  int64_t used_ms;           /* last time a session had it */
  int dirty;                 /* changed since the journal last saw it */
  uint8_t name_len;
  char name[256];
} ps__stream_ent;

typedef struct ps__streamtab {
  ps__stream_ent **bucket;
  size_t n_buckets;
  size_t n;
  size_t n_dirty;
} ps__streamtab;

/* Finds the stream without creating it; NULL if absent. */
ps__stream_ent *ps__streamtab_find(const ps__streamtab *t, const char *name,
                                   size_t name_len, uint64_t id);

/* Finds the stream, creating it (seq 0) if absent. NULL: out of memory. */
ps__stream_ent *ps__streamtab_get(ps__streamtab *t, const char *name,
                                  size_t name_len, uint64_t id);

/* Sets seq (only upwards) and marks the entry for the journal. */
void ps__streamtab_advance(ps__streamtab *t, ps__stream_ent *e, uint64_t seq);

/* Calls fn for each entry (dirty_only: only those changed since the
 * last ps__streamtab_clean) . */
void ps__streamtab_each(ps__streamtab *t, int dirty_only,
                        void (*fn)(void *ud, const ps__stream_ent *e),
                        void *ud);
void ps__streamtab_clean(ps__streamtab *t);

void ps__streamtab_free(ps__streamtab *t);

#endif
