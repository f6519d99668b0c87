/* ps-sensor: capture with libpcap and stream to a ps-receiver. Option
 * parsing and error printing; the work is in the library. */
#include "config.h"

#include "ps_cli.h"

#include <getopt.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static ps_sensor *g_sensor;
static ps_stream *g_stream;
static volatile sig_atomic_t g_signals;
static volatile sig_atomic_t g_connected;

static void on_signal(int sig) {
  (void)sig;
  /* First signal: stop capturing, deliver what was captured, close
   * cleanly. Second: give up on the delivery too. */
  if (g_signals++ == 0) {
    ps_sensor_stop(g_sensor);
  }
  /* Until connected there is nothing to deliver: stop retrying too. */
  if ((g_signals > 1 || !g_connected) && g_stream != NULL) {
    ps_stream_stop(g_stream);
  }
}

/* Following network namespaces keeps root for the whole run, but only
 * the capabilities it uses: CAP_SYS_ADMIN (setns), CAP_NET_RAW (packet
 * sockets), CAP_NET_ADMIN (promiscuous mode, buffer sizes), CAP_SYS_PTRACE
 * (other users' /proc/PID/ns/net) and CAP_DAC_READ_SEARCH (the runtime's
 * state directories). Everything else (CAP_DAC_OVERRIDE, CAP_SETUID,
 * CAP_SYS_MODULE, ...) goes, from the bounding set too. */
static void keep_netns_caps(void) {
  static const int keep[] = {CAP_SYS_ADMIN, CAP_NET_RAW, CAP_NET_ADMIN,
                             CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};
  uint32_t mask[2] = {0, 0};
  for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++) {
    mask[keep[i] / 32] |= 1u << (keep[i] % 32);
  }
  for (int c = 0; c <= CAP_LAST_CAP; c++) {
    if (!(mask[c / 32] & (1u << (c % 32)))) {
      prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    }
  }
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof(d));
  if (syscall(SYS_capget, &h, d) != 0) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    d[i].effective &= mask[i];
    d[i].permitted &= mask[i];
    d[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &h, d) != 0) {
    ps_cli_log(PS_LOG_WARNING,
               "--netns: cannot drop the capabilities it does not need", NULL);
  } else {
    ps_cli_log(PS_LOG_INFO,
               "--netns: keeping CAP_SYS_ADMIN, CAP_NET_RAW, CAP_NET_ADMIN, "
               "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to follow namespaces; "
               "the other capabilities are dropped",
               NULL);
  }
}

/* The help text is laid out as printed. */
/* clang-format off */
static void usage(FILE *f) {
  fputs(
"Usage: ps-sensor -i IFACE [-i IFACE]... | -r FILE | --netns SPEC... |\n"
"                 --standby\n"
"                 --receiver HOST:PORT...\n"
"                 [--netns-match KEY=GLOB]... [--netns-loopback]\n"
"                 [--netns-rescan SECONDS] [--runtime-root DIR]\n"
"                 [--node-name NAME]\n"
"                 [-s SNAPLEN] [-B KIB] [-p] [-c COUNT] [--duration SECONDS]\n"
"                 [--replay-buffer SIZE] [--overflow drop-oldest|drop-newest]\n"
"                 [--spool-dir DIR] [--compress lz4|zlib|none] [--name NAME]\n"
"                 [--connect-timeout SECONDS] [--peer-timeout SECONDS]\n"
"                 [--batch-max-delay MS]\n"
"                 [--tls] [--tls-ca FILE] [--tls-server-name NAME]\n"
"                 [--tls-cert FILE --tls-key FILE] [--tls-pin sha256:BASE64]\n"
"                 [--tls-insecure] [--auth-key-file FILE] [-Z USER]\n"
"                 [--sample 1/N] [--max-pps N] [--label KEY=VALUE]...\n"
"                 [--allow-remote-capture [--remote-max-duration SECONDS]\n"
"                  [--remote-max-snaplen N] [--remote-max-pps N]\n"
"                  [--remote-interfaces LIST] [--remote-filter-guard EXPR]]\n"
"                 [--interface-filter IFACE=EXPR]... [--config FILE]\n"
"                 [--print-config] [-F FILE] [-q|-v] [--log-format text|json]\n"
"                 [--log-file FILE]\n"
"                 [FILTER EXPRESSION...]\n"
"       ps-sensor -h|-V\n"
"\n"
"Capture packets (live, or from a pcap/pcapng file) and stream them to a\n"
"ps-receiver.\n"
"\n"
"  -i, --interface IFACE   capture on IFACE (repeatable; 'any' for all)\n"
"  -r, --read FILE         stream the packets of a capture file, then exit\n"
"      --netns SPEC        capture in workloads' network namespaces, followed\n"
"                          as they come and go (repeatable): all, a name in\n"
"                          /run/netns, a path, pid:PID, pod:NAMESPACE/NAME\n"
"                          or container:ID; there, -i names the interfaces\n"
"                          (default: every one that is up)\n"
"      --netns-match KEY=GLOB  only workloads whose namespace, pod,\n"
"                          container, netns or label KEY matches\n"
"      --netns-loopback    capture the namespaces' loopback too\n"
"      --netns-rescan SECONDS  look for namespaces this often (default 2)\n"
"      --runtime-root DIR  the container runtime's bundles (default:\n"
"                          containerd's and CRI-O's state directories)\n"
"      --node-name NAME    node in the workloads' identity (default: host)\n"
"      --receiver HOST:PORT  where to stream ([IPV6]:PORT for IPv6); give\n"
"                          it up to 8 times to fail over in that order\n"
"  -s, --snapshot-length N bytes kept per packet (1..262144, default 262144)\n"
"  -B, --buffer-size KIB   kernel capture buffer in KiB (libpcap's, as in\n"
"                          tcpdump; see --replay-buffer for the sensor's)\n"
"      --replay-buffer SIZE  memory for batches not yet acknowledged, kept\n"
"                          to resend after a reconnect (bytes, or with k, M\n"
"                          or G; default 8M, at least 64k)\n"
"      --overflow drop-oldest|drop-newest  what to drop when that buffer\n"
"                          is full (default drop-oldest); every drop is\n"
"                          counted\n"
"      --spool-dir DIR     also keep that buffer in DIR, so a sensor killed\n"
"                          or restarted with the same DIR sends it later\n"
"  -p, --no-promiscuous-mode  do not put the interface in promiscuous mode\n"
"  -c, --count N           stop after N packets\n"
"      --duration SECONDS  stop after SECONDS of streaming, live or from a\n"
"                          file (-r: the rest of the file is not sent)\n"
"      --compress lz4|zlib|none  the codec offered (default lz4; zlib in a\n"
"                          build without LZ4)\n"
"      --name NAME         sensor name shown by the receiver (default: host\n"
"                          name)\n"
"      --connect-timeout SECONDS  give up connecting after SECONDS\n"
"                          (default: retry forever)\n"
"      --peer-timeout SECONDS  give up on a receiver silent this long\n"
"                          (default 30)\n"
"      --batch-max-delay MS  a quiet stream's batch (under 64 packets)\n"
"                          waits up to MS for more (default 1000; 0: sent\n"
"                          after 100 ms like any batch)\n"
"      --sample 1/N        keep one packet in N (counted as sampled out)\n"
"      --max-pps N         keep at most N packets per second\n"
"      --label KEY=VALUE   a label the receiver shows and its metrics carry\n"
"                          (repeatable; KEY letters, digits and _)\n"
"      --standby           capture nothing until a receiver asks (no packet\n"
"                          socket is open meanwhile); needs\n"
"                          --allow-remote-capture to take any capture\n"
"      --allow-remote-capture  take captures the receiver asks for, within\n"
"                          the limits below (refused otherwise)\n"
"      --remote-max-duration SECONDS  longest remote capture allowed\n"
"      --remote-max-snaplen N  largest snaplen a receiver may ask for\n"
"      --remote-max-pps N  highest packet rate a receiver may ask for\n"
"      --remote-interfaces LIST  interfaces a receiver may name (comma-\n"
"                          separated; also the default)\n"
"      --remote-filter-guard EXPR  ANDed with every remote filter\n"
"                          (e.g. 'not port 22')\n",
        f);
  ps_cli_help(PS_CLI_SENSOR, f, PS_CLI_HELP_CRED);
  ps_cli_help(PS_CLI_SENSOR, f, PS_CLI_HELP_USER);
  fputs("  -F, --filter-file FILE  read the filter expression from FILE\n"
        "      --interface-filter IFACE=EXPR  capture on IFACE only what EXPR\n"
        "                          matches too (and-ed with the filter)\n", f);
  ps_cli_help(PS_CLI_SENSOR, f, PS_CLI_HELP_LOG);
  fputs(
"\n"
"The filter is a pcap-filter(7) expression. Live captures never include\n"
"the sensor's own stream. An empty option value is a usage error, never\n"
"\"default\"; options naming a file, a name or a key can be given once.\n"
"Exit status: 0 done, 1 runtime error, 2 usage error.\n",
        f);
}
/* clang-format on */

