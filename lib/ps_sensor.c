/* The sensor: libpcap sources (live interfaces or one file) pumped into a
 * stream. This module and the loops are the only ones that touch libpcap
 * handles or wait on capture descriptors. */
#include "config.h"

#include "ps_common.h"
#include "ps_netns.h"
#include "ps_proto.h"
#include "ps_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <packetstreamer/version.h>

#define MAX_IFNAMES PS_MAX_INTERFACES
/* Sources, closed ones included (their final counters stay reported):
 * as many as a stream has interface ids. */
#define MAX_SOURCES PS_MAX_IFACES
#define NETNS_RESCAN_MS 2000
#define MAX_NS_IFACES 64    /* interfaces opened in one namespace per pass */
#define LIVE_TIMEOUT_MS 100 /* libpcap ring block timeout: bounds latency */
#define STATS_EVERY_MS 5000
#define MAX_EXCLUDED 10 /* receiver endpoints in the exclusion filter */

typedef struct source {
  pcap_t *p;
  char name[256];
  int fd;
  uint32_t linktype; /* LINKTYPE_ value, with the file's upper bits */
  uint32_t snaplen;
  uint8_t tsres;
  int classic_file; /* classic pcap: seconds and fraction are u32 fields */
  uint32_t stream_if;
  int announced; /* stream_if is valid: ps_sensor_run() added it */
  ps_capture_stats st;
  /* A workload's interface: in the network namespace (dev, ino). */
  int netns;
  int own_ns;         /* the sensor's own namespace: its stream is kept out */
  const char *filter; /* the capture filter it got (owned by the sensor) */
  int closed;         /* its namespace or interface went away */
  uint64_t ns_dev, ns_ino;
  char ifname[IF_NAMESIZE + 1];
  char desc[600];
  ps_interface_option opt[8];
  unsigned n_opt;
  char optbuf[1800];
} source;

#define MAX_INBOX 8 /* capture requests not yet handled */

/* A capture request from the receiver, copied out of its frame. */
typedef struct request {
  size_t len;
  uint8_t *frame; /* header and payload */
} request;

/* A stream interface a remote capture added. Each capture announces
 * its own, with its id in the "capture.id" option (PROTOCOL.md 3.4), so
 * the receiver knows its packets also in batches resent on a later
 * connection; one is used again only by the same capture (a stream
 * carries at most 256). */
typedef struct known_if {
  char name[256];
  uint32_t linktype, snaplen;
  uint32_t id;
  uint64_t cap;
} known_if;

struct ps_sensor {
  int opened;
  char *ifnames[MAX_IFNAMES];
  /* An interface's own filter (ps_sensor_set_interface_filter), and
   * the one that interface gets: the sensor's and its own, both. */
  char *iffilters[MAX_IFNAMES];
  char *srcfilters[MAX_IFNAMES];
  unsigned n_ifnames;
  char *file;
  char *filter;
  int snaplen;
  int buffer_size;
  int promisc;
  uint64_t count;
  uint64_t duration_ms;
  int64_t end_ms; /* during run: when duration_ms is up (INT64_MAX: never) */
  source src[MAX_SOURCES];
  unsigned n_src;
  int stop_fd;
  volatile sig_atomic_t stopped;
  uint64_t total;
  ps_stream *stream; /* during run */
  /* Receiver endpoints kept out of live captures, as "host A and port
   * P" terms; the filter changes only when a new one appears. */
  char excluded[MAX_EXCLUDED][100];
  unsigned n_excluded;
  char excl_any[1100]; /* those terms or'ed, for sources opened later */
  int run_rc;
  /* Sampling and a rate cap (local, or set by a remote capture): what
   * they leave out is counted as sampled out, not as loss. */
  uint32_t sample_n, max_pps;
  uint64_t sample_seen, sampled_out;
  int64_t pps_sec;
  uint32_t pps_n;
  /* Fleet (protocol version 2): standby, labels, and the policy a
   * receiver's capture requests are held to. */
  int standby;
  int remote;
  uint64_t rmax_duration_ms;
  int rmax_snaplen;
  uint32_t rmax_pps;
  char *rifaces[MAX_SOURCES];
  unsigned n_rifaces;
  char *guard;
  char label_key[PS_MAX_LABELS][PS_MAX_LABEL_KEY + 1];
  char label_value[PS_MAX_LABELS][PS_MAX_LABEL_VALUE + 1];
  unsigned n_labels;
  request inbox[MAX_INBOX];
  unsigned n_inbox;
  /* The remote capture running (cap_id 0: none), or the sensor's own
   * (PS_CAPTURE_ID_OWN: the live capture its interfaces and filter
   * started, announced to version 2 receivers and steerable by them with
   * remote_capture). to_standby: a receiver stopped the own capture;
   * the sensor stays connected as a standby one. */
  uint64_t cap_id;
  int to_standby;
  int64_t cap_end_ms;
  uint64_t cap_count, cap_packets;
  char *cap_filter; /* as the receiver gave it (without the guard) */
  known_if known[PS_MAX_IFACES];
  unsigned n_known;
  /* The last CAPTURE_STATE of a remote capture ("running" of the one
   * running, or the end of the last one), sent again on every new
   * session: a state sent while no receiver heard it (it was gone, or
   * restarted) reaches the next one. */
  ps__buf last_state;
  int was_controllable;
  ps_log_fn log;
  void *log_ud;
  /* --netns: the namespaces followed, how often they are looked for */
  ps__netns_cfg ns;
  ps__netns_seen seen;
  uint64_t rescan_ms;
  int ns_loopback;
  char *node;
  int inotify_fd;
  int full_logged;
  uint64_t warned[64]; /* namespaces whose failure was logged */
  unsigned n_warned;
  char errmsg[PS_ERRMSG_MAX];
};

int ps_sensor_create(ps_sensor **out) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  ps_sensor *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return PS_ERR_NOMEM;
  }
  s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->stop_fd < 0) {
    free(s);
    return PS_ERR_SYSTEM;
  }
  s->snaplen = (int)PS_MAX_CAPLEN;
  s->promisc = 1;
  s->rescan_ms = NETNS_RESCAN_MS;
  s->inotify_fd = -1;
  s->ns.proc = "/proc";
  *out = s;
  return 0;
}

void ps_sensor_free(ps_sensor *s) {
  if (s == NULL) {
    return;
  }
  for (unsigned i = 0; i < s->n_src; i++) {
    if (s->src[i].p != NULL) {
      pcap_close(s->src[i].p);
    }
  }
  for (unsigned i = 0; i < s->n_ifnames; i++) {
    free(s->ifnames[i]);
    free(s->iffilters[i]);
    free(s->srcfilters[i]);
  }
  for (unsigned i = 0; i < s->ns.n_spec; i++) {
    free(s->ns.spec[i]);
  }
  for (unsigned i = 0; i < s->ns.n_match; i++) {
    free(s->ns.match_key[i]);
    free(s->ns.match_glob[i]);
  }
  free(s->ns.runtime_root);
  free(s->node);
  if (s->inotify_fd >= 0) {
    close(s->inotify_fd);
  }
  for (unsigned i = 0; i < s->n_rifaces; i++) {
    free(s->rifaces[i]);
  }
  for (unsigned i = 0; i < s->n_inbox; i++) {
    free(s->inbox[i].frame);
  }
  free(s->guard);
  free(s->cap_filter);
  ps__buf_free(&s->last_state);
  free(s->file);
  free(s->filter);
  close(s->stop_fd);
  free(s);
}

void ps_sensor_set_log(ps_sensor *s, ps_log_fn fn, void *user_data) {
  s->log = fn;
  s->log_ud = user_data;
}

const char *ps_sensor_errmsg(ps_sensor *s) {
  return s->errmsg;
}

#define BEFORE_OPEN(s)                                                         \
  do {                                                                         \
    if ((s)->opened) {                                                         \
      return ps__seterr((s)->errmsg, PS_ERR_STATE,                             \
                        "the sensor is already open");                         \
    }                                                                          \
  } while (0)

int ps_sensor_add_interface(ps_sensor *s, const char *ifname) {
  BEFORE_OPEN(s);
  if (ifname == NULL || !ps__valid_name(ifname, strlen(ifname))) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "invalid interface name");
  }
  if (s->file != NULL) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "a sensor reads either interfaces or a file");
  }
  if (s->n_ifnames >= MAX_IFNAMES) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d interfaces",
                      MAX_IFNAMES);
  }
  s->ifnames[s->n_ifnames] = strdup(ifname);
  if (s->ifnames[s->n_ifnames] == NULL) {
    return PS_ERR_NOMEM;
  }
  s->n_ifnames++;
  return 0;
}

int ps_sensor_set_interface_filter(ps_sensor *s, const char *ifname,
                                   const char *expr) {
  BEFORE_OPEN(s);
  for (unsigned i = 0; ifname != NULL && i < s->n_ifnames; i++) {
    if (strcmp(s->ifnames[i], ifname) == 0) {
      free(s->iffilters[i]);
      s->iffilters[i] = NULL;
      if (expr != NULL && *expr != '\0' &&
          (s->iffilters[i] = strdup(expr)) == NULL) {
        return PS_ERR_NOMEM;
      }
      return 0;
    }
  }
  return ps__seterr(s->errmsg, PS_ERR_INVALID,
                    "interface filter for %s, which is not captured",
                    ifname ? ifname : "(null)");
}

/* "(A) and (B)", A, B or NULL; malloc'ed. *bad on no memory. */
static char *and_filters(const char *a, const char *b, int *bad) {
  if (a == NULL || b == NULL) {
    char *r = (a || b) ? strdup(a ? a : b) : NULL;
    *bad = (a || b) && r == NULL;
    return r;
  }
  size_t n = strlen(a) + strlen(b) + 12;
  char *r = malloc(n);
  if (r == NULL) {
    *bad = 1;
    return NULL;
  }
  snprintf(r, n, "(%s) and (%s)", a, b);
  return r;
}

/* The filter an interface named ifname gets: its own and the sensor's
 * (computed at open), or the sensor's alone. */
static const char *filter_for(const ps_sensor *s, const char *ifname) {
  for (unsigned i = 0; i < s->n_ifnames; i++) {
    if (strcmp(s->ifnames[i], ifname) == 0) {
      return s->srcfilters[i];
    }
  }
  return s->filter;
}

int ps_sensor_set_file(ps_sensor *s, const char *path) {
  BEFORE_OPEN(s);
  if (path == NULL || *path == '\0') {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "empty file name");
  }
  if (s->n_ifnames > 0 || s->ns.n_spec > 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "a sensor reads either interfaces or a file");
  }
  free(s->file);
  s->file = strdup(path);
  return s->file ? 0 : PS_ERR_NOMEM;
}

int ps_sensor_add_netns(ps_sensor *s, const char *spec) {
  BEFORE_OPEN(s);
  char why[PS_ERRMSG_MAX];
  if (ps__netns_check_spec(spec, why, sizeof(why)) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "%s", why);
  }
  if (s->file != NULL) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "a sensor reads either network namespaces or a file");
  }
  if (s->ns.n_spec >= PS__NETNS_MAX_SPECS) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d --netns",
                      PS__NETNS_MAX_SPECS);
  }
  if ((s->ns.spec[s->ns.n_spec] = strdup(spec)) == NULL) {
    return PS_ERR_NOMEM;
  }
  s->ns.n_spec++;
  return 0;
}

