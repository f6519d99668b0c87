/* Unit tests of lib/ps_paths.c: the format a file name implies, the
 * journal's default place, and loading a shared key file (refused when
 * group or others may read it); and of the runtime state files
 * ps-sensor --netns reads (lib/ps_netns.c). */
#include "config.h"

#include "unit_util.h"

#include "ps_netns.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static const struct format_case {
  const char *path;
  ps_file_format want;
} format_cases[] = {
    {"a.pcapng", PS_FORMAT_PCAPNG},  {"/x/%Y.pcapng", PS_FORMAT_PCAPNG},
    {".pcapng", PS_FORMAT_PCAPNG},   {"a.pcap", PS_FORMAT_PCAP},
    {"a.pcapng.gz", PS_FORMAT_PCAP}, {"pcapng", PS_FORMAT_PCAP},
    {"-", PS_FORMAT_PCAP},           {NULL, PS_FORMAT_PCAP},
};

START_TEST(test_format_from_path) {
  const struct format_case *c = &format_cases[_i];
  ck_assert_int_eq(ps_format_from_path(c->path), c->want);
}
END_TEST

static const struct state_case {
  const char *output;
  size_t outlen;
  int rc;
  const char *want; /* what out holds after; NULL: not said */
} state_cases[] = {
    {"cap.pcap", 64, 0, ".cap.pcap.state"},
    {"/d/x-%Y{sensor}.pcap", 64, 0, "/d/.x-_Y_sensor_.pcap.state"},
    /* No one place for a template directory, standard output, a
     * directory, nothing. */
    {"/%Y/x.pcap", 64, PS_ERR_INVALID, NULL},
    {"{sensor}/x.pcap", 64, PS_ERR_INVALID, NULL},
    {"-", 64, PS_ERR_INVALID, NULL},
    {"d/", 64, PS_ERR_INVALID, NULL},
    {"", 64, PS_ERR_INVALID, NULL},
    /* Exactly fits: 15 bytes and the NUL; one byte less is refused. */
    {"cap.pcap", 16, 0, ".cap.pcap.state"},
    {"cap.pcap", 15, PS_ERR_LIMIT, ""},
};

START_TEST(test_default_state_path) {
  const struct state_case *c = &state_cases[_i];
  char b[64];
  strcpy(b, "untouched");
  ck_assert_int_eq(ps_receiver_default_state_path(b, c->outlen, c->output),
                   c->rc);
  if (c->want != NULL) {
    ck_assert_str_eq(b, c->want);
  }
}
END_TEST

static void write_key(const char *path, const char *data, size_t n,
                      mode_t mode) {
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
  ck_assert_int_eq(fchmod(fd, mode), 0);
  close(fd);
}

enum key_place { KEY_FILE, NO_FILE, A_DIRECTORY };

static const struct key_case {
  enum key_place place;
  const char *data; /* NULL: len bytes 'k' */
  size_t len;
  mode_t mode;
  int rc;
  size_t n;        /* the key's length; on errors it stays 99 */
  const char *msg; /* in err; NULL: loaded with err NULL */
} key_cases[] = {
    {KEY_FILE, "secret\r\n", 8, 0600, 0, 6, ""},
    {KEY_FILE, "a\n\n", 3, 0400, 0, 2, ""}, /* only one newline is dropped */
    {KEY_FILE, "secret", 6, 0640, PS_ERR_IO, 99,
     "can be read by group or others: chmod 600"},
    {KEY_FILE, "secret", 6, 0604, PS_ERR_IO, 99,
     "can be read by group or others: chmod 600"},
    {KEY_FILE, "secret", 6, 0620, PS_ERR_IO, 99,
     "can be read by group or others: chmod 600"},
    {KEY_FILE, "secret", 6, 0644, PS_ERR_IO, 99,
     "can be read by group or others: chmod 600"},
    {KEY_FILE, "\n", 1, 0600, PS_ERR_INVALID, 99, "must hold 1 to 1024 bytes"},
    {KEY_FILE, NULL, 1024, 0600, 0, 1024, NULL},
    {KEY_FILE, NULL, 1025, 0600, PS_ERR_INVALID, 99,
     "must hold 1 to 1024 bytes"},
    {NO_FILE, NULL, 0, 0, PS_ERR_IO, 99, "No such file or directory"},
    {A_DIRECTORY, NULL, 0, 0, PS_ERR_IO, 99, "is not a regular file"},
};