enum {
  OPT_RECEIVER = 256,
  OPT_COMPRESS,
  OPT_NAME,
  OPT_DURATION,
  OPT_CONNECT_TIMEOUT,
  OPT_PEER_TIMEOUT,
  OPT_BATCH_MAX_DELAY,
  OPT_REPLAY_BUFFER,
  OPT_OVERFLOW,
  OPT_SPOOL,
  OPT_NETNS,
  OPT_NETNS_MATCH,
  OPT_NETNS_LOOPBACK,
  OPT_NETNS_RESCAN,
  OPT_RUNTIME_ROOT,
  OPT_NODE_NAME,
  OPT_IFFILTER,
  OPT_SAMPLE,
  OPT_MAX_PPS,
  OPT_LABEL,
  OPT_STANDBY,
  OPT_REMOTE,
  OPT_RMAX_DURATION,
  OPT_RMAX_SNAPLEN,
  OPT_RMAX_PPS,
  OPT_RIFACES,
  OPT_RGUARD
};

#define MAX_RECEIVERS 8

/* An empty value never means "default" or "off" (an unset shell
 * variable gives one): what to give instead, per option (the common
 * options' are in ps_cli.c). */
static const char *empty_hint(int c) {
  switch (c) {
  case 'i':
    return "give an interface name ('any' for all)";
  case 'r':
    return "give a capture file";
  case 'F':
    return "give a filter file";
  case OPT_IFFILTER:
    return "give IFACE=EXPRESSION";
  case OPT_RECEIVER:
    return "give HOST:PORT";
  case OPT_SPOOL:
    return "give a directory";
  case OPT_NAME:
    return "give 1 to 255 characters, or leave the option out for the host "
           "name";
  case OPT_COMPRESS:
    return ps_codec_available(PS_CODEC_LZ4) ? "give lz4, zlib or none"
                                            : "give zlib or none";
  case OPT_OVERFLOW:
    return "give drop-oldest or drop-newest";
  case OPT_REPLAY_BUFFER:
    return "give a size";
  case OPT_NETNS:
    return "give all, a name, a path, pid:PID, pod:NAMESPACE/NAME or "
           "container:ID";
  case OPT_NETNS_MATCH:
    return "give KEY=GLOB";
  case OPT_RUNTIME_ROOT:
    return "give a directory";
  case OPT_NODE_NAME:
    return "give a name";
  case OPT_SAMPLE:
    return "give 1/N";
  case OPT_LABEL:
    return "give KEY=VALUE";
  case OPT_RIFACES:
    return "give interface names, comma-separated";
  case OPT_RGUARD:
    return "give a filter expression, or leave the option out";
  default:
    return "give a number";
  }
}

/* The final account, one line per source and a total: every packet
 * captured is acknowledged by the receiver or counted as dropped, with
 * the stage that dropped it. Sources are the stream's interfaces in
 * order. */