int ps_sensor_add_netns_match(ps_sensor *s, const char *key_glob) {
  BEFORE_OPEN(s);
  char why[PS_ERRMSG_MAX];
  if (ps__netns_check_match(key_glob, why, sizeof(why)) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "%s", why);
  }
  if (s->ns.n_match >= PS__NETNS_MAX_MATCH) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d --netns-match",
                      PS__NETNS_MAX_MATCH);
  }
  const char *eq = strchr(key_glob, '=');
  char *k = strndup(key_glob, (size_t)(eq - key_glob)), *g = strdup(eq + 1);
  if (k == NULL || g == NULL) {
    free(k);
    free(g);
    return PS_ERR_NOMEM;
  }
  s->ns.match_key[s->ns.n_match] = k;
  s->ns.match_glob[s->ns.n_match++] = g;
  return 0;
}

int ps_sensor_set_netns_rescan_ms(ps_sensor *s, uint64_t ms) {
  BEFORE_OPEN(s);
  if (ms < 100 || ms > 3600000) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "rescan period %llu ms is outside 100..3600000",
                      (unsigned long long)ms);
  }
  s->rescan_ms = ms;
  return 0;
}

int ps_sensor_set_netns_loopback(ps_sensor *s, int on) {
  BEFORE_OPEN(s);
  s->ns_loopback = on != 0;
  return 0;
}

int ps_sensor_set_runtime_root(ps_sensor *s, const char *dir) {
  BEFORE_OPEN(s);
  if (dir == NULL || dir[0] != '/' || strlen(dir) > 1000) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "the runtime root must be an absolute path");
  }
  free(s->ns.runtime_root);
  s->ns.runtime_root = strdup(dir);
  return s->ns.runtime_root ? 0 : PS_ERR_NOMEM;
}

int ps_sensor_set_node_name(ps_sensor *s, const char *name) {
  BEFORE_OPEN(s);
  if (name == NULL || !ps__valid_name(name, strlen(name))) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "invalid node name");
  }
  free(s->node);
  s->node = strdup(name);
  return s->node ? 0 : PS_ERR_NOMEM;
}

int ps_sensor_set_snaplen(ps_sensor *s, int snaplen) {
  BEFORE_OPEN(s);
  if (snaplen < 1 || snaplen > (int)PS_MAX_CAPLEN) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "snaplen %d is outside 1..%u",
                      snaplen, PS_MAX_CAPLEN);
  }
  s->snaplen = snaplen;
  return 0;
}

int ps_sensor_set_buffer_size(ps_sensor *s, int bytes) {
  BEFORE_OPEN(s);
  if (bytes < 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "negative buffer size");
  }
  s->buffer_size = bytes;
  return 0;
}

int ps_sensor_set_promisc(ps_sensor *s, int on) {
  BEFORE_OPEN(s);
  s->promisc = on != 0;
  return 0;
}

int ps_sensor_set_filter(ps_sensor *s, const char *expr) {
  BEFORE_OPEN(s);
  free(s->filter);
  s->filter = NULL;
  if (expr != NULL && *expr != '\0') {
    s->filter = strdup(expr);
    if (s->filter == NULL) {
      return PS_ERR_NOMEM;
    }
  }
  return 0;
}

int ps_sensor_set_count(ps_sensor *s, uint64_t count) {
  BEFORE_OPEN(s);
  s->count = count;
  return 0;
}

int ps_sensor_set_duration_ms(ps_sensor *s, uint64_t ms) {
  BEFORE_OPEN(s);
  s->duration_ms = ms;
  return 0;
}

int ps_sensor_set_sample(ps_sensor *s, uint32_t n) {
  BEFORE_OPEN(s);
  if (n > 1000000) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "sampling 1/%u: at most 1/1000000", n);
  }
  s->sample_n = n;
  return 0;
}

int ps_sensor_set_max_pps(ps_sensor *s, uint32_t pps) {
  BEFORE_OPEN(s);
  s->max_pps = pps;
  return 0;
}

int ps_sensor_set_standby(ps_sensor *s, int on) {
  BEFORE_OPEN(s);
  s->standby = on != 0;
  return 0;
}

int ps_sensor_add_label(ps_sensor *s, const char *key, const char *value) {
  BEFORE_OPEN(s);
  if (key == NULL || value == NULL || !ps__valid_label_key(key, strlen(key))) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid label key '%s': 1 to %u letters, digits or "
                      "_, not starting with a digit",
                      key ? key : "", PS_MAX_LABEL_KEY);
  }
  size_t vl = strlen(value);
  if (vl > PS_MAX_LABEL_VALUE || (vl > 0 && !ps__valid_name(value, vl))) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid value of label %s: at most %u bytes, no "
                      "control character",
                      key, PS_MAX_LABEL_VALUE);
  }
  for (unsigned i = 0; i < s->n_labels; i++) {
    if (strcmp(s->label_key[i], key) == 0) {
      return ps__seterr(s->errmsg, PS_ERR_INVALID, "label %s given twice", key);
    }
  }
  if (s->n_labels >= PS_MAX_LABELS) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %u labels",
                      PS_MAX_LABELS);
  }
  snprintf(s->label_key[s->n_labels], sizeof(s->label_key[0]), "%s", key);
  snprintf(s->label_value[s->n_labels], sizeof(s->label_value[0]), "%s", value);
  s->n_labels++;
  return 0;
}

int ps_sensor_set_remote_capture(ps_sensor *s, int allow) {
  BEFORE_OPEN(s);
  s->remote = allow != 0;
  return 0;
}

int ps_sensor_set_remote_max_duration_ms(ps_sensor *s, uint64_t ms) {
  BEFORE_OPEN(s);
  s->rmax_duration_ms = ms;
  return 0;
}

int ps_sensor_set_remote_max_snaplen(ps_sensor *s, int snaplen) {
  BEFORE_OPEN(s);
  if (snaplen < 0 || snaplen > (int)PS_MAX_CAPLEN) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "snaplen %d is outside 0..%u",
                      snaplen, PS_MAX_CAPLEN);
  }
  s->rmax_snaplen = snaplen;
  return 0;
}

int ps_sensor_set_remote_max_pps(ps_sensor *s, uint32_t pps) {
  BEFORE_OPEN(s);
  s->rmax_pps = pps;
  return 0;
}

int ps_sensor_add_remote_interface(ps_sensor *s, const char *ifname) {
  BEFORE_OPEN(s);
  if (ifname == NULL || !ps__valid_name(ifname, strlen(ifname))) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "invalid interface name");
  }
  if (s->n_rifaces >= MAX_SOURCES) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d interfaces",
                      MAX_SOURCES);
  }
  if ((s->rifaces[s->n_rifaces] = strdup(ifname)) == NULL) {
    return PS_ERR_NOMEM;
  }
  s->n_rifaces++;
  return 0;
}

int ps_sensor_set_remote_filter_guard(ps_sensor *s, const char *expr) {
  BEFORE_OPEN(s);
  free(s->guard);
  s->guard = NULL;
  if (expr == NULL || *expr == '\0') {
    return 0;
  }
  /* Checked now, on Ethernet, so a typo fails at start and not at the
   * first remote capture (it is compiled again on each interface). */
  pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
  struct bpf_program prog;
  if (dead == NULL) {
    return PS_ERR_NOMEM;
  }
  if (pcap_compile(dead, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    ps__seterr(s->errmsg, PS_ERR_FILTER, "bad filter guard '%s': %s", expr,
               pcap_geterr(dead));
    pcap_close(dead);
    return PS_ERR_FILTER;
  }
  pcap_freecode(&prog);
  pcap_close(dead);
  s->guard = strdup(expr);
  return s->guard ? 0 : PS_ERR_NOMEM;
}

void ps_sensor_stop(ps_sensor *s) {
  uint64_t one = 1;
  s->stopped = 1;
  ssize_t n = write(s->stop_fd, &one, sizeof(one));
  (void)n;
  /* The stream is left alone: what was captured is still sent and the
   * stream closed cleanly by the caller. */
}

unsigned ps_sensor_interface_count(ps_sensor *s) {
  return s->n_src;
}

const char *ps_sensor_interface_name(ps_sensor *s, unsigned i) {
  return i < s->n_src ? s->src[i].name : NULL;
}

/* libpcap hands out DLT_ values; files and the wire carry LINKTYPE_
 * values, which differ for a few types (DLT_RAW is 12 or 14, LINKTYPE_RAW
 * 101). libpcap's mapping is internal, so ask it by writing a file header
 * into memory. */
static uint32_t dlt_to_linktype(int dlt) {
  uint32_t lt = (uint32_t)dlt;
  pcap_t *dead = pcap_open_dead(dlt, 65535);
  if (dead == NULL) {
    return lt;
  }
  char *mem = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&mem, &len);
  if (f != NULL) {
    pcap_dumper_t *d = pcap_dump_fopen(dead, f);
    if (d != NULL) {
      pcap_dump_flush(d);
      pcap_dump_close(d); /* closes f */
      if (len >= 24) {
        memcpy(&lt, mem + 20, 4);
      }
    } else {
      fclose(f);
    }
    free(mem);
  }
  pcap_close(dead);
  return lt;
}

