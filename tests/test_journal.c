/* Unit tests of lib/ps_journal and lib/ps_streamtab: what a receiver
 * restarted after a crash knows, and how it repairs its files. */
#include "config.h"

#include "unit_util.h"

#include "ps_journal.h"
#include "ps_spool.h"

#include <dirent.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[] = "/tmp/ps-journal-XXXXXX";
static char jpath[256], f1[256], f2[256];
static char logbuf[8192];

static void log_fn(ps_log_level level, const char *msg, void *ud) {
  (void)level;
  (void)ud;
  size_t n = strlen(logbuf);
  snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static void setup(void) {
  ck_assert_ptr_nonnull(mkdtemp(strcpy(dir, "/tmp/ps-journal-XXXXXX")));
  snprintf(jpath, sizeof(jpath), "%s/out.pcap.state", dir);
  snprintf(f1, sizeof(f1), "%s/out.pcap", dir);
  snprintf(f2, sizeof(f2), "%s/out.1.pcap", dir);
  logbuf[0] = '\0';
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(p) : unlink(p);
}

/* Everything a test left in dir, links included (never followed). */
static void teardown(void) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_bytes(const char *path, size_t n, int append) {
  int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
  ck_assert_int_ge(fd, 0);
  uint8_t buf[4096];
  memset(buf, 0xa5, sizeof(buf));
  while (n > 0) {
    size_t k = n < sizeof(buf) ? n : sizeof(buf);
    ck_assert_int_eq(write(fd, buf, k), (ssize_t)k);
    n -= k;
  }
  close(fd);
}

/* Opens the journal at jpath, reading what it holds into tab; must
 * succeed. */
static ps__journal *jopen(ps__streamtab *tab) {
  char eb[PS_ERRMSG_MAX];
  ps__journal *j = NULL;
  int rc = ps__journal_open(&j, jpath, tab, log_fn, NULL, eb);
  ck_assert_msg(rc == 0, "journal open: %d %s", rc, eb);
  return j;
}

static void jclose(ps__journal *j, ps__streamtab *tab) {
  ps__journal_close(j);
  ps__streamtab_free(tab);
}

/* The journal logged a line containing sub. */
static void expect_log(const char *sub) {
  ck_assert_msg(strstr(logbuf, sub) != NULL, "log lacks \"%s\": %s", sub,
                logbuf);
}

static off_t size_of(const char *path) {
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  return st.st_size;
}

/* A crash after writing but before the journal record: the restart cuts
 * the file back and remembers how far each stream was written. */
START_TEST(test_cut_back_after_crash) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  j = jopen(&tab);
  write_bytes(f1, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f1, -1, 24, eb), 0);
  write_bytes(f1, 1000, 1);
  ps__stream_ent *a = ps__streamtab_get(&tab, "sensor-a", 8, 1);
  ps__stream_ent *b = ps__streamtab_get(&tab, "sensor-b", 8, 2);
  ps__streamtab_advance(&tab, a, 5);
  ps__streamtab_advance(&tab, b, 9);
  ps__file_mark m = {f1, 1024, -1};
  ck_assert_int_eq(ps__journal_commit(j, &m, 1, &tab, eb), 0);
  ck_assert_uint_eq(tab.n_dirty, 0);
  /* The next round writes 500 bytes (batch 6 of a) and dies. */
  write_bytes(f1, 500, 1);
  ps__streamtab_advance(&tab, a, 6);
  jclose(j, &tab);

  j = jopen(&tab);
  ck_assert_int_eq(size_of(f1), 1024);
  expect_log("removed 500 bytes written after the "
             "last acknowledged batch");
  ck_assert_uint_eq(tab.n, 2);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "sensor-a", 8, 1)->seq, 5);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "sensor-b", 8, 2)->seq, 9);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "sensor-a", 8, 2)->seq, 0);
  jclose(j, &tab);
}
END_TEST

/* A file closed by rotation keeps everything written before the commit
 * that noticed it closed; a file opened after the last commit is cut to
 * its header. */
START_TEST(test_closed_and_new_files) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  j = jopen(&tab);
  write_bytes(f1, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f1, -1, 24, eb), 0);
  ps__file_mark m = {f1, 24, -1};
  ck_assert_int_eq(ps__journal_commit(j, &m, 1, &tab, eb), 0);
  /* Round: f1 grows to 3000 and is closed; f2 opens with a header. */
  write_bytes(f1, 2976, 1);
  write_bytes(f2, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f2, -1, 24, eb), 0);
  ps__file_mark m2 = {f2, 24, -1};
  ck_assert_int_eq(ps__journal_commit(j, &m2, 1, &tab, eb), 0);
  /* Next round: f2 gets 100 bytes, crash before the commit. */
  write_bytes(f2, 100, 1);
  ps__journal_close(j);
  j = jopen(&tab);
  ck_assert_int_eq(size_of(f1), 3000);
  ck_assert_int_eq(size_of(f2), 24);
  jclose(j, &tab);
}
END_TEST

