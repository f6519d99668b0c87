/* Command-line helpers shared by the tools: number and address parsing
 * (strict: the whole string, in range, or an error naming the option),
 * and logging to standard error. Uses only the public API. */
#ifndef PS_CLI_H
#define PS_CLI_H

#include <packetstreamer/packetstreamer.h>

#include <stddef.h>
#include <stdint.h>

#define PS_EXIT_OK 0
#define PS_EXIT_RUNTIME 1
#define PS_EXIT_USAGE 2

/* Parses a decimal unsigned integer in [min, max]. Returns 0 or -1 with a
 * reason in err (errlen bytes). */
int ps_cli_parse_u64(const char *s, uint64_t min, uint64_t max,
                     uint64_t *out, char *err, size_t errlen);

/* A size: a whole number of units (unit 1: bytes; 1000000: tcpdump's
 * -C megabytes), or with a k, M or G suffix KiB, MiB or GiB; it must lie
 * in min..max bytes. Returns 0, or -1 with a reason in err. */
int ps_cli_parse_size(const char *s, uint64_t unit, uint64_t min,
                      uint64_t max, uint64_t *out, char *err, size_t errlen);

/* Parses "HOST:PORT", "[IPV6]:PORT", ":PORT" or "PORT" (when allow_no_host;
 * host becomes ""). host receives at most hostlen-1 bytes. Port 0 is
 * accepted only when allow_port0. Returns 0 or -1 with a reason. */
int ps_cli_parse_hostport(const char *s, int allow_no_host, int allow_port0,
                          char *host, size_t hostlen, uint16_t *port,
                          char *err, size_t errlen);

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
/* A one-line error without time stamp (usage errors). */
void ps_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