static int compile_filter(ps_sensor *s, source *src, const char *expr,
                          int report) {
  struct bpf_program prog;
  if (pcap_compile(src->p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    if (report) {
      ps__seterr(s->errmsg, PS_ERR_FILTER, "bad filter expression '%s': %s",
                 expr, pcap_geterr(src->p));
    }
    return PS_ERR_FILTER;
  }
  int rc = pcap_setfilter(src->p, &prog);
  pcap_freecode(&prog);
  if (rc != 0) {
    if (report) {
      ps__seterr(s->errmsg, PS_ERR_FILTER, "cannot set filter on %s: %s",
                 src->name, pcap_geterr(src->p));
    }
    return PS_ERR_FILTER;
  }
  return 0;
}

static uint32_t rd32(const uint8_t *p, int swap) {
  uint32_t v;
  memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

/* pcap_open_offline with a 1 MiB stdio buffer: libpcap reads records
 * with fread, 4 KiB at a time by default. */
static pcap_t *open_offline(const char *path, unsigned prec, char *eb) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(eb, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
    return NULL;
  }
  setvbuf(f, NULL, _IOFBF, 1u << 20);
  pcap_t *p = pcap_fopen_offline_with_tstamp_precision(f, prec, eb);
  if (p == NULL) {
    fclose(f);
  }
  return p; /* pcap_close() closes f */
}

/* Opens the file once to see its format and check that libpcap reads it
 * to the end; a file libpcap cannot read is refused before anything is
 * sent, rather than streamed short. */
static int open_file(ps_sensor *s) {
  source *src = &s->src[0];
  FILE *f = fopen(s->file, "rb");
  if (f == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "cannot open %s: %s", s->file,
                      strerror(errno));
  }
  uint8_t hdr[24];
  size_t got = fread(hdr, 1, sizeof(hdr), f);
  fclose(f);
  uint32_t magic = got >= 4 ? rd32(hdr, 0) : 0;
  int swap = 0, nano = 0, classic = 0;
  if (magic == 0xa1b2c3d4u || magic == 0xd4c3b2a1u) {
    classic = 1;
    swap = magic == 0xd4c3b2a1u;
  } else if (magic == 0xa1b23c4du || magic == 0x4d3cb2a1u) {
    classic = 1;
    nano = 1;
    swap = magic == 0x4d3cb2a1u;
  } else if (magic == 0x0a0d0d0au) {
    nano = 1; /* pcapng: take the finest resolution libpcap gives */
  }
  /* A usec file opened at nano precision would have libpcap multiply the
   * fraction in 32 bits, corrupting out-of-range values: open each file
   * at its own precision. */
  char eb[PCAP_ERRBUF_SIZE];
  unsigned prec =
      nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO;
  pcap_t *p = open_offline(s->file, prec, eb);
  if (p == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE,
                      "%s: not a capture file "
                      "libpcap can read: %s",
                      s->file, eb);
  }
  src->p = p;
  const char *base = strrchr(s->file, '/');
  snprintf(src->name, sizeof(src->name), "%s", base ? base + 1 : s->file);
  if (!ps__valid_name(src->name, strlen(src->name))) {
    snprintf(src->name, sizeof(src->name), "file");
  }
  src->classic_file = classic;
  src->tsres = nano ? PS_TSRES_NSEC : PS_TSRES_USEC;
  if (classic && got == 24) {
    /* The header's own fields, upper bits and odd snaplens included. */
    src->snaplen = rd32(hdr + 16, swap);
    src->linktype = rd32(hdr + 20, swap);
  } else {
    src->snaplen = (uint32_t)pcap_snapshot(p);
    src->linktype = dlt_to_linktype(pcap_datalink(p));
  }
  src->fd = -1;
  s->n_src = 1;
  if (s->filter != NULL) {
    int rc = compile_filter(s, src, s->filter, 1);
    if (rc != 0) {
      return rc;
    }
  }

  /* The dry run. For classic pcap, the file position after each record
   * also tells whether libpcap cut a packet longer than the header's
   * snaplen (it does, silently): count those and say so. */
  FILE *fp = pcap_file(p);
  long pos = classic ? ftell(fp) : -1;
  struct pcap_pkthdr *h;
  const u_char *d;
  uint64_t n = 0, cut = 0;
  int rc;
  uint32_t cut_at = (uint32_t)pcap_snapshot(p);
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    n++;
    if (pos >= 0) {
      /* Only a packet of exactly libpcap's snaplen can have been cut;
       * ask the file position (an lseek) for those alone. */
      long now = pos + 16 + (long)h->caplen;
      if (h->caplen == cut_at) {
        now = ftell(fp);
      }
      if (now >= 0 && now - pos - 16 != (long)h->caplen) {
        if (cut++ < 5) {
          ps__log(s->log, s->log_ud, PS_LOG_WARNING,
                  "%s: packet %llu has %ld bytes in the file but libpcap "
                  "delivers only %u (the header's snaplen): it is sent "
                  "shortened",
                  s->file, (unsigned long long)n, now - pos - 16, h->caplen);
        }
      }
      pos = now;
    }
  }
  if (rc == PCAP_ERROR) {
    ps__seterr(s->errmsg, PS_ERR_CAPTURE,
               "%s: libpcap cannot read this file past packet %llu: %s "
               "(nothing was sent; rewrite it with editcap or tshark -F)",
               s->file, (unsigned long long)n, pcap_geterr(p));
    return PS_ERR_CAPTURE;
  }
  if (cut > 0) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "%s: %llu packets are longer than the file's snaplen and were "
            "shortened by libpcap",
            s->file, (unsigned long long)cut);
  }
  src->st.truncated = cut;
  pcap_close(p);
  src->p = open_offline(s->file, prec, eb);
  if (src->p == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "%s: %s", s->file, eb);
  }
  if (s->filter != NULL) {
    return compile_filter(s, src, s->filter, 1);
  }
  return 0;
}

/* Opens and activates ifname into src, in the calling thread's network
 * namespace; the reason of a failure goes to err (PS_ERRMSG_MAX). The
 * handle is left in src even then, for the caller to close. */
static int open_one(ps_sensor *s, source *src, const char *ifname, char *err) {
  char eb[PCAP_ERRBUF_SIZE];
  snprintf(src->name, sizeof(src->name), "%s", ifname);
  src->fd = -1;
  pcap_t *p = pcap_create(ifname, eb);
  if (p == NULL) {
    return ps__seterr(err, PS_ERR_CAPTURE, "cannot capture on %s: %s", ifname,
                      eb);
  }
  src->p = p;
  pcap_set_snaplen(p, s->snaplen);
  pcap_set_promisc(p, s->promisc);
  pcap_set_timeout(p, LIVE_TIMEOUT_MS);
  if (s->buffer_size > 0) {
    pcap_set_buffer_size(p, s->buffer_size);
  }
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  int rc = pcap_activate(p);
  if (rc < 0) {
    const char *why = pcap_geterr(p);
    if (rc == PCAP_ERROR_NO_SUCH_DEVICE) {
      return ps__seterr(err, PS_ERR_CAPTURE,
                        "no such interface %s (see ip link)", ifname);
    }
    if (rc == PCAP_ERROR_PERM_DENIED) {
      return ps__seterr(err, PS_ERR_CAPTURE,
                        "no permission to capture on %s: run as root or "
                        "grant CAP_NET_RAW and CAP_NET_ADMIN (%s)",
                        ifname, why);
    }
    return ps__seterr(err, PS_ERR_CAPTURE, "cannot capture on %s: %s", ifname,
                      why && *why ? why : pcap_statustostr(rc));
  }
  if (rc > 0) {
    snprintf(err, PS_ERRMSG_MAX, "%s: %s", ifname, pcap_statustostr(rc));
  }
  src->tsres = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO
                   ? PS_TSRES_NSEC
                   : PS_TSRES_USEC;
  src->snaplen = (uint32_t)pcap_snapshot(p);
  src->linktype = dlt_to_linktype(pcap_datalink(p));
  src->filter = filter_for(s, ifname);
  if (src->filter != NULL) {
    struct bpf_program prog;
    if (pcap_compile(p, &prog, src->filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
      return ps__seterr(err, PS_ERR_FILTER, "bad filter expression '%s': %s",
                        src->filter, pcap_geterr(p));
    }
    rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) {
      return ps__seterr(err, PS_ERR_FILTER, "cannot set filter on %s: %s",
                        ifname, pcap_geterr(p));
    }
  }
  if (pcap_setnonblock(p, 1, eb) != 0) {
    return ps__seterr(err, PS_ERR_CAPTURE, "%s: %s", ifname, eb);
  }
  src->fd = pcap_get_selectable_fd(p);
  if (src->fd < 0) {
    return ps__seterr(err, PS_ERR_CAPTURE, "%s cannot be polled", ifname);
  }
  return 0;
}

static int open_live(ps_sensor *s, unsigned i) {
  source *src = &s->src[i];
  s->n_src = i + 1;
  char err[PS_ERRMSG_MAX] = "";
  int rc = open_one(s, src, s->ifnames[i], err);
  if (rc != 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", err);
  } else if (err[0] != '\0') {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING, "%s", err);
  }
  src->own_ns = 1;
  return rc;
}

/* ---------------- workloads' network namespaces ---------------- */

/* One pass in a namespace, on a thread of its own: setns() changes only
 * the calling thread's namespace, and a packet socket keeps capturing in
 * the namespace it was opened in, so the loop's thread never leaves the
 * sensor's own namespace. */
typedef struct ns_job {
  ps_sensor *s;
  int fd;
  char open_names[MAX_NS_IFACES][IF_NAMESIZE + 1]; /* open already */
  unsigned n_open;
  source out[MAX_NS_IFACES];
  int rc[MAX_NS_IFACES];
  char err[MAX_NS_IFACES][PS_ERRMSG_MAX];
  unsigned n_out;
  char fail[PS_ERRMSG_MAX]; /* the pass failed as a whole */
} ns_job;

static int wanted(const ps_sensor *s, const char *name, unsigned flags) {
  if (s->n_ifnames > 0) {
    for (unsigned i = 0; i < s->n_ifnames; i++) {
      if (strcmp(s->ifnames[i], name) == 0) {
        return 1;
      }
    }
    return 0;
  }
  return (flags & IFF_UP) && (!(flags & IFF_LOOPBACK) || s->ns_loopback);
}

static void *ns_thread(void *arg) {
  ns_job *j = arg;
  ps_sensor *s = j->s;
  if (setns(j->fd, CLONE_NEWNET) != 0) {
    snprintf(j->fail, sizeof(j->fail),
             "cannot enter it: %s (needs CAP_SYS_ADMIN)", strerror(errno));
    return NULL;
  }
  char names[MAX_NS_IFACES][IF_NAMESIZE + 1];
  unsigned n = 0;
  struct ifaddrs *ifa = NULL;
  if (getifaddrs(&ifa) != 0) {
    snprintf(j->fail, sizeof(j->fail), "cannot list its interfaces: %s",
             strerror(errno));
    return NULL;
  }
  for (struct ifaddrs *e = ifa; e != NULL && n < MAX_NS_IFACES;
       e = e->ifa_next) {
    if (e->ifa_addr == NULL || e->ifa_addr->sa_family != AF_PACKET ||
        strlen(e->ifa_name) > IF_NAMESIZE ||
        !wanted(s, e->ifa_name, e->ifa_flags)) {
      continue;
    }
    int dup = 0;
    for (unsigned k = 0; k < j->n_open && !dup; k++) {
      dup = strcmp(j->open_names[k], e->ifa_name) == 0;
    }
    if (!dup) {
      snprintf(names[n++], sizeof(names[0]), "%s", e->ifa_name);
    }
  }
  freeifaddrs(ifa);
  /* "any" is no link of its own: capture it where asked. */
  for (unsigned i = 0; i < s->n_ifnames && n < MAX_NS_IFACES; i++) {
    int dup = 0;
    for (unsigned k = 0; k < j->n_open && !dup; k++) {
      dup = strcmp(j->open_names[k], "any") == 0;
    }
    if (strcmp(s->ifnames[i], "any") == 0 && !dup) {
      snprintf(names[n++], sizeof(names[0]), "any");
    }
  }
  for (unsigned i = 0; i < n; i++) {
    source *src = &j->out[j->n_out];
    memset(src, 0, sizeof(*src));
    j->err[j->n_out][0] = '\0';
    j->rc[j->n_out] = open_one(s, src, names[i], j->err[j->n_out]);
    snprintf(src->ifname, sizeof(src->ifname), "%s", names[i]);
    j->n_out++;
  }
  return NULL;
}

/* The wire name, description and options of a workload's interface. */
static void describe(ps_sensor *s, source *src, const ps__workload *w) {
  char wl[600], ifn[IF_NAMESIZE + 1], buf[sizeof(src->desc)];
  ps__workload_name(w, wl, sizeof(wl));
  memcpy(ifn, src->ifname, sizeof(ifn));
  snprintf(buf, sizeof(src->name), "%.200s/%s", wl, ifn);
  memcpy(src->name, buf, sizeof(src->name));
  if (w->pod_name[0]) {
    snprintf(buf, sizeof(buf),
             "interface %s of pod %.300s (network namespace %llu)", ifn, wl,
             (unsigned long long)w->ino);
  } else {
    snprintf(buf, sizeof(buf), "interface %s of network namespace %llu%s%.255s",
             ifn, (unsigned long long)w->ino, w->netns[0] ? " /run/netns/" : "",
             w->netns);
  }
  memcpy(src->desc, buf, sizeof(buf));
  char inode[24];
  snprintf(inode, sizeof(inode), "%llu", (unsigned long long)w->ino);
  const char *kv[][2] = {
      {"netns.inode", inode},           {"netns.name", w->netns},
      {"pod.namespace", w->pod_ns},     {"pod.name", w->pod_name},
      {"pod.uid", w->pod_uid},          {"container.id", w->containers},
      {"container.name", w->container}, {"node", s->node ? s->node : ""}};
  size_t at = 0;
  src->n_opt = 0;
  for (size_t i = 0; i < sizeof(kv) / sizeof(*kv); i++) {
    size_t len = strlen(kv[i][1]);
    if (len == 0 || len > 1000 || at + len + 1 > sizeof(src->optbuf)) {
      continue;
    }
    memcpy(src->optbuf + at, kv[i][1], len + 1);
    src->opt[src->n_opt].key = kv[i][0];
    src->opt[src->n_opt++].value = src->optbuf + at;
    at += len + 1;
  }
}

