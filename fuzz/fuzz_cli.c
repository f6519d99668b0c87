/*
 * Fuzz target for the tools' command-line parsers: the input, as a
 * NUL-terminated string, goes to ps_cli_parse_u64, ps_cli_parse_size and
 * ps_cli_parse_hostport, and every successful parse is checked against
 * what the string says; a range named in a refusal is the range asked
 * for. The same string, split at newlines, is also a command line for
 * the common-options table (ps_cli_getopt) of either tool: what it
 * stores comes from that command line, is never empty, and is only what
 * the tool takes.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANARY 0xA5

/* s is all digits and means v, leading zeros aside. */
static void check_number(const char *s, uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%" PRIu64, v);
  while (s[0] == '0' && s[1] != '\0') {
    s++;
  }
  CHECK(strcmp(s, buf) == 0);
}

static void fuzz_u64(const char *s, uint64_t min, uint64_t max) {
  char err[64];
  uint64_t v = 12345;
  memset(err, CANARY, sizeof(err));
  if (ps_cli_parse_u64(s, min, max, &v, err, sizeof(err)) == 0) {
    CHECK(v >= min && v <= max);
    CHECK(strspn(s, "0123456789") == strlen(s));
    check_number(s, v);
  } else {
    CHECK(v == 12345); /* untouched on failure */
    fuzz_check_reason(err, sizeof(err));
  }
}

static void fuzz_size(const char *s, uint64_t unit, uint64_t min,
                      uint64_t max) {
  char err[160];
  uint64_t v = 12345;
  memset(err, CANARY, sizeof(err));
  int rc = ps_cli_parse_size(s, unit, min, max, &v, err, sizeof(err));
  /* Digits, then at most one unit suffix: a size, in range or not. */
  size_t len = strlen(s);
  uint64_t u = unit;
  if (len > 0 && strchr("kKmMgG", s[len - 1]) != NULL) {
    char c = s[len - 1];
    u = (c == 'k' || c == 'K')   ? 1024u
        : (c == 'm' || c == 'M') ? 1048576u
                                 : 1073741824u;
    len--;
  }
  int syntax_ok = len > 0 && strspn(s, "0123456789") == len;
  if (rc == 0) {
    CHECK(syntax_ok);
    CHECK(v >= min && v <= max);
    CHECK(v % u == 0);
    char *digits = strndup(s, len);
    if (digits != NULL) {
      check_number(digits, v / u);
      free(digits);
    }
  } else {
    CHECK(v == 12345);
    fuzz_check_reason(err, sizeof(err));
    if (syntax_ok) {
      /* Refused for its range, and the range named is the one asked
       * for, never an internal bound (review: -C 99999999999g said
       * "outside 0..17179869183"). */
      char range[64];
      snprintf(range, sizeof(range),
               "' is outside %" PRIu64 "..%" PRIu64 " bytes", min, max);
      size_t el = strlen(err), rl = strlen(range);
      CHECK(el >= rl && strcmp(err + el - rl, range) == 0);
    }
  }
}

static void fuzz_hostport(const char *s, int allow_no_host, int allow_port0,
                          size_t hostlen) {
  char host[300];
  char err[96];
  uint16_t port = 7;
  memset(host, CANARY, sizeof(host));
  memset(err, CANARY, sizeof(err));
  int rc = ps_cli_parse_hostport(s, allow_no_host, allow_port0, host, hostlen,
                                 &port, err, sizeof(err));
  /* Nothing is written past hostlen, success or not. */
  for (size_t i = hostlen; i < sizeof(host); i++) {
    CHECK((unsigned char)host[i] == CANARY);
  }
  if (rc != 0) {
    CHECK(rc == -1 && port == 7);
    fuzz_check_reason(err, sizeof(err));
    return;
  }
  size_t hl = strnlen(host, hostlen);
  CHECK(hl < hostlen);
  CHECK(port != 0 || allow_port0);
  CHECK(hl > 0 || allow_no_host);
  for (size_t i = 0; i < hl; i++) {
    unsigned char c = (unsigned char)host[i];
    CHECK(c > ' ' && c != 0x7f && c != '/' && c != '[' && c != ']');
  }
  const char *portstr;
  if (s[0] == '[') {
    /* "[HOST]:PORT": host is what the brackets held, an IPv6 address
     * (never a name or an IPv4 address). */
    CHECK(strncmp(s + 1, host, hl) == 0 && s[1 + hl] == ']' &&
          s[2 + hl] == ':');
    CHECK(memchr(host, ':', hl) != NULL);
    size_t al = strcspn(host, "%");
    CHECK(strspn(host, "0123456789abcdefABCDEF:.") == al);
    portstr = s + 3 + hl;
  } else {
    /* Unbracketed: a host never holds a ':'. */
    CHECK(strchr(host, ':') == NULL);
    if (strchr(s, ':') == NULL) {
      CHECK(allow_no_host && hl == 0);
      portstr = s;
    } else {
      CHECK(strncmp(s, host, hl) == 0 && s[hl] == ':');
      portstr = s + hl + 1;
    }
  }
  CHECK(*portstr != '\0' && strspn(portstr, "0123456789") == strlen(portstr));
  check_number(portstr, port);
}