/* A record cut short by the crash is ignored, the ones before count. */
START_TEST(test_torn_record) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  j = jopen(&tab);
  ps__streamtab_advance(&tab, ps__streamtab_get(&tab, "s", 1, 3), 4);
  ck_assert_int_eq(ps__journal_commit(j, NULL, 0, &tab, eb), 0);
  ps__streamtab_advance(&tab, ps__streamtab_get(&tab, "s", 1, 3), 8);
  ck_assert_int_eq(ps__journal_commit(j, NULL, 0, &tab, eb), 0);
  jclose(j, &tab);
  /* Cut the last record in the middle. */
  off_t n = size_of(jpath);
  ck_assert_int_eq(truncate(jpath, n - 5), 0);
  j = jopen(&tab);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "s", 1, 3)->seq, 4);
  expect_log("ignoring");
  jclose(j, &tab);
  /* A flipped byte fails the CRC the same way. */
  j = jopen(&tab);
  ps__streamtab_advance(&tab, ps__streamtab_get(&tab, "s", 1, 3), 8);
  ck_assert_int_eq(ps__journal_commit(j, NULL, 0, &tab, eb), 0);
  jclose(j, &tab);
  n = size_of(jpath);
  int fd = open(jpath, O_RDWR);
  ck_assert_int_ge(fd, 0);
  uint8_t last;
  ck_assert_int_eq(pread(fd, &last, 1, n - 1), 1);
  last ^= 0x01;
  ck_assert_int_eq(pwrite(fd, &last, 1, n - 1), 1);
  close(fd);
  logbuf[0] = '\0';
  j = jopen(&tab);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "s", 1, 3)->seq, 4);
  expect_log("bytes of a record cut short");
  jclose(j, &tab);
}
END_TEST

/* A path the journal knows now names another file: never cut it. */
START_TEST(test_replaced_file_left_alone) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  j = jopen(&tab);
  write_bytes(f1, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f1, -1, 24, eb), 0);
  ps__journal_close(j);
  /* Someone moves it away and another program writes a new one. */
  ck_assert_int_eq(rename(f1, f2), 0);
  write_bytes(f1, 5000, 0);
  j = jopen(&tab);
  ck_assert_int_eq(size_of(f1), 5000);
  expect_log("is not the file this receiver wrote");
  jclose(j, &tab);
}
END_TEST

START_TEST(test_not_a_journal) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  write_bytes(jpath, 100, 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "is not a ps-receiver journal");
  ck_assert_int_eq(size_of(jpath), 100); /* never overwritten */
  /* Shorter than the magic: refused too, not taken for an empty one. */
  write_bytes(jpath, 5, 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "is not a ps-receiver journal");
  ck_assert_int_eq(size_of(jpath), 5);
  ps__streamtab_free(&tab);
}
END_TEST

/* Many rounds: the journal is rewritten, and still says the same. */
START_TEST(test_compaction) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  j = jopen(&tab);
  write_bytes(f1, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f1, -1, 24, eb), 0);
  char name[32];
  for (int round = 1; round <= 3000; round++) {
    for (int k = 0; k < 10; k++) {
      snprintf(name, sizeof(name), "sensor-%d", k);
      ps__streamtab_advance(
          &tab, ps__streamtab_get(&tab, name, strlen(name), 1), round);
    }
    ps__file_mark m = {f1, 24 + (uint64_t)round, -1};
    ck_assert_int_eq(ps__journal_commit(j, &m, 1, &tab, eb), 0);
  }
  write_bytes(f1, 3000, 1);
  ck_assert_int_lt(size_of(jpath), (1 << 20) + 4096);
  jclose(j, &tab);
  write_bytes(f1, 77, 1); /* uncommitted */
  j = jopen(&tab);
  ck_assert_int_eq(size_of(f1), 3024);
  ck_assert_uint_eq(tab.n, 10);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "sensor-7", 8, 1)->seq, 3000);
  jclose(j, &tab);
}
END_TEST