static int announce(ps_sensor *s, source *src) {
  ps_stream_interface_options o = {.description = src->netns ? src->desc : NULL,
                                   .options = src->netns ? src->opt : NULL,
                                   .n_options = src->netns ? src->n_opt : 0};
  int rc = ps_stream_add_interface_options(
      s->stream, &src->stream_if, src->name, src->linktype, src->snaplen,
      src->tsres, &o, sizeof(o));
  src->announced = rc == 0;
  return rc;
}

static void fill_stats(ps_sensor *s, source *src);
static void on_packet(u_char *user, const struct pcap_pkthdr *h,
                      const u_char *data);
typedef struct cb_ctx {
  ps_sensor *s;
  source *src;
} cb_ctx;

/* A workload's source whose namespace or interface is gone: what the
 * socket still holds is read first, then the final counters go out. */
static void close_source(ps_sensor *s, source *src, const char *why) {
  if (src->p == NULL) {
    return;
  }
  if (s->stream != NULL && src->announced) {
    cb_ctx ctx = {s, src};
    for (int k = 0; k < 1000; k++) {
      if (pcap_dispatch(src->p, -1, on_packet, (u_char *)&ctx) <= 0 ||
          s->run_rc != 0) {
        break;
      }
    }
  }
  fill_stats(s, src);
  if (s->stream != NULL && src->announced) {
    ps_stream_send_stats(s->stream, src->stream_if, &src->st, sizeof(src->st));
  }
  ps__log(s->log, s->log_ud, PS_LOG_INFO,
          "%s: %s: closed after %llu packets (%llu dropped by the kernel)",
          src->name, why, (unsigned long long)src->st.captured,
          (unsigned long long)src->st.dropped);
  pcap_close(src->p);
  src->p = NULL;
  src->fd = -1;
  src->closed = 1;
}

static int apply_exclusion(ps_sensor *s, source *src);

/* Opens what is new in workload w: its interfaces not open yet. */
static void open_workload(ps_sensor *s, const ps__workload *w) {
  char wl[600];
  ps__workload_name(w, wl, sizeof(wl));
  ns_job *j = calloc(1, sizeof(*j));
  if (j == NULL) {
    return;
  }
  j->s = s;
  for (unsigned i = 0; i < s->n_src && j->n_open < MAX_NS_IFACES; i++) {
    source *src = &s->src[i];
    if (src->netns && !src->closed && src->ns_dev == w->dev &&
        src->ns_ino == w->ino) {
      snprintf(j->open_names[j->n_open++], sizeof(j->open_names[0]), "%s",
               src->ifname);
    }
  }
  j->fd = open(w->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (j->fd < 0) {
    ps__log(s->log, s->log_ud, w->pids_only ? PS_LOG_DEBUG : PS_LOG_WARNING,
            "workload %s: network namespace %s vanished before it could be "
            "opened: %s",
            wl, w->path, strerror(errno));
    free(j);
    return;
  }
  if (fstat(j->fd, &st) != 0 || (uint64_t)st.st_dev != w->dev ||
      (uint64_t)st.st_ino != w->ino) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "workload %s: %s is another namespace now: skipped", wl, w->path);
    close(j->fd);
    free(j);
    return;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, ns_thread, j) != 0) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "workload %s: cannot start a thread", wl);
    close(j->fd);
    free(j);
    return;
  }
  pthread_join(t, NULL);
  close(j->fd);
  if (j->fail[0] != '\0') {
    /* Once per namespace, not at every rescan. */
    unsigned k = 0;
    while (k < s->n_warned && s->warned[k] != w->ino) {
      k++;
    }
    if (k == s->n_warned) {
      s->warned[s->n_warned++ % 64] = w->ino;
      s->n_warned = s->n_warned > 64 ? 64 : s->n_warned;
      ps__log(s->log, s->log_ud, PS_LOG_WARNING, "workload %s: %s", wl,
              j->fail);
    }
  }
  for (unsigned i = 0; i < j->n_out; i++) {
    source *o = &j->out[i];
    if (j->rc[i] != 0) {
      ps__log(s->log, s->log_ud, PS_LOG_WARNING, "workload %s: %s", wl,
              j->err[i]);
      if (o->p != NULL) {
        pcap_close(o->p);
      }
      continue;
    }
    if (s->n_src >= MAX_SOURCES) {
      if (!s->full_logged++) {
        ps__log(s->log, s->log_ud, PS_LOG_ERROR,
                "workload %s: interface %s not captured: the sensor has "
                "had %u interfaces, a stream's limit (restart it to capture "
                "new workloads)",
                wl, o->ifname, MAX_SOURCES);
      }
      pcap_close(o->p);
      continue;
    }
    source *src = &s->src[s->n_src];
    *src = *o;
    src->netns = 1;
    src->own_ns = w->own;
    src->ns_dev = w->dev;
    src->ns_ino = w->ino;
    describe(s, src, w);
    if (s->stream != NULL) {
      int rc = announce(s, src);
      if (rc != 0) {
        ps__log(s->log, s->log_ud, PS_LOG_ERROR, "%s: not announced: %s",
                src->name, ps_stream_errmsg(s->stream));
        pcap_close(src->p);
        continue;
      }
      if (src->own_ns) {
        apply_exclusion(s, src);
      }
    }
    s->n_src++;
    ps__log(s->log, s->log_ud, PS_LOG_INFO, "capturing %s: %s", src->name,
            src->desc);
  }
  free(j);
}

static int in_list(const ps__workload *w, size_t n, uint64_t dev,
                   uint64_t ino) {
  for (size_t i = 0; i < n; i++) {
    if (w[i].dev == dev && w[i].ino == ino) {
      return 1;
    }
  }
  return 0;
}

/* Watches the directories where namespaces appear (and one level
 * below, where a runtime keeps a bundle per container). */
static void watch_dirs(ps_sensor *s) {
  if (s->inotify_fd < 0) {
    return;
  }
  const char *dirs[4];
  size_t n = ps__netns_watch_dirs(&s->ns, dirs, 4);
  uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
                  IN_ONLYDIR | IN_ATTRIB;
  for (size_t i = 0; i < n; i++) {
    inotify_add_watch(s->inotify_fd, dirs[i], mask);
    DIR *d = opendir(dirs[i]);
    struct dirent *de;
    while (i > 0 && d != NULL && (de = readdir(d)) != NULL) {
      char p[1100];
      if (de->d_name[0] != '.' && snprintf(p, sizeof(p), "%s/%s", dirs[i],
                                           de->d_name) < (int)sizeof(p)) {
        inotify_add_watch(s->inotify_fd, p, mask);
      }
    }
    if (d != NULL) {
      closedir(d);
    }
  }
}

/* Looks for namespaces: new ones are opened, gone ones closed. */
static int netns_rescan(ps_sensor *s) {
  ps__workload *w = NULL;
  size_t n = 0;
  if (ps__netns_scan(&s->ns, &s->seen, &w, &n, s->log, s->log_ud) != 0) {
    return PS_ERR_NOMEM;
  }
  for (unsigned i = 0; i < s->n_src; i++) {
    source *src = &s->src[i];
    if (src->netns && !src->closed &&
        !in_list(w, n, src->ns_dev, src->ns_ino)) {
      close_source(s, src, "its network namespace is gone");
    }
  }
  for (size_t i = 0; i < n; i++) {
    open_workload(s, &w[i]);
  }
  free(w);
  watch_dirs(s);
  return 0;
}

/* An explicit name, path or pid that names no namespace now is a
 * mistake at the start (pods and "all" may come later). */
static int check_explicit(ps_sensor *s) {
  for (unsigned i = 0; i < s->ns.n_spec; i++) {
    const char *sp = s->ns.spec[i];
    char p[300];
    if (strcmp(sp, "all") == 0 || strncmp(sp, "pod:", 4) == 0 ||
        strncmp(sp, "container:", 10) == 0) {
      continue;
    }
    if (strncmp(sp, "pid:", 4) == 0) {
      snprintf(p, sizeof(p), "/proc/%s/ns/net", sp + 4);
    } else if (sp[0] == '/') {
      snprintf(p, sizeof(p), "%s", sp);
    } else {
      snprintf(p, sizeof(p), "/run/netns/%s", sp);
    }
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return ps__seterr(s->errmsg, PS_ERR_CAPTURE,
                        "--netns %s: cannot open %s: %s (see ip netns list)",
                        sp, p, strerror(errno));
    }
    close(fd);
  }
  return 0;
}

int ps_sensor_open(ps_sensor *s) {
  BEFORE_OPEN(s);
  if (s->standby) {
    if (s->file != NULL || s->n_ifnames > 0 || s->ns.n_spec > 0) {
      return ps__seterr(s->errmsg, PS_ERR_INVALID,
                        "a standby sensor captures only when the receiver "
                        "asks: give no interface or file to capture now");
    }
    /* Nothing is opened: standby holds no packet socket. */
    s->opened = 1;
    return 0;
  }
  if (s->file == NULL && s->n_ifnames == 0 && s->ns.n_spec == 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "nothing to capture: give an interface or a file");
  }
  for (unsigned i = 0; i < s->n_ifnames; i++) {
    int bad = 0;
    free(s->srcfilters[i]);
    s->srcfilters[i] = and_filters(s->filter, s->iffilters[i], &bad);
    if (bad) {
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
  }
  int rc = 0;
  if (s->file != NULL) {
    rc = open_file(s);
  } else if (s->ns.n_spec > 0) {
    if (s->node == NULL) {
      char host[256] = "";
      gethostname(host, sizeof(host) - 1);
      s->node = ps__valid_name(host, strlen(host)) ? strdup(host) : NULL;
    }
    s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    rc = check_explicit(s);
    if (rc == 0) {
      rc = netns_rescan(s);
    }
  } else {
    for (unsigned i = 0; i < s->n_ifnames && rc == 0; i++) {
      rc = open_live(s, i);
    }
  }
  if (rc != 0) {
    if (s->inotify_fd >= 0) {
      close(s->inotify_fd);
      s->inotify_fd = -1;
    }
    for (unsigned i = 0; i < s->n_src; i++) {
      if (s->src[i].p) {
        pcap_close(s->src[i].p);
      }
      s->src[i].p = NULL;
    }
    s->n_src = 0;
    return rc;
  }
  s->opened = 1;
  return 0;
}

/* Live sources must not capture the sensor's own stream, or each batch
 * would capture the previous one. The filter is replaced only when the
 * stream reaches a receiver address it never had: libpcap swaps a kernel
 * filter by rejecting everything for a moment, and packets arriving then
 * are lost without being counted as drops (so a reconnection to the same
 * receiver must not touch the filter). */