static void no_usage(FILE *f) {
  (void)f;
}

static const char *own_hint(int c) {
  return c == 'a' ? "give a" : NULL;
}

/* v is NULL or a non-empty argument of argv[1..argc). */
static void check_arg(const char *v, int argc, char **argv) {
  if (v == NULL) {
    return;
  }
  CHECK(*v != '\0');
  int found = 0;
  for (int i = 1; i < argc; i++) {
    size_t n = strlen(argv[i]);
    found |= v >= argv[i] && v <= argv[i] + n;
  }
  CHECK(found);
}

static void fuzz_options(const char *s, unsigned tool) {
  static const struct option own[] = {{"alpha", required_argument, NULL, 'a'},
                                      {"beta", no_argument, NULL, 256},
                                      {NULL, 0, NULL, 0}};
  char *line = strdup(s);
  char *argv[33];
  int argc = 0;
  if (line == NULL) {
    return;
  }
  argv[argc++] = "fuzz";
  for (char *p = line; argc < 32; argc++) {
    argv[argc] = p;
    p = strchr(p, '\n');
    if (p == NULL) {
      argc++;
      break;
    }
    *p++ = '\0';
  }
  argv[argc] = NULL;
  ps_cli_parser p;
  ps_cli_common co;
  ps_cli_getopt_init(&p, &co, "fuzz", tool, own, "+:a:", no_usage, own_hint);
  optind = 0; /* glibc: start over */
  int c, alpha = 0;
  while ((c = ps_cli_getopt(&p, &co, argc, argv)) != -1) {
    if (c == PS_CLI_STOP) {
      CHECK(p.status == PS_EXIT_USAGE || p.status == PS_EXIT_OK);
      break;
    }
    CHECK(c == 'a' || c == 256);
    if (c == 'a') {
      CHECK(optarg != NULL && *optarg != '\0'); /* empty: refused */
      alpha++;
    }
  }
  check_arg(co.tls.ca_file, argc, argv);
  check_arg(co.tls.server_name, argc, argv);
  check_arg(co.tls.cert_file, argc, argv);
  check_arg(co.tls.key_file, argc, argv);
  check_arg(co.tls.pin, argc, argv);
  check_arg(co.tls.client_ca_file, argc, argv);
  check_arg(co.key_file, argc, argv);
  check_arg(co.run_as, argc, argv);
  CHECK(co.verbosity >= 0 && co.verbosity <= 2);
  if (tool == PS_CLI_RECEIVER) {
    /* The sensor's options are unknown to the receiver. */
    CHECK(co.tls.ca_file == NULL && co.tls.server_name == NULL &&
          co.tls.pin == NULL && !co.tls.insecure);
  } else {
    CHECK(co.tls.client_ca_file == NULL);
  }
  free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL) {
    return 0;
  }
  memcpy(s, data, size);
  s[size] = '\0';

  fuzz_u64(s, 0, UINT64_MAX);
  fuzz_u64(s, 1, 65535);
  fuzz_u64(s, 10, 10);
  /* As ps-receiver -C and ps-sensor --replay-buffer call it. */
  fuzz_size(s, 1000000, 1, (uint64_t)1000000000 * 1000000);
  fuzz_size(s, 1, 65536, (uint64_t)64 << 30);
  fuzz_size(s, 1, 0, UINT64_MAX);
  for (int f = 0; f < 4; f++) {
    fuzz_hostport(s, f & 1, (f >> 1) & 1, 256);
  }
  /* A small host buffer: long names must be refused, not cut. */
  fuzz_hostport(s, 1, 1, 8);
  fuzz_hostport(s, 0, 0, 1);
  static int quiet;
  if (!quiet) {
    /* -V and -h print to standard output. */
    quiet = freopen("/dev/null", "w", stdout) != NULL;
  }
  fuzz_options(s, PS_CLI_SENSOR);
  fuzz_options(s, PS_CLI_RECEIVER);
  free(s);
  return 0;
}
