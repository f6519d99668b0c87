/* File sinks: classic pcap (one file per link type) and pcapng. Records
 * are serialised into a buffer and written with one write(2) per batch. */
#include "config.h"

#include "ps_pcapfmt.h"
#include "ps_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define OUT_HIGH_WATER (1u << 20)
#define PCAP_MAX_OUTPUTS 32

/* One open output file (or standard output). */
typedef struct out_file {
  char *path;
  int fd;
  ps__buf buf;
  uint64_t packets;
} out_file;

static int out_open(ps_sink *sk, out_file *o, const char *path) {
  o->path = strdup(path);
  if (o->path == NULL) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  if (strcmp(path, "-") == 0) {
    o->fd = STDOUT_FILENO;
    return 0;
  }
  o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (o->fd < 0) {
    return ps__seterr(sk->errmsg, PS_ERR_IO, "cannot open %s for writing: %s",
                      path, strerror(errno));
  }
  return 0;
}

static int out_flush(ps_sink *sk, out_file *o) {
  while (ps__buf_size(&o->buf) > 0) {
    ssize_t n = write(o->fd, ps__buf_head(&o->buf), ps__buf_size(&o->buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ps__seterr(sk->errmsg, PS_ERR_IO, "writing %s: %s",
                        strcmp(o->path, "-") ? o->path : "standard output",
                        strerror(errno));
    }
    ps__buf_consume(&o->buf, (size_t)n);
  }
  return 0;
}

static int out_close(ps_sink *sk, out_file *o) {
  int rc = 0;
  if (o->fd >= 0) {
    rc = out_flush(sk, o);
    if (o->fd != STDOUT_FILENO && close(o->fd) != 0 && rc == 0) {
      rc = ps__seterr(sk->errmsg, PS_ERR_IO, "closing %s: %s", o->path,
                      strerror(errno));
    }
    o->fd = -1;
  }
  ps__buf_free(&o->buf);
  free(o->path);
  o->path = NULL;
  return rc;
}

/* ---------------- classic pcap ---------------- */

typedef struct pcap_out {
  out_file f;
  uint32_t linktype;
  int header_written;
} pcap_out;

typedef struct pcap_sink {
  ps_sink base;
  int nano;
  char *path;
  unsigned n_out;
  pcap_out out[PCAP_MAX_OUTPUTS];
  unsigned warned_precision;
} pcap_sink;

/* libpcap names DLT_ values, and the wire carries LINKTYPE_ values (they
 * differ for a few types, e.g. RAW). Its mapping is internal, so let it
 * read a file header with this link type. NULL if it has no name. */
static const char *linktype_name(uint32_t linktype) {
  uint8_t hdr[PS_PCAP_FILE_HDR];
  uint32_t v[6] = {PS_PCAP_MAGIC_USEC, 0x00040002u, 0, 0, 65535,
                   linktype & 0x03ffffffu};
  memcpy(hdr, v, sizeof(hdr));
  const char *name = NULL;
  FILE *f = fmemopen(hdr, sizeof(hdr), "rb");
  if (f != NULL) {
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_fopen_offline(f, eb); /* owns f from here */
    if (p != NULL) {
      name = pcap_datalink_val_to_name(pcap_datalink(p));
      pcap_close(p);
    } else {
      fclose(f);
    }
  }
  return name;
}

/* "dir/cap.pcap" + RAW -> "dir/cap.RAW.pcap"; no extension: "dir/cap.RAW". */
static char *sibling_path(const char *path, uint32_t linktype) {
  char lt[64];
  const char *name = linktype_name(linktype);
  if (name != NULL && (linktype & 0xfc000000u) == 0) {
    snprintf(lt, sizeof(lt), "%s", name);
  } else {
    snprintf(lt, sizeof(lt), "LINKTYPE_%u", linktype);
  }
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  size_t stem = (dot && (!slash || dot > slash + 1)) ? (size_t)(dot - path)
                                                     : strlen(path);
  size_t need = strlen(path) + strlen(lt) + 2;
  char *p = malloc(need);
  if (p != NULL) {
    snprintf(p, need, "%.*s.%s%s", (int)stem, path, lt, path + stem);
  }
  return p;
}

static int pcs_iface(ps_sink *sk, const ps_session_info *s,
                      const ps_interface_info *ifc, void **slot) {
  pcap_sink *ps = (pcap_sink *)sk;
  for (unsigned i = 0; i < ps->n_out; i++) {
    if (ps->out[i].linktype == ifc->linktype) {
      *slot = &ps->out[i];
      goto check_precision;
    }
  }
  pcap_out *o;
  if (ps->n_out == 0) {
    o = &ps->out[0];
  } else {
    if (strcmp(ps->path, "-") == 0) {
      return ps__seterr(
          sk->errmsg, PS_ERR_LINKTYPE,
          "interface %s/%s has link type %s (%u) but the pcap stream on "
          "standard output is %s (%u); classic pcap holds one link type: "
          "use --format pcapng",
          s->sensor, ifc->name,
          linktype_name(ifc->linktype) ?: "unknown",
          ifc->linktype,
          linktype_name(ps->out[0].linktype) ?: "unknown",
          ps->out[0].linktype);
    }
    if (ps->n_out == PCAP_MAX_OUTPUTS) {
      return ps__seterr(sk->errmsg, PS_ERR_LIMIT,
                        "too many link types for pcap output (%u)",
                        PCAP_MAX_OUTPUTS);
    }
    o = &ps->out[ps->n_out];
    char *path = sibling_path(ps->path, ifc->linktype);
    if (path == NULL) {
      return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    int rc = out_open(sk, &o->f, path);
    free(path);
    if (rc != 0) {
      out_close(sk, &o->f);
      return rc;
    }
    ps__log(sk->log, sk->log_ud, PS_LOG_INFO,
            "sensor %s interface %s has link type %s (%u), unlike %s: "
            "writing it to %s",
            s->sensor, ifc->name,
            linktype_name(ifc->linktype) ?: "unknown",
            ifc->linktype, ps->out[0].f.path, o->f.path);
  }
  o->linktype = ifc->linktype;
  if (ps__pcap_file_header(&o->f.buf, ifc->linktype, PS_MAX_CAPLEN,
                           ps->nano) != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  o->header_written = 1;
  ps->n_out++;
  *slot = o;
check_precision:
  if (ifc->tsres == PS_TSRES_NSEC && !ps->nano && !ps->warned_precision) {
    ps->warned_precision = 1;
    ps__log(sk->log, sk->log_ud, PS_LOG_INFO,
            "sensor %s interface %s has nanosecond timestamps but the pcap "
            "output is microsecond: sub-microsecond digits are dropped (use "
            "--time-stamp-precision nano or pcapng to keep them)",
            s->sensor, ifc->name);
  }
  return 0;
}

static int pcs_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                       const ps_interface_info *ifc, const ps_packet *pkt) {
  pcap_sink *ps = (pcap_sink *)sk;
  pcap_out *o = slot;
  if (ps__pcap_record(&o->f.buf, pkt, ifc->tsres, ps->nano) != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  o->f.packets++;
  if (ps__buf_size(&o->f.buf) >= OUT_HIGH_WATER) {
    return out_flush(sk, &o->f);
  }
  return 0;
}

static int pcs_flush(ps_sink *sk) {
  pcap_sink *ps = (pcap_sink *)sk;
  for (unsigned i = 0; i < ps->n_out; i++) {
    int rc = out_flush(sk, &ps->out[i].f);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int pcs_close(ps_sink *sk) {
  pcap_sink *ps = (pcap_sink *)sk;
  int rc = 0;
  /* Slot 0 is opened at creation even if no interface ever came: give it
   * a header then, so an empty capture is still a valid file (Ethernet,
   * as tcpdump writes for an empty capture of an Ethernet device). */
  unsigned n = ps->n_out ? ps->n_out : 1;
  if (ps->n_out == 0 && ps->out[0].f.fd >= 0 && !ps->out[0].header_written) {
    if (ps__pcap_file_header(&ps->out[0].f.buf, 1, PS_MAX_CAPLEN, ps->nano) ==
        0) {
      ps->out[0].header_written = 1;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    int r = out_close(sk, &ps->out[i].f);
    if (rc == 0) {
      rc = r;
    }
  }
  ps->n_out = 0;
  return rc;
}

static void pcs_destroy(ps_sink *sk) {
  pcap_sink *ps = (pcap_sink *)sk;
  pcs_close(sk);
  free(ps->path);
  free(ps);
}

static const ps__sink_ops pcs_ops = {
    .kind = "pcap",
    .iface = pcs_iface,
    .packet = pcs_packet,
    .flush = pcs_flush,
    .close = pcs_close,
    .destroy = pcs_destroy,
};

int ps_pcap_sink(ps_sink **out, const char *path, unsigned flags) {
  if (out == NULL || path == NULL || *path == '\0' ||
      (flags & ~PS_SINK_NANO) != 0) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  pcap_sink *ps = calloc(1, sizeof(*ps));
  if (ps == NULL) {
    return PS_ERR_NOMEM;
  }
  ps->base.ops = &pcs_ops;
  ps->nano = (flags & PS_SINK_NANO) != 0;
  ps->path = strdup(path);
  for (unsigned i = 0; i < PCAP_MAX_OUTPUTS; i++) {
    ps->out[i].f.fd = -1;
  }
  if (ps->path == NULL) {
    free(ps);
    return PS_ERR_NOMEM;
  }
  /* Open now so an unwritable path fails before any sensor is accepted;
   * the header follows when the first interface tells the link type. */
  int rc = out_open(&ps->base, &ps->out[0].f, path);
  if (rc != 0) {
    *out = &ps->base; /* let the caller read errmsg, then free */
    return rc;
  }
  *out = &ps->base;
  return 0;
}

/* ---------------- pcapng ---------------- */

typedef struct ng_iface {
  uint32_t idb;
  uint8_t tsres;
  uint64_t first_ts;
} ng_iface;

typedef struct pcapng_sink {
  ps_sink base;
  out_file f;
  uint32_t n_idb;
} pcapng_sink;

static uint64_t wall_ts(uint8_t tsres) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint32_t frac = (uint32_t)ts.tv_nsec;
  int64_t sec = ts.tv_sec;
  ps__ts_convert(&sec, &frac, PS_TSRES_NSEC, tsres);
  return ps__pcapng_ts(sec, frac, tsres);
}

static int ng_iface_fn(ps_sink *sk, const ps_session_info *s,
                       const ps_interface_info *ifc, void **slot) {
  pcapng_sink *ng = (pcapng_sink *)sk;
  ng_iface *ni = calloc(1, sizeof(*ni));
  if (ni == NULL) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  char name[600], desc[800];
  snprintf(name, sizeof(name), "%s/%s", s->sensor, ifc->name);
  snprintf(desc, sizeof(desc),
           "interface %s of sensor %s at %s, snaplen %u", ifc->name,
           s->sensor, s->peer, ifc->snaplen);
  ps__pcapng_idb_info idb = {
      .linktype = ifc->linktype,
      /* libpcap refuses a pcapng file whose interfaces differ in snaplen,
       * so every block says the largest; the sensor's own value is in
       * the description. */
      .snaplen = PS_MAX_CAPLEN,
      .tsres = ifc->tsres,
      .name = name,
      .description = desc,
  };
  if (ps__pcapng_idb(&ng->f.buf, &idb) != 0) {
    free(ni);
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  ni->idb = ng->n_idb++;
  ni->tsres = ifc->tsres;
  ni->first_ts = wall_ts(ifc->tsres);
  *slot = ni;
  return 0;
}

static int ng_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                     const ps_interface_info *ifc, const ps_packet *pkt) {
  pcapng_sink *ng = (pcapng_sink *)sk;
  ng_iface *ni = slot;
  if (ps__pcapng_epb(&ng->f.buf, ni->idb, pkt, ni->tsres) != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  ng->f.packets++;
  if (ps__buf_size(&ng->f.buf) >= OUT_HIGH_WATER) {
    return out_flush(sk, &ng->f);
  }
  return 0;
}

static void ng_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                         const ps_interface_info *ifc,
                         const ps_capture_stats *st) {
  pcapng_sink *ng = (pcapng_sink *)sk;
  ng_iface *ni = slot;
  if (ni == NULL) {
    return;
  }
  ps_capture_stats none = {0};
  uint64_t now = wall_ts(ni->tsres);
  ps__pcapng_isb_info isb = {
      .iface = ni->idb,
      .ts = now,
      .starttime = ni->first_ts,
      .endtime = now,
      .stats = st ? st : &none,
  };
  if (st != NULL && ps__pcapng_isb(&ng->f.buf, &isb) != 0) {
    ps__log(sk->log, sk->log_ud, PS_LOG_ERROR,
            "out of memory writing statistics of %s/%s", s->sensor,
            ifc->name);
  }
  free(ni);
}

static int ng_flush(ps_sink *sk) {
  return out_flush(sk, &((pcapng_sink *)sk)->f);
}

static int ng_close(ps_sink *sk) {
  return out_close(sk, &((pcapng_sink *)sk)->f);
}

static void ng_destroy(ps_sink *sk) {
  ng_close(sk);
  free(sk);
}

static const ps__sink_ops pcapng_ops = {
    .kind = "pcapng",
    .iface = ng_iface_fn,
    .packet = ng_packet,
    .iface_end = ng_iface_end,
    .flush = ng_flush,
    .close = ng_close,
    .destroy = ng_destroy,
};

int ps_pcapng_sink(ps_sink **out, const char *path, unsigned flags) {
  if (out == NULL || path == NULL || *path == '\0' || flags != 0) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  pcapng_sink *ng = calloc(1, sizeof(*ng));
  if (ng == NULL) {
    return PS_ERR_NOMEM;
  }
  ng->base.ops = &pcapng_ops;
  ng->f.fd = -1;
  *out = &ng->base;
  int rc = out_open(&ng->base, &ng->f, path);
  if (rc != 0) {
    return rc;
  }
  char host[256] = "unknown", appl[128], os[300] = "", comment[400];
  gethostname(host, sizeof(host) - 1);
  struct utsname u;
  if (uname(&u) == 0) {
    snprintf(os, sizeof(os), "%s %s %s", u.sysname, u.release, u.machine);
  }
  snprintf(appl, sizeof(appl), "libpacketstreamer %s", PS_VERSION);
  snprintf(comment, sizeof(comment), "collected by the receiver on host %s",
           host);
  if (ps__pcapng_shb(&ng->f.buf, appl, os, comment) != 0) {
    return PS_ERR_NOMEM;
  }
  return out_flush(&ng->base, &ng->f);
}

void ps_sink_free(ps_sink *sink) {
  if (sink != NULL) {
    sink->ops->destroy(sink);
  }
}

void ps__sink_set_log(ps_sink *sk, ps_log_fn fn, void *ud) {
  sk->log = fn;
  sk->log_ud = ud;
}
