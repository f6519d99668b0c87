/* Unit tests of lib/ps_paths.c: the format a file name implies, the
 * journal's default place, and loading a shared key file (refused when
 * group or others may read it). */
#include "config.h"

#include "unit_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(test_format_from_path) {
  ck_assert_int_eq(ps_format_from_path("a.pcapng"), PS_FORMAT_PCAPNG);
  ck_assert_int_eq(ps_format_from_path("/x/%Y.pcapng"), PS_FORMAT_PCAPNG);
  ck_assert_int_eq(ps_format_from_path(".pcapng"), PS_FORMAT_PCAPNG);
  ck_assert_int_eq(ps_format_from_path("a.pcap"), PS_FORMAT_PCAP);
  ck_assert_int_eq(ps_format_from_path("a.pcapng.gz"), PS_FORMAT_PCAP);
  ck_assert_int_eq(ps_format_from_path("pcapng"), PS_FORMAT_PCAP);
  ck_assert_int_eq(ps_format_from_path("-"), PS_FORMAT_PCAP);
  ck_assert_int_eq(ps_format_from_path(NULL), PS_FORMAT_PCAP);
}
END_TEST

START_TEST(test_default_state_path) {
  char b[64];
  ck_assert_int_eq(ps_receiver_default_state_path(b, sizeof(b), "cap.pcap"), 0);
  ck_assert_str_eq(b, ".cap.pcap.state");
  ck_assert_int_eq(
      ps_receiver_default_state_path(b, sizeof(b), "/d/x-%Y{sensor}.pcap"), 0);
  ck_assert_str_eq(b, "/d/.x-_Y_sensor_.pcap.state");
  ck_assert_int_eq(ps_receiver_default_state_path(b, sizeof(b), "/%Y/x.pcap"),
                   PS_ERR_INVALID);
  ck_assert_int_eq(
      ps_receiver_default_state_path(b, sizeof(b), "{sensor}/x.pcap"),
      PS_ERR_INVALID);
  ck_assert_int_eq(ps_receiver_default_state_path(b, sizeof(b), "-"),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps_receiver_default_state_path(b, sizeof(b), "d/"),
                   PS_ERR_INVALID);
  ck_assert_int_eq(ps_receiver_default_state_path(b, sizeof(b), ""),
                   PS_ERR_INVALID);
  /* Exactly fits: 15 bytes and the NUL; one byte less is refused. */
  ck_assert_int_eq(ps_receiver_default_state_path(b, 16, "cap.pcap"), 0);
  ck_assert_int_eq(ps_receiver_default_state_path(b, 15, "cap.pcap"),
                   PS_ERR_LIMIT);
  ck_assert_str_eq(b, "");
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

START_TEST(test_auth_key_load) {
  char dir[] = "/tmp/ps-keyXXXXXX", path[64], err[256];
  uint8_t key[1024];
  size_t n = 0;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/k", dir);

  write_key(path, "secret\r\n", 8, 0600);
  ck_assert_int_eq(ps_auth_key_load(key, &n, path, err, sizeof(err)), 0);
  ck_assert_uint_eq(n, 6);
  ck_assert_mem_eq(key, "secret", 6);
  write_key(path, "a\n\n", 3, 0400); /* only one newline is dropped */
  ck_assert_int_eq(ps_auth_key_load(key, &n, path, err, sizeof(err)), 0);
  ck_assert_uint_eq(n, 2);

  static const mode_t bad[] = {0640, 0604, 0620, 0644};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    write_key(path, "secret", 6, bad[i]);
    n = 99;
    ck_assert_int_eq(ps_auth_key_load(key, &n, path, err, sizeof(err)),
                     PS_ERR_IO);
    ck_assert_uint_eq(n, 99);
    ck_assert_ptr_nonnull(strstr(err, "can be read by group or others: "
                                      "chmod 600"));
  }
  write_key(path, "\n", 1, 0600);
  ck_assert_int_eq(ps_auth_key_load(key, &n, path, err, sizeof(err)),
                   PS_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err, "must hold 1 to 1024 bytes"));
  char big[1026];
  memset(big, 'k', sizeof(big));
  write_key(path, big, 1024, 0600);
  ck_assert_int_eq(ps_auth_key_load(key, &n, path, NULL, 0), 0);
  ck_assert_uint_eq(n, 1024);
  write_key(path, big, 1025, 0600);
  ck_assert_int_eq(ps_auth_key_load(key, &n, path, err, sizeof(err)),
                   PS_ERR_INVALID);
  unlink(path);
  ck_assert_int_eq(ps_auth_key_load(key, &n, path, err, sizeof(err)),
                   PS_ERR_IO);
  ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
  ck_assert_int_eq(ps_auth_key_load(key, &n, dir, err, sizeof(err)), PS_ERR_IO);
  ck_assert_ptr_nonnull(strstr(err, "is not a regular file"));
  rmdir(dir);
}
END_TEST

static Suite *paths_suite(void) {
  Suite *s = suite_create("paths");
  TCase *tc = tcase_create("paths");
  tcase_add_test(tc, test_format_from_path);
  tcase_add_test(tc, test_default_state_path);
  tcase_add_test(tc, test_auth_key_load);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(paths_suite());
}