START_TEST(test_auth_key_load) {
  const struct key_case *c = &key_cases[_i];
  char dir[] = "/tmp/ps-keyXXXXXX", path[64], err[256] = "";
  static char data[1025];
  uint8_t key[1024];
  size_t n = 99;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/k", dir);
  if (c->place == KEY_FILE) {
    if (c->data != NULL) {
      memcpy(data, c->data, c->len);
    } else {
      memset(data, 'k', c->len);
    }
    write_key(path, data, c->len, c->mode);
  }
  const char *file = c->place == A_DIRECTORY ? dir : path;
  int rc = c->msg == NULL ? ps_auth_key_load(key, &n, file, NULL, 0)
                          : ps_auth_key_load(key, &n, file, err, sizeof(err));
  if (c->msg != NULL && c->rc != 0) {
    ck_assert_err(rc, c->rc, err, c->msg);
  } else {
    ck_assert_msg(rc == c->rc, "rc %d: %s", rc, err);
  }
  ck_assert_uint_eq(n, c->n);
  if (c->rc == 0) {
    ck_assert_mem_eq(key, data, n);
  }
  unlink(path);
  ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static unsigned bundle_lines;
static void count_bundle_lines(ps_log_level level, const char *msg, void *ud) {
  (void)level;
  (void)ud;
  if (strncmp(msg, "runtime bundle ", 15) == 0) {
    bundle_lines++;
  }
}

/* A bad bundle is logged once per file version, however many there are
 * and however long the sensor runs (CRI-O keeps the bundles of exited
 * containers; the table of versions said used to fill at 256, and from
 * then on every one beyond was logged at every rescan, every 2 s). */
START_TEST(test_netns_bad_bundles_logged_once) {
  char root[] = "/tmp/ps-netns-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(root));
  char p[512], proc[600];
  snprintf(proc, sizeof(proc), "%s/proc", root);
  ck_assert_int_eq(mkdir(proc, 0700), 0);
  snprintf(p, sizeof(p), "%s/ns", root);
  ck_assert_int_eq(mkdir(p, 0700), 0);
  enum { N = 600 };
  for (unsigned i = 0; i < N; i++) {
    snprintf(p, sizeof(p), "%s/ns/c%04u", root, i);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/ns/c%04u/config.json", root, i);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"linux\": ", f); /* malformed */
    fclose(f);
  }
  ps__netns_cfg cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.runtime_root = root;
  cfg.proc = proc;
  ps__netns_seen *seen = calloc(1, sizeof(*seen));
  ck_assert_ptr_nonnull(seen);
  unsigned want[] = {N, 0, 0, 1};
  for (unsigned scan = 0; scan < 4; scan++) {
    if (scan == 3) {
      /* A new version of one file is said again. */
      snprintf(p, sizeof(p), "%s/ns/c0007/config.json", root);
      FILE *f = fopen(p, "w");
      ck_assert_ptr_nonnull(f);
      fputs("{\"linux\": [", f);
      fclose(f);
    }
    bundle_lines = 0;
    ps__workload *w = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        ps__netns_scan(&cfg, seen, &w, &n, count_bundle_lines, NULL), 0);
    free(w);
    ck_assert_msg(bundle_lines == want[scan],
                  "scan %u: %u lines about bad bundles, not %u", scan + 1,
                  bundle_lines, want[scan]);
  }
  free(seen);
  for (unsigned i = 0; i < N; i++) {
    snprintf(p, sizeof(p), "%s/ns/c%04u/config.json", root, i);
    unlink(p);
    snprintf(p, sizeof(p), "%s/ns/c%04u", root, i);
    rmdir(p);
  }
  snprintf(p, sizeof(p), "%s/ns", root);
  rmdir(p);
  rmdir(proc);
  ck_assert_int_eq(rmdir(root), 0);
}
END_TEST

static Suite *paths_suite(void) {
  Suite *s = suite_create("paths");
  TCase *tc = tcase_create("paths");
  tcase_add_loop_test(tc, test_format_from_path, 0,
                      sizeof(format_cases) / sizeof(format_cases[0]));
  tcase_add_loop_test(tc, test_default_state_path, 0,
                      sizeof(state_cases) / sizeof(state_cases[0]));
  tcase_add_loop_test(tc, test_auth_key_load, 0,
                      sizeof(key_cases) / sizeof(key_cases[0]));
  tcase_add_test(tc, test_netns_bad_bundles_logged_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(paths_suite());
}
