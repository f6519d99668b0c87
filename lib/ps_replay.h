/*
 * The sensor's replay queue, sans I/O: the batch being filled, the sealed
 * batches kept until the receiver acknowledges them (a ring in sequence
 * order), what the overflow policy drops, and the counters that account
 * for every packet handed over. Nothing here touches a socket, a file or
 * the clock (times are passed in): the stream feeds connections from it,
 * the spool keeps a copy of it through two hooks, and the unit tests
 * drive it directly.
 *
 * At any time: packets_sent + packets_recovered == packets_acked +
 * packets_dropped_overflow + packets_lost + packets_queued.
 */
#ifndef PS_REPLAY_H
#define PS_REPLAY_H

#include "ps_codec.h"
#include "ps_proto.h"

/* What became of a sealed batch. */
enum ps__rq_state {
  PS_RQ_FULL, /* frame bytes kept: can be (re)sent */
  PS_RQ_STUB, /* bytes gone, written to a connection: waiting for its ACK */
  PS_RQ_GONE  /* dropped and counted: a placeholder until the head passes */
};
#define PS_RQ_NORETAIN 0x1 /* drop the bytes once written (drop-newest) */
#define PS_RQ_LIMBO 0x2    /* stub of a broken connection */

/* Packets of one interface in a batch. */
typedef struct ps__rq_ifc {
  uint32_t iface;
  uint32_t n;
} ps__rq_ifc;

typedef struct ps__rq_ent {
  uint64_t seq;
  uint8_t *frame; /* the whole BATCH frame (PS_RQ_FULL) */
  size_t len;
  uint32_t count; /* packets */
  uint8_t state;
  uint8_t flags;
  uint16_t n_if;
  ps__rq_ifc *ifc; /* packets per interface */
} ps__rq_ent;

typedef struct ps__replay {
  size_t max; /* bound on the frame bytes kept */
  ps_overflow policy;
  ps_log_fn log;
  void *log_ud;

  /* The batch being filled. */
  ps__buf raw;
  uint32_t batch_count;
  uint32_t cur_ifc[PS_MAX_IFACES]; /* packets per interface in raw */
  uint8_t cur_touched[PS_MAX_IFACES];
  unsigned n_touched;
  int64_t batch_start_ms;

  /* The ring of sealed batches, in seq order. */
  ps__rq_ent *ent;
  size_t cap, head, n;
  size_t fed;            /* entries [0, fed) went to this connection */
  size_t retained_bytes; /* frame bytes of kept PS_RQ_FULL entries */
  size_t noretain_bytes; /* of PS_RQ_NORETAIN entries not yet written */

  uint64_t seq;         /* last batch sealed */
  uint64_t acked;       /* last acknowledged */
  uint64_t max_fed;     /* highest seq written to any connection */
  uint64_t resend_upto; /* seqs up to this went to an earlier connection */
  int limbo;            /* stubs of a broken connection wait for an ACK */
  int heard;            /* this connection has had its resume point */
  int overflowing;      /* logged the current overflow episode */

  ps_stream_counters ctr;
  uint32_t n_ifaces; /* per-interface counters beyond are not kept */
  ps_stream_interface_counters ifc[PS_MAX_IFACES];

  /* A copy of the queue (the spool), if any: told of every batch kept,
   * and of every seq below which nothing is left. */
  void (*keep)(void *ud, const ps__rq_ent *e);
  void (*release)(void *ud, uint64_t below);
  void *store_ud;
} ps__replay;

void ps__replay_init(ps__replay *q, size_t max, ps_overflow policy);
void ps__replay_free(ps__replay *q);

/* The i-th entry from the head (i < q->n). */
ps__rq_ent *ps__replay_at(ps__replay *q, size_t i);

/* Adds a packet to the open batch and counts it (its interface must be
 * below n_ifaces). Returns 0 or PS_ERR_NOMEM. */
int ps__replay_add(ps__replay *q, const ps_packet *pkt, int64_t now_ms);

/*
 * Compresses the open batch with cc and puts it in the queue under the
 * next seq, making room by the overflow policy (connected: a batch that
 * cannot be kept may still be sent once). Nothing to do for an empty
 * batch. Returns 0 or PS_ERR_NOMEM (text in errbuf).
 */
int ps__replay_seal(ps__replay *q, ps__codec *cc, int connected, char *errbuf);

/* Whether the open batch grown by a packet of caplen bytes can be sealed
 * without dropping anything. */
int ps__replay_has_room(const ps__replay *q, uint32_t caplen, int connected);

/* Everything up to seq is written by the receiver. */
void ps__replay_release(ps__replay *q, uint64_t seq);

/* The first acknowledgement of a connection (its resume point) came:
 * stubs of a broken connection still waiting cannot be resent: lost. */
void ps__replay_resolve_limbo(ps__replay *q);

/* A connection starts: nothing went to it yet, and its resume point
 * (ps__replay_resolve_limbo()) is still to come. */
void ps__replay_connection_start(ps__replay *q);

/* The connection broke: batches written to it are sent again, and stubs
 * of those the queue could not keep wait for the next connection's
 * first acknowledgement. */
void ps__replay_connection_lost(ps__replay *q);

/* The next entry to write to this connection, or NULL. */
ps__rq_ent *ps__replay_next_to_feed(ps__replay *q);

/* That entry was written to this connection. */
void ps__replay_fed(ps__replay *q);

/* Counts everything not acknowledged as lost: the end of the stream. */
void ps__replay_lose_all(ps__replay *q);

/* Batches not yet acknowledged, dropped or lost. */
size_t ps__replay_pending(ps__replay *q);

/* The last batch the receiver can have: the newest not dropped, or the
 * last acknowledged. */
uint64_t ps__replay_last_seq(ps__replay *q);

/* Puts back a sealed batch a previous run left (the spool): ifc holds
 * n_if pairs of interface and packets; its packets count as recovered
 * (per interface for those below n_ifaces). Returns 0 or PS_ERR_NOMEM. */
int ps__replay_adopt(ps__replay *q, uint64_t seq, uint32_t count, uint16_t n_if,
                     const uint32_t *ifc, const uint8_t *frame, size_t len);

#endif
