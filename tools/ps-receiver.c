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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef PS_TOOL_TEST_HOOKS
/* Only in the test build, tests/ps-receiver-fp (tests/receiver_fp.c). */
void ps__tool_test_hook(ps_receiver *r);
#endif

/* -w may be given this often: files (each its own format), or
 * standard output once. */
#define MAX_OUT 4

static ps_receiver *g_receiver;
static ps_sink *volatile g_sinks[MAX_OUT];

static void on_signal(int sig) {
  (void)sig;
  ps_receiver_stop(g_receiver);
}

/* SIGHUP: new files at the next write (ps_sink_reopen is
 * async-signal-safe). */
static void on_hup(int sig) {
  (void)sig;
  for (int i = 0; i < MAX_OUT; i++) {
    if (g_sinks[i] != NULL) {
      ps_sink_reopen(g_sinks[i]);
    }
  }
}

static void forget_sinks(void) {
  for (int i = 0; i < MAX_OUT; i++) {
    g_sinks[i] = NULL;
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
static int write_port_file(ps_receiver *r, const char *path,
                           const char *admin_host, char *err, size_t errlen) {
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
  if (admin_host != NULL) {
    /* --admin-port-file: the admin API's one socket. */
    fprintf(f, "%s %u\n", admin_host[0] ? admin_host : "*",
            (unsigned)ps_receiver_admin_port(r));
  }
  for (unsigned i = 0;
       admin_host == NULL &&
       ps_receiver_listener(r, addr, sizeof(addr), &port, i) == 0;
       i++) {
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

/* --pcap-over-ip [ADDR]:PORT[,OPTION...] and --pcap-over-ip-connect
 * HOST:PORT[,OPTION...]: the address, then name=value options; allow=
 * takes a list, so an item without '=' after it is one more network. */
typedef struct poip_spec {
  int connect;
  const char *arg;
  char host[256];
  uint16_t port;
  char copy[4096]; /* the options' strings point into it */
  char allow[1024];
  ps_pcap_over_ip_options o;
} poip_spec;

static int parse_poip(poip_spec *sp, const char *arg, int connect, char *why,
                      size_t whylen) {
  const char *opt = connect ? "--pcap-over-ip-connect" : "--pcap-over-ip";
  ps_pcap_over_ip_options init = PS_PCAP_OVER_IP_OPTIONS_INIT;
  sp->o = init;
  sp->connect = connect;
  sp->arg = arg;
  sp->allow[0] = '\0';
  if ((size_t)snprintf(sp->copy, sizeof(sp->copy), "%s", arg) >=
      sizeof(sp->copy)) {
    snprintf(why, whylen, "%s: the value is too long (at most %zu bytes)", opt,
             sizeof(sp->copy) - 1);
    return -1;
  }
  char *rest = strchr(sp->copy, ',');
  if (rest != NULL) {
    *rest++ = '\0';
  }
  char e[256];
  if (ps_cli_parse_hostport(sp->copy, !connect, !connect, sp->host,
                            sizeof(sp->host), &sp->port, e, sizeof(e)) != 0) {
    snprintf(why, whylen, "invalid %s '%s': %s", opt, arg, e);
    return -1;
  }
  int in_allow = 0;
  while (rest != NULL && *rest != '\0') {
    char *item = rest;
    rest = strchr(item, ',');
    if (rest != NULL) {
      *rest++ = '\0';
    }
    char *eq = strchr(item, '=');
    if (eq == NULL && in_allow) {
      size_t n = strlen(sp->allow);
      snprintf(sp->allow + n, sizeof(sp->allow) - n, ",%s", item);
      continue;
    }
    in_allow = 0;
    if (eq == NULL || eq[1] == '\0') {
      snprintf(why, whylen,
               "invalid %s '%s': '%s' is no NAME=VALUE option (format=, "
               "sensor=, filter=, queue=, %s)",
               opt, arg, item,
               connect ? "tls-ca=, tls-server-name="
                       : "max-clients=, allow=, tls-cert=, tls-key=");
      return -1;
    }
    *eq = '\0';
    const char *v = eq + 1;
    uint64_t n;
    if (strcmp(item, "format") == 0) {
      if (strcmp(v, "pcap") == 0) {
        sp->o.format = PS_PCAP_OVER_IP_PCAP;
      } else if (strcmp(v, "pcap-ns") == 0) {
        sp->o.format = PS_PCAP_OVER_IP_PCAP_NS;
      } else if (strcmp(v, "pcapng") == 0) {
        sp->o.format = PS_PCAP_OVER_IP_PCAPNG;
      } else {
        snprintf(why, whylen,
                 "invalid %s '%s': format=%s: use pcap, pcap-ns or pcapng", opt,
                 arg, v);
        return -1;
      }
    } else if (strcmp(item, "sensor") == 0) {
      sp->o.sensor = v;
    } else if (strcmp(item, "filter") == 0) {
      sp->o.filter = v;
    } else if (strcmp(item, "queue") == 0) {
      if (ps_cli_parse_size(v, 1, 65536, (uint64_t)4 << 30, &n, e, sizeof(e)) !=
          0) {
        snprintf(why, whylen,
                 "invalid %s '%s': queue=%s: %s (bytes, or a number with "
                 "k, m or g)",
                 opt, arg, v, e);
        return -1;
      }
      sp->o.queue_bytes = n;
    } else if (!connect && strcmp(item, "max-clients") == 0) {
      if (ps_cli_parse_u64(v, 1, 100000, &n, e, sizeof(e)) != 0) {
        snprintf(why, whylen, "invalid %s '%s': max-clients=%s: %s", opt, arg,
                 v, e);
        return -1;
      }
      sp->o.max_clients = (unsigned)n;
    } else if (!connect && strcmp(item, "allow") == 0) {
      snprintf(sp->allow, sizeof(sp->allow), "%s", v);
      sp->o.allow = sp->allow;
      in_allow = 1;
    } else if (!connect && strcmp(item, "tls-cert") == 0) {
      sp->o.tls_cert_file = v;
    } else if (!connect && strcmp(item, "tls-key") == 0) {
      sp->o.tls_key_file = v;
    } else if (connect && strcmp(item, "tls-ca") == 0) {
      sp->o.tls_ca_file = v;
    } else if (connect && strcmp(item, "tls-server-name") == 0) {
      sp->o.tls_server_name = v;
    } else {
      snprintf(why, whylen,
               "invalid %s '%s': unknown option '%s' (use format=, sensor=, "
               "filter=, queue=, %s)",
               opt, arg, item,
               connect ? "tls-ca=, tls-server-name="
                       : "max-clients=, allow=, tls-cert=, tls-key=");
      return -1;
    }
  }
  if (!connect &&
      ((sp->o.tls_cert_file == NULL) != (sp->o.tls_key_file == NULL))) {
    snprintf(why, whylen,
             "invalid %s '%s': TLS needs both tls-cert= and tls-key=", opt,
             arg);
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
"                   [--pcap-over-ip [ADDR]:PORT[,OPTION...]]...\n"
"                   [--pcap-over-ip-connect HOST:PORT[,OPTION...]]...\n"
"                   [--format pcap|pcapng] [--time-stamp-precision micro|nano]\n"
"                   [-C SIZE] [-G SECONDS] [-W COUNT] [--split-by-sensor]\n"
"                   [--post-rotate CMD] [--append] [--state FILE|none]\n"
"                   [--max-sensors N] [--max-pending N] [--idle-timeout SECONDS]\n"
"                   [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
"                   [--auth-key-file FILE] [--port-file FILE] [-Z USER]\n"
"                   [--config FILE] [--print-config] [-q|-v]\n"
"                   [--log-format text|json] [--log-file FILE]\n"
"                   [--admin [ADDR]:PORT [--admin-token-file FILE]\n"
"                    [--admin-tls-cert FILE --admin-tls-key FILE\n"
"                     [--admin-tls-client-ca FILE]]\n"
"                    [--admin-port-file FILE] [--capture-dir DIR]]\n"
"                   [--kafka BROKERS --kafka-topic TOPIC\n"
"                    [--kafka-property KEY=VALUE]...]\n"
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
"                          overwritten (FILE.1.EXT, ... instead); repeat\n"
"                          it for several outputs (up to 4, '-' once)\n"
"  -C, --file-size SIZE    new file once one holds SIZE million bytes (or\n"
"                          SIZEk, SIZEm, SIZEg: KiB, MiB, GiB)\n"
"  -G, --rotate-seconds SECONDS  new file when a period of SECONDS begins\n"
"  -W, --file-count COUNT  keep at most COUNT files per output (deletes the\n"
"                          oldest; needs -C or -G)\n"
"      --split-by-sensor   one output per sensor: {sensor} in FILE, or\n"
"                          FILE.SENSOR.EXT\n"
"      --post-rotate CMD   run CMD FILE (via /bin/sh) on each closed file\n"
"      --append            continue an existing file (a torn last record\n"
"                          is cut)\n"
"      --state FILE|none   journal of what was acknowledged, so a receiver\n"
"                          killed and restarted writes every packet once\n"
"                          (default .NAME.state beside the output); the\n"
"                          captures on demand are kept in FILE.captures\n"
"      --capture-dir DIR   where a capture's own file (\"output\") goes\n"
"                          (default: the directory of the first -w)\n"
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
"      --pcap-over-ip [ADDR]:PORT[,OPTION...]  serve the packets live to\n"
"                          PCAP-over-IP clients (tshark -i TCP@ADDR:PORT,\n"
"                          Arkime, NetworkMiner; repeatable); no ADDR:\n"
"                          127.0.0.1. Options: format=pcap|pcap-ns|pcapng,\n"
"                          sensor=GLOB, filter=BPF, max-clients=N (64),\n"
"                          queue=SIZE per client (4m), allow=CIDR[,CIDR...],\n"
"                          tls-cert=FILE,tls-key=FILE. A slow client loses\n"
"                          packets of its own, never holds back the rest.\n"
"                          Raw traffic to whoever connects: see allow=\n"
"      --pcap-over-ip-connect HOST:PORT[,OPTION...]  connect out to a\n"
"                          listening consumer (Arkime's pcap-over-ip-server),\n"
"                          reconnecting with back-off; format=, sensor=,\n"
"                          filter=, queue=, tls-ca=FILE, tls-server-name=\n"
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
"                          socket to FILE (replaced whole: for port 0)\n"
"      --admin [ADDR]:PORT  serve the admin API (HTTP, JSON; /metrics for\n"
"                          Prometheus) there; without a token only on\n"
"                          loopback (no ADDR: 127.0.0.1)\n"
"      --admin-token-file FILE  every admin request must carry\n"
"                          \"Authorization: Bearer TOKEN\", TOKEN the\n"
"                          file's content (the file readable only by its\n"
"                          owner)\n"
"      --admin-tls-cert FILE, --admin-tls-key FILE  serve the admin API\n"
"                          over HTTPS with this certificate and key (PEM)\n"
"      --admin-tls-client-ca FILE  every admin request must come with a\n"
"                          client certificate issued by these CAs (PEM);\n"
"                          this authenticates as a token does\n"
"      --admin-port-file FILE  once the admin API listens, write \"ADDR PORT\"\n"
"                          to FILE\n",
        f);
  ps_cli_help(PS_CLI_RECEIVER, f, PS_CLI_HELP_USER);
  ps_cli_help(PS_CLI_RECEIVER, f, PS_CLI_HELP_LOG);
  fputs(
"\n"
"-w is optional when there is a PCAP-over-IP output; only files decide\n"
"what is acknowledged to the sensors.\n"
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
  OPT_POIP,
  OPT_POIP_CONNECT,
  OPT_KAFKA,
  OPT_KAFKA_TOPIC,
  OPT_KAFKA_PROPERTY,
  OPT_FROM_KAFKA,
  OPT_KAFKA_GROUP,
  OPT_ADMIN,
  OPT_ADMIN_TOKEN,
  OPT_ADMIN_PORT_FILE,
  OPT_ADMIN_TLS_CERT,
  OPT_ADMIN_TLS_KEY,
  OPT_ADMIN_TLS_CA,
  OPT_CAPTURE_DIR
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
  case OPT_CAPTURE_DIR:
    return "give a directory";
  case OPT_PORT_FILE:
  case OPT_ADMIN_PORT_FILE:
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
  case OPT_POIP:
    return "give [ADDR]:PORT[,OPTION...]";
  case OPT_POIP_CONNECT:
    return "give HOST:PORT[,OPTION...]";
  case OPT_ADMIN:
    return "give [ADDR]:PORT, e.g. 127.0.0.1:9100";
  case OPT_ADMIN_TOKEN:
    return "give a token file";
  case OPT_ADMIN_TLS_CERT:
  case OPT_ADMIN_TLS_KEY:
  case OPT_ADMIN_TLS_CA:
    return "give a PEM file, or leave the option out";
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

/* An option whose value is one string, given at most once: where it
 * goes. */
typedef struct once_opt {
  int opt;
  const char **slot;
} once_opt;

static const char **once_slot(int opt, const once_opt *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (t[i].opt == opt) {
      return t[i].slot;
    }
  }
  return NULL;
}

/* The common options (-Z, -q, ...) are added from ps_cli.c. */
static const char shortopts[] = ":l:w:F:C:G:W:";

/* Every sensor holds a descriptor: ps_cli_raise_nofile() took the whole
 * hard limit at start (the soft one is often 1024; systemd's
 * LimitNOFILE= sets both). Says so, and when even that is short of
 * --max-sensors. */
static void log_nofile(rlim_t was, uint64_t sensors) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return;
  }
  char line[256];
  snprintf(line, sizeof(line), "open files limit %llu (was %llu, hard %llu)",
           (unsigned long long)rl.rlim_cur, (unsigned long long)was,
           (unsigned long long)rl.rlim_max);
  ps_cli_log(PS_LOG_INFO, line, NULL);
  /* a descriptor per sensor, per connection in its handshake, and the
   * outputs, journal and admin sockets */
  uint64_t need = sensors + sensors / 8 + 64;
  if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < need) {
    snprintf(line, sizeof(line),
             "open files limit %llu is below the %llu that --max-sensors "
             "%llu needs: raise it (LimitNOFILE= in the unit, ulimit -n)",
             (unsigned long long)rl.rlim_cur, (unsigned long long)need,
             (unsigned long long)sensors);
    ps_cli_log(PS_LOG_WARNING, line, NULL);
  }
}

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
      {"pcap-over-ip", required_argument, NULL, OPT_POIP},
      {"pcap-over-ip-connect", required_argument, NULL, OPT_POIP_CONNECT},
      {"file-size", required_argument, NULL, 'C'},
      {"rotate-seconds", required_argument, NULL, 'G'},
      {"file-count", required_argument, NULL, 'W'},
      {"kafka", required_argument, NULL, OPT_KAFKA},
      {"kafka-topic", required_argument, NULL, OPT_KAFKA_TOPIC},
      {"kafka-property", required_argument, NULL, OPT_KAFKA_PROPERTY},
      {"from-kafka", required_argument, NULL, OPT_FROM_KAFKA},
      {"kafka-group", required_argument, NULL, OPT_KAFKA_GROUP},
      {"admin", required_argument, NULL, OPT_ADMIN},
      {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN},
      {"admin-port-file", required_argument, NULL, OPT_ADMIN_PORT_FILE},
      {"admin-tls-cert", required_argument, NULL, OPT_ADMIN_TLS_CERT},
      {"admin-tls-key", required_argument, NULL, OPT_ADMIN_TLS_KEY},
      {"admin-tls-client-ca", required_argument, NULL, OPT_ADMIN_TLS_CA},
      {"capture-dir", required_argument, NULL, OPT_CAPTURE_DIR},
      {NULL, 0, NULL, 0}};
  static const char *const repeatable[] = {
      "listen",         "write", "pcap-over-ip", "pcap-over-ip-connect",
      "kafka-property", NULL};
  /* One sink is the file output: the rest may be live. */
  enum { MAX_POIP = 7 }; /* ps_receiver_add_sink() takes 8 */
  poip_spec poips[MAX_POIP];
  int n_poip = 0;
  int n_listen = 0, nano = 0, format = -1; /* 0 pcap 1 ng */
  const char *outs[MAX_OUT];
  int n_out = 0, formats[MAX_OUT];
  const char *out = NULL; /* the first file output (not "-"), or NULL */
  uint64_t max_sensors = 0, max_pending = 0, idle = 0;
  const char *port_file = NULL;
  const char *admin = NULL, *admin_token = NULL, *admin_port_file = NULL;
  ps_tls_options admin_tls = PS_TLS_OPTIONS_INIT;
  ps_file_sink_options fopt = PS_FILE_SINK_OPTIONS_INIT;
  const char *state = NULL;       /* journal: default FILE.state */
  const char *capture_dir = NULL; /* default: the directory of -w */
  const char *kafka = NULL, *kafka_topic = NULL;
  const char *from_kafka = NULL, *kafka_group = NULL;
  const char *kafka_props[65];
  int n_kafka_props = 0;
  uint64_t v;
  char why[256];
  char line_admin[600] = "";

  /* The options that take one string, given at most once. */
  const once_opt once[] = {
      {OPT_ADMIN, &admin},
      {OPT_ADMIN_TOKEN, &admin_token},
      {OPT_ADMIN_PORT_FILE, &admin_port_file},
      {OPT_ADMIN_TLS_CERT, &admin_tls.cert_file},
      {OPT_ADMIN_TLS_KEY, &admin_tls.key_file},
      {OPT_ADMIN_TLS_CA, &admin_tls.client_ca_file},
      {OPT_PORT_FILE, &port_file},
      {OPT_STATE, &state},
      {OPT_CAPTURE_DIR, &capture_dir},
      {OPT_KAFKA, &kafka},
      {OPT_KAFKA_TOPIC, &kafka_topic},
      {OPT_FROM_KAFKA, &from_kafka},
      {OPT_KAFKA_GROUP, &kafka_group},
  };

  ps_cli_parser p;
  ps_cli_common co;
  ps_cli_getopt_init(&p, &co, "ps-receiver", PS_CLI_RECEIVER, longopts,
                     shortopts, usage, empty_hint);
  p.repeatable = repeatable;
  char hosts[8][256];
  uint16_t ports[8];
  int c;
  while ((c = ps_cli_getopt(&p, &co, argc, argv)) != -1) {
    const char *opt = p.opt;
    if (c == PS_CLI_STOP) {
      return p.status;
    }
    const char **slot = once_slot(c, once, sizeof(once) / sizeof(once[0]));
    if (slot != NULL) {
      if (ps_cli_once(slot, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      continue;
    }
    switch (c) {
    case 'l':
      if (n_listen == 8) {
        return ps_cli_usage_error("too many --listen options (at most %s)",
                                  "8");
      }
      if (ps_cli_parse_hostport(optarg, 1, 1, hosts[n_listen], sizeof(hosts[0]),
                                &ports[n_listen], why, sizeof(why))) {
        return ps_cli_usage_error("invalid --listen: %s", why);
      }
      n_listen++;
      break;
    case 'w':
      if (n_out == MAX_OUT) {
        return ps_cli_usage_error("too many -w outputs (at most %d)", MAX_OUT);
      }
      for (int k = 0; k < n_out; k++) {
        if (strcmp(outs[k], optarg) == 0) {
          return ps_cli_usage_error("-w %s is given twice: one output a name",
                                    optarg);
        }
      }
      outs[n_out++] = optarg;
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
    case OPT_APPEND:
      fopt.flags |= PS_SINK_APPEND;
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
    case OPT_POIP:
    case OPT_POIP_CONNECT:
      if (n_poip == MAX_POIP) {
        return ps_cli_usage_error("too many PCAP-over-IP outputs (at most "
                                  "%d --pcap-over-ip and "
                                  "--pcap-over-ip-connect together)",
                                  MAX_POIP);
      }
      char pwhy[4096];
      if (parse_poip(&poips[n_poip], optarg, c == OPT_POIP_CONNECT, pwhy,
                     sizeof(pwhy)) != 0) {
        return ps_cli_usage_error("%s", pwhy);
      }
      n_poip++;
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
  kafka_props[n_kafka_props] = NULL;
  if (from_kafka != NULL && n_out == 0) {
    return ps_cli_usage_error("--from-kafka needs -w FILE (or -w -)");
  }
  if (n_listen == 0 && from_kafka == NULL) {
    return ps_cli_usage_error("--listen [ADDR]:PORT is required");
  }
  int to_stdout = 0;
  for (int k = 0; k < n_out; k++) {
    if (strcmp(outs[k], "-") == 0) {
      to_stdout = 1;
    } else if (out == NULL) {
      out = outs[k];
    }
  }
  if (n_out + n_poip + (kafka != NULL) > 8) {
    return ps_cli_usage_error("%d outputs: at most 8 in all (-w, "
                              "--pcap-over-ip, --pcap-over-ip-connect, "
                              "--kafka)",
                              n_out + n_poip + (kafka != NULL));
  }
  if (n_out == 0 && n_poip == 0 && kafka == NULL) {
    return ps_cli_usage_error(
        "-w FILE (or -w - for standard output) is required, unless "
        "there is a --pcap-over-ip or --kafka output");
  }
  if (kafka != NULL && state == NULL) {
    state = "none";
  }
  if (n_out == 0) {
    const char *o = fopt.rotate_bytes               ? "-C"
                    : fopt.rotate_seconds           ? "-G"
                    : fopt.max_files                ? "-W"
                    : fopt.split_by_sensor          ? "--split-by-sensor"
                    : fopt.post_rotate              ? "--post-rotate"
                    : (fopt.flags & PS_SINK_APPEND) ? "--append"
                    : state && kafka == NULL        ? "--state"
                    : format >= 0                   ? "--format"
                    : nano                          ? "--time-stamp-precision"
                                                    : NULL;
    if (o != NULL) {
      return ps_cli_usage_error("%s applies to the file output: add -w FILE",
                                o);
    }
  }
  if (ps_cli_check_common(&co) != 0) {
    return PS_EXIT_USAGE;
  }
  char admin_host[256] = "";
  uint16_t admin_port = 0;
  if (admin != NULL) {
    if (ps_cli_parse_hostport(admin, 1, 1, admin_host, sizeof(admin_host),
                              &admin_port, why, sizeof(why))) {
      return ps_cli_usage_error("invalid --admin: %s", why);
    }
    if (admin_host[0] == '\0' && admin_token == NULL &&
        admin_tls.client_ca_file == NULL) {
      snprintf(admin_host, sizeof(admin_host), "127.0.0.1");
    }
    if ((admin_tls.cert_file == NULL) != (admin_tls.key_file == NULL)) {
      return ps_cli_usage_error(
          "%s needs %s: HTTPS takes a certificate and its key",
          admin_tls.cert_file ? "--admin-tls-cert" : "--admin-tls-key",
          admin_tls.cert_file ? "--admin-tls-key" : "--admin-tls-cert");
    }
    if (admin_tls.client_ca_file != NULL && admin_tls.cert_file == NULL) {
      return ps_cli_usage_error("--admin-tls-client-ca needs HTTPS: add "
                                "--admin-tls-cert and --admin-tls-key");
    }
  } else if (admin_token != NULL || admin_port_file != NULL ||
             admin_tls.cert_file != NULL || admin_tls.key_file != NULL ||
             admin_tls.client_ca_file != NULL) {
    return ps_cli_usage_error("%s configures the admin API: add --admin "
                              "[ADDR]:PORT",
                              admin_token           ? "--admin-token-file"
                              : admin_port_file     ? "--admin-port-file"
                              : admin_tls.cert_file ? "--admin-tls-cert"
                              : admin_tls.key_file  ? "--admin-tls-key"
                                                    : "--admin-tls-client-ca");
  }
  /* --format for every output, or each file's own suffix. */
  int any_ng = 0;
  for (int k = 0; k < n_out; k++) {
    formats[k] = format >= 0                                        ? format
                 : ps_format_from_path(outs[k]) == PS_FORMAT_PCAPNG ? 1
                                                                    : 0;
    any_ng |= formats[k] == 1;
  }
  if (format < 0) {
    format = n_out > 0 ? formats[0] : 0;
  }
  if (any_ng && nano) {
    return ps_cli_usage_error(
        "--time-stamp-precision applies to pcap; pcapng keeps "
        "each sensor's own precision");
  }
  /* Rotation, split and append apply to the files; standard output
   * alone cannot take them. */
  if (to_stdout && out == NULL) {
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
  for (int k = 0; k < n_out; k++) {
    if (!fopt.split_by_sensor && strstr(outs[k], "{sensor}") != NULL) {
      return ps_cli_usage_error("-w %s names {sensor}: add --split-by-sensor",
                                outs[k]);
    }
  }
  if (nano) {
    fopt.flags |= PS_SINK_NANO;
  }
  if (co.key != NULL && (strlen(co.key) == 0 || strlen(co.key) > 1024)) {
    return ps_cli_usage_error("auth-key: 1 to 1024 bytes");
  }
  if (co.print_config) {
    /* The defaults that follow from other options, as they will be. */
    char st[4096] = "", mp[32];
    if (n_out > 0) {
      /* (Without a file there is no format to choose: printed, it
       * would make the output refuse itself as a config file.) */
      ps_cli_set_shown("format", format == 1 ? "pcapng" : "pcap");
    }
    if (state == NULL && out != NULL &&
        ps_receiver_default_state_path(st, sizeof(st), out) == 0) {
      ps_cli_set_shown("state", st);
    }
    /* (The receiver's own rule: twice --max-sensors, at least 64.) */
    uint64_t twice = 2 * (max_sensors ? max_sensors : 1024);
    snprintf(mp, sizeof(mp), "%llu",
             (unsigned long long)(max_pending       ? max_pending
                                  : twice > 1000000 ? 1000000
                                  : twice > 64      ? twice
                                                    : 64));
    const ps_cli_default defaults[] = {
        {"time-stamp-precision", "micro", NULL},
        {"max-sensors", "1024", NULL},
        {"max-pending", mp, NULL},
        {"idle-timeout", "60", NULL},
        {"state", NULL, "(none: standard output or a device)"},
        {"file-size", NULL, "(no size rotation)"},
        {"rotate-seconds", NULL, "(no time rotation)"},
        {"file-count", NULL, "(keep every file)"},
        {"post-rotate", NULL, "(no command)"},
        {"capture-dir", NULL, "(the directory of the first -w)"},
        {"port-file", NULL, "(not written)"},
        {"tls-cert", NULL, "(no TLS)"},
        {"tls-key", NULL, "(no TLS)"},
        {"relinquish-privileges", NULL, "(keep the user)"},
        {NULL, NULL, NULL}};
    ps_cli_print_config(&p, &co, defaults, stdout);
    return PS_EXIT_OK;
  }

  struct rlimit nofile_was;
  if (getrlimit(RLIMIT_NOFILE, &nofile_was) != 0) {
    nofile_was.rlim_cur = 0;
  }
  ps_cli_raise_nofile();
  char line[4096];
  ps_receiver *r = NULL;
  ps_sink *sink = NULL;
  int rc = ps_receiver_create(&r);
  if (rc != 0) {
    ps_cli_err("%s", ps_strerror(rc));
    return PS_EXIT_RUNTIME;
  }
  g_receiver = r;
  ps_receiver_set_log_ex(r, ps_cli_log_ex, NULL);
#ifdef PS_TOOL_TEST_HOOKS
  ps__tool_test_hook(r);
#endif
  if (co.tls.cert_file != NULL &&
      (rc = ps_receiver_set_tls(r, &co.tls, sizeof(co.tls))) != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
    ps_receiver_free(r);
    return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
  }
  if (co.key_file != NULL || co.key != NULL) {
    uint8_t key[1024];
    size_t n = co.key ? strlen(co.key) : 0;
    if (co.key != NULL) {
      memcpy(key, co.key, n);
    } else if (ps_auth_key_load(key, &n, co.key_file, why, sizeof(why)) != 0) {
      ps_cli_err("%s", why);
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
    ps_receiver_set_auth_key(r, key, n);
    memset(key, 0, sizeof(key));
    if (co.tls.cert_file == NULL) {
      ps_cli_log_event(PS_LOG_WARNING, "auth_without_tls", NULL, NULL, 0,
                       "shared-key authentication without TLS: keys are "
                       "never sent, but the packets cross the network "
                       "readable");
    }
  }
  ps_receiver_set_max_sessions(r, (unsigned)max_sensors);
  ps_receiver_set_idle_timeout_ms(r, (unsigned)idle * 1000u);
  ps_receiver_set_max_pending(r, (unsigned)max_pending);
  /* The journal first: it repairs the files the outputs may reopen. */
  char state_buf[4096];
  struct stat ost;
  int special = out && stat(out, &ost) == 0 && !S_ISREG(ost.st_mode);
  if (out != NULL && state == NULL && !special) {
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
  for (int k = 0; state != NULL && strcmp(state, "none") != 0 && k < n_out;
       k++) {
    struct stat kst;
    if (strcmp(outs[k], "-") == 0 ||
        (stat(outs[k], &kst) == 0 && !S_ISREG(kst.st_mode)) ||
        state_covers(state, outs[k])) {
      continue;
    }
    ps_receiver_free(r);
    return ps_cli_usage_error(
        "--state %s: the journal cuts back only files in its "
        "own directory or below it, and -w %s is not there: "
        "put it in the output's directory (with several -w, one "
        "directory above them all)",
        state, outs[k]);
  }
  if (state != NULL && strcmp(state, "none") != 0 &&
      (rc = ps_receiver_set_state_file(r, state)) != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
    ps_receiver_free(r);
    /* A damaged captures' state: the user decides what becomes of it. */
    return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
  }
  for (int i = 0; i < n_listen; i++) {
    if ((rc = ps_receiver_listen(r, hosts[i], ports[i])) != 0) {
      ps_cli_err("%s", ps_receiver_errmsg(r));
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
  }
  for (int k = 0; k < n_out; k++) {
    /* Standard output beside files: written as it is, not rotated. */
    ps_file_sink_options so = PS_FILE_SINK_OPTIONS_INIT;
    so.flags = fopt.flags & PS_SINK_NANO;
    int is_stdout = strcmp(outs[k], "-") == 0;
    sink = NULL;
    rc =
        ps_file_sink(&sink, formats[k] == 1 ? PS_FORMAT_PCAPNG : PS_FORMAT_PCAP,
                     outs[k], is_stdout ? &so : &fopt, sizeof(fopt));
    if (rc == 0) {
      rc = ps_receiver_add_sink(r, sink);
    }
    if (rc != 0) {
      ps_cli_err("%s", sink ? ps_sink_errmsg(sink) : ps_strerror(rc));
      ps_sink_free(sink);
      forget_sinks();
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
    g_sinks[k] = sink; /* owned by the receiver; cleared before it is freed */
  }
  /* Captures on demand with an "output": under --capture-dir, or the
   * directory of the first -w file (not a template directory). */
  char cdir[4096] = "";
  if (capture_dir != NULL) {
    struct stat cst;
    if (stat(capture_dir, &cst) != 0 || !S_ISDIR(cst.st_mode)) {
      forget_sinks();
      ps_receiver_free(r);
      return ps_cli_usage_error("--capture-dir %s: not a directory (create "
                                "it first)",
                                capture_dir);
    }
    snprintf(cdir, sizeof(cdir), "%s", capture_dir);
  } else if (out != NULL) {
    const char *sl = strrchr(out, '/');
    size_t dl = sl ? (size_t)(sl - out) : 0;
    if (memchr(out, '%', dl) == NULL && memchr(out, '{', dl) == NULL) {
      snprintf(cdir, sizeof(cdir), "%.*s", sl ? (int)(dl ? dl : 1) : 1,
               sl ? out : ".");
    }
  }
  if (cdir[0] != '\0' &&
      ps_receiver_set_capture_dir(r, cdir,
                                  (n_out > 0 ? formats[0] : format) == 1
                                      ? PS_FORMAT_PCAPNG
                                      : PS_FORMAT_PCAP,
                                  nano ? PS_SINK_NANO : 0) != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
    forget_sinks();
    ps_receiver_free(r);
    return PS_EXIT_RUNTIME;
  }
  if (kafka != NULL) {
    ps_sink *ks = NULL;
    ps_kafka_sink_options kopt = PS_KAFKA_SINK_OPTIONS_INIT;
    kopt.brokers = kafka;
    kopt.topic = kafka_topic;
    kopt.properties = kafka_props;
    rc = ps_kafka_sink(&ks, &kopt, sizeof(kopt));
    if (rc == 0 && (rc = ps_receiver_add_sink(r, ks)) != 0) {
      ps_cli_err("--kafka: %s", ps_receiver_errmsg(r));
      ps_sink_free(ks);
      forget_sinks();
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
    if (rc != 0) {
      ps_cli_err("%s", ks ? ps_sink_errmsg(ks) : ps_strerror(rc));
      ps_sink_free(ks);
      forget_sinks();
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
  }
  for (int i = 0; i < n_poip; i++) {
    poip_spec *sp = &poips[i];
    ps_sink *ls = NULL;
    rc = sp->connect ? ps_pcap_over_ip_connect_sink(&ls, sp->host, sp->port,
                                                    &sp->o, sizeof(sp->o))
                     : ps_pcap_over_ip_sink(&ls, sp->host, sp->port, &sp->o,
                                            sizeof(sp->o));
    if (rc == 0) {
      rc = ps_receiver_add_sink(r, ls);
    }
    if (rc != 0) {
      ps_cli_err("%s %s: %s",
                 sp->connect ? "--pcap-over-ip-connect" : "--pcap-over-ip",
                 sp->arg, ls ? ps_sink_errmsg(ls) : ps_strerror(rc));
      ps_sink_free(ls);
      forget_sinks();
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID || rc == PS_ERR_FILTER ? PS_EXIT_USAGE
                                                         : PS_EXIT_RUNTIME;
    }
    uint16_t lp = 0;
    if (!sp->connect) {
      ps_pcap_over_ip_get_port(ls, &lp);
    }
    snprintf(line, sizeof(line), "pcap-over-ip %s %s%s%s:%u (%s)",
             sp->connect ? "connecting to" : "listening on",
             strchr(sp->host, ':') ? "[" : "",
             sp->host[0] ? sp->host : "127.0.0.1",
             strchr(sp->host, ':') ? "]" : "", sp->connect ? sp->port : lp,
             sp->o.format == PS_PCAP_OVER_IP_PCAPNG    ? "pcapng"
             : sp->o.format == PS_PCAP_OVER_IP_PCAP_NS ? "pcap-ns"
                                                       : "pcap");
    const ps_cli_field f[] = {
        PS_CLI_STR("address", sp->host[0] ? sp->host : "127.0.0.1"),
        PS_CLI_NUM("port", sp->connect ? sp->port : lp),
        PS_CLI_STR("format", sp->o.format == PS_PCAP_OVER_IP_PCAPNG ? "pcapng"
                             : sp->o.format == PS_PCAP_OVER_IP_PCAP_NS
                                 ? "pcap-ns"
                                 : "pcap"),
    };
    ps_cli_log_event(PS_LOG_INFO,
                     sp->connect ? "pcap_over_ip_connecting"
                                 : "pcap_over_ip_listening",
                     NULL, f, sizeof(f) / sizeof(f[0]), line);
  }
  if (from_kafka != NULL) {
    ps_kafka_input_options kin = PS_KAFKA_INPUT_OPTIONS_INIT;
    kin.brokers = from_kafka;
    kin.topic = kafka_topic;
    kin.group = kafka_group;
    kin.properties = kafka_props;
    if ((rc = ps_receiver_consume_kafka(r, &kin, sizeof(kin))) != 0) {
      ps_cli_err("%s", ps_receiver_errmsg(r));
      forget_sinks();
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
  }
  /* Written as the user who started us (like a pid file), once the
   * sockets listen and the output is open. */
  if (port_file != NULL &&
      write_port_file(r, port_file, NULL, why, sizeof(why)) != 0) {
    ps_cli_err("%s", why);
    forget_sinks();
    ps_receiver_free(r);
    return PS_EXIT_RUNTIME;
  }
  if (admin != NULL) {
    if (admin_token != NULL) {
      uint8_t tok[1024];
      size_t n;
      if (ps_auth_key_load(tok, &n, admin_token, why, sizeof(why)) != 0) {
        ps_cli_err("--admin-token-file: %s", why);
        forget_sinks();
        ps_receiver_free(r);
        return PS_EXIT_RUNTIME;
      }
      ps_receiver_set_admin_token(r, tok, n);
      memset(tok, 0, sizeof(tok));
    }
    if (admin_tls.cert_file != NULL &&
        ps_receiver_set_admin_tls(r, &admin_tls, sizeof(admin_tls)) != 0) {
      ps_cli_err("--admin-tls-cert: %s", ps_receiver_errmsg(r));
      forget_sinks();
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
    if ((rc = ps_receiver_admin_listen(r, admin_host, admin_port)) != 0) {
      ps_cli_err("--admin %s: %s", admin, ps_receiver_errmsg(r));
      forget_sinks();
      ps_receiver_free(r);
      return rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    }
    snprintf(
        line_admin, sizeof(line_admin), "admin API on http%s://%s%s%s:%u/%s%s",
        admin_tls.cert_file ? "s" : "", strchr(admin_host, ':') ? "[" : "",
        admin_host[0] ? admin_host : "*", strchr(admin_host, ':') ? "]" : "",
        (unsigned)ps_receiver_admin_port(r),
        admin_tls.client_ca_file ? " (client certificate required)" : "",
        admin_token                ? " (bearer token required)"
        : admin_tls.client_ca_file ? ""
                                   : " (loopback, no token)");
    if (admin_port_file != NULL &&
        write_port_file(r, admin_port_file, admin_host, why, sizeof(why)) !=
            0) {
      ps_cli_err("%s", why);
      forget_sinks();
      ps_receiver_free(r);
      return PS_EXIT_RUNTIME;
    }
  }
  /* Only with -Z: the receiver may need its user's rights for outputs. */
  if (co.run_as != NULL &&
      ps_cli_drop_privileges(co.run_as, why, sizeof(why)) != 0) {
    ps_cli_err("%s", why);
    ps_receiver_free(r);
    return PS_EXIT_RUNTIME;
  }

  ps_cli_signals(on_signal, on_hup);

  if (line_admin[0]) {
    ps_cli_log(PS_LOG_INFO, line_admin, NULL);
  }
  /* "pcap to a.pcap and pcapng to standard output" */
  char writing[1200] = "";
  for (int k = 0; k < n_out; k++) {
    size_t w = strlen(writing);
    snprintf(writing + w, sizeof(writing) - w, "%s%s to %s",
             k == 0           ? ""
             : k + 1 == n_out ? " and "
                              : ", ",
             formats[k] == 1 ? "pcapng" : "pcap",
             strcmp(outs[k], "-") ? outs[k] : "standard output");
  }
  if (kafka != NULL) {
    size_t w = strlen(writing);
    snprintf(writing + w, sizeof(writing) - w, "%sKafka topic %s at %s",
             n_out > 0 ? " and to " : "to ", kafka_topic, kafka);
  } else if (n_out == 0) {
    snprintf(writing, sizeof(writing), "no file (PCAP-over-IP only)");
  }
  if (from_kafka != NULL) {
    snprintf(line, sizeof(line),
             "reading Kafka topic %s at %s (group %s), "
             "writing %s",
             kafka_topic, from_kafka, kafka_group, writing);
    const ps_cli_field kf[] = {
        PS_CLI_STR("brokers", from_kafka),
        PS_CLI_STR("topic", kafka_topic),
        PS_CLI_STR("group", kafka_group),
    };
    ps_cli_log_event(PS_LOG_INFO, "kafka_input", NULL, kf,
                     sizeof(kf) / sizeof(kf[0]), line);
  }
  log_nofile(nofile_was.rlim_cur, max_sensors ? max_sensors : 1024);
  for (int i = 0; i < n_listen; i++) {
    snprintf(line, sizeof(line), "listening on %s%s%s:%u, writing %s",
             strchr(hosts[i], ':') ? "[" : "", hosts[i][0] ? hosts[i] : "*",
             strchr(hosts[i], ':') ? "]" : "",
             i == 0 ? ps_receiver_port(r) : ports[i], writing);
    const ps_cli_field f[] = {
        PS_CLI_STR("address", hosts[i][0] ? hosts[i] : "*"),
        PS_CLI_NUM("port", i == 0 ? ps_receiver_port(r) : ports[i]),
        PS_CLI_STR("format", n_out == 0        ? "none"
                             : formats[0] == 1 ? "pcapng"
                                               : "pcap"),
        PS_CLI_STR("output", n_out ? outs[0] : ""),
    };
    ps_cli_log_event(PS_LOG_INFO, "listening", NULL, f,
                     sizeof(f) / sizeof(f[0]), line);
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
  const ps_cli_field f[] = {
      PS_CLI_NUM("sessions", ctr.sessions_total),
      PS_CLI_NUM("sessions_failed", ctr.sessions_failed),
      PS_CLI_NUM("connections", ctr.connections),
      PS_CLI_NUM("connections_no_hello", ctr.connections_no_hello),
      PS_CLI_NUM("packets", ctr.packets),
      PS_CLI_NUM("bytes", ctr.bytes),
      PS_CLI_NUM("dropped", ctr.dropped),
      PS_CLI_NUM("overflow_dropped", ctr.overflow),
      PS_CLI_NUM("duplicate_batches", ctr.duplicate_batches),
      PS_CLI_NUM("write_stalls", ctr.write_stalls),
  };
  ps_cli_log_event(PS_LOG_INFO, "summary", NULL, f, sizeof(f) / sizeof(f[0]),
                   line);
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
    const ps_cli_field kf[] = {
        PS_CLI_NUM("messages", ctr.kafka_messages),
        PS_CLI_NUM("packets", ctr.packets),
        PS_CLI_NUM("bytes", ctr.bytes),
        PS_CLI_NUM("streams", ctr.sessions_total),
        PS_CLI_NUM("duplicates", ctr.kafka_duplicates),
        PS_CLI_NUM("gaps", ctr.kafka_gaps),
        PS_CLI_NUM("bad", ctr.kafka_bad),
    };
    ps_cli_log_event(PS_LOG_INFO, "kafka_input_summary", NULL, kf,
                     sizeof(kf) / sizeof(kf[0]), line);
  }
  if (rc != 0) {
    ps_cli_err("%s", ps_receiver_errmsg(r));
  }
  g_receiver = NULL;
  forget_sinks();
  ps_receiver_free(r);
  return rc == 0 ? PS_EXIT_OK : PS_EXIT_RUNTIME;
}