static void summary(ps_sensor *sensor, ps_stream *stream, const char *to,
                    ps_log_level level) {
  ps_stream_counters sc;
  ps_stream_get_counters(stream, &sc, sizeof(sc));
  ps_capture_stats tot;
  ps_stream_interface_counters ttot;
  memset(&tot, 0, sizeof(tot));
  memset(&ttot, 0, sizeof(ttot));
  char line[768];
  unsigned n = ps_sensor_interface_count(sensor);
  for (unsigned i = 0; i < n; i++) {
    ps_capture_stats st;
    ps_stream_interface_counters ic;
    memset(&ic, 0, sizeof(ic));
    uint32_t id;
    if (ps_sensor_get_interface_stats(sensor, &st, sizeof(st), i) != 0) {
      continue;
    }
    if (ps_sensor_get_interface_id(sensor, &id, i) == 0) {
      ps_stream_get_interface_counters(stream, &ic, sizeof(ic), id);
    }
    tot.captured += st.captured;
    tot.dropped += st.dropped;
    tot.ifdropped += st.ifdropped;
    tot.truncated += st.truncated;
    ttot.packets_acked += ic.packets_acked;
    ttot.packets_dropped_overflow += ic.packets_dropped_overflow;
    ttot.packets_lost += ic.packets_lost;
    snprintf(
        line, sizeof(line),
        "%s: %llu captured, %llu acknowledged by the receiver; "
        "dropped: %llu by the kernel, %llu by the interface, %llu by "
        "the sensor's buffer (overflow), %llu lost unacknowledged; "
        "%llu truncated",
        ps_sensor_interface_name(sensor, i), (unsigned long long)st.captured,
        (unsigned long long)ic.packets_acked, (unsigned long long)st.dropped,
        (unsigned long long)st.ifdropped,
        (unsigned long long)ic.packets_dropped_overflow,
        (unsigned long long)ic.packets_lost, (unsigned long long)st.truncated);
    const ps_cli_field f[] = {
        PS_CLI_STR("source", ps_sensor_interface_name(sensor, i)),
        PS_CLI_NUM("captured", st.captured),
        PS_CLI_NUM("acknowledged", ic.packets_acked),
        PS_CLI_NUM("kernel_dropped", st.dropped),
        PS_CLI_NUM("interface_dropped", st.ifdropped),
        PS_CLI_NUM("overflow_dropped", ic.packets_dropped_overflow),
        PS_CLI_NUM("lost", ic.packets_lost),
        PS_CLI_NUM("truncated", st.truncated),
    };
    ps_cli_log_event(level, "source_summary", NULL, f, sizeof(f) / sizeof(f[0]),
                     line);
  }
  snprintf(
      line, sizeof(line),
      "%llu packets (%llu bytes) sent to %s: %llu acknowledged by the "
      "receiver; dropped: %llu by the kernel, %llu by the interface, "
      "%llu by the sensor's buffer (overflow), %llu lost "
      "unacknowledged; %llu truncated; %llu reconnects, %llu batches "
      "resent",
      (unsigned long long)sc.packets_sent, (unsigned long long)sc.bytes_sent,
      to, (unsigned long long)sc.packets_acked, (unsigned long long)tot.dropped,
      (unsigned long long)tot.ifdropped,
      (unsigned long long)sc.packets_dropped_overflow,
      (unsigned long long)sc.packets_lost, (unsigned long long)tot.truncated,
      (unsigned long long)sc.reconnects, (unsigned long long)sc.batches_resent);
  const ps_cli_field f[] = {
      PS_CLI_STR("receiver", to),
      PS_CLI_NUM("packets", sc.packets_sent),
      PS_CLI_NUM("bytes", sc.bytes_sent),
      PS_CLI_NUM("acknowledged", sc.packets_acked),
      PS_CLI_NUM("kernel_dropped", tot.dropped),
      PS_CLI_NUM("interface_dropped", tot.ifdropped),
      PS_CLI_NUM("overflow_dropped", sc.packets_dropped_overflow),
      PS_CLI_NUM("lost", sc.packets_lost),
      PS_CLI_NUM("truncated", tot.truncated),
      PS_CLI_NUM("reconnects", sc.reconnects),
      PS_CLI_NUM("batches_resent", sc.batches_resent),
  };
  ps_cli_log_event(level, "summary", NULL, f, sizeof(f) / sizeof(f[0]), line);
  if (sc.packets_recovered > 0) {
    ps_stream_interface_counters rc, sum;
    memset(&sum, 0, sizeof(sum));
    /* The interfaces of the earlier run carry only recovered packets. */
    for (unsigned i = 0; i < ps_stream_interface_count(stream); i++) {
      if (ps_stream_get_interface_counters(stream, &rc, sizeof(rc), i) == 0 &&
          rc.packets_recovered > 0) {
        sum.packets_acked += rc.packets_acked;
        sum.packets_dropped_overflow += rc.packets_dropped_overflow;
        sum.packets_lost += rc.packets_lost;
      }
    }
    snprintf(line, sizeof(line),
             "%llu packets recovered from the spool of an earlier run: "
             "%llu acknowledged by the receiver, %llu dropped by the "
             "sensor's buffer, %llu lost unacknowledged",
             (unsigned long long)sc.packets_recovered,
             (unsigned long long)sum.packets_acked,
             (unsigned long long)sum.packets_dropped_overflow,
             (unsigned long long)sum.packets_lost);
    const ps_cli_field rf[] = {
        PS_CLI_NUM("recovered", sc.packets_recovered),
        PS_CLI_NUM("acknowledged", sum.packets_acked),
        PS_CLI_NUM("overflow_dropped", sum.packets_dropped_overflow),
        PS_CLI_NUM("lost", sum.packets_lost),
    };
    ps_cli_log_event(level, "recovered_summary", NULL, rf,
                     sizeof(rf) / sizeof(rf[0]), line);
  }
  if (tot.truncated > 0) {
    ps_cli_log_event(level, "truncated", NULL, NULL, 0,
                     "some packets were shortened by libpcap (see above)");
  }
}

