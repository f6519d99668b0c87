/* Capture formats behind one table, as libpcap's savefile readers are
 * (sf-pcap.c, sf-pcapng.c behind one set of functions): what a stream of
 * one format holds and in which order, and reading back the tail of a
 * file for --append. One module per format (ps_fmt_pcap.c,
 * ps_fmt_pcapng.c), both sans I/O: everything goes into the caller's
 * buffers, files are read through a callback, and the clock is passed
 * in. A file sink keeps one writer per sequence of files; a live feed
 * would keep one per client and reuse the same table.
 *
 * A writer's life: interfaces join and leave it (join, stats, leave);
 * each stream it writes (a file, a client) starts with header(), which
 * lists the interfaces joined then; records follow. An interface that
 * joins once the stream has its header gets what the format needs for it
 * in the stream (a pcapng interface block) at once. */
#ifndef PS_FMT_H
#define PS_FMT_H

#include "ps_common.h"

#include <sys/types.h>
#include <time.h>

typedef struct ps__fmt ps__fmt;

/* What every writer of one output shares; the output keeps it for as
 * long as its writers live. */
typedef struct ps__fmt_params {
  int nano; /* classic pcap: nanosecond records (default micro) */
  /* The pcapng section header's shb_userappl, shb_os and comment. */
  char appl[128], os[300], comment[400];
} ps__fmt_params;

/* Sets the section header strings for this host (uname, host name). */
void ps__fmt_params_init(ps__fmt_params *p, int nano);

/* One writer: the state of a format for one output (the interfaces
 * joined, how they are numbered in the current stream). Formats extend
 * it. */
typedef struct ps__fmtw {
  const ps__fmt *fmt;
  const ps__fmt_params *params;
} ps__fmtw;

/* Reads up to n bytes at off into buf, as pread(2): the count read (less
 * only at the end of the file), or -1 on an error. */
typedef ssize_t (*ps__fmt_read_fn)(void *ud, uint64_t off, void *buf, size_t n);

/* What the tail scan found in an existing file. */
typedef struct ps__fmt_tail {
  /* The bytes from the start that hold a header and whole records; the
   * rest is a torn end (to cut). */
  uint64_t good;
  /* The first good bytes start with a header of this output (then
   * header_once says whether it serves what is appended). */
  int has_header;
} ps__fmt_tail;

struct ps__fmt {
  const char *name; /* "pcap", "pcapng" */
  /* Whether a file continued after its last whole record (--append, or
   * a file taken up again) goes on under its first header: classic pcap
   * has one header per file; pcapng starts a new section, since the
   * interface ids of this run start again from 0. */
  int header_once;
  /* A writer with no interface; NULL when out of memory. */
  ps__fmtw *(*create)(const ps__fmt *fmt, const ps__fmt_params *p);
  void (*destroy)(ps__fmtw *w);
  /* Whether an interface of this link type can join w now (classic pcap
   * holds one link type per file). */
  int (*accepts)(const ps__fmtw *w, uint32_t linktype);
  /* Appends the start of a new stream to out: a pcap file header, or a
   * pcapng section header and an interface block per interface joined,
   * numbered from 0 in this stream. Returns 1, 0 when it cannot be
   * written yet (classic pcap before the first interface tells the link
   * type; with final set it says Ethernet instead, as tcpdump does for
   * an empty capture), or PS_ERR_NOMEM. */
  int (*header)(ps__fmtw *w, ps__buf *out, int final);
  /* An interface of session s joins at time now. out: the stream has its
   * header, and what this interface needs in it goes there; NULL: it is
   * listed by the next header(). *slot is its state for the calls
   * below. note: a remark worth logging once per output (a precision
   * this output drops), or "". Returns 0 or PS_ERR_NOMEM (nothing
   * joined). */
  int (*join)(ps__fmtw *w, const ps_session_info *s,
              const ps_interface_info *ifc, const struct timespec *now,
              ps__buf *out, void **slot, char *note, size_t notelen);
  /* The interface's last counters, at time now, into out (pcapng: an
   * Interface Statistics Block; classic pcap has no place for them).
   * Returns 0 or PS_ERR_NOMEM. */
  int (*stats)(ps__fmtw *w, void *slot, const ps_capture_stats *st,
               const struct timespec *now, ps__buf *out);
  /* The interface leaves: slot is freed. */
  void (*leave)(ps__fmtw *w, void *slot);
  /* Whether this output holds pkt as it is, its time stamp in
   * particular: 0, or PS_ERR_PROTOCOL with the reason in errmsg
   * (PS_ERRMSG_MAX bytes). */
  int (*check)(const ps__fmt_params *p, const ps_interface_info *ifc,
               const ps_packet *pkt, char *errmsg);
  /* Appends pkt's record (pkt->caplen bytes of data, at most
   * PS_MAX_CAPLEN) to out. Returns 0, PS_ERR_NOMEM, or PS_ERR_INVALID
   * (nothing appended) for what check() refuses. */
  int (*record)(ps__fmtw *w, void *slot, const ps_interface_info *ifc,
                const ps_packet *pkt, ps__buf *out);
  /* --append: reads the size bytes of an existing file through read and
   * says how far it holds whole records of an output that w could
   * continue (classic pcap: the same precision and link type; pcapng: any
   * valid blocks). Returns 1 (*out set), 0 if the file is not one w can
   * continue (why says it, as "it is not a pcapng file"), or
   * PS_ERR_NOMEM. A read error ends the good part where it happens. */
  int (*tail_scan)(const ps__fmtw *w, ps__fmt_read_fn read, void *ud,
                   uint64_t size, ps__fmt_tail *out, char *why, size_t whylen);
};

extern const ps__fmt ps__fmt_pcap;
extern const ps__fmt ps__fmt_pcapng;

/* A window of read-ahead over a file read through a callback, for the
 * tail scanners. */
typedef struct ps__fmt_reader {
  ps__fmt_read_fn read;
  void *ud;
  uint64_t size;
  uint64_t base;
  size_t len;
  uint8_t buf[65536];
} ps__fmt_reader;

/* A reader over size bytes, malloc'ed; NULL when out of memory. */
ps__fmt_reader *ps__fmt_reader_new(ps__fmt_read_fn read, void *ud,
                                   uint64_t size);
/* Points *p at n (<= 4096) bytes at off: 0, or -1 past the end or on a
 * read error. */
int ps__fmt_reader_get(ps__fmt_reader *r, uint64_t off, size_t n,
                       const uint8_t **p);

/* libpcap's name of a link type ("EN10MB"), NULL if it has none. */
const char *ps__linktype_name(uint32_t linktype);

#endif