static int exclude_stream(ps_sensor *s) {
  char raddr[64], laddr[64], term[100], any[1100] = "";
  uint16_t rport, lport;
  if (ps_stream_get_endpoints(s->stream, raddr, sizeof(raddr), &rport, laddr,
                              sizeof(laddr), &lport) != 0) {
    return -1;
  }
  snprintf(term, sizeof(term), "(host %s and port %u)", raddr, rport);
  for (unsigned k = 0; k < s->n_excluded; k++) {
    if (strcmp(s->excluded[k], term) == 0) {
      return 0;
    }
  }
  if (s->n_excluded == MAX_EXCLUDED) {
    memmove(s->excluded[0], s->excluded[1],
            (MAX_EXCLUDED - 1) * sizeof(s->excluded[0]));
    s->n_excluded--;
  }
  memcpy(s->excluded[s->n_excluded++], term, sizeof(term));
  for (unsigned k = 0; k < s->n_excluded; k++) {
    size_t n = strlen(any);
    snprintf(any + n, sizeof(any) - n, "%s%s", k ? " or " : "", s->excluded[k]);
  }
  memcpy(s->excl_any, any, sizeof(any));
  for (unsigned i = 0; i < s->n_src; i++) {
    apply_exclusion(s, &s->src[i]);
  }
  return 0;
}

/* A workload's namespace is not the sensor's: its traffic to a receiver
 * is ordinary traffic, captured. */
static int apply_exclusion(ps_sensor *s, source *src) {
  if (src->p == NULL || !src->own_ns || s->excl_any[0] == '\0') {
    return 0;
  }
  /* Sized to the filter: a long one (a PacketStreamer port list) must
   * not be cut short, or the stream would be captured. */
  const char *f = src->filter;
  size_t n = (f ? strlen(f) : 0) + strlen(s->excl_any) + 32;
  char *expr = malloc(n);
  if (expr == NULL) {
    return -1;
  }
  if (f) {
    snprintf(expr, n, "(%s) and not (tcp and (%s))", f, s->excl_any);
  } else {
    snprintf(expr, n, "not (tcp and (%s))", s->excl_any);
  }
  int crc = compile_filter(s, src, expr, 0);
  free(expr);
  if (crc != 0) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "%s: cannot filter out the sensor's own stream on this link "
            "type (%s); use a filter that excludes it",
            src->name, pcap_geterr(src->p));
    return -1;
  }
  return 0;
}

static void fill_stats(ps_sensor *s, source *src) {
  struct pcap_stat ps;
  if (src->p != NULL && src->fd >= 0 && pcap_stats(src->p, &ps) == 0) {
    src->st.received = ps.ps_recv;
    src->st.dropped = ps.ps_drop;
    src->st.ifdropped = ps.ps_ifdrop;
  }
  ps_stream_interface_counters ic;
  if (s->stream != NULL &&
      ps_stream_get_interface_counters(s->stream, &ic, sizeof(ic),
                                       src->stream_if) == 0) {
    src->st.overflow = ic.packets_dropped_overflow + ic.packets_lost;
  }
}

int ps_sensor_get_interface_id(ps_sensor *s, uint32_t *out, unsigned i) {
  if (i >= s->n_src || out == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "no interface %u", i);
  }
  if (!s->src[i].announced) {
    return ps__seterr(s->errmsg, PS_ERR_STATE,
                      "interface %u is not announced to a stream yet", i);
  }
  *out = s->src[i].stream_if;
  return 0;
}

int ps_sensor_get_interface_stats(ps_sensor *s, ps_capture_stats *out,
                                  size_t size, unsigned i) {
  if (i >= s->n_src || out == NULL) {
    return PS_ERR_INVALID;
  }
  fill_stats(s, &s->src[i]);
  ps__copy_out(out, size, &s->src[i].st, sizeof(s->src[i].st));
  return 0;
}

static int send_all_stats(ps_sensor *s) {
  for (unsigned i = 0; i < s->n_src; i++) {
    if (s->src[i].closed || !s->src[i].announced) {
      continue; /* its final counters went out when it closed */
    }
    fill_stats(s, &s->src[i]);
    int rc = ps_stream_send_stats(s->stream, s->src[i].stream_if, &s->src[i].st,
                                  sizeof(s->src[i].st));
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h,
                      const u_char *data) {
  cb_ctx *c = (cb_ctx *)user;
  ps_sensor *s = c->s;
  source *src = c->src;
  ps_packet pkt = {
      .ts_sec = h->ts.tv_sec,
      .ts_frac = (uint32_t)h->ts.tv_usec,
      .caplen = h->caplen,
      .len = h->len,
      .iface = src->stream_if,
      .data = data,
  };
  if (src->classic_file) {
    /* libpcap sign-extends the file's unsigned 32-bit seconds. */
    pkt.ts_sec = (uint32_t)h->ts.tv_sec;
  }
  /* Sampling keeps the first of every sample_n packets; the rate cap
   * counts packets per second of their own time stamps (so a file is
   * capped as it was captured). Neither is loss: both are counted as
   * sampled out. */
  if (s->sample_n > 1 && s->sample_seen++ % s->sample_n != 0) {
    s->sampled_out++;
    src->st.sampled_out++;
    return;
  }
  if (s->max_pps > 0) {
    if (pkt.ts_sec != s->pps_sec) {
      s->pps_sec = pkt.ts_sec;
      s->pps_n = 0;
    }
    if (s->pps_n >= s->max_pps) {
      s->sampled_out++;
      src->st.sampled_out++;
      return;
    }
    s->pps_n++;
  }
  int rc = 0;
  /* A file is never dropped from: reading waits while the replay queue
   * is full (a slow or absent receiver). Live captures cannot wait; their
   * queue drops by its policy, and counts. */
  while (src->fd < 0 && !ps_stream_has_room(s->stream, h->caplen)) {
    /* The duration holds while waiting too: a stalled receiver does not
     * stretch it until the file is read. */
    if (s->stopped || ps__now_ms() >= s->end_ms) {
      pcap_breakloop(src->p);
      return;
    }
    rc = ps_stream_poll(s->stream, 100);
    if (rc == PS_ERR_STOPPED) {
      s->stopped = 1;
      continue;
    }
    if (rc != 0) {
      break;
    }
  }
  if (rc == 0) {
    rc = ps_stream_send(s->stream, &pkt);
  }
  if (rc != 0) {
    s->run_rc = rc;
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", ps_stream_errmsg(s->stream));
    pcap_breakloop(src->p);
    return;
  }
  src->st.captured++;
  src->st.bytes += h->caplen;
  if (s->cap_id != 0 && ++s->cap_packets == s->cap_count) {
    pcap_breakloop(src->p);
  }
  if (++s->total == s->count) {
    pcap_breakloop(src->p);
  }
}

static int run_file(ps_sensor *s) {
  source *src = &s->src[0];
  cb_ctx ctx = {s, src};
  int64_t end = s->end_ms;
  for (;;) {
    int n = pcap_dispatch(src->p, 4096, on_packet, (u_char *)&ctx);
    if (s->run_rc != 0) {
      return s->run_rc;
    }
    if (n == 0) {
      return 0; /* end of file */
    }
    if (n == PCAP_ERROR) {
      return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "%s: %s", s->file,
                        pcap_geterr(src->p));
    }
    if (s->count && s->total >= s->count) {
      return 0;
    }
    if (!s->stopped && ps__now_ms() >= end) {
      /* Said, because the summary alone would not tell that the file
       * may hold more. */
      ps__log(s->log, s->log_ud, PS_LOG_INFO,
              "%s: capture duration of %llu %s reached: stopped reading "
              "after %llu packets",
              s->file,
              (unsigned long long)(s->duration_ms % 1000
                                       ? s->duration_ms
                                       : s->duration_ms / 1000),
              s->duration_ms % 1000 ? "ms" : "s", (unsigned long long)s->total);
      return 0;
    }
    if (s->stopped || n == PCAP_ERROR_BREAK) {
      return 0;
    }
  }
}

static int handle_inbox(ps_sensor *s);
static int send_state(ps_sensor *s, uint64_t id, uint8_t state,
                      const char *text);
static void on_control(void *ud, const ps__frame *f);

static int own_state(ps_sensor *s);

static int run_live(ps_sensor *s) {
  struct pollfd pfd[MAX_SOURCES + 3];
  int64_t start = ps__now_ms();
  int64_t next_stats = start + STATS_EVERY_MS;
  int following = s->ns.n_spec > 0;
  int64_t next_rescan = following ? start + (int64_t)s->rescan_ms : INT64_MAX;
  int64_t end = s->end_ms;
  uint64_t excluded = UINT64_MAX; /* reconnects count when excluded */
  for (;;) {
    if (s->stopped || (s->count && s->total >= s->count)) {
      return 0;
    }
    /* Every new connection (a reconnect, another receiver) has its own
     * addresses to keep out of the capture. */
    ps_stream_counters sc;
    ps_stream_get_counters(s->stream, &sc, sizeof(sc));
    if (sc.reconnects != excluded && exclude_stream(s) == 0) {
      excluded = sc.reconnects;
    }
    if (s->cap_id == PS_CAPTURE_ID_OWN) {
      int rc = handle_inbox(s);
      if (rc != 0 || s->to_standby) {
        return rc;
      }
    }
    int64_t now = ps__now_ms();
    if (now >= end) {
      return 0;
    }
    if (now >= next_stats) {
      int rc = send_all_stats(s);
      if (rc != 0) {
        return rc;
      }
      next_stats = now + STATS_EVERY_MS;
    }
    if (now >= next_rescan) {
      int rc = netns_rescan(s);
      if (rc != 0) {
        return ps__seterr(s->errmsg, rc, "out of memory");
      }
      if (s->run_rc != 0) {
        return s->run_rc;
      }
      now = ps__now_ms();
      next_rescan = now + (int64_t)s->rescan_ms;
    }
    int64_t wait = next_stats - now;
    if (end - now < wait) {
      wait = end - now;
    }
    if (next_rescan - now < wait) {
      wait = next_rescan - now;
    }
    int due = ps_stream_next_deadline_ms(s->stream);
    if (due >= 0 && due < wait) {
      wait = due;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < s->n_src; i++) {
      if (s->src[i].p != NULL) {
        pfd[n++] = (struct pollfd){s->src[i].fd, POLLIN, 0};
      }
    }
    if (following && s->inotify_fd >= 0) {
      pfd[n++] = (struct pollfd){s->inotify_fd, POLLIN, 0};
    }
    pfd[n++] = (struct pollfd){
        ps_stream_get_fd(s->stream),
        (short)(POLLIN | (ps_stream_want_write(s->stream) ? POLLOUT : 0)), 0};
    pfd[n++] = (struct pollfd){s->stop_fd, POLLIN, 0};
    if (poll(pfd, n, (int)wait) < 0 && errno != EINTR) {
      return ps__seterr(s->errmsg, PS_ERR_SYSTEM, "poll: %s", strerror(errno));
    }
    if (following && s->inotify_fd >= 0) {
      /* Something changed where namespaces and bundles live: look
       * soon (ip netns add mounts the file a moment after creating it;
       * a missed mount is found by the periodic rescan). */
      char ev[4096];
      if (read(s->inotify_fd, ev, sizeof(ev)) > 0) {
        while (read(s->inotify_fd, ev, sizeof(ev)) > 0) {
        }
        int64_t soon = ps__now_ms() + 100;
        if (soon < next_rescan) {
          next_rescan = soon;
        }
      }
    }
    for (unsigned i = 0; i < s->n_src; i++) {
      if (s->src[i].p == NULL) {
        continue;
      }
      cb_ctx ctx = {s, &s->src[i]};
      int got = pcap_dispatch(s->src[i].p, -1, on_packet, (u_char *)&ctx);
      if (s->run_rc != 0) {
        return s->run_rc;
      }
      if (got == PCAP_ERROR && s->src[i].netns) {
        /* A workload's interface that went away (a pod's veth deleted):
         * the others keep streaming. */
        char why[PS_ERRMSG_MAX];
        snprintf(why, sizeof(why), "%s", pcap_geterr(s->src[i].p));
        close_source(s, &s->src[i], why);
        continue;
      }
      if (got == PCAP_ERROR) {
        return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "%s: %s", s->src[i].name,
                          pcap_geterr(s->src[i].p));
      }
    }
    int rc = ps_stream_process(s->stream);
    if (rc == PS_ERR_STOPPED) {
      return 0;
    }
    if (rc != 0) {
      snprintf(s->errmsg, sizeof(s->errmsg), "%s", ps_stream_errmsg(s->stream));
      return rc;
    }
  }
}