/* --print-config: the options, then the filter each source gets. */
static void print_config(const ps_cli_parser *p, const ps_cli_common *co,
                         const char *filter, const char *filter_file,
                         const char *const *ifaces, int n_ifaces,
                         const char *file, const char *const *iffilters,
                         int n_iffilters, ps_codec codec) {
  const ps_cli_default defaults[] = {
      {"interface", NULL, "(none: give interface or read)"},
      {"read", NULL, "(not set: live capture)"},
      {"snapshot-length", "262144", NULL},
      {"buffer-size", NULL, "(libpcap's default)"},
      {"count", NULL, "(no limit)"},
      {"duration", NULL, "(no limit)"},
      {"compress", codec == PS_CODEC_LZ4 ? "lz4" : "zlib", NULL},
      {"name", NULL, "(the host name)"},
      {"connect-timeout", NULL, "(retry forever)"},
      {"peer-timeout", "30", NULL},
      {"batch-max-delay", "1000", NULL},
      {"replay-buffer", "8M", NULL},
      {"spool-dir", NULL, "(not set: memory only)"},
      {"overflow", "drop-oldest", NULL},
      {"filter-file", NULL, "(not set)"},
      {"filter", NULL, "(not set: everything)"},
      {"tls-ca", NULL, "(the system trust store, with TLS)"},
      {"tls-server-name", NULL, "(the host of receiver)"},
      {"relinquish-privileges", NULL, "(as root: packetstreamer or nobody)"},
      {NULL, NULL, NULL}};
  /* The filter is shown as the sensor takes it: a filter-file, or the
   * expression of the arguments or of the file's filter:. */
  ps_cli_set_shown("filter", filter_file ? NULL : filter);
  ps_cli_print_config(p, co, defaults, stdout);
  printf("# The capture filter of each source (besides, a live capture "
         "never\n# holds the sensor's own stream):\n");
  for (int i = 0; i < (file ? 1 : n_ifaces); i++) {
    const char *own = NULL;
    const char *name = file ? file : ifaces[i];
    for (int j = 0; !file && j < n_iffilters; j++) {
      size_t l = strcspn(iffilters[j], "=");
      if (strlen(name) == l && strncmp(name, iffilters[j], l) == 0) {
        own = iffilters[j] + l + 1;
      }
    }
    printf("#   %s: ", name);
    if (filter && own) {
      printf("(%s) and (%s)\n", filter, own);
    } else {
      printf("%s\n", filter ? filter : own ? own : "(everything)");
    }
  }
}

/* '+': stop at the first non-option, the start of the filter. The
 * common options (-Z, -q, ...) are added from ps_cli.c. */