/* The table forgets idle streams first when full, never active ones. */
START_TEST(test_streamtab_limit) {
  ps__streamtab tab = {0};
  char name[32];
  for (int k = 0; k < PS_STREAMTAB_MAX; k++) {
    snprintf(name, sizeof(name), "s%d", k);
    ps__stream_ent *e = ps__streamtab_get(&tab, name, strlen(name), 0);
    ck_assert_ptr_nonnull(e);
    e->used_ms = 1000 + k;
  }
  ps__streamtab_get(&tab, "s0", 2, 0)->owner = (struct ps__session *)&tab;
  ck_assert_ptr_nonnull(ps__streamtab_get(&tab, "new", 3, 0));
  ck_assert_uint_eq(tab.n, PS_STREAMTAB_MAX);
  /* s0 was oldest but in use: s1 went. */
  ck_assert_uint_eq(ps__streamtab_get(&tab, "s0", 2, 0)->used_ms, 1000);
  ps__stream_ent *s1 = ps__streamtab_get(&tab, "s1", 2, 0);
  ck_assert_uint_eq(s1->seq, 0);
  ck_assert_int_ne(s1->used_ms, 1001);
  ps__streamtab_free(&tab);
}
END_TEST

/* A commit that could not be written (the disk filled) leaves nothing
 * behind in memory: the next commit still records every file's size and
 * every closed file's final size, or a crash after its acknowledgements
 * would cut acknowledged batches off. */
START_TEST(test_failed_commit_retried) {
  char eb[PS_ERRMSG_MAX];
  ps__streamtab tab = {0};
  ps__journal *j;
  j = jopen(&tab);
  write_bytes(f1, 24, 0);
  write_bytes(f2, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f1, -1, 24, eb), 0);
  ck_assert_int_eq(ps__journal_file(j, f2, -1, 24, eb), 0);
  ps__file_mark m[2] = {{f1, 24, -1}, {f2, 24, -1}};
  ck_assert_int_eq(ps__journal_commit(j, m, 2, &tab, eb), 0);
  /* Round: both files grow, f2 is closed (rotation); the journal cannot
   * grow (EFBIG here, ENOSPC on a full disk). */
  write_bytes(f1, 1000, 1);
  write_bytes(f2, 2000, 1);
  ps__stream_ent *a = ps__streamtab_get(&tab, "sensor-a", 8, 1);
  ps__streamtab_advance(&tab, a, 3);
  ps__file_mark m1 = {f1, 1024, -1};
  struct rlimit old, lim;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = (rlim_t)size_of(jpath);
  signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  ck_assert_int_eq(ps__journal_commit(j, &m1, 1, &tab, eb), PS_ERR_IO);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
  /* Retried with nothing new: this one goes out, then the ACKs. */
  ck_assert_int_eq(ps__journal_commit(j, &m1, 1, &tab, eb), 0);
  ps__journal_close(j); /* crash */
  ps__streamtab_free(&tab);
  j = jopen(&tab);
  ck_assert_int_eq(size_of(f1), 1024);
  ck_assert_int_eq(size_of(f2), 2024);
  ck_assert_uint_eq(ps__streamtab_get(&tab, "sensor-a", 8, 1)->seq, 3);
  jclose(j, &tab);
}
END_TEST

/* ------------------------------------- journals that are not ours */

static uint64_t ino_of(const char *path) {
  struct stat st;
  ck_assert_int_eq(lstat(path, &st), 0);
  return (uint64_t)st.st_ino;
}

/* Writes a journal of one record naming files (size 0 each), as anyone
 * who can write the output's directory could. */
static void forge(const char *path, int n, const char *const *names,
                  const uint64_t *inos) {
  uint8_t buf[4096];
  size_t off = 16;
  memcpy(buf, "PSJ1\0\0\0\0", 8);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(names[i]);
    buf[off] = 'F';
    ps__put64(buf + off + 1, 0);
    ps__put64(buf + off + 9, inos[i]);
    ps__put16(buf + off + 17, (uint16_t)len);
    memcpy(buf + off + 19, names[i], len);
    off += 19 + len;
  }
  ps__put32(buf + 8, (uint32_t)(off - 16));
  ps__put32(buf + 12, (uint32_t)crc32(0, buf + 16, (uInt)(off - 16)));
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, buf, off), (ssize_t)off);
  close(fd);
}

/* F5: an entry with inode 0 matched any file; one naming a file outside
 * the journal's directory (absolute, or with "..") was cut all the same.
 * None of them is touched now, and the journal still opens. Relative
 * names are resolved from the journal's directory (the test runs there,
 * so a receiver resolving them from its working directory is caught
 * too). */