/* ------------------------------------------------------------------
 * Remote captures (protocol version 2): a standby sensor announces
 * itself and captures only what a receiver asks for, within the policy
 * it was started with. Requests arrive through the stream (on_control,
 * called while the stream reads) and are handled by the run loop, which
 * owns the capture handles.
 */

/* The pcap link type of a network interface, from its ARPHRD type in
 * sysfs (opening a capture to ask would open a packet socket, which a
 * standby sensor never does). 0 when not known. */
static uint32_t sysfs_linktype(const char *ifname) {
  char path[300];
  snprintf(path, sizeof(path), "/sys/class/net/%s/type", ifname);
  FILE *f = fopen(path, "r");
  unsigned t = 0;
  if (f == NULL) {
    return strcmp(ifname, "any") == 0 ? 113 : 0; /* LINUX_SLL */
  }
  if (fscanf(f, "%u", &t) != 1) {
    t = 0;
  }
  fclose(f);
  switch (t) {
  case 1:   /* ARPHRD_ETHER */
  case 772: /* ARPHRD_LOOPBACK: libpcap gives Ethernet */
    return 1;
  case 65534:   /* ARPHRD_NONE (tun) */
  case 776:     /* ARPHRD_SIT */
    return 101; /* LINKTYPE_RAW */
  case 803:     /* ARPHRD_IEEE80211_RADIOTAP */
    return 127;
  default:
    return 0;
  }
}

static int set_announce(ps_sensor *s) {
  ps__announce *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return PS_ERR_NOMEM;
  }
  char host[256] = "";
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0' ||
      !ps__valid_name(host, strlen(host))) {
    snprintf(host, sizeof(host), "unknown");
  }
  m->flags = (s->standby ? PS_ANNOUNCE_STANDBY : 0) |
             (s->remote ? PS_ANNOUNCE_REMOTE : 0);
  m->version = (ps__text){PS_VERSION, strlen(PS_VERSION)};
  m->host = (ps__text){host, strlen(host)};
  pcap_if_t *all = NULL;
  char eb[PCAP_ERRBUF_SIZE];
  static char names[PS_MAX_ANNOUNCE_IFACES][256];
  if (s->n_rifaces > 0) {
    /* What a receiver may ask for is what it is shown. */
    for (unsigned i = 0; i < s->n_rifaces; i++) {
      snprintf(names[i], sizeof(names[i]), "%s", s->rifaces[i]);
      m->ifaces[m->n_ifaces].name = (ps__text){names[i], strlen(names[i])};
      m->ifaces[m->n_ifaces++].linktype = sysfs_linktype(names[i]);
    }
  } else if (pcap_findalldevs(&all, eb) == 0) {
    for (pcap_if_t *d = all; d != NULL && m->n_ifaces < PS_MAX_ANNOUNCE_IFACES;
         d = d->next) {
      size_t n = strlen(d->name);
      if (n == 0 || n > 255 || !ps__valid_name(d->name, n)) {
        continue;
      }
      memcpy(names[m->n_ifaces], d->name, n + 1);
      m->ifaces[m->n_ifaces].name = (ps__text){names[m->n_ifaces], n};
      m->ifaces[m->n_ifaces].linktype = sysfs_linktype(d->name);
      m->n_ifaces++;
    }
    pcap_freealldevs(all);
  }
  for (unsigned i = 0; i < s->n_labels; i++) {
    m->labels[i].key = (ps__text){s->label_key[i], strlen(s->label_key[i])};
    m->labels[i].value =
        (ps__text){s->label_value[i], strlen(s->label_value[i])};
  }
  m->n_labels = s->n_labels;
  ps__buf b = {0};
  int rc = ps__enc_announce(&b, m);
  free(m);
  if (rc == 0) {
    rc = ps__stream_set_announce(s->stream, ps__buf_head(&b), ps__buf_size(&b));
  }
  /* A session already up heard no announcement at its start: now. */
  if (rc == 0) {
    rc = ps__stream_send_control(s->stream, ps__buf_head(&b), ps__buf_size(&b));
  }
  ps__buf_free(&b);
  return rc;
}

/* Called by the stream with a validated request: kept for the loop. */
static void on_control(void *ud, const ps__frame *f) {
  ps_sensor *s = ud;
  if (s->n_inbox >= MAX_INBOX) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "%s from the receiver dropped: %u requests wait already",
            ps__frame_name(f->type), MAX_INBOX);
    return;
  }
  uint8_t *copy = malloc(PS_FRAME_HDR + f->len);
  if (copy == NULL) {
    return;
  }
  copy[0] = f->type;
  copy[1] = f->flags;
  copy[2] = copy[3] = 0;
  ps__put32(copy + 4, f->len);
  memcpy(copy + PS_FRAME_HDR, f->payload, f->len);
  s->inbox[s->n_inbox++] = (request){PS_FRAME_HDR + f->len, copy};
}

static int send_state(ps_sensor *s, uint64_t id, uint8_t state,
                      const char *text) {
  ps__capture_state_msg m = {.id = id,
                             .state = state,
                             .packets = id == s->cap_id ? s->cap_packets : 0,
                             .sampled_out =
                                 id == s->cap_id ? s->sampled_out : 0,
                             .text = {text, text ? strlen(text) : 0},
                             .sample_n = s->sample_n,
                             .max_pps = s->max_pps};
  if (id == s->cap_id && state != PS_CAP_REFUSED) {
    for (unsigned i = 0; i < s->n_src && m.n_ifaces < PS_MAX_CAPTURE_IFACES;
         i++) {
      if (s->src[i].announced && !s->src[i].closed) {
        m.ifaces[m.n_ifaces++] = s->src[i].stream_if;
      }
    }
  }
  ps__buf b = {0};
  int rc = ps__enc_capture_state(&b, &m);
  if (rc == 0) {
    rc = ps__stream_send_control(s->stream, ps__buf_head(&b), ps__buf_size(&b));
  }
  if (rc == 0 && id == s->cap_id && !(id & PS_CAPTURE_ID_OWN) &&
      (state == PS_CAP_RUNNING || state == PS_CAP_ENDED)) {
    /* The next session hears it again (see last_state). */
    s->was_controllable = ps__stream_controllable(s->stream);
    ps__buf_free(&s->last_state);
    rc = ps__buf_append(&s->last_state, ps__buf_head(&b), ps__buf_size(&b));
  }
  ps__buf_free(&b);
  return rc;
}

/* A new session (a reconnect, a restarted receiver) hears the last
 * capture state again, after the batches resent before it. */
static int resend_state(ps_sensor *s) {
  int ctl = ps__stream_controllable(s->stream);
  int rc = 0;
  if (ctl && !s->was_controllable && ps__buf_size(&s->last_state) > 0) {
    rc = ps__stream_send_control(s->stream, ps__buf_head(&s->last_state),
                                 ps__buf_size(&s->last_state));
  }
  s->was_controllable = ctl;
  return rc;
}

/* The own capture as the receiver is told of it: at the start of every
 * session, after the interfaces and before any batch (so the packets a
 * reconnection resends are its too), and now to the session up, if
 * any. Called when it starts and after each change. */
static int own_state(ps_sensor *s) {
  ps__capture_state_msg m = {.id = PS_CAPTURE_ID_OWN,
                             .state = PS_CAP_OWN,
                             .packets = s->cap_packets,
                             .sampled_out = s->sampled_out,
                             .text = {s->cap_filter, strlen(s->cap_filter)},
                             .sample_n = s->sample_n,
                             .max_pps = s->max_pps};
  for (unsigned i = 0; i < s->n_src && m.n_ifaces < PS_MAX_CAPTURE_IFACES;
       i++) {
    if (s->src[i].announced && !s->src[i].closed) {
      m.ifaces[m.n_ifaces++] = s->src[i].stream_if;
    }
  }
  ps__buf b = {0};
  int rc = ps__enc_capture_state(&b, &m);
  if (rc == 0) {
    rc = ps__stream_set_session_state(s->stream, ps__buf_head(&b),
                                      ps__buf_size(&b));
  }
  ps__buf_free(&b);
  return rc;
}

/* Refuses request id with the reason, on this side's log and the
 * receiver's answer. */
static int refuse_remote(ps_sensor *s, uint64_t id, uint8_t state,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse_remote(ps_sensor *s, uint64_t id, uint8_t state,
                         const char *fmt, ...) {
  char why[PS_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  if (id == PS_CAPTURE_ID_OWN) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "the command-line capture: request refused: %s", why);
  } else {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "remote capture %llu refused: %s", (unsigned long long)id, why);
  }
  return send_state(s, id, state, why);
}

/* The filter a remote capture runs: the receiver's expression ANDed with
 * the sensor's guard; nothing the guard keeps out can be asked for. */
static char *remote_expr(const ps_sensor *s, const char *filter) {
  size_t n = strlen(filter) + (s->guard ? strlen(s->guard) : 0) + 16;
  char *e = malloc(n);
  if (e == NULL) {
    return NULL;
  }
  if (s->guard && *filter) {
    snprintf(e, n, "(%s) and (%s)", filter, s->guard);
  } else {
    snprintf(e, n, "%s", s->guard ? s->guard : filter);
  }
  return e;
}

static void close_sources(ps_sensor *s) {
  for (unsigned i = 0; i < s->n_src; i++) {
    if (s->src[i].p) {
      pcap_close(s->src[i].p);
    }
    memset(&s->src[i], 0, sizeof(s->src[i]));
  }
  s->n_src = 0;
}

static int find_rif(const ps_sensor *s, const char *name, size_t len) {
  for (unsigned i = 0; i < s->n_rifaces; i++) {
    if (strlen(s->rifaces[i]) == len && memcmp(s->rifaces[i], name, len) == 0) {
      return 1;
    }
  }
  return 0;
}

/* The stream interface for a source: one an earlier capture added, if it
 * matches, else a new one. */
