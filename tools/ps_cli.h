/* Command-line helpers shared by the tools: number and address parsing
 * (strict: the whole string, in range, or an error naming the option),
 * and logging to standard error. Uses only the public API. */
#ifndef PS_CLI_H
#define PS_CLI_H

#include <packetstreamer/packetstreamer.h>

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PS_EXIT_OK 0
#define PS_EXIT_RUNTIME 1
#define PS_EXIT_USAGE 2

/* Parses a decimal unsigned integer in [min, max]. Returns 0 or -1 with a
 * reason in err (errlen bytes). */
int ps_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     char *err, size_t errlen);

/* A size: a whole number of units (unit 1: bytes; 1000000: tcpdump's
 * -C megabytes), or with a k, M or G suffix KiB, MiB or GiB; it must lie
 * in min..max bytes. Returns 0, or -1 with a reason in err. */
int ps_cli_parse_size(const char *s, uint64_t unit, uint64_t min, uint64_t max,
                      uint64_t *out, char *err, size_t errlen);

/* Parses "HOST:PORT", "[IPV6]:PORT", ":PORT" or "PORT" (when allow_no_host;
 * host becomes ""). host receives at most hostlen-1 bytes. Port 0 is
 * accepted only when allow_port0. Returns 0 or -1 with a reason. */
int ps_cli_parse_hostport(const char *s, int allow_no_host, int allow_port0,
                          char *host, size_t hostlen, uint16_t *port, char *err,
                          size_t errlen);

/* Reads a whole filter file (tcpdump -F); '#' starts a comment to the end
 * of the line. Returns a malloc'ed string or NULL with a reason. */
char *ps_cli_read_filter_file(const char *path, char *err, size_t errlen);

/* Drops root: to user (tcpdump's -Z; "root" keeps root), or, when user
 * is NULL and we run as root, to the first of "packetstreamer" and
 * "nobody" that exists. Logs what it did. Returns 0 or -1 with a
 * reason. */
int ps_cli_drop_privileges(const char *user, char *err, size_t errlen);

/* Raises the soft open-files limit to the hard one (a receiver holds a
 * descriptor per sensor). */
void ps_cli_raise_nofile(void);

/* Joins argv[0..argc) with spaces; malloc'ed. */
char *ps_cli_join(int argc, char **argv);

/* Logging to standard error: "TIME PROG: LEVEL: msg". verbosity: 0 quiet
 * (errors and warnings), 1 normal (info), 2 verbose (debug). */
void ps_cli_log_init(const char *prog, int verbosity);
void ps_cli_log(ps_log_level level, const char *msg, void *user_data);
/* A one-line error without time stamp (text), or an "error" event
 * (json). */
