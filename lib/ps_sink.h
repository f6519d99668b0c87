/* The sink interface every output implements. The receiver drives it
 * through the ps__sink_* calls below: session_start, iface (once per
 * interface), check and packet..., flush after each batch, stats,
 * iface_end per interface, session_end; close at the end. Every
 * operation but destroy is optional: an output leaves out what it has
 * no use for, and the generic sink (ps_sink.c) stands in (0, nothing
 * done). */
#ifndef PS_SINK_H
#define PS_SINK_H

#include "ps_common.h"

/* A file an output has open and how far it holds only whole, flushed
 * records: what the receiver's journal (ps_journal) records so a restart
 * after a crash can cut the file back to what was acknowledged. */
typedef struct ps__file_mark {
  const char *path;
  uint64_t size;
  int fd; /* the open file (the journal takes its inode from it) */
} ps__file_mark;

/* A descriptor a live output (PCAP-over-IP) has in the receiver's loop:
 * the loop calls ready with the epoll events (EPOLLIN, EPOLLOUT,
 * EPOLLHUP, EPOLLERR) it saw. A watch must stay allocated until the
 * sink's next tick after it was unwatched: the loop's batch of events
 * of that round may still point at it. */
typedef struct ps__watch {
  void (*ready)(struct ps__watch *w, uint32_t events);
} ps__watch;

/* The receiver's loop as a sink sees it (given to attach): one epoll
 * set, never blocking, shared by every sensor connection and output. */
typedef struct ps__sink_loop {
  /* Watches fd for events (add: a new fd; else its events change). 0 or
   * PS_ERR_SYSTEM. */
  int (*watch)(struct ps__sink_loop *l, int fd, uint32_t events, ps__watch *w,
               int add);
  /* Stops watching fd (before it is closed). */
  void (*unwatch)(struct ps__sink_loop *l, int fd);
} ps__sink_loop;

typedef struct ps__sink_ops {
  const char *kind;
  /* A live output: it never holds back acknowledgement or capture. Its
   * packet() never fails a session (a slow consumer loses packets of its
   * own instead), its flush() never fails, and it writes only to
   * non-blocking sockets it watches through attach(). The durable
   * outputs (files) alone decide what is acknowledged. */
  int live;
  /* Called once, when the sink is added to a receiver: the output's
   * descriptors go into loop from now on (kept until destroy). A
   * negative return fails ps_receiver_add_sink(). */
  int (*attach)(ps_sink *sk, ps__sink_loop *loop);
  /* Called at the end of every round of the loop, with the monotonic
   * clock (ps__now_ms()): timers (a reconnect), the frees a watch waits
   * for. Returns when it wants the next tick at the latest (ms on the
   * same clock), or -1 for no deadline. */
  int64_t (*tick)(ps_sink *sk, int64_t now_ms);
  /* A negative return refuses the session. */
  int (*session_start)(ps_sink *sk, const ps_session_info *s);
  /* *slot is this sink's per-interface state: set it here, get it back
   * in the calls below. A negative return refuses the session. */
  int (*iface)(ps_sink *sk, const ps_session_info *s,
               const ps_interface_info *ifc, void **slot);
  /* Whether the output can hold pkt as it is (NULL: every packet), its time
   * stamp in particular. 0, or PS_ERR_PROTOCOL with errmsg saying why. Called
   * for every packet of a batch before any of them reaches packet(), so a batch
   * is refused whole. */
  int (*check)(ps_sink *sk, const ps_interface_info *ifc, const ps_packet *pkt);
  int (*packet)(ps_sink *sk, void *slot, const ps_session_info *s,
                const ps_interface_info *ifc, const ps_packet *pkt);
  void (*stats)(ps_sink *sk, void *slot, const ps_session_info *s,
                const ps_interface_info *ifc, const ps_capture_stats *st);
  /* st is the last counters the sensor sent, or NULL if none. */
  void (*iface_end)(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_capture_stats *st);
  void (*session_end)(ps_sink *sk, const ps_session_info *s);
  /* A sensor batch ends: every packet of it went to packet(). stream:
   * the sensor's stream id (the session id for sensors without one);
   * seq: the batch's sequence number. For outputs that keep batches
   * whole (Kafka: one message each). */
  void (*batch)(ps_sink *sk, const ps_session_info *s, uint64_t stream,
                uint64_t seq);
  /* Outputs whose flush() only hands data on and learn later that it is
   * kept (Kafka's delivery reports): token() is a number for everything
   * handed on so far, durable() the highest token whose data is kept;
   * both grow only. The receiver acknowledges a batch once durable()
   * reaches the token taken after its flush. fd() is a descriptor that
   * turns readable when poll() has work (NULL: none). NULL token: the
   * output is durable once flush() returns 0. */
  uint64_t (*token)(ps_sink *sk);
  uint64_t (*durable)(ps_sink *sk);
  int (*fd)(ps_sink *sk);
  /* Serves the output's events (delivery reports) without blocking;
   * PS_ERR_CLOSED when it failed for good (and everything not yet
   * durable never will be). */
  int (*poll)(ps_sink *sk);
  /* Hands everything taken so far to the output (write(2) done), whole
   * records only. On a write error that may pass (disk full, quota, EIO)
   * it returns PS_ERR_IO, leaves no partial record in the file and keeps
   * the unwritten bytes: the next flush retries them. An output that can
   * never work as named (a file name too long, no permission) fails
   * alone: flush drops what it held, counts it in sk->failures and goes
   * on with the others (see failed). PS_ERR_CLOSED: the only output is
   * gone for good (the reader of standard output or of a named pipe
   * left); nothing more can be written. Files are closed (rotation,
   * reopen) only in here, after a successful write. */
  int (*flush)(ps_sink *sk);
  /* Whether the output an interface writes to (its slot) has
   * failed for good, with the reason in why (len bytes): 0 no; 1 yes,
   * and what it held was dropped: its session must be refused before
   * anything more of it is acknowledged; 2 yes, after everything it
   * held was written (a rotation's new file failed): its session may be
   * acknowledged for that, and must be refused before it sends more. */
  int (*failed)(ps_sink *sk, void *slot, char *why, size_t len);
  /* NULL: no files. Fills up to max marks of the files open
   * now, sizes as of the last successful flush; returns how many. */
  unsigned (*marks)(ps_sink *sk, ps__file_mark *out, unsigned max);
  int (*close)(ps_sink *sk);
  /* NULL: nothing to reopen (ps_sink_reopen() says PS_ERR_INVALID).
   * Async-signal-safe: it only asks for new files at the next flush. */
  void (*reopen)(ps_sink *sk);
  /* Required: frees the sink (after ps__sink_fini()). */
  void (*destroy)(ps_sink *sk);
} ps__sink_ops;

