/* Configuration files for the tools (--config FILE): YAML read with
 * libyaml into (option, value, line, column) items, one per value, in
 * the file's order. The keys are the tool's long options, so every
 * option has one; the tool feeds each item through the very handler of
 * its command line (ps_cli_getopt), before the command line. The YAML
 * of deepfence PacketStreamer is read as well and mapped to our
 * options (docs/MIGRATING.md). */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <getopt.h>
#include <stddef.h>

typedef struct ps_config_item {
  char *key;   /* a long option name (or an extra key such as filter) */
  char *value; /* never NULL; "true" for an option without argument */
  int line;    /* 1-based, of the value (of the PacketStreamer key) */
  int col;
} ps_config_item;

typedef struct ps_config_keys {
  const struct option *opts;     /* the tool's getopt table, {0} ended */
  const char *const *repeatable; /* options that take a list; NULL ended */
  const char *const *extra;      /* keys without option (filter, ...) */
  const char *const *refused;    /* options that are no key (help, ...) */
  int sensor;                    /* 1 ps-sensor, 0 ps-receiver */
  /* Warnings (a secret readable by others), one line; may be NULL. */
  void (*warn)(const char *line);
} ps_config_keys;

typedef struct ps_config {
  char *path;
  ps_config_item *items;
  size_t n, cap;
  int packetstreamer; /* PacketStreamer's keys were found */
  /* PacketStreamer's tls.enable on a sensor, which never verified the
   * receiver: where (line 0: not given), checked once the command line
   * is read too (ps_cli_check_common). */
  int ps_tls_line, ps_tls_col;
} ps_config;

#define PS_CONFIG_MAX_BYTES (1u << 20)

/* Reads path. 0, or -1 with "FILE:LINE:COLUMN: what" in err (nothing
 * kept: a file with an error gives no item at all). */
int ps_config_load(ps_config *c, const char *path, const ps_config_keys *k,
                   char *err, size_t errlen);

/* The same from memory, named name in messages (tests, fuzzing). */
int ps_config_load_buffer(ps_config *c, const char *name, const char *buf,
                          size_t len, const ps_config_keys *k, char *err,
                          size_t errlen);

void ps_config_free(ps_config *c);

/* The nearest of the names (NULL ended) to s, or NULL when none is near
 * enough to be a typo. */
const char *ps_config_nearest(const char *s, const char *const *names);

#endif
