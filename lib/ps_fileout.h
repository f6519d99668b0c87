/* File output: one capture file being written, whole records at a time,
 * and how a new one is opened - under a name nobody else's file has,
 * never through a symbolic link, a named pipe or device only where the
 * user named it, or continuing an existing file of ours (--append). */
#ifndef PS_FILEOUT_H
#define PS_FILEOUT_H

#include "ps_fmt.h"
#include "ps_sink.h"

#include <sys/types.h>
#include <time.h>

/* One output file being written (or standard output). */
typedef struct ps__outfile {
  char *path;       /* NULL: no file */
  int fd;           /* -1: not open */
  int is_stdout;    /* standard output, or a FIFO or device written as
                       such: never renamed, rotated or cut back */
  uint64_t size;    /* bytes on disk, whole records only */
  uint64_t flushed; /* size as of the last successful flush */
  uint64_t packets; /* packet records in the file and its buffers */
  ps__buf hdr;      /* the file's header, not yet written */
  ps__buf buf;      /* records, not yet written */
  int has_header;   /* the header is on disk or in hdr */
  int announced;    /* on_open was called */
  int write_failed; /* packet() leaves writing to the next flush */
  int rotated;      /* started by a rotation or reopen */
  dev_t dev;        /* the file opened (fstat), to know it again */
  ino_t ino;
} ps__outfile;

/* Whether an error creating or writing a file means that this file can
 * never be created or written as it is named (a name too long, no
 * permission, a missing directory, the reader of a pipe gone): then its
 * output fails and the sensors written to it are refused, rather than
 * every sensor being held back for good. Anything else (a full disk, a
 * quota, an I/O error, an unknown error) may pass: it is retried while
 * everyone waits, which loses nothing. */
int ps__fileout_errno_final(int e);

/* Writes b to o whole or not at all: a failed write is cut back to
 * o->size so no partial record stays in the file, and b keeps every
 * byte. Returns 0, PS_ERR_IO (may pass: retry) or PS_ERR_REFUSED (this
 * file cannot be written: see ps__fileout_errno_final), errmsg in sk. */
int ps__outfile_write_buf(ps_sink *sk, ps__outfile *o, ps__buf *b);
/* Writes what o holds: its header first (then tells sk->on_open of the
 * file, once), then its records. Returns as ps__outfile_write_buf. */
int ps__outfile_write(ps_sink *sk, ps__outfile *o);
/* Closes o's descriptor (not standard output's) and frees its buffers;
 * the path stays (the caller decides what becomes of it). Returns 0 or
 * PS_ERR_IO (errmsg in sk). */
int ps__outfile_close(ps_sink *sk, ps__outfile *o);

/* What a sequence of files remembers of its names: the next file gets
 * the next free number, and the last one, closed because it went idle,
 * can be taken up again. */
typedef struct ps__outnames {
  char *last_base;    /* its last file's name before numbering ... */
  unsigned last_n;    /* ... and the number it got (0: none) */
  char *last_path;    /* its last file, closed because it went idle */
  uint64_t last_size; /* ... as it was left */
  dev_t last_dev;
  ino_t last_ino;
} ps__outnames;

void ps__outnames_free(ps__outnames *nm);

/* How to open the next file of a sequence. */
typedef struct ps__outfile_how {
  int literal;   /* the caller's path as is, created or truncated (as
                    fopen "w" would: ps_pcap_sink(), ps_pcapng_sink()) */
  int append;    /* continue the last existing file of the sequence */
  int as_is;     /* the name is the one given: a named pipe or device
                    there is written as it is, like standard output */
  int from_zero; /* numbering starts again (a reopen) */
  /* The format, for the tail scan of a file to continue. */
  const ps__fmtw *w;
  /* Names this output created in this run (their being taken is no
   * news), and how many. */
  char *const *made;
  unsigned n_made;
} ps__outfile_how;

/* Opens the next file of a sequence named base (taken: freed or kept):
 * never over an existing file (BASE.1.EXT, BASE.2.EXT, ... instead,
 * with a warning), or, appending, after the last whole record of the
 * last existing file of the sequence (a torn end cut, logged). A new
 * file is always created (O_EXCL, O_NOFOLLOW), so a name someone else
 * took, also with a symbolic link, is never written through. o->hdr,
 * built before, is written at once (dropped if an existing header serves:
 * see ps__fmt.header_once) and sk->on_open told. *made: 1 when a new name
 * was made (for the caller's list of them). Returns 0, PS_ERR_NOMEM,
 * PS_ERR_IO (may pass: retry) or PS_ERR_REFUSED (no file can be created
 * under this name: see ps__fileout_errno_final), errmsg in sk. */
int ps__outfile_open(ps_sink *sk, ps__outfile *o, ps__outnames *nm, char *base,
                     const ps__outfile_how *how, int *made);

/* Start-up check that the files of template tmpl can really be created
 * (see ps_file_sink()). Returns 0, PS_ERR_NOMEM or PS_ERR_IO (errmsg in
 * sk). */
int ps__fileout_probe(ps_sink *sk, const char *tmpl, int split, int append);

/* --- output file names --- */

/* Expands a path template: strftime(3) conversions with tm, and each
 * "{sensor}" replaced by sensor made safe for a file name (every '/'
 * and a leading '.' become '_'); sensor NULL leaves "{sensor}" as it
 * is. Returns a malloc'ed string, NULL when out of memory. */
char *ps__path_expand(const char *tmpl, const struct tm *tm,
                      const char *sensor);
/* path with every field (e.g. "{capture}") replaced by value made safe
 * for a file name (as ps__name_for_file). malloc'ed, NULL when out of
 * memory. */
char *ps__path_fill(const char *path, const char *field, const char *value);
/* "dir/cap.pcap" + "x" -> "dir/cap.x.pcap"; no extension in the last
 * component: "dir/cap" -> "dir/cap.x". malloc'ed, NULL when out of
 * memory. */
char *ps__path_insert(const char *path, const char *tag);
/* Copies a sensor name into out (outlen bytes) as a file name part. */
void ps__name_for_file(char *out, size_t outlen, const char *name);

#endif