struct ps_sink {
  const ps__sink_ops *ops;
  ps_log_fn log;
  void *log_ud;
  /* Set by the receiver: called by file sinks right after a file was
   * created or opened and its header written (size: its bytes then; fd:
   * the file, for its inode), before any packet goes into it. */
  void (*on_open)(void *ud, const char *path, int fd, uint64_t size);
  void *on_open_ud;
  /* How many outputs failed for good so far (see failed): the receiver
   * looks for the sessions to refuse when it changes. */
  unsigned failures;
  /* Bytes its files took (write(2) done): headers, blocks, statistics,
   * everything in them. For the receiver's output_bytes. */
  uint64_t written;
  /* Outputs that keep data later than their flush (Kafka): messages
   * handed on, and those its delivery reports confirmed kept. */
  uint64_t async_sent, async_kept;
  /* The deadline its last tick asked for (-1: none). */
  int64_t tick_at;
  char errmsg[PS_ERRMSG_MAX];
  ps__buf early_log; /* warnings logged before there was a log function */
};

/* Sets up the generic part of a sink (zeroed memory) for ops. */
void ps__sink_init(ps_sink *sk, const ps__sink_ops *ops);
/* Frees the generic part; destroy ops call it. */
void ps__sink_fini(ps_sink *sk);
/* Sets the log function; warnings logged before it was set are handed to
 * it now (a constructor's: an existing file not overwritten). */
void ps__sink_set_log(ps_sink *sk, ps_log_fn fn, void *ud);
/* Logs one line through the sink's log function, or keeps a warning for
 * the one set later. */
void ps__sink_log(ps_sink *sk, ps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The operations, for the receiver (see ps__sink_ops). */
int ps__sink_session_start(ps_sink *sk, const ps_session_info *s);
int ps__sink_iface(ps_sink *sk, const ps_session_info *s,
                   const ps_interface_info *ifc, void **slot);
int ps__sink_check(ps_sink *sk, const ps_interface_info *ifc,
                   const ps_packet *pkt);
int ps__sink_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_packet *pkt);
void ps__sink_stats(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_capture_stats *st);
void ps__sink_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                        const ps_interface_info *ifc,
                        const ps_capture_stats *st);
void ps__sink_session_end(ps_sink *sk, const ps_session_info *s);
int ps__sink_flush(ps_sink *sk);
/* 0 also for a slot the sink never set (NULL). */
int ps__sink_failed(ps_sink *sk, void *slot, char *why, size_t len);
unsigned ps__sink_marks(ps_sink *sk, ps__file_mark *out, unsigned max);
int ps__sink_close(ps_sink *sk);
void ps__sink_batch(ps_sink *sk, const ps_session_info *s, uint64_t stream,
                    uint64_t seq);
/* Whether the sink acknowledges later than its flush (ops.token). */
static inline int ps__sink_is_async(const ps_sink *sk) {
  return sk->ops->token != NULL;
}
/* attach and tick (see ps__sink_ops); 0 and -1 for outputs without. */
int ps__sink_attach(ps_sink *sk, ps__sink_loop *loop);
int64_t ps__sink_tick(ps_sink *sk, int64_t now_ms);

#endif
