/* The sink interface every output implements. The receiver drives it:
 * session_start, iface (once per interface), packet..., flush after each
 * batch, stats, iface_end per interface, session_end; close at the end. */
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

typedef struct ps__sink_ops {
  const char *kind;
  int (*session_start)(ps_sink *sk, const ps_session_info *s);
  /* *slot is this sink's per-interface state: set it here, get it back
   * in the calls below. A negative return refuses the session. */
  int (*iface)(ps_sink *sk, const ps_session_info *s,
               const ps_interface_info *ifc, void **slot);
  /* Optional (NULL: takes every packet): whether the output can hold
   * pkt as it is, its time stamp in particular. 0, or PS_ERR_PROTOCOL
   * with errmsg saying why. Called for every packet of a batch before
   * any of them reaches packet(), so a batch is refused whole. */
  int (*check)(ps_sink *sk, const ps_interface_info *ifc, const ps_packet *pkt);
  int (*packet)(ps_sink *sk, void *slot, const ps_session_info *s,
                const ps_interface_info *ifc, const ps_packet *pkt);
  void (*stats)(ps_sink *sk, void *slot, const ps_session_info *s,
                const ps_interface_info *ifc, const ps_capture_stats *st);
  /* st is the last counters the sensor sent, or NULL if none. */
  void (*iface_end)(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_capture_stats *st);
  void (*session_end)(ps_sink *sk, const ps_session_info *s);
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
  /* Optional: whether the output an interface writes to (its slot) has
   * failed for good, with the reason in why (len bytes): 0 no; 1 yes,
   * and what it held was dropped: its session must be refused before
   * anything more of it is acknowledged; 2 yes, after everything it
   * held was written (a rotation's new file failed): its session may be
   * acknowledged for that, and must be refused before it sends more. */
  int (*failed)(ps_sink *sk, void *slot, char *why, size_t len);
  /* Optional (NULL: no files): fills up to max marks of the files open
   * now, sizes as of the last successful flush; returns how many. */
  unsigned (*marks)(ps_sink *sk, ps__file_mark *out, unsigned max);
  int (*close)(ps_sink *sk);
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
  char errmsg[PS_ERRMSG_MAX];
};

void ps__sink_set_log(ps_sink *sk, ps_log_fn fn, void *ud);

#endif