static int stream_if(ps_sensor *s, source *src, uint64_t cap) {
  for (unsigned k = 0; k < s->n_known; k++) {
    known_if *q = &s->known[k];
    if (strcmp(q->name, src->name) == 0 && q->linktype == src->linktype &&
        q->snaplen == src->snaplen && q->cap == cap) {
      src->stream_if = q->id;
      src->announced = 1;
      return 0;
    }
  }
  char idtxt[24];
  snprintf(idtxt, sizeof(idtxt), "%llu", (unsigned long long)cap);
  ps_interface_option opt = {"capture.id", idtxt};
  ps_stream_interface_options o = {NULL, &opt, 1};
  int rc = ps_stream_add_interface_options(
      s->stream, &src->stream_if, src->name, src->linktype, src->snaplen,
      src->tsres, &o, sizeof(o));
  if (rc != 0) {
    return rc;
  }
  src->announced = 1;
  if (s->n_known < PS_MAX_IFACES) {
    known_if *q = &s->known[s->n_known++];
    size_t nl = strnlen(src->name, sizeof(q->name) - 1);
    memcpy(q->name, src->name, nl);
    q->name[nl] = '\0';
    q->linktype = src->linktype;
    q->snaplen = src->snaplen;
    q->id = src->stream_if;
    q->cap = cap;
  }
  return 0;
}

/* How the log names the capture running. */
static const char *cap_name(const ps_sensor *s, char *buf, size_t n) {
  if (s->cap_id == PS_CAPTURE_ID_OWN) {
    return "the command-line capture";
  }
  snprintf(buf, n, "remote capture %llu", (unsigned long long)s->cap_id);
  return buf;
}

static void log_remote(ps_sensor *s, const char *what) {
  char nb[48];
  ps__log(s->log, s->log_ud, PS_LOG_INFO,
          "%s %s: %llu packets sent, %llu sampled out",
          cap_name(s, nb, sizeof(nb)), what, (unsigned long long)s->cap_packets,
          (unsigned long long)s->sampled_out);
}

/* Ends the remote capture: its packets go out first, then its final
 * counters and its end. */
static int cap_end(ps_sensor *s, const char *why) {
  if (s->cap_id == 0) {
    return 0;
  }
  ps__stream_set_session_state(s->stream, NULL, 0); /* no longer running */
  int rc = ps_stream_flush(s->stream);
  if (rc == 0) {
    rc = send_all_stats(s);
  }
  log_remote(s, why);
  if (rc == 0) {
    rc = send_state(s, s->cap_id, PS_CAP_ENDED, why);
  }
  close_sources(s);
  s->cap_id = 0;
  s->sample_n = s->max_pps = 0;
  free(s->filter);
  s->filter = NULL;
  free(s->cap_filter);
  s->cap_filter = NULL;
  return rc;
}

static int cap_start(ps_sensor *s, const ps__capture_start *m) {
  char why[PS_ERRMSG_MAX];
  uint64_t id = m->id;
  if (!s->remote) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         "this sensor takes no remote captures (it was not "
                         "started with --allow-remote-capture)");
  }
  if (id & PS_CAPTURE_ID_OWN) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         "capture ids with bit 63 set are the sensor's own");
  }
  if (s->cap_id == PS_CAPTURE_ID_OWN) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         "this sensor runs its own capture (its command "
                         "line; one at a time): stop that one first");
  }
  if (s->cap_id != 0) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         "capture %llu is running on this sensor (one at a "
                         "time)",
                         (unsigned long long)s->cap_id);
  }
  if (s->rmax_duration_ms > 0 &&
      (m->duration_ms == 0 || m->duration_ms > s->rmax_duration_ms)) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         m->duration_ms == 0
                             ? "no duration given, and this sensor allows at "
                               "most %llu s (--remote-max-duration)"
                             : "duration beyond this sensor's limit of %llu s "
                               "(--remote-max-duration)",
                         (unsigned long long)(s->rmax_duration_ms / 1000));
  }
  int snaplen = m->snaplen ? (int)m->snaplen : s->snaplen;
  if (s->rmax_snaplen > 0) {
    if (m->snaplen > (uint32_t)s->rmax_snaplen) {
      return refuse_remote(s, id, PS_CAP_REFUSED,
                           "snaplen %u beyond this sensor's limit of %d "
                           "(--remote-max-snaplen)",
                           m->snaplen, s->rmax_snaplen);
    }
    if (snaplen > s->rmax_snaplen) {
      snaplen = s->rmax_snaplen;
    }
  }
  if (s->rmax_pps > 0 && (m->max_pps == 0 || m->max_pps > s->rmax_pps)) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         "%s this sensor's limit of %u packets per second "
                         "(--remote-max-pps)",
                         m->max_pps == 0 ? "no max_pps given, beyond"
                                         : "max_pps beyond",
                         s->rmax_pps);
  }
  if (m->sample_n > 1000000) {
    return refuse_remote(s, id, PS_CAP_REFUSED,
                         "sampling 1/%u: at most 1/1000000", m->sample_n);
  }
  /* The interfaces: those asked for, each on the sensor's list when it
   * has one, or the whole list. */
  char names[PS_MAX_CAPTURE_IFACES][256];
  unsigned n = 0;
  if (m->n_ifaces == 0) {
    if (s->n_rifaces == 0) {
      return refuse_remote(s, id, PS_CAP_REFUSED,
                           "no interfaces named, and this sensor has no "
                           "default (--remote-interfaces)");
    }
    for (unsigned i = 0; i < s->n_rifaces && n < PS_MAX_CAPTURE_IFACES; i++) {
      snprintf(names[n++], sizeof(names[0]), "%s", s->rifaces[i]);
    }
  } else {
    for (unsigned i = 0; i < m->n_ifaces; i++) {
      if (s->n_rifaces > 0 && !find_rif(s, m->ifaces[i].p, m->ifaces[i].len)) {
        return refuse_remote(s, id, PS_CAP_REFUSED,
                             "interface %.*s is not one this sensor offers "
                             "(--remote-interfaces)",
                             (int)m->ifaces[i].len, m->ifaces[i].p);
      }
      snprintf(names[n++], sizeof(names[0]), "%.*s", (int)m->ifaces[i].len,
               m->ifaces[i].p);
    }
  }
  char *filter = malloc(m->filter.len + 1);
  if (filter == NULL) {
    return PS_ERR_NOMEM;
  }
  memcpy(filter, m->filter.p, m->filter.len);
  filter[m->filter.len] = '\0';
  char *expr = remote_expr(s, filter);
  if (expr == NULL) {
    free(filter);
    return PS_ERR_NOMEM;
  }
  /* Open every interface (the live sources' own code), with the filter:
   * one that does not compile there is refused with libpcap's words.
   * While the capture runs its filter is the sensor's (a standby sensor
   * has none of its own, nor interfaces), so the sources' filter and
   * the exclusion of the sensor's own stream (exclude_stream) use it. */
  char *saved_filter = s->filter;
  int saved_snaplen = s->snaplen;
  s->filter = *expr ? expr : NULL;
  s->snaplen = snaplen;
  int rc = 0;
  why[0] = '\0';
  for (unsigned i = 0; i < n && rc == 0; i++) {
    char err[PS_ERRMSG_MAX] = "";
    s->n_src = i + 1;
    rc = open_one(s, &s->src[i], names[i], err);
    s->src[i].own_ns = 1;
    if (rc != 0) {
      snprintf(why, sizeof(why), "%s", err);
    } else if (err[0] != '\0') {
      ps__log(s->log, s->log_ud, PS_LOG_WARNING, "%s", err);
    }
  }
  s->snaplen = saved_snaplen;
  if (rc != 0 || !*expr) {
    s->filter = saved_filter;
    free(expr);
  } else {
    free(saved_filter);
  }
  if (rc != 0) {
    close_sources(s);
    free(filter);
    return refuse_remote(s, id, PS_CAP_REFUSED, "%s", why);
  }
  for (unsigned i = 0; i < s->n_src && rc == 0; i++) {
    rc = stream_if(s, &s->src[i], id);
  }
  if (rc != 0) {
    close_sources(s);
    free(filter);
    return refuse_remote(s, id, PS_CAP_REFUSED, "%s",
                         ps_stream_errmsg(s->stream));
  }
  s->cap_id = id;
  s->cap_filter = filter;
  s->cap_packets = 0;
  s->cap_count = m->count;
  s->cap_end_ms = m->duration_ms && m->duration_ms < (uint64_t)(INT64_MAX / 4)
                      ? ps__now_ms() + (int64_t)m->duration_ms
                      : INT64_MAX;
  s->sample_n = m->sample_n;
  s->max_pps = m->max_pps;
  s->sample_seen = s->sampled_out = 0;
  s->pps_n = 0;
  s->n_excluded = 0; /* the new handles need the exclusion too */
  ps__log(s->log, s->log_ud, PS_LOG_INFO,
          "remote capture %llu started on %s%s: filter '%s'%s%s, snaplen %d, "
          "%llu s",
          (unsigned long long)id, names[0], n > 1 ? " and more" : "", filter,
          s->guard ? " and the guard " : "", s->guard ? s->guard : "", snaplen,
          (unsigned long long)(m->duration_ms / 1000));
  return send_state(s, id, PS_CAP_RUNNING, NULL);
}

/* A live change. The new filter is set on the same capture handles, so
 * no packet is delivered twice; libpcap drains what the kernel held
 * under the old filter before the new one applies (see exclude_stream
 * for the moment in between). The switch point is logged. */
