/* The sensor: libpcap sources (live interfaces or one file) pumped into a
 * stream. This module and the loops are the only ones that touch libpcap
 * handles or wait on capture descriptors. */
#include "config.h"

#include "ps_common.h"
#include "ps_proto.h"
#include "ps_stream.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <packetstreamer/version.h>

#define MAX_SOURCES PS_MAX_INTERFACES
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
} source;

#define MAX_INBOX 8 /* capture requests not yet handled */

/* A capture request from the receiver, copied out of its frame. */
typedef struct request {
  size_t len;
  uint8_t *frame; /* header and payload */
} request;

/* A stream interface a remote capture added: the next capture on the
 * same interface, link type and snaplen uses it again (a stream carries
 * at most 256). */
typedef struct known_if {
  char name[256];
  uint32_t linktype, snaplen;
  uint32_t id;
} known_if;

struct ps_sensor {
  int opened;
  char *ifnames[MAX_SOURCES];
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
  /* The remote capture running (cap_id 0: none). */
  uint64_t cap_id;
  int64_t cap_end_ms;
  uint64_t cap_count, cap_packets;
  char *cap_filter; /* as the receiver gave it (without the guard) */
  known_if known[PS_MAX_IFACES];
  unsigned n_known;
  ps_log_fn log;
  void *log_ud;
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
  *out = s;
  return 0;
}

void ps_sensor_free(ps_sensor *s) {
  if (s == NULL) {
    return;
  }
  for (unsigned i = 0; i < s->n_src; i++) {
    pcap_close(s->src[i].p);
  }
  for (unsigned i = 0; i < s->n_ifnames; i++) {
    free(s->ifnames[i]);
  }
  for (unsigned i = 0; i < s->n_rifaces; i++) {
    free(s->rifaces[i]);
  }
  for (unsigned i = 0; i < s->n_inbox; i++) {
    free(s->inbox[i].frame);
  }
  free(s->guard);
  free(s->cap_filter);
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
  if (s->n_ifnames >= MAX_SOURCES) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d interfaces",
                      MAX_SOURCES);
  }
  s->ifnames[s->n_ifnames] = strdup(ifname);
  if (s->ifnames[s->n_ifnames] == NULL) {
    return PS_ERR_NOMEM;
  }
  s->n_ifnames++;
  return 0;
}

int ps_sensor_set_file(ps_sensor *s, const char *path) {
  BEFORE_OPEN(s);
  if (path == NULL || *path == '\0') {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "empty file name");
  }
  if (s->n_ifnames > 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "a sensor reads either interfaces or a file");
  }
  free(s->file);
  s->file = strdup(path);
  return s->file ? 0 : PS_ERR_NOMEM;
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

static int open_live(ps_sensor *s, unsigned i) {
  source *src = &s->src[i];
  char eb[PCAP_ERRBUF_SIZE];
  const char *ifname = s->ifnames[i];
  snprintf(src->name, sizeof(src->name), "%s", ifname);
  src->fd = -1;
  pcap_t *p = pcap_create(ifname, eb);
  if (p == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "cannot capture on %s: %s",
                      ifname, eb);
  }
  src->p = p;
  s->n_src = i + 1;
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
      return ps__seterr(s->errmsg, PS_ERR_CAPTURE,
                        "no such interface %s (see ip link)", ifname);
    }
    if (rc == PCAP_ERROR_PERM_DENIED) {
      return ps__seterr(s->errmsg, PS_ERR_CAPTURE,
                        "no permission to capture on %s: run as root or "
                        "grant CAP_NET_RAW and CAP_NET_ADMIN (%s)",
                        ifname, why);
    }
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "cannot capture on %s: %s",
                      ifname, why && *why ? why : pcap_statustostr(rc));
  }
  if (rc > 0) {
    ps__log(s->log, s->log_ud, PS_LOG_WARNING, "%s: %s", ifname,
            pcap_statustostr(rc));
  }
  src->tsres = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO
                   ? PS_TSRES_NSEC
                   : PS_TSRES_USEC;
  src->snaplen = (uint32_t)pcap_snapshot(p);
  src->linktype = dlt_to_linktype(pcap_datalink(p));
  if (s->filter != NULL && (rc = compile_filter(s, src, s->filter, 1)) != 0) {
    return rc;
  }
  if (pcap_setnonblock(p, 1, eb) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "%s: %s", ifname, eb);
  }
  src->fd = pcap_get_selectable_fd(p);
  if (src->fd < 0) {
    return ps__seterr(s->errmsg, PS_ERR_CAPTURE, "%s cannot be polled", ifname);
  }
  return 0;
}

int ps_sensor_open(ps_sensor *s) {
  BEFORE_OPEN(s);
  if (s->standby) {
    if (s->file != NULL || s->n_ifnames > 0) {
      return ps__seterr(s->errmsg, PS_ERR_INVALID,
                        "a standby sensor captures only when the receiver "
                        "asks: give no interface or file to capture now");
    }
    /* Nothing is opened: standby holds no packet socket. */
    s->opened = 1;
    return 0;
  }
  if (s->file == NULL && s->n_ifnames == 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "nothing to capture: give an interface or a file");
  }
  int rc = 0;
  if (s->file != NULL) {
    rc = open_file(s);
  } else {
    for (unsigned i = 0; i < s->n_ifnames && rc == 0; i++) {
      rc = open_live(s, i);
    }
  }
  if (rc != 0) {
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
  char raddr[64], laddr[64], term[100], expr[1600], any[1100] = "";
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
  for (unsigned i = 0; i < s->n_src; i++) {
    source *src = &s->src[i];
    if (s->filter) {
      snprintf(expr, sizeof(expr), "(%s) and not (tcp and (%s))", s->filter,
               any);
    } else {
      snprintf(expr, sizeof(expr), "not (tcp and (%s))", any);
    }
    if (compile_filter(s, src, expr, 0) != 0) {
      ps__log(s->log, s->log_ud, PS_LOG_WARNING,
              "%s: cannot filter out the sensor's own stream on this link "
              "type (%s); use a filter that excludes it",
              src->name, pcap_geterr(src->p));
    }
  }
  return 0;
}