static const char shortopts[] = "+:i:r:s:B:pc:F:";

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"interface", required_argument, NULL, 'i'},
      {"read", required_argument, NULL, 'r'},
      {"receiver", required_argument, NULL, OPT_RECEIVER},
      {"snapshot-length", required_argument, NULL, 's'},
      {"buffer-size", required_argument, NULL, 'B'},
      {"no-promiscuous-mode", no_argument, NULL, 'p'},
      {"count", required_argument, NULL, 'c'},
      {"duration", required_argument, NULL, OPT_DURATION},
      {"compress", required_argument, NULL, OPT_COMPRESS},
      {"name", required_argument, NULL, OPT_NAME},
      {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
      {"peer-timeout", required_argument, NULL, OPT_PEER_TIMEOUT},
      {"batch-max-delay", required_argument, NULL, OPT_BATCH_MAX_DELAY},
      {"replay-buffer", required_argument, NULL, OPT_REPLAY_BUFFER},
      {"spool-dir", required_argument, NULL, OPT_SPOOL},
      {"overflow", required_argument, NULL, OPT_OVERFLOW},
      {"netns", required_argument, NULL, OPT_NETNS},
      {"netns-match", required_argument, NULL, OPT_NETNS_MATCH},
      {"netns-loopback", no_argument, NULL, OPT_NETNS_LOOPBACK},
      {"netns-rescan", required_argument, NULL, OPT_NETNS_RESCAN},
      {"runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT},
      {"node-name", required_argument, NULL, OPT_NODE_NAME},
      {"filter-file", required_argument, NULL, 'F'},
      {"interface-filter", required_argument, NULL, OPT_IFFILTER},
      {"sample", required_argument, NULL, OPT_SAMPLE},
      {"max-pps", required_argument, NULL, OPT_MAX_PPS},
      {"label", required_argument, NULL, OPT_LABEL},
      {"standby", no_argument, NULL, OPT_STANDBY},
      {"allow-remote-capture", no_argument, NULL, OPT_REMOTE},
      {"remote-max-duration", required_argument, NULL, OPT_RMAX_DURATION},
      {"remote-max-snaplen", required_argument, NULL, OPT_RMAX_SNAPLEN},
      {"remote-max-pps", required_argument, NULL, OPT_RMAX_PPS},
      {"remote-interfaces", required_argument, NULL, OPT_RIFACES},
      {"remote-filter-guard", required_argument, NULL, OPT_RGUARD},
      {NULL, 0, NULL, 0}};
  /* For --config: the options a file gives as lists, the positional
   * filter as the key filter, and what the command line replaces
   * besides its own option's key. */
  static const char *const repeatable[] = {
      "interface", "receiver", "interface-filter", "netns", "netns-match",
      "label",     NULL};
  static const char *const extra[] = {"filter", NULL};
  static const struct ps_cli_override overrides[] = {
      {'r', "interface"}, {'r', "interface-filter"}, {'r', "netns"},
      {'i', "read"},      {OPT_NETNS, "read"},       {'F', "filter"},
      {0, NULL}};
  const char *iffilters[64];
  int n_iffilters = 0;
  const char *netns[64], *matches[16];
  int n_netns = 0, n_matches = 0, ns_lo = 0;
  uint64_t rescan = 0;
  const char *runtime_root = NULL, *node_name = NULL;
  const char *ifaces[64];
  int n_ifaces = 0;
  const char *file = NULL, *name = NULL, *filter_file = NULL;
  const char *receivers[MAX_RECEIVERS];
  int n_receivers = 0;
  uint64_t replay = 0;
  const char *spool = NULL;
  ps_overflow overflow = PS_OVERFLOW_DROP_OLDEST;
  uint64_t snaplen = PS_MAX_CAPLEN, bufkib = 0, count = 0, duration = 0,
           ctimeout = 0, ptimeout = 0;
  /* A quiet stream's batch waits this long for more packets: one read
   * and one acknowledgement per second instead of ten at the receiver,
   * which is what its CPU per packet depends on with many quiet
   * sensors (docs/PERFORMANCE.md); the price is up to this much
   * latency for such a stream. */
  uint64_t max_delay = 1000;
  int promisc = 1, live_only = 0;
  uint64_t sample = 0, max_pps = 0, rmax_duration = 0, rmax_snaplen = 0,
           rmax_pps = 0;
  int standby = 0, remote = 0;
  const char *labels[16];
  int n_labels = 0;
  const char *rifaces = NULL, *rguard = NULL;
  ps_codec codec =
      ps_codec_available(PS_CODEC_LZ4) ? PS_CODEC_LZ4 : PS_CODEC_ZLIB;
  char why[256];

  ps_cli_parser p;
  ps_cli_common co;
  ps_cli_getopt_init(&p, &co, "ps-sensor", PS_CLI_SENSOR, longopts, shortopts,
                     usage, empty_hint);
  p.repeatable = repeatable;
  p.extra = extra;
  p.overrides = overrides;
  char hosts[MAX_RECEIVERS][256];
  uint16_t ports[MAX_RECEIVERS];
  int c;
  while ((c = ps_cli_getopt(&p, &co, argc, argv)) != -1) {
    const char *opt = p.opt;
    if (c == PS_CLI_STOP) {
      return p.status;
    }
    switch (c) {
    case 'i':
      if (n_ifaces == 64) {
        return ps_cli_usage_error("too many -i options (at most 64)");
      }
      ifaces[n_ifaces++] = optarg;
      break;
    case 'r':
      if (ps_cli_once(&file, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_RECEIVER:
      if (n_receivers == MAX_RECEIVERS) {
        return ps_cli_usage_error("too many --receiver options (at most %d)",
                                  MAX_RECEIVERS);
      }
      if (ps_cli_parse_hostport(optarg, 0, 0, hosts[n_receivers],
                                sizeof(hosts[0]), &ports[n_receivers], why,
                                sizeof(why))) {
        return ps_cli_usage_error("invalid --receiver: %s", why);
      }
      receivers[n_receivers++] = optarg;
      break;
    case OPT_IFFILTER: {
      const char *eq = strchr(optarg, '=');
      if (eq == NULL || eq == optarg || eq[1 + strspn(eq + 1, " \t")] == 0) {
        return ps_cli_usage_error(
            "invalid --interface-filter '%s': give IFACE=EXPRESSION", optarg);
      }
      if (n_iffilters == 64) {
        return ps_cli_usage_error("too many --interface-filter options (at "
                                  "most 64)");
      }
      iffilters[n_iffilters++] = optarg;
      break;
    }
    case OPT_REPLAY_BUFFER:
      if (ps_cli_parse_size(optarg, 1, 65536, (uint64_t)64 << 30, &replay, why,
                            sizeof(why)) != 0) {
        return ps_cli_usage_error(
            "invalid --replay-buffer: %s (bytes, or with k, "
            "M or G: 64k..64G)",
            why);
      }
      break;
    case OPT_SPOOL:
      if (ps_cli_once(&spool, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_OVERFLOW:
      if (strcmp(optarg, "drop-oldest") == 0) {
        overflow = PS_OVERFLOW_DROP_OLDEST;
      } else if (strcmp(optarg, "drop-newest") == 0) {
        overflow = PS_OVERFLOW_DROP_NEWEST;
      } else {
        return ps_cli_usage_error("unknown --overflow '%s': use drop-oldest or "
                                  "drop-newest",
                                  optarg);
      }
      break;
    case 's':
      live_only = 's';
      if (ps_cli_parse_u64(optarg, 1, PS_MAX_CAPLEN, &snaplen, why,
                           sizeof(why))) {
        return ps_cli_usage_error("invalid snapshot length -s: %s", why);
      }
      break;
    case 'B':
      live_only = 'B';
      if (ps_cli_parse_u64(optarg, 1, 2097151, &bufkib, why, sizeof(why))) {
        return ps_cli_usage_error("invalid buffer size -B: %s", why);
      }
      break;
    case 'p':
      live_only = 'p';
      promisc = 0;
      break;
    case 'c':
      if (ps_cli_parse_u64(optarg, 1, UINT64_MAX, &count, why, sizeof(why))) {
        return ps_cli_usage_error("invalid count -c: %s", why);
      }
      break;
    case OPT_DURATION:
      if (ps_cli_parse_u64(optarg, 1, 31536000, &duration, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --duration: %s", why);
      }
      break;
    case OPT_CONNECT_TIMEOUT:
      if (ps_cli_parse_u64(optarg, 1, 86400, &ctimeout, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --connect-timeout: %s", why);
      }
      break;
    case OPT_COMPRESS:
      if (strcmp(optarg, "none") == 0) {
        codec = PS_CODEC_NONE;
      } else if (strcmp(optarg, "zlib") == 0) {
        codec = PS_CODEC_ZLIB;
      } else if (strcmp(optarg, "lz4") == 0 &&
                 ps_codec_available(PS_CODEC_LZ4)) {
        codec = PS_CODEC_LZ4;
      } else {
        return ps_cli_usage_error(
            "unknown --compress '%s': use %szlib or none", optarg,
            ps_codec_available(PS_CODEC_LZ4) ? "lz4, " : "");
      }
      break;
    case OPT_NAME:
      if (ps_cli_once(&name, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      if (strlen(name) > 255) {
        return ps_cli_usage_error("invalid --name: 1 to 255 characters");
      }
      break;
    case OPT_PEER_TIMEOUT:
      if (ps_cli_parse_u64(optarg, 2, 86400, &ptimeout, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --peer-timeout: %s", why);
      }
      break;
    case OPT_BATCH_MAX_DELAY:
      if (ps_cli_parse_u64(optarg, 0, 60000, &max_delay, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --batch-max-delay: %s", why);
      }
      break;
    case 'F':
      if (ps_cli_once(&filter_file, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_NETNS:
      if (n_netns == 64) {
        return ps_cli_usage_error("too many --netns options (at most 64)");
      }
      netns[n_netns++] = optarg;
      break;
    case OPT_NETNS_MATCH:
      if (n_matches == 16) {
        return ps_cli_usage_error(
            "too many --netns-match options (at most 16)");
      }
      matches[n_matches++] = optarg;
      break;
    case OPT_NETNS_LOOPBACK:
      ns_lo = 1;
      break;
    case OPT_NETNS_RESCAN:
      if (ps_cli_parse_u64(optarg, 1, 3600, &rescan, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --netns-rescan: %s", why);
      }
      break;
    case OPT_RUNTIME_ROOT:
      if (ps_cli_once(&runtime_root, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_NODE_NAME:
      if (ps_cli_once(&node_name, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_SAMPLE:
      if (strncmp(optarg, "1/", 2) != 0 ||
          ps_cli_parse_u64(optarg + 2, 1, 1000000, &sample, why, sizeof(why))) {
        return ps_cli_usage_error("invalid --sample '%s': give 1/N, N "
                                  "1..1000000",
                                  optarg);
      }
      break;
    case OPT_MAX_PPS:
    case OPT_RMAX_PPS:
      if (ps_cli_parse_u64(optarg, 1, UINT32_MAX,
                           c == OPT_MAX_PPS ? &max_pps : &rmax_pps, why,
                           sizeof(why))) {
        return ps_cli_usage_error("invalid %s: %s", opt, why);
      }
      break;
    case OPT_LABEL:
      if (n_labels == 16) {
        return ps_cli_usage_error("too many --label options (at most 16)");
      }
      if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
        return ps_cli_usage_error("invalid --label '%s': give KEY=VALUE",
                                  optarg);
      }
      labels[n_labels++] = optarg;
      break;
    case OPT_STANDBY:
      standby = 1;
      break;
    case OPT_REMOTE:
      remote = 1;
      break;
    case OPT_RMAX_DURATION:
      if (ps_cli_parse_u64(optarg, 1, 31536000, &rmax_duration, why,
                           sizeof(why))) {
        return ps_cli_usage_error("invalid --remote-max-duration: %s", why);
      }
      break;
    case OPT_RMAX_SNAPLEN:
      if (ps_cli_parse_u64(optarg, 1, PS_MAX_CAPLEN, &rmax_snaplen, why,
                           sizeof(why))) {
        return ps_cli_usage_error("invalid --remote-max-snaplen: %s", why);
      }
      break;
    case OPT_RIFACES:
      if (ps_cli_once(&rifaces, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    case OPT_RGUARD:
      if (ps_cli_once(&rguard, optarg, opt)) {
        return PS_EXIT_USAGE;
      }
      break;
    }
  }
  if (n_receivers == 0) {
    return ps_cli_usage_error("--receiver HOST:PORT is required");
  }
  if (file != NULL && n_netns > 0) {
    return ps_cli_usage_error("give either --netns or -r, not both");
  }
  if (!remote &&
      (rmax_duration || rmax_snaplen || rmax_pps || rifaces || rguard)) {
    return ps_cli_usage_error(
        "the --remote-* limits apply to remote captures: add "
        "--allow-remote-capture");
  }
  if (standby && (file != NULL || n_ifaces > 0 || n_netns > 0 ||
                  optind < argc || filter_file != NULL)) {
    return ps_cli_usage_error(
        "--standby captures only what a receiver asks: give no -i, -r or "
        "filter");
  }
  if (!standby && n_netns == 0 && (file == NULL) == (n_ifaces == 0)) {
    return ps_cli_usage_error("%s", file ? "give either -i or -r, not both"
                                         : "nothing to capture: give -i IFACE, "
                                           "--netns SPEC or -r FILE");
  }
  if (n_netns == 0 &&
      (n_matches || ns_lo || rescan || runtime_root || node_name)) {
    return ps_cli_usage_error("--netns-match, --netns-loopback, "
                              "--netns-rescan, --runtime-root and "
                              "--node-name apply to --netns: add --netns all "
                              "or a namespace");
  }
  if (n_netns > 0 && co.run_as != NULL && strcmp(co.run_as, "root") != 0) {
    return ps_cli_usage_error(
        "-Z cannot be combined with --netns: following namespaces needs "
        "CAP_SYS_ADMIN and CAP_NET_RAW for the whole run (see SECURITY.md)");
  }
  if (ps_cli_check_common(&co) != 0) {
    return PS_EXIT_USAGE;
  }
  if (file != NULL && live_only) {
    return ps_cli_usage_error("-%c applies to live capture, not to -r",
                              live_only);
  }
  if (name != NULL && (strlen(name) == 0 || strlen(name) > 255)) {
    return ps_cli_usage_error("invalid --name: 1 to 255 characters");
  }
  /* Said here, without the name: printed, its control bytes (a newline)
   * would break the one-line error, or forge log lines. */
  for (const char *q = name; q != NULL && *q != '\0'; q++) {
    if ((unsigned char)*q < 0x20 || *q == 0x7f) {
      return ps_cli_usage_error(
          "invalid --name: control byte 0x%02x at offset %d: use printable "
          "characters",
          (unsigned char)*q, (int)(q - name));
    }
  }
  char *filter = NULL;
  if (filter_file != NULL) {
    if (optind < argc) {
      return ps_cli_usage_error(
          "give the filter either with -F or as arguments");
    }
    filter = ps_cli_read_filter_file(filter_file, why, sizeof(why));
    if (filter == NULL) {
      ps_cli_err("%s", why);
      return PS_EXIT_USAGE;
    }
  } else if (optind < argc) {
    filter = ps_cli_join(argc - optind, argv + optind);
  } else if (ps_cli_config_extra("filter") != NULL) {
    filter = strdup(ps_cli_config_extra("filter"));
    if (filter == NULL) {
      ps_cli_err("out of memory");
      return PS_EXIT_RUNTIME;
    }
    if (filter[strspn(filter, " \t\n\r\f\v")] == '\0') {
      free(filter);
      ps_cli_err("%sempty filter: give an expression, or leave the key out "
                 "to capture everything",
                 ps_cli_config_where("filter"));
      return PS_EXIT_USAGE;
    }
  }
  /* No expression captures everything: that takes no arguments, not an
   * empty one (an unset variable) or an empty filter file. */
  if (filter != NULL && filter[strspn(filter, " \t\n\r\f\v")] == '\0') {
    free(filter);
    if (filter_file != NULL) {
      return ps_cli_usage_error(
          "filter file %s holds no expression (only blanks "
          "or comments): leave -F out to capture everything",
          filter_file);
    }
    return ps_cli_usage_error("empty filter expression: give one, or no "
                              "arguments to capture everything");
  }

  for (int i = 0; i < n_iffilters; i++) {
    size_t l = strcspn(iffilters[i], "=");
    int found = 0;
    for (int j = 0; j < n_ifaces; j++) {
      found |=
          strlen(ifaces[j]) == l && strncmp(ifaces[j], iffilters[i], l) == 0;
    }
    if (!found) {
      free(filter);
      return ps_cli_usage_error("--interface-filter %.*s: that interface is "
                                "not captured (add -i %.*s)",
                                (int)l, iffilters[i], (int)l, iffilters[i]);
    }
  }
  if (co.print_config) {
    print_config(&p, &co, filter, filter_file, ifaces, n_ifaces, file,
                 iffilters, n_iffilters, codec);
    free(filter);
    return PS_EXIT_OK;
  }
  /* Every JSON line is about this sensor: the name it streams as. */
  char host[256];
  if (name == NULL) {
    if (gethostname(host, sizeof(host)) != 0) {
      snprintf(host, sizeof(host), "sensor");
    }
    host[sizeof(host) - 1] = '\0';
  }
  ps_cli_log_set_sensor(name != NULL ? name : host);

  int rc, exit_code = PS_EXIT_RUNTIME, connected = 0;
  uint8_t key[1024];
  size_t key_len = 0;
  if (co.key != NULL) {
    key_len = strlen(co.key);
    if (key_len == 0 || key_len > sizeof(key)) {
      free(filter);
      return ps_cli_usage_error("auth-key: 1 to %zu bytes", sizeof(key));
    }
    memcpy(key, co.key, key_len);
  }
  if (co.key_file != NULL &&
      ps_auth_key_load(key, &key_len, co.key_file, why, sizeof(why)) != 0) {
    ps_cli_err("%s", why);
    free(filter);
    return PS_EXIT_RUNTIME;
  }
  ps_stream *stream = NULL;
  ps_sensor *sensor = NULL;
  if ((rc = ps_sensor_create(&sensor)) != 0) {
    ps_cli_err("%s", ps_strerror(rc));
    free(filter);
    return PS_EXIT_RUNTIME;
  }
  g_sensor = sensor;
  ps_sensor_set_log(sensor, ps_cli_log, NULL);
  for (int i = 0; i < n_ifaces; i++) {
    if ((rc = ps_sensor_add_interface(sensor, ifaces[i])) != 0) {
      ps_cli_err("invalid interface '%s': %s", ifaces[i],
                 ps_sensor_errmsg(sensor));
      exit_code = PS_EXIT_USAGE;
      goto out;
    }
  }
  for (int i = 0; i < n_iffilters; i++) {
    char ifn[256];
    size_t l = strcspn(iffilters[i], "=");
    snprintf(ifn, sizeof(ifn), "%.*s", (int)l, iffilters[i]);
    if ((rc = ps_sensor_set_interface_filter(sensor, ifn,
                                             iffilters[i] + l + 1)) != 0) {
      ps_cli_err("%s", ps_sensor_errmsg(sensor));
      exit_code = PS_EXIT_USAGE;
      goto out;
    }
  }
  if (file) {
    ps_sensor_set_file(sensor, file);
  }
  for (int i = 0; i < n_netns; i++) {
    if ((rc = ps_sensor_add_netns(sensor, netns[i])) != 0) {
      ps_cli_err("%s", ps_sensor_errmsg(sensor));
      exit_code = PS_EXIT_USAGE;
      goto out;
    }
  }
  for (int i = 0; i < n_matches; i++) {
    if ((rc = ps_sensor_add_netns_match(sensor, matches[i])) != 0) {
      ps_cli_err("%s", ps_sensor_errmsg(sensor));
      exit_code = PS_EXIT_USAGE;
      goto out;
    }
  }
  if ((runtime_root != NULL &&
       ps_sensor_set_runtime_root(sensor, runtime_root) != 0) ||
      (node_name != NULL && ps_sensor_set_node_name(sensor, node_name) != 0)) {
    ps_cli_err("%s", ps_sensor_errmsg(sensor));
    exit_code = PS_EXIT_USAGE;
    goto out;
  }
  ps_sensor_set_netns_loopback(sensor, ns_lo);
  if (rescan) {
    ps_sensor_set_netns_rescan_ms(sensor, rescan * 1000u);
  }
  ps_sensor_set_snaplen(sensor, (int)snaplen);
  if (bufkib) {
    ps_sensor_set_buffer_size(sensor, (int)(bufkib * 1024));
  }
  ps_sensor_set_promisc(sensor, promisc);
  ps_sensor_set_filter(sensor, filter);
  ps_sensor_set_count(sensor, count);
  ps_sensor_set_duration_ms(sensor, duration * 1000u);
  ps_sensor_set_sample(sensor, (uint32_t)sample);
  ps_sensor_set_max_pps(sensor, (uint32_t)max_pps);
  ps_sensor_set_standby(sensor, standby);
  ps_sensor_set_remote_capture(sensor, remote);
  ps_sensor_set_remote_max_duration_ms(sensor, rmax_duration * 1000u);
  ps_sensor_set_remote_max_snaplen(sensor, (int)rmax_snaplen);
  ps_sensor_set_remote_max_pps(sensor, (uint32_t)rmax_pps);
  for (int i = 0; i < n_labels; i++) {
    char lkey[256];
    const char *eq = strchr(labels[i], '=');
    snprintf(lkey, sizeof(lkey), "%.*s", (int)(eq - labels[i]), labels[i]);
    if (ps_sensor_add_label(sensor, lkey, eq + 1) != 0) {
      ps_cli_err("invalid --label: %s", ps_sensor_errmsg(sensor));
      exit_code = PS_EXIT_USAGE;
      goto out;
    }
  }
  if (rifaces != NULL) {
    char *list = strdup(rifaces), *save = NULL;
    for (char *t = list ? strtok_r(list, ",", &save) : NULL; t != NULL;
         t = strtok_r(NULL, ",", &save)) {
      if (ps_sensor_add_remote_interface(sensor, t) != 0) {
        ps_cli_err("invalid --remote-interfaces: %s", ps_sensor_errmsg(sensor));
        free(list);
        exit_code = PS_EXIT_USAGE;
        goto out;
      }
    }
    free(list);
  }
  if (rguard != NULL &&
      ps_sensor_set_remote_filter_guard(sensor, rguard) != 0) {
    ps_cli_err("invalid --remote-filter-guard: %s", ps_sensor_errmsg(sensor));
    exit_code = PS_EXIT_USAGE;
    goto out;
  }
  if ((rc = ps_sensor_open(sensor)) != 0) {
    ps_cli_err("%s", ps_sensor_errmsg(sensor));
    exit_code = rc == PS_ERR_FILTER ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    goto out;
  }

  if ((rc = ps_stream_create(&stream, name)) != 0) {
    if (rc == PS_ERR_INVALID) {
      ps_cli_err("invalid --name '%s': use printable characters",
                 name ? name : "(host name)");
      exit_code = PS_EXIT_USAGE;
    } else {
      ps_cli_err("cannot create the stream: %s", ps_strerror(rc));
    }
    goto out;
  }
  g_stream = stream;
  ps_stream_set_log_ex(stream, ps_cli_log_ex, NULL);
  ps_stream_set_codec(stream, codec);
  ps_stream_set_connect_timeout_ms(stream, (unsigned)ctimeout * 1000u);
  ps_stream_set_peer_timeout_ms(stream, (unsigned)ptimeout * 1000u);
  ps_stream_set_batch_max_delay_ms(stream, (unsigned)max_delay);
  if (replay) {
    ps_stream_set_replay_size(stream, (size_t)replay);
  }
  ps_stream_set_overflow(stream, overflow);
  if (spool != NULL) {
    ps_stream_set_spool(stream, spool);
  }
  for (int i = 1; i < n_receivers; i++) {
    ps_stream_add_receiver(stream, hosts[i], ports[i]);
  }
  if (co.use_tls &&
      (rc = ps_stream_set_tls(stream, &co.tls, sizeof(co.tls))) != 0) {
    ps_cli_err("%s", ps_stream_errmsg(stream));
    exit_code = rc == PS_ERR_INVALID ? PS_EXIT_USAGE : PS_EXIT_RUNTIME;
    goto out;
  }
  if (co.use_tls && co.tls.insecure) {
    ps_cli_log_event(PS_LOG_WARNING, "tls_insecure", NULL, NULL, 0,
                     "--tls-insecure: the receiver is NOT verified; anyone "
                     "on the path can pose as it and read the traffic");
  }
  if (key_len > 0) {
    ps_stream_set_auth_key(stream, key, key_len);
    memset(key, 0, sizeof(key));
    if (!co.use_tls) {
      ps_cli_log_event(PS_LOG_WARNING, "auth_without_tls", NULL, NULL, 0,
                       "shared-key authentication without TLS: the key is "
                       "never sent, but the packets cross the network "
                       "readable (add --tls)");
    }
  }
  /* The capture is open and the files are read: root is not needed any
   * more. */
  if (n_netns > 0) {
    keep_netns_caps();
  } else if ((standby || (remote && file == NULL && n_ifaces > 0)) &&
             co.run_as == NULL) {
    /* Its captures are opened when a receiver asks, long after start
     * (a live capture a receiver stops leaves the sensor standing by). */
    ps_cli_log(PS_LOG_INFO,
               standby ? "standby: keeping the privileges to open captures "
                         "when a receiver asks (-Z USER drops them; captures "
                         "then need CAP_NET_RAW)"
                       : "remote captures allowed: keeping the privileges to "
                         "open captures when a receiver asks (-Z USER drops "
                         "them; captures then need CAP_NET_RAW)",
               NULL);
  } else if (ps_cli_drop_privileges(co.run_as, why, sizeof(why)) != 0) {
    ps_cli_err("%s", why);
    goto out;
  }

  ps_cli_signals(on_signal, NULL);

  if ((rc = ps_stream_connect(stream, hosts[0], ports[0])) != 0) {
    ps_cli_err("%s", ps_stream_errmsg(stream));
    goto out;
  }
  connected = 1;
  g_connected = 1;
  rc = ps_sensor_run(sensor, stream);
  if (rc != 0) {
    ps_cli_err("%s", ps_sensor_errmsg(sensor));
    /* What was captured before the failure still goes out (briefly);
     * what cannot is counted lost in the summary, not left "queued". */
    ps_stream_close(stream, 10000);
    goto out;
  }
  if ((rc = ps_stream_close(stream, 60000)) != 0) {
    ps_cli_err("%s", ps_stream_errmsg(stream));
    goto out;
  }
  exit_code = PS_EXIT_OK;

out:
  if (connected) {
    summary(sensor, stream, n_receivers > 1 ? "the receivers" : receivers[0],
            exit_code == 0 ? PS_LOG_INFO : PS_LOG_WARNING);
  }
  g_stream = NULL;
  g_sensor = NULL;
  ps_stream_free(stream);
  ps_sensor_free(sensor);
  free(filter);
  return exit_code;
}