static int cap_change(ps_sensor *s, const ps__capture_change *m) {
  if (m->id != s->cap_id || s->cap_id == 0) {
    return refuse_remote(s, m->id, PS_CAP_CHANGE_REFUSED,
                         "no capture %llu is running on this sensor",
                         (unsigned long long)m->id);
  }
  if (!s->remote) {
    return refuse_remote(s, m->id, PS_CAP_CHANGE_REFUSED,
                         "this sensor takes no remote control (it was not "
                         "started with --allow-remote-capture)");
  }
  if ((m->what & PS_CHANGE_MAX_PPS) && s->rmax_pps > 0 &&
      (m->max_pps == 0 || m->max_pps > s->rmax_pps)) {
    return refuse_remote(s, m->id, PS_CAP_CHANGE_REFUSED,
                         "max_pps beyond this sensor's limit of %u "
                         "(--remote-max-pps)",
                         s->rmax_pps);
  }
  char when[64];
  if (m->what & PS_CHANGE_FILTER) {
    char *filter = malloc(m->filter.len + 1);
    if (filter == NULL) {
      return PS_ERR_NOMEM;
    }
    memcpy(filter, m->filter.p, m->filter.len);
    filter[m->filter.len] = '\0';
    char *expr = remote_expr(s, filter);
    if (expr == NULL) {
      free(filter);
      return PS_ERR_NOMEM;
    }
    /* Compiled everywhere first: a change applies on all interfaces or
     * on none. */
    for (unsigned i = 0; i < s->n_src; i++) {
      struct bpf_program prog;
      if (*expr && pcap_compile(s->src[i].p, &prog, expr, 1,
                                PCAP_NETMASK_UNKNOWN) != 0) {
        char why[PS_ERRMSG_MAX];
        snprintf(why, sizeof(why), "bad filter expression '%s': %s", filter,
                 pcap_geterr(s->src[i].p));
        free(expr);
        free(filter);
        return refuse_remote(s, m->id, PS_CAP_CHANGE_REFUSED, "%s", why);
      }
      if (*expr) {
        pcap_freecode(&prog);
      }
    }
    /* Whatever the old filter took is sent before the switch. */
    for (unsigned i = 0; i < s->n_src; i++) {
      cb_ctx ctx = {s, &s->src[i]};
      pcap_dispatch(s->src[i].p, -1, on_packet, (u_char *)&ctx);
    }
    free(s->filter);
    s->filter = *expr ? expr : NULL;
    for (unsigned i = 0; i < s->n_src; i++) {
      s->src[i].filter = s->filter;
    }
    s->n_excluded = 0;
    if (exclude_stream(s) != 0) {
      for (unsigned i = 0; i < s->n_src; i++) {
        compile_filter(s, &s->src[i], *expr ? expr : "", 0);
      }
    }
    if (!*expr) {
      free(expr);
    }
    free(s->cap_filter);
    s->cap_filter = filter;
  }
  if (m->what & PS_CHANGE_SAMPLE) {
    s->sample_n = m->sample_n;
    s->sample_seen = 0;
  }
  if (m->what & PS_CHANGE_MAX_PPS) {
    s->max_pps = m->max_pps;
  }
  int64_t wall = ps__wall_ms();
  time_t t = (time_t)(wall / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  char text[600];
  snprintf(text, sizeof(text), "switched at %s.%03dZ after %llu packets%s%s",
           when, (int)(wall % 1000), (unsigned long long)s->cap_packets,
           (m->what & PS_CHANGE_FILTER) ? ": filter " : "",
           (m->what & PS_CHANGE_FILTER) ? s->cap_filter : "");
  char nb[48];
  ps__log(s->log, s->log_ud, PS_LOG_INFO, "%s %s", cap_name(s, nb, sizeof(nb)),
          text);
  if (s->cap_id == PS_CAPTURE_ID_OWN && own_state(s) != 0) {
    return PS_ERR_NOMEM;
  }
  return send_state(s, s->cap_id, PS_CAP_CHANGED, text);
}

static int handle_inbox(ps_sensor *s) {
  int rc = 0;
  unsigned i;
  for (i = 0; i < s->n_inbox && rc == 0; i++) {
    char eb[PS_ERRMSG_MAX];
    ps__frame f = {.type = s->inbox[i].frame[0],
                   .len = (uint32_t)(s->inbox[i].len - PS_FRAME_HDR),
                   .payload = s->inbox[i].frame + PS_FRAME_HDR};
    if (f.type == PS_FRAME_CAPTURE_START) {
      ps__capture_start m;
      if (ps__dec_capture_start(&f, &m, eb) == 0) {
        rc = cap_start(s, &m);
      }
    } else if (f.type == PS_FRAME_CAPTURE_CHANGE) {
      ps__capture_change m;
      if (ps__dec_capture_change(&f, &m, eb) == 0) {
        rc = cap_change(s, &m);
      }
    } else {
      uint64_t id;
      if (ps__dec_capture_stop(&f, &id, eb) == 0) {
        if (id == s->cap_id && id == PS_CAPTURE_ID_OWN && !s->remote) {
          rc = refuse_remote(s, id, PS_CAP_CHANGE_REFUSED,
                             "this sensor takes no remote control (it was "
                             "not started with --allow-remote-capture)");
        } else if (id == s->cap_id) {
          s->to_standby |= id == PS_CAPTURE_ID_OWN;
          rc = cap_end(s, "stopped by the receiver");
        } else {
          rc = send_state(s, id, PS_CAP_ENDED, "not running");
        }
      }
    }
  }
  for (unsigned k = 0; k < s->n_inbox; k++) {
    free(s->inbox[k].frame);
  }
  s->n_inbox = 0;
  return rc;
}

/* A standby sensor: the stream is up, nothing is captured until the
 * receiver asks, and then only what it asked for. */
static int run_standby(ps_sensor *s) {
  struct pollfd pfd[MAX_SOURCES + 2];
  int64_t next_stats = ps__now_ms() + STATS_EVERY_MS;
  uint64_t excluded = UINT64_MAX;
  ps__stream_set_control(s->stream, on_control, s);
  for (;;) {
    if (s->stopped) {
      return cap_end(s, "the sensor is stopping");
    }
    int rc = handle_inbox(s);
    if (rc == 0) {
      rc = resend_state(s);
    }
    if (rc != 0) {
      return rc;
    }
    int64_t now = ps__now_ms();
    if (s->cap_id != 0) {
      if (now >= s->cap_end_ms) {
        rc = cap_end(s, "duration reached");
      } else if (s->cap_count && s->cap_packets >= s->cap_count) {
        rc = cap_end(s, "count reached");
      }
      if (rc != 0) {
        return rc;
      }
    }
    if (s->cap_id != 0) {
      ps_stream_counters sc;
      ps_stream_get_counters(s->stream, &sc, sizeof(sc));
      if ((sc.reconnects != excluded || s->n_excluded == 0) &&
          exclude_stream(s) == 0) {
        excluded = sc.reconnects;
      }
      if (now >= next_stats) {
        if ((rc = send_all_stats(s)) != 0) {
          return rc;
        }
        next_stats = now + STATS_EVERY_MS;
      }
    }
    int64_t wait = 1000;
    if (s->cap_id != 0 && s->cap_end_ms - now < wait) {
      wait = s->cap_end_ms - now;
    }
    int due = ps_stream_next_deadline_ms(s->stream);
    if (due >= 0 && due < wait) {
      wait = due;
    }
    if (wait < 0) {
      wait = 0;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < s->n_src; i++) {
      pfd[n++] = (struct pollfd){s->src[i].fd, POLLIN, 0};
    }
    pfd[n++] = (struct pollfd){
        ps_stream_get_fd(s->stream),
        (short)(POLLIN | (ps_stream_want_write(s->stream) ? POLLOUT : 0)), 0};
    pfd[n++] = (struct pollfd){s->stop_fd, POLLIN, 0};
    if (poll(pfd, n, (int)wait) < 0 && errno != EINTR) {
      return ps__seterr(s->errmsg, PS_ERR_SYSTEM, "poll: %s", strerror(errno));
    }
    for (unsigned i = 0; i < s->n_src; i++) {
      cb_ctx ctx = {s, &s->src[i]};
      int got = pcap_dispatch(s->src[i].p, -1, on_packet, (u_char *)&ctx);
      if (s->run_rc != 0) {
        return s->run_rc;
      }
      if (got == PCAP_ERROR) {
        /* An interface gone: this capture ends, the sensor stays. */
        char why[PS_ERRMSG_MAX];
        snprintf(why, sizeof(why), "%s: %s", s->src[i].name,
                 pcap_geterr(s->src[i].p));
        if ((rc = cap_end(s, why)) != 0) {
          return rc;
        }
        break;
      }
    }
    rc = ps_stream_process(s->stream);
    if (rc == PS_ERR_STOPPED) {
      return cap_end(s, "the sensor is stopping");
    }
    if (rc != 0) {
      snprintf(s->errmsg, sizeof(s->errmsg), "%s", ps_stream_errmsg(s->stream));
      return rc;
    }
  }
}

int ps_sensor_run(ps_sensor *s, ps_stream *stream) {
  if (!s->opened) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "the sensor is not open");
  }
  if (stream == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "the stream is not connected");
  }
  s->stream = stream;
  s->run_rc = 0;
  s->n_excluded = 0;
  s->excl_any[0] = '\0';
  if (set_announce(s) != 0) {
    s->stream = NULL;
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  if (s->standby) {
    int rc = run_standby(s);
    ps__stream_set_control(stream, NULL, NULL);
    s->stream = NULL;
    return rc;
  }
  /* Live or file, the duration counts from here (after the dry run of
   * a file). */
  s->end_ms = s->duration_ms && s->duration_ms < (uint64_t)(INT64_MAX / 2)
                  ? ps__now_ms() + (int64_t)s->duration_ms
                  : INT64_MAX;
  int rc = 0;
  for (unsigned i = 0; i < s->n_src && rc == 0; i++) {
    if (!s->src[i].announced && !s->src[i].closed) {
      rc = announce(s, &s->src[i]);
    }
  }
  /* A live capture of named interfaces is the sensor's own capture:
   * a version 2 receiver hears of it (and may change or stop it, with
   * --allow-remote-capture). Files and followed namespaces are not
   * steered. */
  int own = s->file == NULL && s->ns.n_spec == 0 && s->n_ifnames > 0;
  if (rc == 0 && own) {
    s->cap_filter = strdup(s->filter ? s->filter : "");
    if (s->cap_filter == NULL) {
      s->stream = NULL;
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    /* A capture asked for later on the same interface reuses its
     * stream interface (see stream_if). */
    for (unsigned i = 0; i < s->n_src && s->n_known < PS_MAX_IFACES; i++) {
      known_if *q = &s->known[s->n_known++];
      snprintf(q->name, sizeof(q->name), "%s", s->src[i].name);
      q->linktype = s->src[i].linktype;
      q->snaplen = s->src[i].snaplen;
      q->id = s->src[i].stream_if;
      q->cap = 0; /* (a remote capture gets its own: see known_if) */
    }
    s->cap_id = PS_CAPTURE_ID_OWN;
    s->cap_packets = s->cap_count = 0;
    s->cap_end_ms = INT64_MAX;
    s->to_standby = 0;
    ps__stream_set_control(stream, on_control, s);
    /* Sessions to come say it at their start; one up already, now. */
    rc = own_state(s);
    if (rc == 0) {
      rc = send_state(s, s->cap_id, PS_CAP_OWN, s->cap_filter);
    }
  }
  if (rc != 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", ps_stream_errmsg(stream));
  } else {
    rc = s->file ? run_file(s) : run_live(s);
  }
  if (own && s->to_standby && rc == 0) {
    /* Stopped by a receiver: the handles are closed, the sensor stays
     * as a standby one (and says so), to be asked for a new capture.
     * Its command-line interfaces and filters are done with. */
    for (unsigned i = 0; i < s->n_ifnames; i++) {
      free(s->ifnames[i]);
      free(s->iffilters[i]);
      free(s->srcfilters[i]);
      s->ifnames[i] = s->iffilters[i] = s->srcfilters[i] = NULL;
    }
    s->n_ifnames = 0;
    s->standby = 1;
    ps__log(s->log, s->log_ud, PS_LOG_INFO,
            "the command-line capture was stopped by the receiver: standing "
            "by for its captures");
    rc = set_announce(s);
    if (rc == 0) {
      rc = run_standby(s);
    }
    ps__stream_set_control(stream, NULL, NULL);
    s->stream = NULL;
    return rc;
  }
  if (own && s->cap_id == PS_CAPTURE_ID_OWN) {
    /* The receiver's record ends with the capture (count, duration or a
     * stop here), after its last packets and counters. */
    if (rc == 0 || rc == PS_ERR_STOPPED) {
      int frc = ps_stream_flush(stream);
      if (frc == 0) {
        frc = send_all_stats(s);
      }
      if (frc == 0) {
        send_state(s, s->cap_id, PS_CAP_ENDED,
                   s->stopped                         ? "the sensor is stopping"
                   : s->count && s->total >= s->count ? "count reached"
                                                      : "duration reached");
      }
    }
    ps__stream_set_control(stream, NULL, NULL);
    ps__stream_set_session_state(stream, NULL, 0);
    s->cap_id = 0;
    free(s->cap_filter);
    s->cap_filter = NULL;
    for (unsigned k = 0; k < s->n_inbox; k++) {
      free(s->inbox[k].frame);
    }
    s->n_inbox = 0;
  }
  if (rc == 0 || rc == PS_ERR_STOPPED) {
    /* Final counters: the receiver writes them into statistics blocks. */
    rc = send_all_stats(s);
    if (rc != 0) {
      snprintf(s->errmsg, sizeof(s->errmsg), "%s", ps_stream_errmsg(stream));
    }
  }
  s->stream = NULL;
  return rc;
}
