/*
 * The receiver's journal: after each round's outputs are written and
 * before the round's batches are acknowledged, one record says how far
 * each output file holds acknowledged data and the last batch written of
 * each sensor stream. After a crash (SIGKILL, power is out of scope: no
 * fsync) the next start cuts every file back to its last recorded size,
 * so what follows (never acknowledged, so the sensors still hold it) is
 * neither torn nor written twice, and drops resent batches it already has.
 *
 * File: "PSJ1" and 4 zero bytes, then records: u32 length, u32 CRC-32 of
 * the payload, payload; all big-endian. Payload items:
 *   'F' u64 size, u64 inode, u16 len, name   (a file's committed size)
 *   'S' u64 stream id, u64 seq, u8 len, name (a stream's last batch)
 * Later items win. A torn last record fails its CRC and is ignored.
 *
 * A file's name is relative to the journal's directory (a plain name, or
 * one with subdirectories: never "..", never absolute) and its inode is
 * the one it had when the receiver created or opened it. The journal is
 * trusted only if it is a regular file, not a link, of the receiver's
 * user, writable by nobody else; a file is cut back only if it is reached
 * from the journal's directory without a symbolic link, has the recorded
 * inode (0 matches nothing) on that directory's file system, one link,
 * and the receiver's (or the journal's, or its directory's) owner.
 * Anyone able to write the output's directory can thus neither redirect
 * the journal's writes nor make a restart cut any other file.
 */
#ifndef PS_JOURNAL_H
#define PS_JOURNAL_H

#include "ps_sink.h"
#include "ps_streamtab.h"

typedef struct ps__journal ps__journal;

/*
 * Opens the journal at path (creating it, mode 0600), replays it into tab
 * and repairs the files it lists. Returns 0, or PS_ERR_IO with the reason
 * in errbuf: a journal that is not one of ours (a symbolic link, another
 * user's, writable by others, not a journal) is refused, never
 * overwritten, and so is a temporary path.new that is not ours.
 */
int ps__journal_open(ps__journal **out, const char *path, ps__streamtab *tab,
                     ps_log_fn log, void *log_ud, char *errbuf);

/* A file was created or opened with size bytes (fd: it, or -1 to look it
 * up by path): recorded at once, before any packet goes into it. A file
 * outside the journal's directory, or reached there only through a
 * symbolic link, is not recorded (logged once): it is never cut back. */
int ps__journal_file(ps__journal *j, const char *path, int fd, uint64_t size,
                     char *errbuf);

/* One round: the open files' sizes and the streams changed since the last
 * commit, in one write(2); files that were open and no longer are get
 * their final size. Cleans the table's dirty marks. */
int ps__journal_commit(ps__journal *j, const ps__file_mark *marks, unsigned n,
                       ps__streamtab *tab, char *errbuf);

void ps__journal_close(ps__journal *j);

#endif
