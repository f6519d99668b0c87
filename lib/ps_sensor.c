/* The sensor: libpcap sources (live interfaces or one file) pumped into a
 * stream. This module and the loops are the only ones that touch libpcap
 * handles or wait on capture descriptors. */
#include "config.h"

#include "ps_common.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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
