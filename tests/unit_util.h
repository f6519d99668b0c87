/* Small helpers shared by the Check unit tests. */
#ifndef PS_UNIT_UTIL_H
#define PS_UNIT_UTIL_H

#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_common.h"

/* Asserts that rc is the error code want and that the message in errbuf
 * contains the substring sub. */
#define ck_assert_err(rc, want, errbuf, sub)                                   \
  do {                                                                         \
    int ck_rc_ = (rc);                                                         \
    ck_assert_msg(ck_rc_ == (want), "expected %s (%d), got %d; message: %s",   \
                  #want, (int)(want), ck_rc_, (errbuf));                       \
    ck_assert_msg(strstr((errbuf), (sub)) != NULL,                             \
                  "message \"%s\" lacks \"%s\"", (errbuf), (sub));             \
  } while (0)

/* A deterministic pseudo-random byte generator (xorshift32). */
static inline uint32_t unit_rand(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

static inline void unit_fill_random(uint8_t *p, size_t n, uint32_t seed) {
  uint32_t st = seed ? seed : 1;
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(unit_rand(&st) >> 11);
  }
}

/* Fills p with a pattern that depends on the packet number k, so a
 * packet delivered in the wrong place does not compare equal. */
static inline void unit_fill_pattern(uint8_t *p, size_t n, uint32_t k) {
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(k * 31u + i * 7u + (i >> 8));
  }
}

/* Sends stdout to a file for the duration of a test. */
static inline int stdout_to(const char *path) {
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  dup2(fd, STDOUT_FILENO);
  close(fd);
  return saved;
}

static inline void stdout_restore(int saved) {
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
}

/* Runs a suite and returns the process exit status. */
static inline int unit_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
