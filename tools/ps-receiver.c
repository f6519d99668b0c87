/* ps-receiver: accept ps-sensor streams and write pcap or pcapng. Option
 * parsing and error printing; the work is in the library. */
#include "config.h"

#include "ps_cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef PS_TOOL_TEST_HOOKS
/* Only in the test build, tests/ps-receiver-fp (tests/receiver_fp.c). */
void ps__tool_test_hook(ps_receiver *r);
#endif

static ps_receiver *g_receiver;
static ps_sink *volatile g_sink;

static void on_signal(int sig) {
  (void)sig;
  ps_receiver_stop(g_receiver);
}

/* SIGHUP: new files at the next write (ps_sink_reopen is
 * async-signal-safe). */
static void on_hup(int sig) {
  (void)sig;
  if (g_sink != NULL) {
    ps_sink_reopen(g_sink);
  }
}

/* The journal cuts back only files in its own directory or below it:
 * with --state FILE, the directory of -w (up to its first template
 * part) must be FILE's directory or under it. 1 if so, or if either
 * cannot be resolved (the open reports that). */
static int state_covers(const char *state, const char *out) {
  const char *ss = strrchr(state, '/');
  size_t cut = 0;
  for (size_t i = 0; out[i] != '\0'; i++) {
    if (out[i] == '%' || out[i] == '{') {
      break;
    }
    if (out[i] == '/') {
      cut = i + 1;
    }
  }
  char sd[4096], od[4096], sr[PATH_MAX], orr[PATH_MAX];
  snprintf(sd, sizeof(sd), "%.*s", ss ? (int)(ss - state) + 1 : 1,
           ss ? state : ".");
  snprintf(od, sizeof(od), "%.*s", cut ? (int)cut : 1, cut ? out : ".");
  if (realpath(sd, sr) == NULL || realpath(od, orr) == NULL) {
    return 1;
  }
  size_t n = strlen(sr);
  return strcmp(sr, "/") == 0 ||
         (strncmp(orr, sr, n) == 0 && (orr[n] == '\0' || orr[n] == '/'));
}

/* --port-file: one line "ADDR PORT" per listening socket, written to a
 * temporary beside FILE and renamed over it, so a reader sees the whole
 * list or none (scripts start the receiver on port 0 and wait for it). */
