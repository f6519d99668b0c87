/*
 * Fuzz target for the config-file reader (tools/ps_config.c): the input
 * is a YAML file, byte 0 choosing the tool (bit 0: the receiver's keys).
 * Accepted or refused, never a crash or leak; a refusal is one line
 * "NAME:LINE:COLUMN: reason" and keeps no item; an accepted file gives
 * only keys of the tool (its long options, its extra keys, or the names
 * PacketStreamer's keys map to), each with a value within the input's
 * length, at a line and column inside the input.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shapes of the tools' tables (names as they are; values unused). */
static const struct option sensor_opts[] = {
    {"interface", required_argument, NULL, 'i'},
    {"read", required_argument, NULL, 'r'},
    {"receiver", required_argument, NULL, 256},
    {"snapshot-length", required_argument, NULL, 's'},
    {"no-promiscuous-mode", no_argument, NULL, 'p'},
    {"replay-buffer", required_argument, NULL, 257},
    {"interface-filter", required_argument, NULL, 258},
    {"tls", no_argument, NULL, 259},
    {"tls-ca", required_argument, NULL, 260},
    {"tls-cert", required_argument, NULL, 261},
    {"tls-key", required_argument, NULL, 262},
    {"tls-insecure", no_argument, NULL, 263},
    {"auth-key-file", required_argument, NULL, 264},
    {"log-file", required_argument, NULL, 265},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
static const struct option receiver_opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"write", required_argument, NULL, 'w'},
    {"append", no_argument, NULL, 256},
    {"tls-cert", required_argument, NULL, 261},
    {"tls-key", required_argument, NULL, 262},
    {"auth-key-file", required_argument, NULL, 264},
    {"log-file", required_argument, NULL, 265},
    {"kafka", required_argument, NULL, 266},
    {"kafka-topic", required_argument, NULL, 267},
    {"kafka-property", required_argument, NULL, 268},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
static const char *const sensor_rep[] = {"interface", "receiver",
                                         "interface-filter", NULL};
static const char *const receiver_rep[] = {"listen", "kafka-property", NULL};
static const char *const extra[] = {"filter", "auth-key", NULL};
static const char *const refused[] = {"help", NULL};

static int known(const ps_config_keys *k, const char *key) {
  for (size_t i = 0; k->opts[i].name != NULL; i++) {
    if (strcmp(k->opts[i].name, key) == 0) {
      return strcmp(key, "help") != 0;
    }
  }
  for (size_t i = 0; extra[i] != NULL; i++) {
    if (strcmp(extra[i], key) == 0) {
      return 1;
    }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536) {
    return 0;
  }
  int receiver = data[0] & 1;
  ps_config_keys k = {receiver ? receiver_opts : sensor_opts,
                      receiver ? receiver_rep : sensor_rep,
                      extra,
                      refused,
                      !receiver,
                      NULL};
  ps_config c;
  char err[1024];
  memset(err, 0, sizeof(err));
  const char *buf = (const char *)data + 1;
  size_t len = size - 1;
  /* An upper bound of YAML's lines: it breaks at \n, \r and at NEL,
   * LS and PS (whose UTF-8 ends in 0x85, 0xa8, 0xa9). */
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) {
    unsigned char u = (unsigned char)buf[i];
    lines += u == '\n' || u == '\r' || u == 0x85 || u == 0xa8 || u == 0xa9;
  }
  if (ps_config_load_buffer(&c, "fuzz.yaml", buf, len, &k, err, sizeof(err)) !=
      0) {
    fuzz_check_reason(err, sizeof(err));
    CHECK(strncmp(err, "fuzz.yaml:", 10) == 0);
    CHECK(strchr(err, '\n') == NULL || strchr(err, '\n') > err + 10);
    CHECK(c.n == 0 && c.items == NULL);
    return 0;
  }
  for (size_t i = 0; i < c.n; i++) {
    const ps_config_item *it = &c.items[i];
    CHECK(known(&k, it->key));
    CHECK(it->value != NULL);
    CHECK(it->line >= 1 && (size_t)it->line <= lines + 1);
    CHECK(it->col >= 1);
    /* A value comes from the input, or is built from it (HOST:PORT,
     * IFACE=FILTER), or is "true" for a switch. */
    CHECK(strlen(it->value) < len + 8300);
  }
  ps_config_free(&c);
  return 0;
}