START_TEST(test_forged_entries_ignored) {
  char eb[PS_ERRMSG_MAX], sub[300], jsub[320], inside[300], outside[300];
  ps__streamtab tab = {0};
  ps__journal *j;
  snprintf(sub, sizeof(sub), "%s/sub", dir);
  snprintf(jsub, sizeof(jsub), "%s/.cap.pcap.state", sub);
  snprintf(inside, sizeof(inside), "%s/sub/victim", dir);
  snprintf(outside, sizeof(outside), "%s/victim", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  write_bytes(inside, 30, 0);
  write_bytes(outside, 30, 0);
  ck_assert_int_eq(chdir(sub), 0);
  const char *names[] = {"victim", "../victim", outside, "x\nfake: line"};
  uint64_t inos[] = {0, ino_of(outside), ino_of(outside), 0};
  forge(jsub, 4, names, inos);
  ck_assert_int_eq(ps__journal_open(&j, jsub, &tab, log_fn, NULL, eb), 0);
  ck_assert_int_eq(size_of(inside), 30);
  ck_assert_int_eq(size_of(outside), 30);
  ck_assert_ptr_null(strstr(logbuf, "removed"));
  expect_log("entry for victim (no inode recorded)");
  ck_assert_ptr_nonnull(
      strstr(logbuf, "entry for ../victim (not a file in its directory)"));
  expect_log("(not a file in its directory)");
  expect_log("entry for x?fake: line (no inode");
  ps__journal_close(j);
  /* Forgotten: the rewritten journal names none of them. */
  logbuf[0] = '\0';
  ck_assert_int_eq(ps__journal_open(&j, jsub, &tab, log_fn, NULL, eb), 0);
  ck_assert_ptr_null(strstr(logbuf, "victim"));
  ck_assert_int_eq(size_of(jsub), 8 + 8);
  jclose(j, &tab);
}
END_TEST

/* F4: a symbolic link as the journal (dangling: it would be created; or
 * to a file) is refused and neither created nor written. */
START_TEST(test_symlinked_journal_refused) {
  char eb[PS_ERRMSG_MAX], target[300];
  ps__streamtab tab = {0};
  ps__journal *j;
  snprintf(target, sizeof(target), "%s/created-by-the-receiver", dir);
  ck_assert_int_eq(symlink(target, jpath), 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "out.pcap.state: it is a symbolic link");
  ck_assert_ptr_nonnull(strstr(eb, "remove it or fix its owner/mode"));
  ck_assert_int_eq(access(target, F_OK), -1);
  /* The same link to an existing file: that file is left as it was. */
  write_bytes(target, 30, 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "it is a symbolic link");
  ck_assert_int_eq(size_of(target), 30);
  ps__streamtab_free(&tab);
}
END_TEST

/* F4: the temporary (.new) as a link to a file made every start write
 * the journal into that file. Refused now, the file untouched; a stale
 * temporary of ours (a receiver killed while compacting) is replaced. */
START_TEST(test_symlinked_temporary_refused) {
  char eb[PS_ERRMSG_MAX], tmp[300], victim[300];
  ps__streamtab tab = {0};
  ps__journal *j;
  snprintf(tmp, sizeof(tmp), "%s.new", jpath);
  snprintf(victim, sizeof(victim), "%s/victim", dir);
  write_bytes(victim, 30, 0);
  ck_assert_int_eq(symlink(victim, tmp), 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "out.pcap.state.new is a symbolic link: remove it");
  ck_assert_int_eq(size_of(victim), 30);
  uint8_t buf[64];
  int fd = open(victim, O_RDONLY);
  ck_assert_int_eq(read(fd, buf, sizeof(buf)), 30);
  close(fd);
  for (int i = 0; i < 30; i++) {
    ck_assert_uint_eq(buf[i], 0xa5);
  }
  struct stat st;
  ck_assert_int_eq(lstat(tmp, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  /* A stale one of ours goes. */
  ck_assert_int_eq(unlink(tmp), 0);
  write_bytes(tmp, 100, 0);
  chmod(tmp, 0600);
  j = jopen(&tab);
  ck_assert_int_eq(access(tmp, F_OK), -1);
  ck_assert_int_eq(lstat(jpath, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  ck_assert_uint_eq(st.st_mode & 0777, 0600);
  jclose(j, &tab);
}
END_TEST

/* F5: a journal someone else could have written (another owner, group
 * or world writable, hard-linked) is refused, not read. */
START_TEST(test_untrusted_journal_refused) {
  char eb[PS_ERRMSG_MAX], other[300], sub[300], victim[300];
  ps__streamtab tab = {0};
  ps__journal *j;
  /* A valid journal saying: cut victim to 0 bytes. */
  snprintf(victim, sizeof(victim), "%s/victim", dir);
  write_bytes(victim, 30, 0);
  const char *names[] = {"victim"};
  uint64_t inos[] = {ino_of(victim)};
  forge(jpath, 1, names, inos);
  ck_assert_int_eq(chmod(jpath, 0666), 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "it is writable by others than its owner (mode 0666)");
  ck_assert_int_eq(chmod(jpath, 0620), 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "(mode 0620)");
  ck_assert_int_eq(chmod(jpath, 0600), 0);
  snprintf(other, sizeof(other), "%s/other-name", dir);
  ck_assert_int_eq(link(jpath, other), 0);
  ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb), PS_ERR_IO,
                eb, "it has 2 hard links");
  ck_assert_int_eq(unlink(other), 0);
  ck_assert_int_eq(size_of(victim), 30);
  if (geteuid() == 0) {
    /* Another user's journal, in a directory of ours (root's). */
    ck_assert_int_eq(chown(jpath, 65534, 65534), 0);
    ck_assert_err(ps__journal_open(&j, jpath, &tab, log_fn, NULL, eb),
                  PS_ERR_IO, eb,
                  "it is owned by uid 65534, not by this receiver (uid 0)");
    ck_assert_int_eq(size_of(victim), 30);
    /* The same, in that user's own directory: the journal a receiver
     * started as root with -Z rewrote as that user. Its files may be
     * cut; still only to what it says. */
    snprintf(sub, sizeof(sub), "%s/z", dir);
    char jz[320], fz[320];
    snprintf(jz, sizeof(jz), "%s/.cap.state", sub);
    snprintf(fz, sizeof(fz), "%s/cap.pcap", sub);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(chown(sub, 65534, 65534), 0);
    ck_assert_int_eq(ps__journal_open(&j, jz, &tab, log_fn, NULL, eb), 0);
    write_bytes(fz, 24, 0);
    ck_assert_int_eq(ps__journal_file(j, fz, -1, 24, eb), 0);
    ps__journal_close(j);
    write_bytes(fz, 100, 1);
    ck_assert_int_eq(chown(jz, 65534, 65534), 0);
    ck_assert_int_eq(chown(fz, 65534, 65534), 0);
    ck_assert_int_eq(ps__journal_open(&j, jz, &tab, log_fn, NULL, eb), 0);
    ck_assert_int_eq(size_of(fz), 24);
    ps__journal_close(j);
    /* But not once others may write that directory. (The start made
     * the journal root's again: its rewrite.) */
    ck_assert_int_eq(chown(jz, 65534, 65534), 0);
    ck_assert_int_eq(chmod(sub, 0775), 0);
    ck_assert_err(ps__journal_open(&j, jz, &tab, log_fn, NULL, eb), PS_ERR_IO,
                  eb, "it is owned by uid 65534");
  }
  ps__streamtab_free(&tab);
}
END_TEST

/* A recorded output replaced by a link (to a file with the recorded
 * inode, even), reached through a linked directory, or given to another
 * user: left as it is. */
START_TEST(test_repair_follows_no_link) {
  char eb[PS_ERRMSG_MAX], victim[300], sub[300], fsub[320];
  ps__streamtab tab = {0};
  ps__journal *j;
  snprintf(victim, sizeof(victim), "%s/victim", dir);
  snprintf(sub, sizeof(sub), "%s/d", dir);
  snprintf(fsub, sizeof(fsub), "%s/d/cap.pcap", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  j = jopen(&tab);
  write_bytes(f1, 24, 0);
  int fd = open(f1, O_RDONLY);
  ck_assert_int_eq(ps__journal_file(j, f1, fd, 24, eb), 0);
  close(fd);
  write_bytes(fsub, 24, 0); /* in a subdirectory: by its relative name */
  ck_assert_int_eq(ps__journal_file(j, fsub, -1, 24, eb), 0);
  write_bytes(f2, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f2, -1, 24, eb), 0);
  ps__journal_close(j);
  /* Given to another user (root only can): not ours to cut any more. */
  write_bytes(f2, 100, 1);
  if (geteuid() == 0) {
    ck_assert_int_eq(chown(f2, 65534, 65534), 0);
  }
  /* The output moves away; a link to it takes its place. */
  write_bytes(f1, 100, 1);
  ck_assert_int_eq(rename(f1, victim), 0);
  ck_assert_int_eq(symlink(victim, f1), 0);
  /* The subdirectory becomes a link to a directory with that file. */
  char moved[320];
  snprintf(moved, sizeof(moved), "%s/moved", dir);
  write_bytes(fsub, 100, 1);
  ck_assert_int_eq(rename(sub, moved), 0);
  ck_assert_int_eq(symlink(moved, sub), 0);
  j = jopen(&tab);
  ck_assert_int_eq(size_of(victim), 124);
  ck_assert_int_eq(size_of(fsub), 124);
  if (geteuid() == 0) {
    ck_assert_int_eq(size_of(f2), 124);
    expect_log("out.1.pcap is owned by uid 65534, not by "
               "this receiver: left as it is");
  }
  expect_log("out.pcap is a symbolic link: left");
  expect_log("d/cap.pcap: a directory on its way is a "
             "symbolic link");
  ck_assert_msg(geteuid() != 0 || strstr(logbuf, "removed") == NULL, "%s",
                logbuf);
  jclose(j, &tab);
}
END_TEST

/* An output outside the journal's directory is not recorded, so a
 * restart never cuts it. */
START_TEST(test_outside_file_not_recorded) {
  char eb[PS_ERRMSG_MAX], sub[300], jsub[320];
  ps__streamtab tab = {0};
  ps__journal *j;
  snprintf(sub, sizeof(sub), "%s/state", dir);
  snprintf(jsub, sizeof(jsub), "%s/x.state", sub);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  ck_assert_int_eq(ps__journal_open(&j, jsub, &tab, log_fn, NULL, eb), 0);
  write_bytes(f1, 24, 0);
  ck_assert_int_eq(ps__journal_file(j, f1, -1, 24, eb), 0);
  expect_log("out.pcap is outside the directory "
             "of the journal");
  ps__file_mark m = {f1, 24, -1};
  ck_assert_int_eq(ps__journal_commit(j, &m, 1, &tab, eb), 0);
  ck_assert_int_eq(ps__journal_commit(j, &m, 1, &tab, eb), 0);
  ps__journal_close(j);
  write_bytes(f1, 100, 1);
  ck_assert_int_eq(ps__journal_open(&j, jsub, &tab, log_fn, NULL, eb), 0);
  ck_assert_int_eq(size_of(f1), 124);
  ck_assert_int_eq(size_of(jsub), 16); /* nothing recorded */
  jclose(j, &tab);
}
END_TEST

/* ------------------------------------------------ the sensor's spool */

typedef struct got_recs {
  int n;
  uint64_t seq[8];
  uint32_t count[8];
  size_t len[8];
  uint8_t first_byte[8];
  uint32_t ifc0[8];
} got_recs;

static int collect(void *ud, const ps__spool_rec *r) {
  got_recs *g = ud;
  ck_assert_int_lt(g->n, 8);
  g->seq[g->n] = r->seq;
  g->count[g->n] = r->count;
  g->len[g->n] = r->len;
  g->first_byte[g->n] = r->len ? r->frame[0] : 0;
  g->ifc0[g->n] = r->n_if ? r->ifc[1] : 0;
  g->n++;
  return 0;
}

static void rm_tree(const char *d) {
  DIR *dd = opendir(d);
  if (dd == NULL) {
    return;
  }
  struct dirent *de;
  char p[1024];
  while ((de = readdir(dd)) != NULL) {
    if (de->d_name[0] != '.') {
      snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
      unlink(p);
    }
  }
  closedir(dd);
  rmdir(d);
}

/* What a killed sensor spooled comes back, a torn last record excepted,
 * and the directory is locked against a second sensor. */
START_TEST(test_spool_recover) {
  char eb[PS_ERRMSG_MAX], sdir[300], seg[400];
  snprintf(sdir, sizeof(sdir), "%s/spool", dir);
  ps__spool *sp, *other;
  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  ck_assert_err(ps__spool_open(&other, sdir, log_fn, NULL, eb), PS_ERR_IO, eb,
                "is in use by another sensor");
  ps__spool_meta *m = calloc(1, sizeof(*m));
  m->stream_id = 0x1122334455667788ull;
  m->codec = 2;
  strcpy(m->name, "sensor-x");
  m->n_ifaces = 2;
  m->ifaces[0] = (ps__spool_iface){1, 65535, 6, "eth0"};
  m->ifaces[1] = (ps__spool_iface){101, 262144, 9, "tun0"};
  ck_assert_int_eq(ps__spool_set_meta(sp, m, eb), 0);
  uint8_t frame[300];
  for (int k = 1; k <= 3; k++) {
    memset(frame, k, sizeof(frame));
    uint32_t ifc[2] = {1, (uint32_t)k * 10};
    ps__spool_rec r = {.seq = (uint64_t)k,
                       .count = (uint32_t)k * 10,
                       .n_if = 1,
                       .ifc = ifc,
                       .frame = frame,
                       .len = 100 * (size_t)k};
    ck_assert_int_eq(ps__spool_append(sp, &r, eb), 0);
  }
  ps__spool_close(sp, 0); /* killed: nothing acknowledged */
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 1);
  ck_assert_int_eq(truncate(seg, size_of(seg) - 7), 0); /* torn record 3 */

  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  ps__spool_meta *back = calloc(1, sizeof(*back));
  got_recs g = {0};
  ck_assert_int_eq(ps__spool_recover(sp, back, collect, &g, eb), 1);
  ck_assert_uint_eq(back->stream_id, m->stream_id);
  ck_assert_uint_eq(back->codec, 2);
  ck_assert_str_eq(back->name, "sensor-x");
  ck_assert_uint_eq(back->n_ifaces, 2);
  ck_assert_str_eq(back->ifaces[1].name, "tun0");
  ck_assert_uint_eq(back->ifaces[1].linktype, 101);
  ck_assert_uint_eq(back->ifaces[1].tsres, 9);
  ck_assert_int_eq(g.n, 2);
  ck_assert_uint_eq(g.seq[1], 2);
  ck_assert_uint_eq(g.count[1], 20);
  ck_assert_uint_eq(g.len[1], 200);
  ck_assert_uint_eq(g.first_byte[1], 2);
  ck_assert_uint_eq(g.ifc0[1], 20);
  /* All acknowledged at the end: emptied, the next run starts afresh. */
  ps__spool_close(sp, 1);
  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  got_recs g2 = {0};
  ck_assert_int_eq(ps__spool_recover(sp, back, collect, &g2, eb), 0);
  ck_assert_int_eq(g2.n, 0);
  ps__spool_close(sp, 1);
  free(m);
  free(back);
  rm_tree(sdir);
}
END_TEST

/* F4 for the spool: a segment that is a link (to a file the sensor
 * would read and cut), writable by others or another user's is ignored:
 * neither read, cut nor removed; nothing is created through a link or
 * over a file that is not ours. */
START_TEST(test_spool_untrusted_files) {
  char eb[PS_ERRMSG_MAX], sdir[300], seg[400], victim[300];
  snprintf(sdir, sizeof(sdir), "%s/spool", dir);
  snprintf(victim, sizeof(victim), "%s/victim", dir);
  write_bytes(victim, 30, 0);
  ps__spool *sp;
  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  ps__spool_meta *m = calloc(1, sizeof(*m));
  m->stream_id = 7;
  strcpy(m->name, "s");
  ck_assert_int_eq(ps__spool_set_meta(sp, m, eb), 0);
  uint8_t frame[100];
  memset(frame, 1, sizeof(frame));
  ps__spool_rec r = {.seq = 1, .count = 1, .frame = frame, .len = 100};
  ck_assert_int_eq(ps__spool_append(sp, &r, eb), 0);
  ps__spool_close(sp, 0);
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 1);
  struct stat st;
  ck_assert_int_eq(lstat(seg, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0600);
  /* Planted beside it. */
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 2);
  ck_assert_int_eq(symlink(victim, seg), 0);
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 3);
  write_bytes(seg, 30, 0);
  ck_assert_int_eq(chmod(seg, 0666), 0);
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 4);
  write_bytes(seg, 30, 0);
  ck_assert_int_eq(chmod(seg, 0600), 0);
  if (geteuid() == 0) {
    ck_assert_int_eq(chown(seg, 65534, 65534), 0);
  }

  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  ps__spool_meta *back = calloc(1, sizeof(*back));
  got_recs g = {0};
  ck_assert_int_eq(ps__spool_recover(sp, back, collect, &g, eb), 1);
  ck_assert_int_eq(g.n, 1);
  ck_assert_uint_eq(g.seq[0], 1);
  expect_log("ignoring seg-00000000000000000002: "
             "it is a symbolic link");
  expect_log("ignoring seg-00000000000000000003: "
             "it is writable by others than its "
             "owner (mode 0666)");
  if (geteuid() == 0) {
    expect_log("ignoring seg-00000000000000000004: "
               "it is owned by uid 65534");
  }
  ck_assert_int_eq(size_of(victim), 30);
  if (geteuid() == 0) {
    ck_assert_int_eq(size_of(seg), 30);
  } else { /* ours, with nothing intact in it: removed */
    ck_assert_int_eq(access(seg, F_OK), -1);
  }
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 3);
  ck_assert_int_eq(size_of(seg), 30);
  /* A new segment never goes through the link. */
  r.seq = 2;
  ck_assert_err(ps__spool_append(sp, &r, eb), PS_ERR_IO, eb,
                "seg-00000000000000000002 is there and it is a symbolic "
                "link: remove it");
  ck_assert_int_eq(size_of(victim), 30);
  /* Nor does the stream file's temporary. */
  char tmp[320];
  snprintf(tmp, sizeof(tmp), "%s/stream.new", sdir);
  ck_assert_int_eq(symlink(victim, tmp), 0);
  ck_assert_err(ps__spool_set_meta(sp, m, eb), PS_ERR_IO, eb,
                "stream.new is there and it is a symbolic link");
  ck_assert_int_eq(size_of(victim), 30);
  ck_assert_int_eq(unlink(tmp), 0);
  /* Ended with everything acknowledged: only our files go. */
  ps__spool_close(sp, 1);
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 1);
  ck_assert_int_eq(access(seg, F_OK), -1);
  snprintf(seg, sizeof(seg), "%s/seg-%020d", sdir, 3);
  ck_assert_int_eq(access(seg, F_OK), 0);
  /* A stream file that is a link is not read: nothing to resume. */
  snprintf(tmp, sizeof(tmp), "%s/stream", sdir);
  ck_assert_int_eq(symlink(victim, tmp), 0);
  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  ck_assert_int_eq(ps__spool_recover(sp, back, collect, &g, eb), 0);
  expect_log("ignoring its stream file: it is a "
             "symbolic link");
  ps__spool_close(sp, 0);
  ck_assert_int_eq(size_of(victim), 30);
  free(m);
  free(back);
}
END_TEST