void ps_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --log-format: text lines, or one JSON object a line (ts, level, tool,
 * sensor, event, msg and the event's fields) for log collectors. */
#define PS_CLI_LOG_TEXT 0
#define PS_CLI_LOG_JSON 1
void ps_cli_log_set_format(int format);
/* The sensor every line is about unless it names another (ps-sensor's
 * own name); NULL for none. Copied. */
void ps_cli_log_set_sensor(const char *sensor);

/* A field of a structured line: a string, or (str NULL) a number. */
typedef struct ps_cli_field {
  const char *key;
  const char *str;
  uint64_t num;
} ps_cli_field;
#define PS_CLI_NUM(k, v)                                                       \
  { (k), NULL, (uint64_t)(v) }
#define PS_CLI_STR(k, v)                                                       \
  { (k), (v), 0 }

/* One line: msg as text, or in JSON with event, sensor (NULL: the one
 * of ps_cli_log_set_sensor()) and fields[0..n). */
void ps_cli_log_event(ps_log_level level, const char *event, const char *sensor,
                      const ps_cli_field *fields, size_t n, const char *msg);
/* The library's structured log callback (ps_*_set_log_ex). */
void ps_cli_log_ex(const ps_log_record *rec, void *user_data);

/* The options both tools take (TLS, the shared key, -Z, -q/-v, -h/-V)
 * are one table in ps_cli.c, like curl's: name, letter, argument, the
 * tools that take it, the help text, and a handler that stores into
 * ps_cli_common. Each tool appends the table to its own options. */
#define PS_CLI_SENSOR 1u
#define PS_CLI_RECEIVER 2u

/* Where a common option's help lines go in --help: each tool prints its
 * own lines between the sections. */
enum { PS_CLI_HELP_CRED, PS_CLI_HELP_USER, PS_CLI_HELP_LOG };

typedef struct ps_cli_common {
  ps_tls_options tls;
  int use_tls;          /* --tls or any --tls-* (the sensor's switch) */
  const char *key_file; /* --auth-key-file */
  const char *key;      /* auth-key: (config files only) */
  const char *config;   /* --config */
  int print_config;     /* --print-config */
  /* "FILE:LINE:COL" of PacketStreamer's tls.enable on a sensor, which
   * must be given a way to verify the receiver. */
  char ps_tls_where[300];
  const char *run_as;   /* -Z */
  int verbosity;        /* 0 -q, 1, 2 -v */
  int log_format;       /* PS_CLI_LOG_TEXT or PS_CLI_LOG_JSON */
  const char *log_file; /* --log-file: log lines there, not stderr */
} ps_cli_common;

#define PS_CLI_MAX_OPTS 64

/* Returned by ps_cli_getopt when the tool must return status (a usage
 * error, or -h/-V done). */
#define PS_CLI_STOP (-2)

typedef struct ps_cli_parser {
  const char *prog;
  unsigned tool; /* PS_CLI_SENSOR or PS_CLI_RECEIVER */
  void (*usage)(FILE *f);
  /* What an empty value of the tool's own option c should be instead,
   * or NULL when the tool checks it itself. */
  const char *(*empty_hint)(int c);
  struct option longopts[PS_CLI_MAX_OPTS];
  char shortopts[PS_CLI_MAX_OPTS * 2 + 4];
  char opt[48]; /* the option as typed: "--tls-ca", or "-r" */
  int status;   /* the exit code after PS_CLI_STOP */
  /* Set by the tool after ps_cli_getopt_init, for --config: the options
   * that take a list in a file (NULL ended), the keys without option
   * (the sensor's filter), and pairs of a getopt value on the command
   * line and a file key it replaces besides its own (-r and interface),
   * ending {0, NULL}. */
  const char *const *repeatable;
  const char *const *extra;
  const struct ps_cli_override {
    int val;
    const char *key;
  } * overrides;
  int phase; /* 0 before the first call, 1 the file's items, 2 argv */
  size_t next;
  int cli_vals[PS_CLI_MAX_OPTS * 2]; /* getopt values argv gives */
  size_t n_cli_vals;
} ps_cli_parser;

/* A default for --print-config: the value, or NULL and why unset. */
typedef struct ps_cli_default {
  const char *name;
  const char *value;
  const char *note;
} ps_cli_default;

/* Builds the getopt_long array and short-option string: own (ending in
 * {NULL, 0, NULL, 0}) and own_short first, then the common options of
 * p->tool. Sets every common default. */
void ps_cli_getopt_init(ps_cli_parser *p, ps_cli_common *common,
                        const char *prog, unsigned tool,
                        const struct option *own, const char *own_short,
                        void (*usage)(FILE *f),
                        const char *(*empty_hint)(int c));

/* The next option of the tool's own (its getopt value, optarg set, the
 * empty value refused), -1 at the end (logging set to the verbosity
 * asked for), or PS_CLI_STOP with p->status to exit with. Common
 * options are handled here. */
int ps_cli_getopt(ps_cli_parser *p, ps_cli_common *common, int argc,
                  char **argv);

/* The value the config file gives the extra key (filter), or NULL. */
const char *ps_cli_config_extra(const char *key);

/* Where the file gave key ("FILE:LINE:COL: "), or "". */
const char *ps_cli_config_where(const char *key);

/* Replaces what --print-config shows for key (a value computed from
 * others, or an extra key's value); NULL: shown as not set. */
void ps_cli_set_shown(const char *key, const char *value);

/* --print-config: the effective options (file, command line and
 * defaults) as a config file: the long options of the parser in table
 * order, then the extra keys. */
void ps_cli_print_config(const ps_cli_parser *p, const ps_cli_common *c,
                         const ps_cli_default *defaults, FILE *f);

/* A YAML double-quoted string (for --print-config's comments too). */
void ps_cli_yaml_quote(const char *s, FILE *f);

/* Prints the help lines of tool's common options of one section. */
void ps_cli_help(unsigned tool, FILE *f, int section);

/* The checks between common options (--tls-cert with --tls-key, ...):
 * 0, or PS_EXIT_USAGE after the message. */
int ps_cli_check_common(const ps_cli_common *common);

/* "PROG: MSG (see PROG --help)", one line; returns PS_EXIT_USAGE. */
int ps_cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Options that name one thing (a file, a name, a credential, a
 * command): a second one is refused rather than silently replacing the
 * first. 0, or PS_EXIT_USAGE after the message. */
int ps_cli_once(const char **slot, const char *value, const char *opt);

/* SIGINT and SIGTERM to on_stop, SIGHUP to on_hup (unless NULL), and
 * SIGPIPE ignored (a closed peer is an error return, not a death). */
void ps_cli_signals(void (*on_stop)(int), void (*on_hup)(int));

#endif
