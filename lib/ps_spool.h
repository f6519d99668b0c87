/*
 * The sensor's on-disk spool (ps_stream_set_spool(), ps-sensor
 * --spool-dir): a copy of the replay queue in a directory, so batches a
 * killed or restarted sensor had not got acknowledged are sent by the
 * next run, under the same stream (the receiver skips what it has).
 *
 * DIR/lock    flock()ed by the process using the spool
 * DIR/stream  the stream: "PSS1", u64 stream id, u8 codec, u8 name length,
 *             name, u16 interface count, per interface u32 link type, u32
 *             snaplen, u8 tsres, u8 name length, name; then a u32 CRC-32
 *             of all before it. Replaced atomically (rename).
 * DIR/seg-N   batches from seq N on, appended as records: u32 length,
 *             u32 CRC-32 of the payload, payload = u64 seq, u32 packets,
 *             u16 n, n x (u32 interface, u32 packets), the BATCH frame.
 *             A segment is removed once every batch in it has left the
 *             queue (acknowledged, dropped or lost).
 * All integers big-endian. A record cut short by a crash fails its CRC:
 * it and what follows are ignored (those batches are counted nowhere by
 * the next run: they were captured by the run that died).
 */
#ifndef PS_SPOOL_H
#define PS_SPOOL_H

#include "ps_common.h"
#include "ps_proto.h"

typedef struct ps__spool ps__spool;

typedef struct ps__spool_iface {
  uint32_t linktype;
  uint32_t snaplen;
  uint8_t tsres;
  char name[256];
} ps__spool_iface;

typedef struct ps__spool_meta {
  uint64_t stream_id;
  uint8_t codec;
  char name[256];
  uint32_t n_ifaces;
  ps__spool_iface ifaces[PS_MAX_IFACES];
} ps__spool_meta;

typedef struct ps__spool_rec {
  uint64_t seq;
  uint32_t count;
  uint16_t n_if;
  const uint32_t *ifc; /* n_if pairs: interface, packets */
  const uint8_t *frame;
  size_t len;
} ps__spool_rec;

/* Opens (creating, mode 0700) and locks dir. PS_ERR_IO with the reason:
 * also when dir belongs to another user (root excepted) or anyone can
 * write it without its sticky bit, or its lock file is not ours. Files
 * in it are opened relative to it, never through a symbolic link, and
 * created with O_EXCL, mode 0600; one that is not a regular file of this
 * user writable by nobody else is ignored (logged), never read, cut or
 * removed. */
int ps__spool_open(ps__spool **out, const char *dir, ps_log_fn log,
                   void *log_ud, char *errbuf);

/* What a previous run left: 1 with *meta filled and fn called for each
 * intact batch in seq order (fn returning non-zero stops with that
 * value), 0 when there is nothing to send. */
int ps__spool_recover(ps__spool *sp, ps__spool_meta *meta,
                      int (*fn)(void *ud, const ps__spool_rec *r), void *ud,
                      char *errbuf);

int ps__spool_set_meta(ps__spool *sp, const ps__spool_meta *meta, char *errbuf);
int ps__spool_append(ps__spool *sp, const ps__spool_rec *r, char *errbuf);

/* Every batch with seq < below has left the queue: segments holding only
 * such batches are removed. */
void ps__spool_release(ps__spool *sp, uint64_t below);

/* done: the stream ended with every batch acknowledged, so the spool is
 * emptied (the next run starts a new stream). */
void ps__spool_close(ps__spool *sp, int done);

#endif