/* A spool directory others can write (without the sticky bit), another
 * user's, or with a lock file that is a link is refused. */
START_TEST(test_spool_dir_refused) {
  char eb[PS_ERRMSG_MAX], sdir[300], lock[320], victim[300];
  snprintf(sdir, sizeof(sdir), "%s/spool", dir);
  snprintf(lock, sizeof(lock), "%s/lock", sdir);
  snprintf(victim, sizeof(victim), "%s/victim", dir);
  ps__spool *sp;
  ck_assert_int_eq(mkdir(sdir, 0700), 0);
  ck_assert_int_eq(chmod(sdir, 0777), 0);
  ck_assert_err(ps__spool_open(&sp, sdir, log_fn, NULL, eb), PS_ERR_IO, eb,
                "is writable by anyone (mode 0777)");
  ck_assert_int_eq(access(lock, F_OK), -1);
  ck_assert_int_eq(chmod(sdir, 01777), 0); /* like /tmp: allowed */
  ck_assert_int_eq(ps__spool_open(&sp, sdir, log_fn, NULL, eb), 0);
  ps__spool_close(sp, 1);
  ck_assert_int_eq(chmod(sdir, 0700), 0);
  ck_assert_int_eq(unlink(lock), 0);
  ck_assert_int_eq(symlink(victim, lock), 0);
  ck_assert_err(ps__spool_open(&sp, sdir, log_fn, NULL, eb), PS_ERR_IO, eb,
                "its file lock: it is a symbolic link: remove it");
  ck_assert_int_eq(access(victim, F_OK), -1); /* not created */
  ck_assert_int_eq(unlink(lock), 0);
  if (geteuid() == 0) {
    ck_assert_int_eq(chown(sdir, 65534, 65534), 0);
    ck_assert_err(ps__spool_open(&sp, sdir, log_fn, NULL, eb), PS_ERR_IO, eb,
                  "is owned by uid 65534, not by this sensor (uid 0)");
  }
}
END_TEST

static Suite *journal_suite(void) {
  Suite *s = suite_create("journal");
  TCase *tc = tcase_create("journal");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_cut_back_after_crash);
  tcase_add_test(tc, test_closed_and_new_files);
  tcase_add_test(tc, test_torn_record);
  tcase_add_test(tc, test_not_a_journal);
  tcase_add_test(tc, test_replaced_file_left_alone);
  tcase_add_test(tc, test_compaction);
  tcase_add_test(tc, test_streamtab_limit);
  tcase_add_test(tc, test_spool_recover);
  tcase_add_test(tc, test_failed_commit_retried);
  tcase_add_test(tc, test_forged_entries_ignored);
  tcase_add_test(tc, test_symlinked_journal_refused);
  tcase_add_test(tc, test_symlinked_temporary_refused);
  tcase_add_test(tc, test_untrusted_journal_refused);
  tcase_add_test(tc, test_repair_follows_no_link);
  tcase_add_test(tc, test_outside_file_not_recorded);
  tcase_add_test(tc, test_spool_untrusted_files);
  tcase_add_test(tc, test_spool_dir_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(journal_suite());
}