static void fill_stats(ps_sensor *s, source *src) {
  struct pcap_stat ps;
  if (src->fd >= 0 && pcap_stats(src->p, &ps) == 0) {
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
    fill_stats(s, &s->src[i]);
    int rc = ps_stream_send_stats(s->stream, s->src[i].stream_if, &s->src[i].st,
                                  sizeof(s->src[i].st));
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

typedef struct cb_ctx {
  ps_sensor *s;
  source *src;
} cb_ctx;

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
    return;
  }
  if (s->max_pps > 0) {
    if (pkt.ts_sec != s->pps_sec) {
      s->pps_sec = pkt.ts_sec;
      s->pps_n = 0;
    }
    if (s->pps_n >= s->max_pps) {
      s->sampled_out++;
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

static int run_live(ps_sensor *s) {
  struct pollfd pfd[MAX_SOURCES + 2];
  int64_t start = ps__now_ms();
  int64_t next_stats = start + STATS_EVERY_MS;
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
    int64_t wait = next_stats - now;
    if (end - now < wait) {
      wait = end - now;
    }
    int due = ps_stream_next_deadline_ms(s->stream);
    if (due >= 0 && due < wait) {
      wait = due;
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
                             .text = {text, text ? strlen(text) : 0}};
  if (id == s->cap_id && state != PS_CAP_REFUSED) {
    for (unsigned i = 0; i < s->n_src && i < PS_MAX_CAPTURE_IFACES; i++) {
      m.ifaces[m.n_ifaces++] = s->src[i].stream_if;
    }
  }
  ps__buf b = {0};
  int rc = ps__enc_capture_state(&b, &m);
  if (rc == 0) {
    rc = ps__stream_send_control(s->stream, ps__buf_head(&b), ps__buf_size(&b));
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
  ps__log(s->log, s->log_ud, PS_LOG_WARNING, "remote capture %llu refused: %s",
          (unsigned long long)id, why);
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
static int stream_if(ps_sensor *s, source *src) {
  for (unsigned k = 0; k < s->n_known; k++) {
    known_if *q = &s->known[k];
    if (strcmp(q->name, src->name) == 0 && q->linktype == src->linktype &&
        q->snaplen == src->snaplen) {
      src->stream_if = q->id;
      src->announced = 1;
      return 0;
    }
  }
  int rc = ps_stream_add_interface(s->stream, &src->stream_if, src->name,
                                   src->linktype, src->snaplen, src->tsres);
  if (rc != 0) {
    return rc;
  }
  src->announced = 1;
  if (s->n_known < PS_MAX_IFACES) {
    known_if *q = &s->known[s->n_known++];
    snprintf(q->name, sizeof(q->name), "%s", src->name);
    q->linktype = src->linktype;
    q->snaplen = src->snaplen;
    q->id = src->stream_if;
  }
  return 0;
}

static void log_remote(ps_sensor *s, const char *what) {
  ps__log(s->log, s->log_ud, PS_LOG_INFO,
          "remote capture %llu %s: %llu packets sent, %llu sampled out",
          (unsigned long long)s->cap_id, what,
          (unsigned long long)s->cap_packets,
          (unsigned long long)s->sampled_out);
}

/* Ends the remote capture: its packets go out first, then its final
 * counters and its end. */
static int cap_end(ps_sensor *s, const char *why) {
  if (s->cap_id == 0) {
    return 0;
  }
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
   * one that does not compile there is refused with libpcap's words. */
  char *saved_filter = s->filter;
  int saved_snaplen = s->snaplen;
  char *saved_names[MAX_SOURCES];
  unsigned saved_n = s->n_ifnames;
  memcpy(saved_names, s->ifnames, sizeof(saved_names));
  for (unsigned i = 0; i < n; i++) {
    s->ifnames[i] = names[i];
  }
  s->n_ifnames = n;
  s->filter = *expr ? expr : NULL;
  s->snaplen = snaplen;
  int rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    rc = open_live(s, i);
  }
  /* While it runs, the capture's filter is the sensor's (a standby
   * sensor has none of its own): the exclusion of the sensor's own
   * stream is added to it (exclude_stream). */
  s->snaplen = saved_snaplen;
  memcpy(s->ifnames, saved_names, sizeof(saved_names));
  s->n_ifnames = saved_n;
  snprintf(why, sizeof(why), "%s", s->errmsg);
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
    rc = stream_if(s, &s->src[i]);
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
  ps__log(s->log, s->log_ud, PS_LOG_INFO, "remote capture %llu %s",
          (unsigned long long)s->cap_id, text);
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
        if (id == s->cap_id) {
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
    source *src = &s->src[i];
    rc = ps_stream_add_interface(stream, &src->stream_if, src->name,
                                 src->linktype, src->snaplen, src->tsres);
    src->announced = rc == 0;
  }
  if (rc != 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", ps_stream_errmsg(stream));
  } else {
    rc = s->file ? run_file(s) : run_live(s);
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