static int write_port_file(ps_receiver *r, const char *path, char *err,
                           size_t errlen) {
  char tmp[4096], addr[64];
  uint16_t port;
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
    snprintf(err, errlen, "--port-file name too long");
    return -1;
  }
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL) {
    snprintf(err, errlen, "cannot write port file %s: %s", path,
             strerror(errno));
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
    return -1;
  }
  fchmod(fd, 0644); /* mkstemp's 0600: a port is no secret */
  for (unsigned i = 0;
       ps_receiver_listener(r, addr, sizeof(addr), &port, i) == 0; i++) {
    fprintf(f, "%s %u\n", addr, (unsigned)port);
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    snprintf(err, errlen, "cannot write port file %s: %s", path,
             strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* The help text is laid out as printed. */
/* clang-format off */
static void usage(FILE *f) {
  /* (fprintf: the help of -w writes %%.) */
  fprintf(f,
"Usage: ps-receiver --listen [ADDR]:PORT...  -w FILE|-\n"
"                   [--format pcap|pcapng] [--time-stamp-precision micro|nano]\n"
"                   [-C SIZE] [-G SECONDS] [-W COUNT] [--split-by-sensor]\n"
"                   [--post-rotate CMD] [--append] [--state FILE|none]\n"
"                   [--max-sensors N] [--max-pending N] [--idle-timeout SECONDS]\n"
"                   [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
"                   [--auth-key-file FILE] [--port-file FILE] [-Z USER]\n"
"                   [--kafka BROKERS --kafka-topic TOPIC\n"
"                    [--kafka-property KEY=VALUE]...]\n"
"                   [-q|-v]\n"
"       ps-receiver --from-kafka BROKERS --kafka-topic TOPIC --kafka-group GROUP\n"
"                   -w FILE|- [the output options above]\n"
"       ps-receiver -h|-V\n"
"\n"
"Accept packet streams from ps-sensor and write them to a capture file, or\n"
"to standard output for tshark -r -, wireshark -k -i -, Zeek or Suricata.\n"
"\n"
"  -l, --listen [ADDR]:PORT  where to listen (repeatable; no ADDR: every\n"
"                          address; brackets only for IPv6, [IPV6]:PORT)\n"
"  -w, --write FILE        output file, '-' for standard output; strftime\n"
"                          conversions (%%Y%%m%%d-%%H%%M%%S, '%%%%' for '%%') and\n"
"                          {sensor} are expanded; an existing file is never\n"
"                          overwritten (FILE.1.EXT, ... instead)\n"
"  -C SIZE                 new file once one holds SIZE million bytes (or\n"
"                          SIZEk, SIZEm, SIZEg: KiB, MiB, GiB)\n"
"  -G SECONDS              new file when a period of SECONDS begins\n"
"  -W COUNT                keep at most COUNT files per output (deletes the\n"
"                          oldest; needs -C or -G)\n"
"      --split-by-sensor   one output per sensor: {sensor} in FILE, or\n"
"                          FILE.SENSOR.EXT\n"
"      --post-rotate CMD   run CMD FILE (via /bin/sh) on each closed file\n"
"      --append            continue an existing file (a torn last record\n"
"                          is cut)\n"
"      --state FILE|none   journal of what was acknowledged, so a receiver\n"
"                          killed and restarted writes every packet once\n"
"                          (default .NAME.state beside the output)\n"
"  -F, --format pcap|pcapng  output format (default pcap, or pcapng if\n"
"                          FILE ends in .pcapng)\n"
"      --time-stamp-precision micro|nano  pcap time stamps (default micro)\n"
"      --max-sensors N     concurrent sensors, counted once they proved\n"
"                          the key (or said hello); beyond, a sensor is\n"
"                          told the receiver is full and retries\n"
"                          (default 1024)\n"
"      --max-pending N     connections held in their handshake; the one\n"
"                          waiting longest is closed for a new one\n"
"                          (default twice --max-sensors, at least 64)\n"
"      --idle-timeout SECONDS  drop a sensor silent this long (default 60)\n"
"      --kafka BROKERS     also (or, without -w, only) write to Kafka:\n"
"                          one message per sensor batch, a pcapng section;\n"
"                          a batch is acknowledged once Kafka keeps it\n"
"                          (docs/KAFKA.md; no --state journal with it)\n"
"      --kafka-topic TOPIC the topic (required with --kafka)\n"
"      --kafka-property KEY=VALUE  a librdkafka setting (repeatable):\n"
"                          compression.codec=lz4, security.protocol=ssl...\n"
"      --from-kafka BROKERS  read the topic a --kafka receiver wrote into\n"
"                          the outputs instead of listening: each packet\n"
"                          once (duplicates skipped), offsets committed\n"
"                          once the output and its journal hold the data\n"
"      --kafka-group GROUP the consumer group (required with --from-kafka;\n"
"                          consumers of one group split the partitions)\n");
  ps_cli_help(PS_CLI_RECEIVER, f, PS_CLI_HELP_CRED);
  fputs(
"      --port-file FILE    once listening, write \"ADDR PORT\" per listening\n"
"                          socket to FILE (replaced whole: for port 0)\n",
        f);
  ps_cli_help(PS_CLI_RECEIVER, f, PS_CLI_HELP_USER);
  ps_cli_help(PS_CLI_RECEIVER, f, PS_CLI_HELP_LOG);
  fputs(
"\n"
"Classic pcap holds one link type: packets of another link type go to a\n"
"sibling file, out.pcap -> out.RAW.pcap (libpcap's name of the link type;\n"
"refused on standard output: use pcapng). SIGHUP starts new files at the\n"
"next write (for logrotate). SIGINT/SIGTERM finish what was received,\n"
"close the output and exit 0. An empty option value is a usage error,\n"
"never \"default\"; options naming a file, a key or a command can be given\n"
"once. Exit status: 0 done, 1 runtime error, 2 usage error.\n",
        f);
}
/* clang-format on */

enum {
  OPT_TSPREC = 256,
  OPT_MAX_SENSORS,
  OPT_IDLE,
  OPT_SPLIT,
  OPT_POST_ROTATE,
  OPT_APPEND,
  OPT_STATE,
  OPT_MAX_PENDING,
  OPT_PORT_FILE,
  OPT_KAFKA,
  OPT_KAFKA_TOPIC,
  OPT_KAFKA_PROPERTY,
  OPT_FROM_KAFKA,
  OPT_KAFKA_GROUP
};

/* An empty value never means "default" or "off" (an unset shell
 * variable gives one): what to give instead, per option (the common
 * options' are in ps_cli.c). */
static const char *empty_hint(int c) {
  switch (c) {
  case OPT_POST_ROTATE:
    return NULL; /* its own message, below */
  case 'l':
    return "give [ADDR]:PORT, or :PORT for every address";
  case 'w':
    return "give a file name, or - for standard output";
  case OPT_STATE:
    return "give a file name, or none";
  case OPT_PORT_FILE:
    return "give a file name, or leave the option out";
  case OPT_KAFKA:
    return "give HOST:PORT[,HOST:PORT...] of Kafka brokers";
  case OPT_KAFKA_TOPIC:
    return "give a topic name";
  case OPT_FROM_KAFKA:
    return "give HOST:PORT[,HOST:PORT...] of Kafka brokers";
  case OPT_KAFKA_GROUP:
    return "give a consumer group name";
  case OPT_KAFKA_PROPERTY:
    return "give KEY=VALUE";
  case 'F':
    return "give pcap or pcapng";
  case OPT_TSPREC:
    return "give micro or nano";
  case 'C':
    return "give a size";
  default:
    return "give a number";
  }
}

/* The common options (-Z, -q, ...) are added from ps_cli.c. */
static const char shortopts[] = ":l:w:F:C:G:W:";

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"listen", required_argument, NULL, 'l'},
      {"write", required_argument, NULL, 'w'},
      {"format", required_argument, NULL, 'F'},
      {"time-stamp-precision", required_argument, NULL, OPT_TSPREC},
      {"max-sensors", required_argument, NULL, OPT_MAX_SENSORS},
      {"max-pending", required_argument, NULL, OPT_MAX_PENDING},
      {"idle-timeout", required_argument, NULL, OPT_IDLE},
      {"split-by-sensor", no_argument, NULL, OPT_SPLIT},
      {"post-rotate", required_argument, NULL, OPT_POST_ROTATE},
      {"append", no_argument, NULL, OPT_APPEND},
      {"state", required_argument, NULL, OPT_STATE},
      {"port-file", required_argument, NULL, OPT_PORT_FILE},
      {"kafka", required_argument, NULL, OPT_KAFKA},
      {"kafka-topic", required_argument, NULL, OPT_KAFKA_TOPIC},
      {"kafka-property", required_argument, NULL, OPT_KAFKA_PROPERTY},
      {"from-kafka", required_argument, NULL, OPT_FROM_KAFKA},
      {"kafka-group", required_argument, NULL, OPT_KAFKA_GROUP},
      {NULL, 0, NULL, 0}};
  const char *listens[8];
  int n_listen = 0, nano = 0, format = -1; /* 0 pcap 1 ng */
  const char *out = NULL;
  uint64_t max_sensors = 0, max_pending = 0, idle = 0;
  const char *port_file = NULL;
  ps_file_sink_options fopt = PS_FILE_SINK_OPTIONS_INIT;
  const char *state = NULL; /* journal: default FILE.state */
  const char *kafka = NULL, *kafka_topic = NULL;
  const char *from_kafka = NULL, *kafka_group = NULL;
  const char *kafka_props[65];
  int n_kafka_props = 0;
  uint64_t v;
  char why[256];

  ps_cli_parser p;
  ps_cli_common co;
  ps_cli_getopt_init(&p, &co, "ps-receiver", PS_CLI_RECEIVER, longopts,
                     shortopts, usage, empty_hint);
  int c;
  while ((c = ps_cli_getopt(&p, &co, argc, argv)) != -1) {
    const char *opt = p.opt;
    if (c == PS_CLI_STOP) {
      return p.status;
    }
    switch (c) {
    case 'l':
      if (n_listen == 8) {
        return ps_cli_usage_error("too many --listen options (at most %s)",
                                  "8");
      }
      listens[n_listen++] = optarg;
      break;
    case 'w':
      if (ps_cli_once(&out, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case 'F':
      if (strcmp(optarg, "pcap") == 0) {
        format = 0;
      } else if (strcmp(optarg, "pcapng") == 0) {
        format = 1;
      } else {
        return ps_cli_usage_error("unknown --format '%s': use pcap or pcapng",
                                  optarg);
      }
      break;
    case OPT_TSPREC:
      if (strcmp(optarg, "micro") == 0) {
        nano = 0;
      } else if (strcmp(optarg, "nano") == 0) {
        nano = 1;
      } else {
        return ps_cli_usage_error(
            "unknown --time-stamp-precision '%s': use micro or nano", optarg);
      }
      break;
    case OPT_MAX_SENSORS:
      if (ps_cli_parse_u64(optarg, 1, 1000000, &max_sensors, why,
                           sizeof(why))) {
        return ps_cli_usage_error("invalid --max-sensors: %s", why);
      }
      break;
    case OPT_MAX_PENDING:
      if (ps_cli_parse_u64(optarg, 1, 1000000, &max_pending, why,
                           sizeof(why))) {
        return ps_cli_usage_error("invalid --max-pending: %s", why);
      }
      break;
    case OPT_IDLE:
      if (ps_cli_parse_u64(optarg, 1, 86400, &idle, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --idle-timeout: %s", why);
      }
      break;
    case 'C':
      if (ps_cli_parse_size(optarg, 1000000, 1, (uint64_t)1000000000 * 1000000,
                            &fopt.rotate_bytes, why, sizeof(why)) != 0) {
        return ps_cli_usage_error(
            "invalid -C: %s (millions of bytes, or a number "
            "with k, m or g)",
            why);
      }
      break;
    case 'G':
      if (ps_cli_parse_u64(optarg, 1, 31622400, &v, why, sizeof(why))) {
        return ps_cli_usage_error("invalid -G: %s (seconds)", why);
      }
      fopt.rotate_seconds = (unsigned)v;
      break;
    case 'W':
      if (ps_cli_parse_u64(optarg, 1, 1000000, &v, why, sizeof(why))) {
        return ps_cli_usage_error("invalid -W: %s (a number of files)", why);
      }
      fopt.max_files = (unsigned)v;
      break;
    case OPT_SPLIT:
      fopt.split_by_sensor = 1;
      break;
    case OPT_POST_ROTATE:
      if (*optarg == '\0') {
        return ps_cli_usage_error(
            "empty --post-rotate command: give a command, "
            "run as CMD FILE");
      }
      if (ps_cli_once(&fopt.post_rotate, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_PORT_FILE:
      if (ps_cli_once(&port_file, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_STATE:
      if (ps_cli_once(&state, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_APPEND:
      fopt.flags |= PS_SINK_APPEND;
      break;
    case OPT_KAFKA:
      if (ps_cli_once(&kafka, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_KAFKA_TOPIC:
      if (ps_cli_once(&kafka_topic, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_FROM_KAFKA:
      if (ps_cli_once(&from_kafka, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_KAFKA_GROUP:
      if (ps_cli_once(&kafka_group, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_KAFKA_PROPERTY:
      if (strchr(optarg, '=') == NULL || *optarg == '=') {
        return ps_cli_usage_error(
            "invalid --kafka-property '%s': give KEY=VALUE", optarg);
      }
      if (n_kafka_props == 64) {
        return ps_cli_usage_error("too many --kafka-property options (at "
                                  "most %s)",
                                  "64");
      }
      kafka_props[n_kafka_props++] = optarg;
      break;
    }
  }
  if (optind < argc) {
    return ps_cli_usage_error("unexpected argument '%s'", argv[optind]);
  }
  if (from_kafka != NULL && (kafka != NULL || n_listen > 0)) {
    return ps_cli_usage_error(
        "--from-kafka reads a topic instead of listening: leave out %s",
        kafka != NULL ? "--kafka" : "--listen");
  }
  if ((kafka != NULL || from_kafka != NULL) && !ps_kafka_available()) {
    return ps_cli_usage_error(
        "%s: this ps-receiver was built without Kafka support "
        "(rebuild with librdkafka-dev installed, configure --with-kafka)",
        kafka != NULL ? "--kafka" : "--from-kafka");
  }
  if (from_kafka != NULL && (kafka_topic == NULL || kafka_group == NULL)) {
    return ps_cli_usage_error("--from-kafka needs %s",
                              kafka_topic == NULL ? "--kafka-topic TOPIC"
                                                  : "--kafka-group GROUP");
  }
  if (from_kafka == NULL && kafka_group != NULL) {
    return ps_cli_usage_error("--kafka-group needs --from-kafka BROKERS");
  }
  if (n_listen == 0 && from_kafka == NULL) {
    return ps_cli_usage_error("--listen [ADDR]:PORT is required");
  }
  if (kafka != NULL && kafka_topic == NULL) {
    return ps_cli_usage_error("--kafka needs --kafka-topic TOPIC");
  }
  if (kafka == NULL && from_kafka == NULL &&
      (kafka_topic != NULL || n_kafka_props > 0)) {
    return ps_cli_usage_error("%s needs --kafka BROKERS",
                              kafka_topic ? "--kafka-topic"
                                          : "--kafka-property");
  }
  if (kafka != NULL && state != NULL && strcmp(state, "none") != 0) {
    return ps_cli_usage_error(
        "--state %s: the journal does not go with --kafka (a batch is "
        "acknowledged only once Kafka keeps it; leave --state out)",
        state);
  }
  if (kafka != NULL && state == NULL) {
    state = "none";
  }
  kafka_props[n_kafka_props] = NULL;
  if (out == NULL && kafka == NULL) {
    return ps_cli_usage_error(
        "-w FILE (or -w - for standard output) is required");
  }
  char hosts[8][256];
  uint16_t ports[8];
  for (int i = 0; i < n_listen; i++) {
    if (ps_cli_parse_hostport(listens[i], 1, 1, hosts[i], sizeof(hosts[i]),
                              &ports[i], why, sizeof(why))) {
      return ps_cli_usage_error("invalid --listen: %s", why);
    }
  }
  if (ps_cli_check_common(&co) != 0) {
    return PS_EXIT_USAGE;
  }
  if (format < 0) {
    format = out == NULL                                    ? 1
             : ps_format_from_path(out) == PS_FORMAT_PCAPNG ? 1
                                                            : 0;
  }
  if (format == 1 && nano) {
    return ps_cli_usage_error(
        "--time-stamp-precision applies to pcap; pcapng keeps "
        "each sensor's own precision");
  }
  if (out != NULL && strcmp(out, "-") == 0) {
    const char *o = fopt.rotate_bytes               ? "-C"
                    : fopt.rotate_seconds           ? "-G"
                    : fopt.max_files                ? "-W"
                    : fopt.split_by_sensor          ? "--split-by-sensor"
                    : fopt.post_rotate              ? "--post-rotate"
                    : (fopt.flags & PS_SINK_APPEND) ? "--append"
                                                    : NULL;
    if (o != NULL) {
      return ps_cli_usage_error(
          "%s needs a file: standard output (-w -) cannot be "
          "rotated, split or appended to",
          o);
    }
  }
  if (fopt.max_files && !fopt.rotate_bytes && !fopt.rotate_seconds) {
    return ps_cli_usage_error(
        "-W needs -C SIZE or -G SECONDS: it counts rotated "
        "files");
  }
  if (!fopt.split_by_sensor && out != NULL && strstr(out, "{sensor}") != NULL) {
    return ps_cli_usage_error("-w %s names {sensor}: add --split-by-sensor",
                              out);
  }
  if (nano) {
    fopt.flags |= PS_SINK_NANO;
  }

  ps_cli_raise_nofile();
  ps_receiver *r = NULL;
  ps_sink *sink = NULL;
  int rc = ps_receiver_create(&r);
  if (rc != 0) {
    ps_cli_err("%s", ps_strerror(rc));
    return PS_EXIT_RUNTIME;
  }
  g_receiver = r;
  ps_receiver_set_log(r, ps_cli_log, NULL);
#ifdef PS_TOOL_TEST_HOOKS
  ps__tool_test_hook(r);
#endif
  if (co.tls.cert_file != NULL &&
      (rc = ps_receiver_set_tls(r, &co.tls, sizeof(co.tls))) != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
    ps_receiver_free(r);
    return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
  }
  if (co.key_file != NULL) {
    uint8_t key[1024];
    size_t n;
    if (ps_auth_key_load(key, &n, co.key_file, why, sizeof(why)) != 0) {
      ps_cli_err("%s", why);
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
    ps_receiver_set_auth_key(r, key, n);
    memset(key, 0, sizeof(key));
    if (co.tls.cert_file == NULL) {
      ps_cli_log(PS_LOG_WARNING,
                 "shared-key authentication without TLS: keys are never "
                 "sent, but the packets cross the network readable",
                 NULL);
    }
  }
  ps_receiver_set_max_sessions(r, (unsigned)max_sensors);
  ps_receiver_set_idle_timeout_ms(r, (unsigned)idle * 1000u);
  ps_receiver_set_max_pending(r, (unsigned)max_pending);
  /* The journal first: it repairs the files the outputs may reopen. */
  char state_buf[4096];
  struct stat ost;
  int special = out != NULL && stat(out, &ost) == 0 && !S_ISREG(ost.st_mode);
  if (state == NULL && out != NULL && strcmp(out, "-") != 0 && !special) {
    /* (A named pipe or a device is written as it is: nothing to cut
     * back, no journal.) */
    if (ps_receiver_default_state_path(state_buf, sizeof(state_buf), out) !=
        0) {
      ps_receiver_free(r);
      return ps_cli_usage_error("the directory of -w %s is a template: give "
                                "--state FILE for the receiver's journal",
                                out);
    }
    state = state_buf;
  }
  if (state != NULL && strcmp(state, "none") != 0 && strcmp(out, "-") != 0 &&
      !special && !state_covers(state, out)) {
    ps_receiver_free(r);
    return ps_cli_usage_error(
        "--state %s: the journal cuts back only files in its "
        "own directory or below it, and -w %s is not there: "
        "put it in the output's directory",
        state, out);
  }
  if (state != NULL && strcmp(state, "none") != 0 &&
      ps_receiver_set_state_file(r, state) != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
    ps_receiver_free(r);
    return PS_EXIT_RUNTIME;
  }
  for (int i = 0; i < n_listen; i++) {
    if ((rc = ps_receiver_listen(r, hosts[i], ports[i])) != 0) {
      ps_cli_err("%s", ps_receiver_errmsg(r));
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
  }
  if (out != NULL) {
    rc = ps_file_sink(&sink, format == 1 ? PS_FORMAT_PCAPNG : PS_FORMAT_PCAP,
                      out, &fopt, sizeof(fopt));
    if (rc != 0) {
      ps_cli_err("%s", sink ? ps_sink_errmsg(sink) : ps_strerror(rc));
      ps_sink_free(sink);
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
    ps_receiver_add_sink(r, sink);
    g_sink = sink; /* owned by the receiver; cleared before it is freed */
  }
  if (kafka != NULL) {
    ps_sink *ks = NULL;
    ps_kafka_sink_options kopt = PS_KAFKA_SINK_OPTIONS_INIT;
    kopt.brokers = kafka;
    kopt.topic = kafka_topic;
    kopt.properties = kafka_props;
    rc = ps_kafka_sink(&ks, &kopt, sizeof(kopt));
    if (rc == 0) {
      rc = ps_receiver_add_sink(r, ks);
      if (rc != 0) {
        ps_cli_err("%s", ps_receiver_errmsg(r));
        ps_sink_free(ks);
        ps_receiver_free(r);
        return PS_EXIT_RUNTIME;
      }
    } else {
      ps_cli_err("%s", ks ? ps_sink_errmsg(ks) : ps_strerror(rc));
      ps_sink_free(ks);
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
  }
  /* Written as the user who started us (like a pid file), once the
   * sockets listen and the output is open. */
  if (from_kafka != NULL) {
    ps_kafka_input_options kin = PS_KAFKA_INPUT_OPTIONS_INIT;
    kin.brokers = from_kafka;
    kin.topic = kafka_topic;
    kin.group = kafka_group;
    kin.properties = kafka_props;
    if ((rc = ps_receiver_consume_kafka(r, &kin, sizeof(kin))) != 0) {
      ps_cli_err("%s", ps_receiver_errmsg(r));
      g_sink = NULL;
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
    char kline[1200];
    snprintf(kline, sizeof(kline),
             "reading Kafka topic %s at %s (group %s), writing %s to %s",
             kafka_topic, from_kafka, kafka_group,
             format == 1 ? "pcapng" : "pcap",
             strcmp(out, "-") ? out : "standard output");
    ps_cli_log(PS_LOG_INFO, kline, NULL);
  }
  if (port_file != NULL &&
      write_port_file(r, port_file, why, sizeof(why)) != 0) {
    ps_cli_err("%s", why);
    g_sink = NULL;
    ps_receiver_free(r);
    return PS_EXIT_RUNTIME;
  }
  /* Only with -Z: the receiver may need its user's rights for outputs. */
  if (co.run_as != NULL &&
      ps_cli_drop_privileges(co.run_as, why, sizeof(why)) != 0) {
    ps_cli_err("%s", why);
    ps_receiver_free(r);
    return PS_EXIT_RUNTIME;
  }

  ps_cli_signals(on_signal, on_hup);

  char line[4096];
  for (int i = 0; i < n_listen; i++) {
    char kdesc[600] = "";
    if (kafka != NULL) {
      snprintf(kdesc, sizeof(kdesc), "%sKafka topic %s at %s",
               out != NULL ? " and to " : "", kafka_topic, kafka);
    }
    snprintf(line, sizeof(line), "listening on %s%s%s:%u, writing %s%s%s%s",
             strchr(hosts[i], ':') ? "[" : "", hosts[i][0] ? hosts[i] : "*",
             strchr(hosts[i], ':') ? "]" : "",
             i == 0 ? ps_receiver_port(r) : ports[i],
             out == NULL   ? ""
             : format == 1 ? "pcapng to "
                           : "pcap to ",
             out == NULL        ? ""
             : strcmp(out, "-") ? out
                                : "standard output",
             kafka != NULL && out == NULL ? "to " : "", kdesc);
    ps_cli_log(PS_LOG_INFO, line, NULL);
  }
  rc = ps_receiver_run(r);
  ps_receiver_counters ctr;
  ps_receiver_get_counters(r, &ctr, sizeof(ctr));
  /* Connections that never said hello are no sensor's: counted apart. */
  char other[96] = "";
  if (ctr.connections_no_hello > 0) {
    snprintf(other, sizeof(other),
             ", %llu other connections closed "
             "before the hello",
             (unsigned long long)ctr.connections_no_hello);
  }
  snprintf(line, sizeof(line),
           "%llu sensor sessions (%llu failed)%s, %llu packets, %llu bytes "
           "written; dropped: %llu by the sensors' kernels and interfaces, "
           "%llu by their replay buffers; %llu resent batches skipped as "
           "already written; %llu output stalls",
           (unsigned long long)ctr.sessions_total,
           (unsigned long long)ctr.sessions_failed, other,
           (unsigned long long)ctr.packets, (unsigned long long)ctr.bytes,
           (unsigned long long)ctr.dropped, (unsigned long long)ctr.overflow,
           (unsigned long long)ctr.duplicate_batches,
           (unsigned long long)ctr.write_stalls);
  if (from_kafka != NULL) {
    /* The closing note of a consumer: what it read and skipped. */
    snprintf(
        line, sizeof(line),
        "Kafka input: %llu messages read, %llu packets, %llu bytes "
        "written for %llu streams; %llu duplicate messages skipped, "
        "%llu gaps, %llu bad messages skipped",
        (unsigned long long)ctr.kafka_messages, (unsigned long long)ctr.packets,
        (unsigned long long)ctr.bytes, (unsigned long long)ctr.sessions_total,
        (unsigned long long)ctr.kafka_duplicates,
        (unsigned long long)ctr.kafka_gaps, (unsigned long long)ctr.kafka_bad);
  }
  ps_cli_log(PS_LOG_INFO, line, NULL);
  if (rc != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
  }
  g_receiver = NULL;
  g_sink = NULL;
  ps_receiver_free(r);
  return rc == 0 ? PS_EXIT_OK : PS_EXIT_RUNTIME;
}
