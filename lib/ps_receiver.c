/* The receiver: an epoll loop over listeners and sensor connections. One
 * connection never blocks another: sockets are non-blocking, reads are
 * bounded per wakeup, and every session has deadlines. */
#include "config.h"

#include "ps_admin.h"
#include "ps_fleet.h"
#include "ps_journal.h"
#include "ps_kafka_in.h"
#include "ps_net.h"
#include "ps_session.h"
#include "ps_testhook.h"
#include "ps_tls.h"
#include "ps_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTENERS PS_MAX_LISTENERS
#define READ_CHUNK 65536
/* Read size for a connection in its handshake: its frames are a few
 * hundred bytes, and hundreds of such connections should not hold a
 * READ_CHUNK buffer each. */
#define PENDING_CHUNK 4096
/* Lines about connections that end in their handshake (a flood of them
 * is the usual attack): at most HSLOG_MAX per HSLOG_WINDOW_MS, then one
 * line with the number not shown. */
#define HSLOG_MAX 100
#define HSLOG_WINDOW_MS 10000
#define READ_BUDGET (1u << 20)  /* bytes per connection per wakeup */
#define OUT_LIMIT (256u * 1024) /* a sensor that does not read its acks */
#define IDLE_TRIM_MS 2000
/* A sensor's acknowledgement waits up to ACK_DELAY_MS after the previous
 * one while less than ACK_BYTES of packets are unacknowledged (a quarter
 * of the smallest replay queue a sensor may have): one ACK then covers
 * several small batches of a quiet stream. Busy streams, a close, and
 * the first batch of a session are acknowledged in the round. */
#define ACK_DELAY_MS 250
#define ACK_BYTES 16384
/* How often the connections' timeouts are checked. */
#define DEADLINE_WALK_MS 100
#define RETRY_WRITE_MS 1000 /* output failed: try again this often */
#define LINGER_MS 2000      /* a refused sensor's input is drained */
#define MAX_LINGER 64
#define TAG_LISTEN 1u
#define TAG_STOP 2u
#define TAG_ADMIN 3u
#define TAG_SINK 4u /* the async output's descriptor (Kafka reports) */
#define TAG_KIN 5u  /* the Kafka input's descriptor */

typedef struct conn {
  /* First, with ready NULL: an epoll event's pointer is either a
   * connection or a live output's watch (ps__watch), told apart by it. */
  ps__watch w;
  struct conn *next, *prev;
  /* Connections in their handshake, oldest first (pending set), or
   * admitted as sensors (counted set); never both. */
  struct conn *pnext, *pprev;
  int pending;
  int counted;
  ps__transport tx; /* the socket, and TLS over it */
  uint32_t events;
  int64_t created_ms;
  int64_t last_rx_ms;
  int trimmed;   /* buffers given back since the last input */
  int lingering; /* closed, draining input until the sensor closes */
  int64_t linger_until;
  int said_hello; /* counted as a sensor session */
  /* Acknowledgements waiting for the async output (Kafka) to keep what
   * they cover: batch wseq[i] once its durable() reaches wtok[i]. Two
   * suffice: the oldest, and the newest that replaces any in between. */
  uint64_t wseq[2], wtok[2];
  unsigned nwait;
  /* On the receiver's list of connections with an acknowledgement due
   * (r->due), so a round visits those, not every connection. */
  struct conn *dnext, *dprev;
  int on_due;
  /* When the last acknowledgement went out, and the session's packet
   * bytes then: a quiet sensor is acknowledged at most every
   * ACK_DELAY_MS (PROTOCOL.md §4.3). */
  int64_t acked_ms;
  uint64_t acked_bytes;
  uint64_t noted_seq; /* the last batch the receiver saw taken */
  ps__session sess;
} conn;

struct ps_receiver {
  int epfd;
  int stop_fd;
  volatile sig_atomic_t stopping;
  int listen_fd[MAX_LISTENERS];
  unsigned n_listen;
  ps_sink *sinks[PS_MAX_SINKS];
  ps_sink *async;     /* the output that keeps data after its flush, or NULL */
  unsigned n_waiting; /* connections with acknowledgements waiting */
#ifdef HAVE_KAFKA
  ps__kin *kin; /* the Kafka input, or NULL */
#endif
  ps__sink_loop loop; /* the epoll set, as live outputs see it */
  ps__session_env env;
  conn *conns;
  conn *due;                /* connections with ack_due set (see conn) */
  int64_t next_deadline_ms; /* the next walk of every connection */
  int64_t ack_at_ms;        /* acknowledgements held back until then, or 0 */
  int uncommitted;          /* batches taken since the outputs' last commit */
  int ack_urgent;           /* a due acknowledgement must not wait */
  unsigned trimmed_since;   /* sessions trimmed since the last malloc_trim */
  int64_t last_malloc_trim;
  /* Closed connections, freed at the end of a loop step: events for them
   * may still sit in that step's epoll batch. */
  conn *dead;
  /* Refused connections whose error message went out: their input is
   * read and dropped until the sensor closes (or LINGER_MS), for closing
   * a socket with unread input sends a reset, which can destroy the
   * message before the sensor reads it. */
  conn *lingering;
  unsigned n_lingering;
  unsigned max_sessions; /* admitted sensors (n_sensors) */
  unsigned n_sensors;
  unsigned max_pending; /* in their handshake; 0: the default */
  conn *pend_head, *pend_tail;
  unsigned n_pending;
  ps__logex logex;     /* ps_receiver_set_log_ex() */
  int64_t hslog_since; /* window of the handshake log lines */
  unsigned hslog_n;
  unsigned long long hslog_hidden;
  int64_t listen_paused_until; /* out of descriptors: accept later */
  int64_t last_emfile_log;
  /* Held open so that, out of descriptors, the receiver can still take
   * a connection off the backlog and close it: the sensor hears "no"
   * at once and retries later, instead of waiting in the backlog. */
  int spare_fd;
  uint64_t refused_nofile; /* connections closed so, since the last log */
  unsigned handshake_ms;
  unsigned idle_ms;
  uint64_t next_id;
  int blocked; /* an output cannot write: nothing is read */
  int64_t retry_at_ms;
  unsigned failures_seen; /* outputs failed for good, as last looked at */
  int gone;               /* the only output is gone for good: stopping */
  int shut;
  ps__streamtab streams;
  ps__journal *journal;
  /* Fault-test hook: die (SIGKILL) in round fail_round, before (1) or
   * after (2) its journal record; see failpoint(). */
  int fail_where;
  unsigned long fail_round, rounds;
  ps__tls_creds *tls_creds;
  uint8_t *auth_key;
  size_t auth_len;
  ps_receiver_counters ctr;
  uint64_t journal_commits;
  ps__fleet fleet;   /* every sensor seen: metrics, inventory */
  ps__captures caps; /* captures on demand */
  ps__admin *admin;
  uint8_t *admin_token;
  size_t admin_token_len;
  ps__admin_tls admin_tls;
  /* Taken by sessions since the outputs last took everything for good:
   * counted as written (ctr.packets, ctr.bytes) only then. */
  uint64_t taken_packets, taken_bytes;
  /* Captures' own files (ps_receiver_set_capture_dir()). */
  char *capture_dir;
  ps_file_format capture_format;
  unsigned capture_flags;
  /* The captures' state file (beside the journal), and when it was
   * last written (monotonic ms). */
  char *caps_path;
  int64_t caps_saved_ms;
  char errmsg[PS_ERRMSG_MAX];
};

static void conn_close(ps_receiver *r, conn *c, const char *reason);
static void caps_kick(void *ud, ps__session *s);
static void caps_answered(void *ud, ps__capture *cap);
static void on_capture_state(void *ud, ps__session *s,
                             const ps__capture_state_msg *m);
static void set_blocked(ps_receiver *r, const char *why);
static int caps_open_sink(void *ud, ps__capture *c, char *errbuf);
static void caps_save(ps_receiver *r, int force);
static int on_capture_iface(void *ud, ps__session *s, ps__sess_iface *ifc,
                            uint64_t id, char *errbuf);

#define PCAP_MARKS 64 /* files one output may have open at once */

/* A file sink opened a file: the journal must know it before packets go
 * in, or a crash could leave data in it that nothing says to cut. */
static void on_file_open(void *ud, const char *path, int fd, uint64_t size) {
  ps_receiver *r = ud;
  char eb[PS_ERRMSG_MAX];
  if (r->journal != NULL &&
      ps__journal_file(r->journal, path, fd, size, eb) != 0) {
    set_blocked(r, eb);
  }
}

static ps_receiver *receiver_of_loop(ps__sink_loop *l) {
  return (ps_receiver *)((char *)l - offsetof(ps_receiver, loop));
}

/* A live output's descriptor (PCAP-over-IP listener or client) in the
 * same epoll set as the sensors: one loop, no thread. */
static int loop_watch(ps__sink_loop *l, int fd, uint32_t events, ps__watch *w,
                      int add) {
  ps_receiver *r = receiver_of_loop(l);
  struct epoll_event ev = {.events = events, .data.ptr = w};
  if (epoll_ctl(r->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0) {
    return PS_ERR_SYSTEM;
  }
  return 0;
}

static void loop_unwatch(ps__sink_loop *l, int fd) {
  epoll_ctl(receiver_of_loop(l)->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static conn *conn_of(ps__session *s) {
  return (conn *)((char *)s - offsetof(conn, sess));
}

/* A stream moved to a new connection: the old one is dead or dying. */
static void supersede(void *ud, ps__session *old) {
  conn_close(ud, conn_of(old),
             "replaced by a new connection of the same stream");
}

static void pending_del(ps_receiver *r, conn *c) {
  if (!c->pending) {
    return;
  }
  if (c->pprev) {
    c->pprev->pnext = c->pnext;
  } else {
    r->pend_head = c->pnext;
  }
  if (c->pnext) {
    c->pnext->pprev = c->pprev;
  } else {
    r->pend_tail = c->pprev;
  }
  c->pnext = c->pprev = NULL;
  c->pending = 0;
  r->n_pending--;
}

static void pending_add(ps_receiver *r, conn *c) {
  c->pprev = r->pend_tail;
  c->pnext = NULL;
  if (r->pend_tail) {
    r->pend_tail->pnext = c;
  } else {
    r->pend_head = c;
  }
  r->pend_tail = c;
  c->pending = 1;
  r->n_pending++;
}

static unsigned pending_limit(const ps_receiver *r) {
  if (r->max_pending != 0) {
    return r->max_pending;
  }
  /* Room for every sensor to reconnect at once (after a restart), with
   * as many again for strangers. */
  unsigned twice = r->max_sessions > 500000 ? 1000000 : 2 * r->max_sessions;
  return twice > 64 ? twice : 64;
}

/* The session's sensor proved who it is: it counts against the sensor
 * limit from now on, unless the limit is reached. Connections count only
 * from here, so strangers that never authenticate cannot lock sensors
 * out; they wait in the bounded pending set instead. */
static int admit(void *ud, ps__session *s, int takes_over) {
  ps_receiver *r = ud;
  conn *c = conn_of(s);
  /* A sensor taking its stream over from a connection the receiver has
   * not yet seen break replaces it rather than adds to the count. */
  if (r->n_sensors >= r->max_sessions && !takes_over) {
    return ps__seterr(s->errmsg, PS_ERR_BUSY,
                      "the receiver is at its limit of %u sensors",
                      r->max_sessions);
  }
  pending_del(r, c);
  c->counted = 1;
  r->n_sensors++;
  return 0;
}

/* Says how many handshake lines were not shown, once their window is
 * over (or at once with force). */
static void hslog_flush(ps_receiver *r, int64_t now, int force) {
  if (!force && now - r->hslog_since < HSLOG_WINDOW_MS) {
    return;
  }
  if (r->hslog_hidden > 0) {
    ps__logx(r->env.log, r->env.log_ud, PS_LOG_WARNING, "handshakes_hidden",
             NULL, NULL, 0,
             "%llu more connections ended in their handshake in the last "
             "%lld s (not logged one by one)",
             r->hslog_hidden, (long long)(now - r->hslog_since + 999) / 1000);
  }
  r->hslog_since = now;
  r->hslog_n = 0;
  r->hslog_hidden = 0;
}

/* Whether a line about a connection that ended in its handshake may be
 * logged: anyone can open connections, and each must not cost a line. */
static int hslog_allow(ps_receiver *r) {
  hslog_flush(r, ps__now_ms(), 0);
  if (r->hslog_n < HSLOG_MAX) {
    r->hslog_n++;
    return 1;
  }
  r->hslog_hidden++;
  return 0;
}

int ps_receiver_create(ps_receiver **out) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  ps_receiver *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return PS_ERR_NOMEM;
  }
  r->spare_fd = -1;
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->epfd < 0 || r->stop_fd < 0) {
    if (r->epfd >= 0) {
      close(r->epfd);
    }
    if (r->stop_fd >= 0) {
      close(r->stop_fd);
    }
    free(r);
    return PS_ERR_SYSTEM;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_STOP};
  epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->stop_fd, &ev);
  r->env.sinks = r->sinks;
  r->loop.watch = loop_watch;
  r->loop.unwatch = loop_unwatch;
  ps__limits_default(&r->env.lim);
  r->env.defer_acks = 1;
  r->env.streams = &r->streams;
  r->env.supersede = supersede;
  r->env.admit = admit;
  r->env.fleet = &r->fleet;
  r->env.on_capture_state = on_capture_state;
  r->env.on_capture_iface = on_capture_iface;
  r->env.ud = r;
  r->caps.kick = caps_kick;
  r->caps.answered = caps_answered;
  r->caps.open_sink = caps_open_sink;
  r->caps.ud = r;
  r->max_sessions = 1024;
  r->handshake_ms = 10000;
  r->idle_ms = 60000;
  r->next_id = 1;
  *out = r;
  return 0;
}

void ps_receiver_set_log_ex(ps_receiver *r, ps_log_ex_fn fn, void *user_data) {
  r->logex.fn = fn;
  r->logex.ud = user_data;
  ps_receiver_set_log(r, fn ? ps__log_ex_adapter : NULL, &r->logex);
}

void ps_receiver_set_log(ps_receiver *r, ps_log_fn fn, void *user_data) {
  r->env.log = fn;
  r->env.log_ud = user_data;
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    ps__sink_set_log(r->sinks[i], fn, user_data);
  }
}

int ps_receiver_set_max_sessions(ps_receiver *r, unsigned n) {
  if (n > 1000000) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "%u sensors: at most 1000000, or 0 for the default "
                      "of 1024",
                      n);
  }
  r->max_sessions = n ? n : 1024;
  return 0;
}

int ps_receiver_set_handshake_timeout_ms(ps_receiver *r, unsigned ms) {
  if (ms > 3600000) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "handshake timeout %u ms: at most 3600000 (an hour), "
                      "or 0 for the default of 10000",
                      ms);
  }
  r->handshake_ms = ms ? ms : 10000;
  return 0;
}

int ps_receiver_set_idle_timeout_ms(ps_receiver *r, unsigned ms) {
  if (ms > PS_TIMEOUT_MS_MAX) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "idle timeout %u ms: at most %u (a day), or 0 for the "
                      "default of 60000",
                      ms, PS_TIMEOUT_MS_MAX);
  }
  r->idle_ms = ms ? ms : 60000;
  return 0;
}

int ps_receiver_set_max_pending(ps_receiver *r, unsigned max_pending) {
  if (max_pending > 1000000) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "at most 1000000 connections in their handshake");
  }
  r->max_pending = max_pending;
  return 0;
}

const char *ps_receiver_errmsg(ps_receiver *r) {
  return r->errmsg;
}

int ps_receiver_set_tls(ps_receiver *r, const ps_tls_options *opts,
                        size_t size) {
  if (r->conns != NULL || r->ctr.connections > 0) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      "TLS must be set before sensors connect");
  }
  ps__tls_creds *c;
  int rc = ps__tls_creds_new(&c, 1, opts, size, r->errmsg);
  if (rc != 0) {
    return rc;
  }
  ps__tls_creds_free(r->tls_creds);
  r->tls_creds = c;
  return 0;
}

int ps_receiver_set_auth_key(ps_receiver *r, const uint8_t *key, size_t len) {
  if (r->conns != NULL || r->ctr.connections > 0) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      "the key must be set before sensors connect");
  }
  int rc = ps__key_set(&r->auth_key, &r->auth_len, key, len, r->errmsg);
  r->env.auth_key = r->auth_key;
  r->env.auth_len = r->auth_len;
  return rc;
}

/* The sinks count what their files took; summed when asked for. */
static void count_output_bytes(ps_receiver *r) {
  uint64_t n = 0;
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    n += r->sinks[i]->written;
  }
  r->ctr.output_bytes = n;
  if (r->async != NULL) {
    r->ctr.kafka_sent = r->async->async_sent;
    r->ctr.kafka_delivered = r->async->async_kept;
  }
}

void ps_receiver_get_counters(ps_receiver *r, ps_receiver_counters *out,
                              size_t size) {
  count_output_bytes(r);
  ps__copy_out(out, size, &r->ctr, sizeof(r->ctr));
}

int ps_receiver_listen(ps_receiver *r, const char *addr, uint16_t port) {
  if (r->spare_fd < 0) {
    r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  int fds[MAX_LISTENERS];
  if (r->n_listen >= MAX_LISTENERS) {
    return ps__seterr(r->errmsg, PS_ERR_LIMIT, "too many listen addresses");
  }
  int n = ps__net_listen(addr, port, fds, (int)(MAX_LISTENERS - r->n_listen),
                         r->errmsg);
  if (n < 0) {
    return n;
  }
  for (int i = 0; i < n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
      int e = errno;
      for (int k = i; k < n; k++) {
        close(fds[k]);
      }
      return ps__seterr(r->errmsg, PS_ERR_SYSTEM, "epoll: %s", strerror(e));
    }
    r->listen_fd[r->n_listen++] = fds[i];
  }
  return 0;
}

uint16_t ps_receiver_port(ps_receiver *r) {
  char a[64];
  uint16_t port = 0;
  if (r->n_listen == 0 ||
      ps__net_endpoint(r->listen_fd[0], 0, a, sizeof(a), &port) != 0) {
    return 0;
  }
  return port;
}

int ps_receiver_listener(ps_receiver *r, char *addr, size_t addrlen,
                         uint16_t *port, unsigned i) {
  char a[64];
  uint16_t p = 0;
  if (i >= r->n_listen) {
    return PS_ERR_INVALID;
  }
  if (ps__net_endpoint(r->listen_fd[i], 0, a, sizeof(a), &p) != 0) {
    return ps__seterr(r->errmsg, PS_ERR_SYSTEM, "getsockname: %s",
                      strerror(errno));
  }
  if (addr != NULL && addrlen > 0) {
    snprintf(addr, addrlen, "%s", a);
  }
  if (port != NULL) {
    *port = p;
  }
  return 0;
}

int ps_receiver_add_sink(ps_receiver *r, ps_sink *sink) {
  if (sink == NULL) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID, "no sink");
  }
  if (r->env.n_sinks >= PS_MAX_SINKS) {
    return ps__seterr(r->errmsg, PS_ERR_LIMIT, "at most %d sinks",
                      PS_MAX_SINKS);
  }
  if (r->conns != NULL) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      "sinks must be added before sensors connect");
  }
  if (ps__sink_is_async(sink)) {
    if (r->async != NULL) {
      return ps__seterr(r->errmsg, PS_ERR_LIMIT,
                        "at most one Kafka output per receiver");
    }
    if (r->journal != NULL) {
      /* The journal records batches as taken when the files hold them;
       * Kafka holds them later, so a restart could skip what Kafka never
       * got. */
      return ps__seterr(r->errmsg, PS_ERR_STATE,
                        "a state file (journal) and a Kafka output do not "
                        "go together: the journal would record batches "
                        "Kafka does not hold yet");
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_SINK};
    if (sink->ops->fd != NULL &&
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, sink->ops->fd(sink), &ev) != 0) {
      return ps__seterr(r->errmsg, PS_ERR_SYSTEM, "epoll: %s", strerror(errno));
    }
    r->async = sink;
    r->env.async_acks = 1;
  }
  ps__sink_set_log(sink, r->env.log, r->env.log_ud);
  int arc = ps__sink_attach(sink, &r->loop);
  if (arc != 0) {
    return ps__seterr(r->errmsg, arc, "%s", sink->errmsg);
  }
  if (r->journal != NULL) {
    ps__file_mark m[PCAP_MARKS];
    unsigned n = ps__sink_marks(sink, m, PCAP_MARKS);
    for (unsigned i = 0; i < n; i++) {
      int rc = ps__journal_file(r->journal, m[i].path, m[i].fd, m[i].size,
                                r->errmsg);
      if (rc != 0) {
        return rc;
      }
    }
  }
  sink->on_open = on_file_open;
  sink->on_open_ud = r;
  r->sinks[r->env.n_sinks++] = sink;
  return 0;
}

/* The captures on demand beside the journal: PATH.captures, written
 * whole to PATH.captures.new, synced and renamed over it, so a crash
 * leaves the old file or the new one, never a mix. */
static void caps_save(ps_receiver *r, int force) {
  if (r->caps_path == NULL || r->caps.dirty == 0) {
    return;
  }
  int64_t now = ps__now_ms();
  /* A record or state is synced to disk; counts alone (every round
   * whose batches held capture packets, before they are acknowledged:
   * an acknowledged batch is never sent again, so its count must be
   * kept by then) only survive the receiver dying, as the journal. */
  int sync = force || (r->caps.dirty & 1);
  char *text = ps__captures_dump(&r->caps);
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.new", r->caps_path);
  /* A new file, never one found at the name (a link planted there). */
  unlink(tmp);
  int fd = text
               ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600)
               : -1;
  size_t len = text ? strlen(text) : 0, off = 0;
  int ok = fd >= 0;
  while (ok && off < len) {
    ssize_t k = write(fd, text + off, len - off);
    if (k < 0 && errno == EINTR) {
      continue;
    }
    ok = k > 0;
    off += ok ? (size_t)k : 0;
  }
  ok = ok && (!sync || fsync(fd) == 0);
  if (fd >= 0) {
    ok = close(fd) == 0 && ok;
  }
  ok = ok && rename(tmp, r->caps_path) == 0;
  free(text);
  if (!ok) {
    /* Tried again at the next commit; the old file stays whole. */
    ps__log(r->env.log, r->env.log_ud, PS_LOG_ERROR,
            "cannot write the captures' state %s: %s", r->caps_path,
            text ? strerror(errno) : "out of memory");
    unlink(tmp);
    r->caps_saved_ms = now;
    return;
  }
  r->caps.dirty = 0;
  r->caps_saved_ms = now;
}

/* Reads PATH.captures if it exists: all or nothing. */
static int caps_load(ps_receiver *r) {
  int fd = open(r->caps_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return 0;
    }
    return ps__seterr(r->errmsg, PS_ERR_IO, "captures' state %s: %s",
                      r->caps_path, strerror(errno));
  }
  struct stat st;
  ps__buf b = {0};
  int rc = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 0022)) {
    rc = ps__seterr(r->errmsg, PS_ERR_IO,
                    "captures' state %s: not a regular file of this user "
                    "that only it can write",
                    r->caps_path);
  }
  while (rc == 0) {
    uint8_t chunk[65536];
    ssize_t k = read(fd, chunk, sizeof(chunk));
    if (k < 0 && errno == EINTR) {
      continue;
    }
    if (k < 0) {
      rc = ps__seterr(r->errmsg, PS_ERR_IO, "captures' state %s: %s",
                      r->caps_path, strerror(errno));
    } else if (k == 0) {
      break;
    } else if (ps__buf_size(&b) + (size_t)k > (64u << 20) ||
               ps__buf_append(&b, chunk, (size_t)k) != 0) {
      rc = ps__seterr(r->errmsg, PS_ERR_IO, "captures' state %s: too large",
                      r->caps_path);
    }
  }
  close(fd);
  char eb[PS_ERRMSG_MAX];
  if (rc == 0 && ps__captures_load(&r->caps, (const char *)ps__buf_head(&b),
                                   ps__buf_size(&b), eb) != 0) {
    rc = ps__seterr(r->errmsg, PS_ERR_INVALID,
                    "captures' state %s is damaged: %s (move it away to "
                    "start without the captures it lists)",
                    r->caps_path, eb);
  }
  ps__buf_free(&b);
  if (rc == 0 && r->caps.n > 0) {
    ps__log(r->env.log, r->env.log_ud, PS_LOG_INFO,
            "%u captures on demand from %s; the next is %llu", r->caps.n,
            r->caps_path, (unsigned long long)r->caps.next_id + 1);
  }
  return rc;
}

int ps_receiver_set_state_file(ps_receiver *r, const char *path) {
  if (path == NULL || *path == '\0') {
    return ps__seterr(r->errmsg, PS_ERR_INVALID, "no state file name");
  }
  if (r->env.n_sinks > 0 || r->journal != NULL) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      "the state file must be set once, before outputs are "
                      "added");
  }
  size_t n = strlen(path);
  if (n > 4000 || (r->caps_path = malloc(n + 10)) == NULL) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID, "state file name too long");
  }
  memcpy(r->caps_path, path, n);
  memcpy(r->caps_path + n, ".captures", 10);
  /* The captures first: a damaged file stops the start before the
   * journal repairs anything. */
  int rc = caps_load(r);
  if (rc == 0) {
    rc = ps__journal_open(&r->journal, path, &r->streams, r->env.log,
                          r->env.log_ud, r->errmsg);
  }
  if (rc != 0) {
    ps__captures_free(&r->caps);
    r->caps.next_id = 0;
    free(r->caps_path);
    r->caps_path = NULL;
  }
  return rc;
}

void ps_receiver_stop(ps_receiver *r) {
  uint64_t one = 1;
  r->stopping = 1;
  ssize_t n = write(r->stop_fd, &one, sizeof(one));
  (void)n;
}

int ps_receiver_get_fd(ps_receiver *r) {
  return r->epfd;
}

int ps_receiver_get_timeout_ms(ps_receiver *r) {
  /* Deadlines are checked once a second; that is their resolution. */
  int kin = 0;
#ifdef HAVE_KAFKA
  kin = r->kin != NULL;
#endif
  int t = (r->conns || r->lingering || r->listen_paused_until ||
           r->hslog_hidden || kin || r->n_waiting)
              ? 1000
              : -1;
  /* A live output's timer (a reconnect) comes at its own time. */
  int64_t now = -1;
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    int64_t at = r->sinks[i]->tick_at;
    if (at < 0) {
      continue;
    }
    if (now < 0) {
      now = ps__now_ms();
    }
    int64_t d = at > now ? at - now : 0;
    if (t < 0 || d < t) {
      t = (int)d;
    }
  }
  if (r->admin != NULL) {
    int a = ps__admin_timeout_ms(r->admin);
    if (a >= 0 && (t < 0 || a < t)) {
      t = a;
    }
  }
  if (r->ack_at_ms != 0) {
    int64_t d = r->ack_at_ms - ps__now_ms();
    d = d < 0 ? 0 : d;
    if (t < 0 || d < t) {
      t = (int)d;
    }
  }
  return t;
}

const ps_receiver_counters *ps__receiver_ctr(ps_receiver *r) {
  count_output_bytes(r);
  return &r->ctr;
}

uint64_t ps__receiver_journal_commits(ps_receiver *r) {
  return r->journal_commits;
}

ps__fleet *ps__receiver_fleet(ps_receiver *r) {
  return &r->fleet;
}

ps__captures *ps__receiver_captures(ps_receiver *r) {
  return &r->caps;
}

static int conn_writable(ps_receiver *r, conn *c);

/* A capture request was queued in a session's output: send it. */
static void caps_kick(void *ud, ps__session *s) {
  ps_receiver *r = ud;
  conn *c = conn_of(s);
  if (c->tx.fd >= 0 && !c->lingering) {
    conn_writable(r, c);
  }
}

static void caps_answered(void *ud, ps__capture *cap) {
  ps_receiver *r = ud;
  if (r->admin != NULL) {
    ps__admin_answered(r->admin, cap);
  }
}

static int on_capture_iface(void *ud, ps__session *s, ps__sess_iface *ifc,
                            uint64_t id, char *errbuf) {
  ps_receiver *r = ud;
  return ps__captures_iface(&r->caps, s, ifc, id, errbuf);
}

const char *ps__receiver_capture_dir(ps_receiver *r) {
  return r->capture_dir;
}

int ps_receiver_set_capture_dir(ps_receiver *r, const char *dir,
                                ps_file_format format, unsigned flags) {
  if (dir == NULL || *dir == '\0' ||
      (format != PS_FORMAT_PCAP && format != PS_FORMAT_PCAPNG) ||
      (flags & ~PS_SINK_NANO) != 0) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "capture directory: a directory, PS_FORMAT_PCAP or "
                      "PS_FORMAT_PCAPNG, flags PS_SINK_NANO");
  }
  char *d = strdup(dir);
  if (d == NULL) {
    return ps__seterr(r->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  size_t n = strlen(d);
  while (n > 1 && d[n - 1] == '/') {
    d[--n] = '\0';
  }
  free(r->capture_dir);
  r->capture_dir = d;
  r->capture_format = format;
  r->capture_flags = flags;
  return 0;
}

/* A capture's file was opened: the journal knows it before packets go
 * in (as for -w), and GET /api/v1/captures/ID shows it. */
static void on_cap_file_open(void *ud, const char *path, int fd,
                             uint64_t size) {
  ps__capture *c = ud;
  ps_receiver *r = c->owner;
  ps__capture_add_path(c, path);
  r->caps.dirty |= 1;
  on_file_open(r, path, fd, size);
}

static int caps_open_sink(void *ud, ps__capture *c, char *errbuf) {
  ps_receiver *r = ud;
  if (r->capture_dir == NULL) {
    return ps__seterr(errbuf, PS_ERR_STATE,
                      "capture %llu: 'output' needs the receiver's capture "
                      "directory (ps-receiver --capture-dir DIR)",
                      (unsigned long long)c->id);
  }
  int rc = ps__capture_output_check(c->req.output, r->capture_dir, errbuf);
  if (rc != 0) {
    return rc;
  }
  char *tmpl = ps__capture_output_path(r->capture_dir, c->req.output, c->id);
  if (tmpl == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  size_t tl = strlen(tmpl);
  ps_file_format fmt =
      tl > 7 && strcmp(tmpl + tl - 7, ".pcapng") == 0 ? PS_FORMAT_PCAPNG
      : tl > 5 && strcmp(tmpl + tl - 5, ".pcap") == 0 ? PS_FORMAT_PCAP
                                                      : r->capture_format;
  ps_file_sink_options o = PS_FILE_SINK_OPTIONS_INIT;
  o.split_by_sensor = strstr(tmpl, "{sensor}") != NULL;
  /* A sink opened again (after its capture went idle, or after a
   * restart) continues the capture's files, cut back by the journal to
   * what was acknowledged. */
  o.flags = (fmt == PS_FORMAT_PCAP ? r->capture_flags : 0) |
            (c->sink_opened ? PS_SINK_APPEND : 0);
  ps_sink *sk = NULL;
  rc = ps_file_sink(&sk, fmt, tmpl, &o, sizeof(o));
  free(tmpl);
  if (rc != 0) {
    ps__seterr(errbuf, rc, "capture %llu: %s", (unsigned long long)c->id,
               sk ? ps_sink_errmsg(sk) : ps_strerror(rc));
    ps_sink_free(sk);
    return rc;
  }
  ps__sink_set_log(sk, r->env.log, r->env.log_ud);
  c->owner = r;
  ps__file_mark m[PCAP_MARKS];
  unsigned n = ps__sink_marks(sk, m, PCAP_MARKS);
  for (unsigned i = 0; i < n; i++) {
    ps__capture_add_path(c, m[i].path);
    if (r->journal != NULL &&
        (rc = ps__journal_file(r->journal, m[i].path, m[i].fd, m[i].size,
                               errbuf)) != 0) {
      ps_sink_free(sk);
      return rc;
    }
  }
  sk->on_open = on_cap_file_open;
  sk->on_open_ud = c;
  c->sink = sk;
  c->sink_opened = 1;
  r->caps.dirty |= 1;
  return 0;
}

static void on_capture_state(void *ud, ps__session *s,
                             const ps__capture_state_msg *m) {
  ps_receiver *r = ud;
  ps__captures_on_state(&r->caps, s, m);
}

int ps_receiver_set_admin_token(ps_receiver *r, const uint8_t *token,
                                size_t len) {
  if (r->admin != NULL) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      "the admin token must be set before the admin API "
                      "listens");
  }
  return ps__key_set(&r->admin_token, &r->admin_token_len, token, len,
                     r->errmsg);
}

/* The whole of a PEM file, NUL-terminated, into *out (for MHD, which
 * takes certificates and keys from memory). */
static int read_pem(const char *path, char **out, char *errbuf) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    return ps__seterr(errbuf, PS_ERR_TLS, "%s: %s", path, strerror(errno));
  }
  /* Far more than any certificate chain; a bound on what is read. */
  enum { MAX_PEM = 1 << 20 };
  char *b = malloc(MAX_PEM + 1);
  if (b == NULL) {
    fclose(f);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  size_t n = fread(b, 1, MAX_PEM + 1, f);
  int e = ferror(f) ? errno : 0;
  fclose(f);
  if (e != 0 || n > MAX_PEM) {
    free(b);
    return ps__seterr(errbuf, PS_ERR_TLS, "%s: %s", path,
                      e ? strerror(e) : "larger than 1 MiB");
  }
  b[n] = '\0';
  *out = b;
  return 0;
}

int ps_receiver_set_admin_tls(ps_receiver *r, const ps_tls_options *opts,
                              size_t size) {
  if (r->admin != NULL) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      "admin TLS must be set before the admin API listens");
  }
  ps_tls_options o;
  if (opts == NULL || ps__copy_in(&o, sizeof(o), opts, size,
                                  PS__SIZE_TO(ps_tls_options, insecure)) != 0) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "admin TLS options: pass sizeof(ps_tls_options) of a "
                      "zeroed struct (PS_TLS_OPTIONS_INIT)");
  }
  if (o.ca_file != NULL || o.server_name != NULL || o.pin != NULL ||
      o.insecure) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "admin TLS takes cert_file, key_file and "
                      "client_ca_file only (the server's side)");
  }
  /* Loaded once through GnuTLS as the stream listener's are, so that a
   * bad file is refused here with GnuTLS's reason, not later by MHD
   * with none. */
  ps__tls_creds *check;
  int rc = ps__tls_creds_new(&check, 1, &o, sizeof(o), r->errmsg);
  if (rc != 0) {
    return rc;
  }
  ps__tls_creds_free(check);
  ps__admin_tls t = {0};
  if ((rc = read_pem(o.cert_file, &t.cert, r->errmsg)) != 0 ||
      (rc = read_pem(o.key_file, &t.key, r->errmsg)) != 0 ||
      (o.client_ca_file != NULL &&
       (rc = read_pem(o.client_ca_file, &t.trust, r->errmsg)) != 0)) {
    ps__admin_tls_clear(&t);
    return rc;
  }
  ps__admin_tls_clear(&r->admin_tls);
  r->admin_tls = t;
  return 0;
}

/* Whether the socket is bound to a loopback address (127.0.0.0/8, ::1,
 * or IPv4 loopback mapped into IPv6). */
static int on_loopback(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    return 0;
  }
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a)) {
      return 1;
    }
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
  }
  return 0;
}

int ps_receiver_admin_listen(ps_receiver *r, const char *addr, uint16_t port) {
  if (r->admin != NULL) {
    return ps__seterr(r->errmsg, PS_ERR_STATE, "the admin API listens already");
  }
  int fd;
  int n = ps__net_listen(addr, port, &fd, 1, r->errmsg);
  if (n < 0) {
    return n;
  }
  /* A client CA is authentication too: only holders of a certificate it
   * issued get an answer. */
  if (r->admin_token == NULL && r->admin_tls.trust == NULL &&
      !on_loopback(fd)) {
    close(fd);
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "the admin API without authentication listens only on "
                      "loopback (127.0.0.1 or ::1): give a token "
                      "(--admin-token-file) or a client CA "
                      "(--admin-tls-client-ca) to listen on %s",
                      addr && *addr ? addr : "every address");
  }
  int rc = ps__admin_new(&r->admin, r, fd, r->admin_token, r->admin_token_len,
                         &r->admin_tls, r->errmsg);
  if (rc != 0) {
    return rc;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_ADMIN};
  if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, ps__admin_fd(r->admin), &ev) != 0) {
    int e = errno;
    ps__admin_free(r->admin);
    r->admin = NULL;
    return ps__seterr(r->errmsg, PS_ERR_SYSTEM, "epoll: %s", strerror(e));
  }
  return 0;
}

uint16_t ps_receiver_admin_port(ps_receiver *r) {
  return r->admin ? ps__admin_port(r->admin) : 0;
}

/* Bytes queued for the sensor, in frames or TLS records. */
static size_t conn_pending(const conn *c) {
  return ps__transport_pending(&c->tx, &c->sess.out);
}

static void set_events(ps_receiver *r, conn *c) {
  /* Blocked: read nothing, so TCP holds the sensors back. */
  uint32_t want = (r->blocked ? 0 : EPOLLIN) | (conn_pending(c) ? EPOLLOUT : 0);
  if (want != c->events) {
    struct epoll_event ev = {.events = want, .data.ptr = c};
    epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->tx.fd, &ev);
    c->events = want;
  }
}

/* Ends a connection: best-effort send of what is queued (an error frame,
 * the close confirmation), one log line with the counts, and cleanup. */
/* A connection is a sensor session once it has said hello (the same test
 * as conn_close()'s log line); before, it may be anything. */
static int said_hello(const conn *c) {
  return c->sess.state != PS_SESS_HELLO && c->sess.sensor[0] != '?';
}

/* Puts c on the list of connections whose acknowledgement is due, once
 * its session says so. */
/* Whether c's due acknowledgement must go out in this round. */
static int must_ack_now(const ps_receiver *r, const conn *c, int64_t now) {
  return c->sess.close_due || r->stopping || c->sess.state == PS_SESS_DONE ||
         c->sess.bytes - c->acked_bytes >= ACK_BYTES ||
         now - c->acked_ms >= ACK_DELAY_MS;
}

static void due_add(ps_receiver *r, conn *c) {
  if (!c->sess.ack_due || c->tx.fd < 0 || c->lingering) {
    return;
  }
  if (c->sess.last_seq != c->noted_seq) {
    c->noted_seq = c->sess.last_seq;
    r->uncommitted = 1;
  }
  if (!r->ack_urgent && must_ack_now(r, c, ps__now_ms())) {
    r->ack_urgent = 1;
  }
  if (c->on_due) {
    return;
  }
  c->on_due = 1;
  c->dprev = NULL;
  c->dnext = r->due;
  if (r->due) {
    r->due->dprev = c;
  }
  r->due = c;
}

static void due_del(ps_receiver *r, conn *c) {
  if (!c->on_due) {
    return;
  }
  if (c->dprev) {
    c->dprev->dnext = c->dnext;
  } else {
    r->due = c->dnext;
  }
  if (c->dnext) {
    c->dnext->dprev = c->dprev;
  }
  c->on_due = 0;
  c->dnext = c->dprev = NULL;
}

static void conn_close(ps_receiver *r, conn *c, const char *reason) {
  char eb[PS_ERRMSG_MAX];
  due_del(r, c);
  if (c->nwait > 0) {
    /* (Its stream's new connection acknowledges those batches.) */
    c->nwait = 0;
    r->n_waiting--;
  }
  /* A refusal (its error message queued) lingers; see r->lingering. */
  int linger = reason != NULL &&
               ps__transport_pending(&c->tx, &c->sess.out) > 0 &&
               r->n_lingering < MAX_LINGER && !r->shut;
  ps__transport_send(&c->tx, &c->sess.out, NULL, eb);
  ps_capture_stats t;
  ps__session_totals(&c->sess, &t);
  if (!c->counted) {
    /* Never admitted: nothing to count, and anyone can make many. */
    if (!hslog_allow(r)) {
      /* in the next summary line instead */
    } else if (!said_hello(c)) {
      ps__logx(r->env.log, r->env.log_ud, PS_LOG_WARNING, "no_hello", NULL,
               NULL, 0, "connection from %s closed before the hello: %s",
               c->sess.peer, reason ? reason : "no data");
    } else {
      ps__logx(r->env.log, r->env.log_ud, PS_LOG_WARNING, "dropped",
               c->sess.sensor, NULL, 0, "sensor %s (%s) dropped: %s",
               c->sess.sensor, c->sess.peer,
               reason ? reason : "closed in its handshake");
    }
  } else {
    const ps_log_field f[] = {
        {"packets", t.captured},
        {"bytes", t.bytes},
        {"dropped", t.dropped + t.ifdropped + t.overflow},
        {"kernel_dropped", t.dropped},
        {"interface_dropped", t.ifdropped},
        {"overflow_dropped", t.overflow},
    };
    ps__logx(r->env.log, r->env.log_ud, reason ? PS_LOG_WARNING : PS_LOG_INFO,
             reason ? "dropped" : "disconnected", c->sess.sensor, f,
             sizeof(f) / sizeof(f[0]),
             "sensor %s (%s) %s: %llu packets, %llu bytes, %llu dropped "
             "(kernel %llu, interface %llu, sensor buffer %llu)%s%s",
             c->sess.sensor, c->sess.peer, reason ? "dropped" : "disconnected",
             (unsigned long long)t.captured, (unsigned long long)t.bytes,
             (unsigned long long)(t.dropped + t.ifdropped + t.overflow),
             (unsigned long long)t.dropped, (unsigned long long)t.ifdropped,
             (unsigned long long)t.overflow, reason ? ": " : "",
             reason ? reason : "");
  }
  r->ctr.dropped += t.dropped + t.ifdropped;
  r->ctr.overflow += t.overflow;
  r->ctr.duplicate_batches += c->sess.duplicates;
  if (!c->said_hello) {
    r->ctr.connections_no_hello++;
  } else if (reason) {
    r->ctr.sessions_failed++;
  }
  pending_del(r, c);
  if (c->counted) {
    c->counted = 0;
    r->n_sensors--;
  }
  ps__captures_session_end(&r->caps, &c->sess);
  ps__session_end(&c->sess);
  /* Lingering reads and drops plain bytes: TLS is over either way. */
  ps__tls_free(c->tx.tls);
  c->tx.tls = NULL;
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    r->conns = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  }
  r->ctr.sessions_active--;
  if (linger) {
    /* The message is followed by our end of the stream. */
    shutdown(c->tx.fd, SHUT_WR);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->tx.fd, &ev);
    c->events = EPOLLIN;
    c->lingering = 1;
    c->linger_until = ps__now_ms() + LINGER_MS;
    c->prev = NULL;
    c->next = r->lingering;
    if (r->lingering) {
      r->lingering->prev = c;
    }
    r->lingering = c;
    r->n_lingering++;
    return;
  }
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->tx.fd, NULL);
  ps__transport_close(&c->tx); /* fd -1: closed, see step() */
  c->next = r->dead;
  r->dead = c;
}

/* A refused connection is done lingering: closed for good. */
static void linger_end(ps_receiver *r, conn *c) {
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->tx.fd, NULL);
  ps__transport_close(&c->tx); /* fd -1: closed, see step() */
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    r->lingering = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  }
  r->n_lingering--;
  c->next = r->dead;
  r->dead = c;
}

/* Reads and drops what a refused sensor still sends, within a budget,
 * until it closes. */
static void linger_read(ps_receiver *r, conn *c) {
  uint8_t scratch[READ_CHUNK];
  size_t budget = READ_BUDGET;
  while (budget > 0) {
    ssize_t n = recv(c->tx.fd, scratch, sizeof(scratch), 0);
    if (n > 0) {
      budget -= (size_t)n < budget ? (size_t)n : budget;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    linger_end(r, c);
    return;
  }
}

static void bury_dead(ps_receiver *r) {
  while (r->dead != NULL) {
    conn *c = r->dead;
    r->dead = c->next;
    free(c);
  }
}

/* Closes the connection that has waited longest in its handshake, to
 * make room: a flood of idle or slow connections then costs the flooder
 * its own slots, never a well-behaved sensor (which completes its
 * handshake within milliseconds). Returns 1 if one was closed. */
static int evict_oldest_pending(ps_receiver *r, const char *why) {
  conn *oldest = r->pend_head;
  if (oldest == NULL) {
    return 0;
  }
  char reason[160];
  snprintf(reason, sizeof(reason),
           "%s (%u connections in their handshake, "
           "limit %u)",
           why, r->n_pending, pending_limit(r));
  conn_close(r, oldest, reason);
  return 1;
}

static void pause_listening(ps_receiver *r, int pause) {
  for (unsigned i = 0; i < r->n_listen; i++) {
    if (pause) {
      epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->listen_fd[i], NULL);
    } else {
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
      epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->listen_fd[i], &ev);
    }
  }
}

int ps_receiver_accept(ps_receiver *r) {
  int accepted = 0;
  if (r->listen_paused_until != 0) {
    return 0;
  }
  for (unsigned i = 0; i < r->n_listen; i++) {
    for (;;) {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof(ss);
      int fd = accept4(r->listen_fd[i], (struct sockaddr *)&ss, &sl,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
          /* Out of descriptors: free one held by a connection still in
           * its handshake, or stop accepting for a second (level-
           * triggered epoll would otherwise spin on the backlog). */
          int e = errno;
          int64_t now = ps__now_ms();
          if (r->last_emfile_log == 0 || now - r->last_emfile_log >= 10000) {
            struct rlimit rl;
            unsigned long long lim = 0;
            if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
              lim = (unsigned long long)rl.rlim_cur;
            }
            r->last_emfile_log = now;
            ps__log(r->env.log, r->env.log_ud, PS_LOG_WARNING,
                    "accept: %s (open files limit %llu, %u sensors "
                    "connected, %llu connections refused since the last "
                    "such line): refusing new connections while short; "
                    "raise the open files limit (LimitNOFILE=, ulimit -n)",
                    strerror(e), lim, r->n_sensors,
                    (unsigned long long)r->refused_nofile);
            r->refused_nofile = 0;
          }
          r->refused_nofile++;
          if (evict_oldest_pending(r, "closed to free a descriptor")) {
            continue;
          }
          /* Nobody to evict: refuse what waits in the backlog through
           * the spare descriptor (the sensor hears it at once and
           * retries), then pause: level-triggered epoll would otherwise
           * spin on a backlog that refills. */
          if (r->spare_fd >= 0) {
            close(r->spare_fd);
            r->spare_fd = -1;
            for (int k = 0; k < 1024; k++) {
              int x = accept4(r->listen_fd[i], NULL, NULL,
                              SOCK_NONBLOCK | SOCK_CLOEXEC);
              if (x < 0) {
                break;
              }
              close(x);
              r->refused_nofile++;
              r->ctr.connections++;
              r->ctr.connections_no_hello++;
            }
            r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
          }
          r->listen_paused_until = now + 1000;
          pause_listening(r, 1);
          return accepted;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          ps__log(r->env.log, r->env.log_ud, PS_LOG_WARNING, "accept: %s",
                  strerror(errno));
        }
        break;
      }
      /* The sensor limit is applied when a connection proves who it is
       * (admit()); until then it is one of a bounded number pending. */
      while (r->n_pending >= pending_limit(r) &&
             evict_oldest_pending(r, "closed for a newer connection: too "
                                     "many in their handshake")) {
      }
      char peer[80];
      ps__net_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
      conn *c = calloc(1, sizeof(*c));
      if (c == NULL) {
        close(fd);
        continue;
      }
      c->created_ms = c->last_rx_ms = ps__now_ms();
      ps__tls *tls = NULL;
      if (r->tls_creds != NULL &&
          ps__tls_new(&tls, r->tls_creds, NULL, r->errmsg) != 0) {
        ps__log(r->env.log, r->env.log_ud, PS_LOG_ERROR,
                "connection from %s: %s", peer, r->errmsg);
        close(fd);
        free(c);
        continue;
      }
      ps__transport_init(&c->tx, fd, tls);
      uint8_t rnonce[PS_NONCE_LEN];
      gnutls_rnd(GNUTLS_RND_NONCE, rnonce, sizeof(rnonce));
      ps__session_init(&c->sess, &r->env, r->next_id++, peer, rnonce);
      /* While the output is blocked nobody is read, newcomers neither. */
      c->events = r->blocked ? 0 : EPOLLIN;
      struct epoll_event ev = {.events = c->events, .data.ptr = c};
      if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ps__transport_close(&c->tx);
        free(c);
        continue;
      }
      c->next = r->conns;
      if (r->conns) {
        r->conns->prev = c;
      }
      r->conns = c;
      pending_add(r, c);
      r->ctr.sessions_active++;
      r->ctr.connections++;
      accepted++;
    }
  }
  return accepted;
}

/* Hands what the transport put in the session's input buffer to the
 * session. Returns 0 to keep the connection, 1 when it was closed. */
static int conn_input(ps_receiver *r, conn *c) {
  uint64_t pk = c->sess.packets, by = c->sess.bytes;
  int rc = ps__session_commit(&c->sess, 0);
  if (!c->said_hello && said_hello(c)) {
    c->said_hello = 1;
    r->ctr.sessions_total++;
  }
  r->taken_packets += c->sess.packets - pk;
  r->taken_bytes += c->sess.bytes - by;
  if (rc == PS_ERR_IO) {
    set_blocked(r, c->sess.errmsg);
  }
  if (rc != 0) {
    conn_close(r, c, c->sess.errmsg);
    return 1;
  }
  if (c->sess.state == PS_SESS_DONE) {
    conn_close(r, c, NULL);
    return 1;
  }
  return 0;
}

/* The TLS handshake just completed: the client is known. */
static void conn_tls_ready(ps_receiver *r, conn *c) {
  ps__session_set_tls_subject(&c->sess, ps__tls_peer_subject(c->tx.tls));
  ps__log(r->env.log, r->env.log_ud, PS_LOG_DEBUG, "TLS with %s: %s%s%s",
          c->sess.peer, ps__tls_description(c->tx.tls),
          c->sess.info.tls_subject ? ", client " : "",
          c->sess.info.tls_subject ? c->sess.info.tls_subject : "");
}

/* Reads and processes what a connection has, within a budget. Bytes go
 * straight into the session's input buffer (decrypted there with TLS).
 * Returns 0 to keep the connection, 1 when it was closed. */
static int conn_readable(ps_receiver *r, conn *c) {
  size_t budget = READ_BUDGET;
  char eb[PS_ERRMSG_MAX];
  size_t total = 0;
  while (budget > 0) {
    /* A quiet sensor (its buffer given back) is read in small steps: a
     * heartbeat should not take 64 KiB of each of thousands of idle
     * sessions; a full step reads on in big ones. */
    size_t chunk = c->pending || (c->tx.tls == NULL && c->sess.in.cap == 0)
                       ? PENDING_CHUNK
                       : READ_CHUNK;
    int was_ready = c->tx.tls_ready;
    size_t n;
    int rc = ps__transport_recv(&c->tx, &c->sess.in, chunk, &n, eb);
    if (!was_ready && c->tx.tls_ready) {
      conn_tls_ready(r, c);
    }
    if (n > 0) {
      total += n;
      budget -= n < budget ? n : budget;
      c->last_rx_ms = ps__now_ms();
      c->trimmed = 0;
    }
    /* What came before an error is handled first: it may be the reason
     * (an ERROR frame) or the end of the stream. */
    if ((n > 0 || rc != 0) && conn_input(r, c)) {
      return 1;
    }
    if (rc == PS_ERR_CLOSED && c->tx.eof) {
      conn_close(r, c,
                 c->sess.state == PS_SESS_HELLO  ? "closed before the hello"
                 : c->sess.state == PS_SESS_AUTH ? "closed before "
                                                   "authenticating"
                                                 : "connection closed "
                                                   "without the "
                                                   "end-of-stream message");
      return 1;
    }
    if (rc != 0) {
      char why[PS_ERRMSG_MAX + 16];
      snprintf(why, sizeof(why), "%s%s",
               rc == PS_ERR_SYSTEM ? "read error: " : "",
               rc == PS_ERR_CLOSED ? "TLS closed without the end-of-stream "
                                     "message"
                                   : eb);
      conn_close(r, c, why);
      return 1;
    }
    if (n < chunk) {
      break; /* drained; level-triggered epoll says if more comes */
    }
  }
  if (total < PENDING_CHUNK && ps__buf_size(&c->sess.in) == 0) {
    ps__buf_free(&c->sess.in); /* a heartbeat or a small batch */
  }
  return 0;
}

static int conn_writable(ps_receiver *r, conn *c) {
  char eb[PS_ERRMSG_MAX];
  int rc = ps__transport_send(&c->tx, &c->sess.out, NULL, eb);
  if (rc == 0 && ps__buf_size(&c->sess.out) == 0) {
    ps__buf_free(&c->sess.out); /* acknowledgements are small and rare */
  }
  if (rc != 0) {
    char why[PS_ERRMSG_MAX + 16];
    snprintf(why, sizeof(why), "%s%s",
             rc == PS_ERR_SYSTEM ? "write error: " : "", eb);
    conn_close(r, c, why);
    return 1;
  }
  if (conn_pending(c) > OUT_LIMIT) {
    conn_close(r, c, "the sensor does not read the receiver's messages");
    return 1;
  }
  set_events(r, c);
  return 0;
}

static void check_deadlines(ps_receiver *r) {
  int64_t now = ps__now_ms();
  if (r->listen_paused_until != 0 && now >= r->listen_paused_until) {
    r->listen_paused_until = 0;
    pause_listening(r, 0);
  }
  hslog_flush(r, now, 0);
  conn *next;
  for (conn *c = r->lingering; c != NULL; c = next) {
    next = c->next;
    if (now >= c->linger_until) {
      linger_end(r, c);
    }
  }
  /* The timeouts are seconds: with thousands of sensors, walking them
   * all on every round would cost more than the round's work. */
  if (now < r->next_deadline_ms) {
    return;
  }
  r->next_deadline_ms = now + DEADLINE_WALK_MS;
  for (conn *c = r->conns; c != NULL; c = next) {
    next = c->next;
    if (c->pending && now - c->created_ms > (int64_t)r->handshake_ms) {
      char why[96];
      snprintf(why, sizeof(why), "%s within the handshake timeout of %u s",
               c->sess.state == PS_SESS_AUTH ? "no proof of the shared key"
                                             : "no hello",
               r->handshake_ms / 1000);
      conn_close(r, c, why);
    } else if (now - c->last_rx_ms > (int64_t)r->idle_ms) {
      char why[96];
      snprintf(why, sizeof(why),
               "silent for longer than the idle timeout "
               "of %u s",
               r->idle_ms / 1000);
      conn_close(r, c, why);
    } else if (!c->trimmed && now - c->last_rx_ms > IDLE_TRIM_MS) {
      /* A quiet sensor keeps a few KiB, not its largest batch. */
      ps__session_trim(&c->sess);
      if (c->tx.tls != NULL) {
        ps__buf *b[2] = {ps__tls_cin(c->tx.tls), ps__tls_cout(c->tx.tls)};
        for (int k = 0; k < 2; k++) {
          if (ps__buf_size(b[k]) == 0) {
            ps__buf_free(b[k]);
          }
        }
      }
      c->trimmed = 1;
      r->trimmed_since++;
    }
  }
  /* What quiet sessions gave back lies between live blocks of the heap:
   * return its pages to the system (at most every 10 s). */
  if (r->trimmed_since > 0 && now - r->last_malloc_trim >= 10000) {
    r->trimmed_since = 0;
    r->last_malloc_trim = now;
    malloc_trim(0);
  }
}

/* An output (or the journal) cannot write, e.g. the disk is full: read
 * nothing more, acknowledge nothing, and try again every second. The
 * sensors keep what is not acknowledged and send it once this clears. */
static void set_blocked(ps_receiver *r, const char *why) {
  if (!r->blocked) {
    ps__log(r->env.log, r->env.log_ud, PS_LOG_ERROR,
            "%s: not acknowledging anything until it can write (sensors "
            "keep their data); retrying every %d s",
            why, RETRY_WRITE_MS / 1000);
    r->ctr.write_stalls++;
    r->blocked = 1;
    for (conn *c = r->conns; c != NULL; c = c->next) {
      set_events(r, c);
    }
  }
  r->retry_at_ms = ps__now_ms() + RETRY_WRITE_MS;
}

/* For the fault tests only (tests/journal_restart.sh, through
 * tests/ps-receiver-fp): the receiver kills itself in its Nth round of
 * writes, right before or right after the journal record, so the two
 * windows a crash can hit are tested deterministically. Set only by
 * ps__receiver_set_failpoint(), never from the environment: the shipped
 * library and tools cannot be made to kill themselves. */
int ps__receiver_set_failpoint(ps_receiver *r, const char *spec) {
  char *end;
  if (strncmp(spec, "before-journal:", 15) == 0) {
    r->fail_where = 1;
    spec += 15;
  } else if (strncmp(spec, "after-journal:", 14) == 0) {
    r->fail_where = 2;
    spec += 14;
  } else {
    return PS_ERR_INVALID;
  }
  r->fail_round = strtoul(spec, &end, 10);
  if (end == spec || *end != '\0') {
    r->fail_where = 0;
    return PS_ERR_INVALID;
  }
  return 0;
}

static void failpoint(ps_receiver *r, int where) {
  if (r->fail_where == where && r->rounds == r->fail_round) {
    ps__log(r->env.log, r->env.log_ud, PS_LOG_WARNING,
            "failpoint: killing myself in round %lu", r->rounds);
    raise(SIGKILL);
  }
}

/* An output failed for good (a file that can never be created, such as
 * one whose name a long sensor name makes too long): the sensors written
 * to it are refused with the reason, before anything of theirs is
 * acknowledged (what it held was dropped); the others go on. */
static void refuse_failed(ps_receiver *r) {
  unsigned n = 0;
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    n += r->sinks[i]->failures;
  }
  if (n == r->failures_seen) {
    return;
  }
  r->failures_seen = n;
  conn *next;
  for (conn *c = r->conns; c != NULL; c = next) {
    next = c->next;
    if (ps__session_check_outputs(&c->sess, 0) != 0) {
      conn_close(r, c, c->sess.errmsg);
    }
  }
}

/* Everything taken is in the outputs now. */
static void count_written(ps_receiver *r) {
  r->ctr.packets += r->taken_packets;
  r->ctr.bytes += r->taken_bytes;
  r->taken_packets = r->taken_bytes = 0;
}

/* Writes what the outputs hold and records it in the journal. Returns
 * 0 when everything taken so far is in the files. */
static int commit_outputs(ps_receiver *r) {
  r->rounds++;
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    ps_sink *sk = r->sinks[i];
    int rc = ps__sink_flush(sk);
    if (sk->ops->live) {
      continue; /* never holds back acknowledgement */
    }
    if (rc == PS_ERR_CLOSED) {
      /* Standard output's reader left: nothing can be written again, so
       * stop (the sensors keep what was not acknowledged). */
      if (!r->gone) {
        r->gone = 1;
        ps__seterr(r->errmsg, PS_ERR_IO, "%s: stopping", sk->errmsg);
        ps__log(r->env.log, r->env.log_ud, PS_LOG_ERROR, "%s", r->errmsg);
      }
      return -1;
    }
    if (rc != 0) {
      refuse_failed(r);
      set_blocked(r, sk->errmsg);
      return -1; /* nothing is acknowledged that is not written */
    }
  }
  /* The captures' own files are durable outputs like -w. */
  for (ps__capture *c = r->caps.head; c != NULL; c = c->next) {
    if (c->sink != NULL && ps__sink_flush(c->sink) != 0) {
      set_blocked(r, c->sink->errmsg);
      return -1;
    }
  }
  refuse_failed(r);
  if (r->journal != NULL) {
    ps__file_mark mark_buf[PS_MAX_SINKS * PCAP_MARKS];
    ps__file_mark *m = mark_buf;
    unsigned n = 0, n_cap = 0;
    for (ps__capture *c = r->caps.head; c != NULL; c = c->next) {
      n_cap += c->sink != NULL;
    }
    if (n_cap > 0) {
      /* The captures' own files join them. */
      m = malloc((PS_MAX_SINKS + n_cap) * PCAP_MARKS * sizeof(*m));
      if (m == NULL) {
        set_blocked(r, "out of memory");
        return -1;
      }
    }
    for (unsigned i = 0; i < r->env.n_sinks; i++) {
      ps_sink *sk = r->sinks[i];
      n += ps__sink_marks(sk, m + n, PCAP_MARKS);
    }
    for (ps__capture *c = r->caps.head; c != NULL; c = c->next) {
      if (c->sink != NULL) {
        n += ps__sink_marks(c->sink, m + n, PCAP_MARKS);
      }
    }
    char eb[PS_ERRMSG_MAX];
    failpoint(r, 1);
    int jrc = ps__journal_commit(r->journal, m, n, &r->streams, eb);
    if (m != mark_buf) {
      free(m);
    }
    if (jrc != 0) {
      set_blocked(r, eb);
      return -1;
    }
    r->journal_commits++;
  }
  failpoint(r, 2);
  ps__captures_close_idle(&r->caps);
  for (ps__capture *c = r->caps.head; c != NULL; c = c->next) {
    if (c->counted) {
      c->counted = 0;
      r->caps.dirty |= 2;
    }
  }
  caps_save(r, 0);
  count_written(r);
  if (r->blocked) {
    r->blocked = 0;
    ps__log(r->env.log, r->env.log_ud, PS_LOG_WARNING,
            "the output is writable again: acknowledging and reading");
    for (conn *c = r->conns; c != NULL; c = c->next) {
      set_events(r, c);
    }
  }
  return 0;
}

/* An acknowledgement of batch seq waits until the async output keeps
 * everything handed on up to token tok. */
static void hold_ack(ps_receiver *r, conn *c, uint64_t seq, uint64_t tok) {
  if (c->nwait == 0) {
    r->n_waiting++;
  }
  if (c->nwait == 0 || (c->nwait == 1 && c->wtok[0] == tok)) {
    c->wseq[0] = seq;
    c->wtok[0] = tok;
    c->nwait = 1;
  } else {
    c->wseq[1] = seq;
    c->wtok[1] = tok;
    c->nwait = 2;
  }
}

/* Sends the acknowledgements the async output now allows: the sensor
 * hears of a batch only once Kafka's delivery reports say every message
 * handed on before it is kept. */
static void release_acks(ps_receiver *r) {
  if (r->async == NULL || r->n_waiting == 0) {
    return;
  }
  uint64_t durable = r->async->ops->durable(r->async);
  conn *next;
  for (conn *c = r->conns; c != NULL; c = next) {
    next = c->next;
    if (c->nwait == 0 || c->wtok[0] > durable) {
      continue;
    }
    uint64_t seq = c->wseq[0];
    if (c->nwait == 2 && c->wtok[1] <= durable) {
      seq = c->wseq[1];
      c->nwait = 0;
    } else if (c->nwait == 2) {
      c->wseq[0] = c->wseq[1];
      c->wtok[0] = c->wtok[1];
      c->nwait = 1;
    } else {
      c->nwait = 0;
    }
    if (c->nwait == 0) {
      r->n_waiting--;
    }
    if (ps__session_ack_seq(&c->sess, seq) != 0) {
      conn_close(r, c, c->sess.errmsg);
    } else if (c->sess.state == PS_SESS_DONE) {
      conn_close(r, c, NULL);
    } else {
      conn_writable(r, c);
    }
  }
}

/* Serves the async output's reports; it failing for good stops the
 * receiver (the sensors keep what was not acknowledged). */
static void poll_async(ps_receiver *r) {
  if (r->async == NULL || r->async->ops->poll == NULL) {
    return;
  }
  if (r->async->ops->poll(r->async) == PS_ERR_CLOSED && !r->gone) {
    r->gone = 1;
    ps__seterr(r->errmsg, PS_ERR_IO,
               "%s: stopping (sensors keep what was not acknowledged)",
               r->async->errmsg);
    ps__log(r->env.log, r->env.log_ud, PS_LOG_ERROR, "%s", r->errmsg);
  }
}

/* Once per loop round: one write per output for every batch the round
 * took, the journal record, then the acknowledgements (a batch is
 * acknowledged only once it is written). With many quiet sensors this
 * turns a write and a send per batch into one write per round and a send
 * per sensor. */
static void ack_round(ps_receiver *r) {
  if (r->blocked) {
    if (ps__now_ms() < r->retry_at_ms) {
      return;
    }
  } else if (r->due == NULL ||
             (!r->uncommitted && !r->ack_urgent && r->ack_at_ms != 0 &&
              ps__now_ms() < r->ack_at_ms)) {
    /* Nothing new to commit, nothing to acknowledge yet (with no time
     * set, the list below has not been looked at: it is now). */
    return;
  }
  if (commit_outputs(r) != 0) {
    return;
  }
  r->uncommitted = 0;
  r->ack_urgent = 0;
  if (r->async != NULL) {
    uint64_t tok = r->async->ops->token(r->async);
    while (r->due != NULL) {
      conn *c = r->due;
      due_del(r, c);
      if (c->sess.ack_due) {
        c->sess.ack_due = 0;
        hold_ack(r, c, c->sess.last_seq, tok);
      }
    }
    return;
  }
  int64_t now = ps__now_ms();
  r->ack_at_ms = 0;
  conn *next;
  for (conn *c = r->due; c != NULL; c = next) {
    next = c->dnext;
    if (c->sess.ack_due && !must_ack_now(r, c, now)) {
      int64_t at = c->acked_ms + ACK_DELAY_MS;
      if (r->ack_at_ms == 0 || at < r->ack_at_ms) {
        r->ack_at_ms = at;
      }
      continue; /* covered by a later acknowledgement */
    }
    due_del(r, c);
    if (c->sess.ack_due) {
      c->acked_ms = now;
      c->acked_bytes = c->sess.bytes;
      if (ps__session_ack(&c->sess) != 0) {
        conn_close(r, c, c->sess.errmsg);
      } else if (c->sess.state == PS_SESS_DONE) {
        conn_close(r, c, NULL); /* the close confirmation goes out */
      } else {
        conn_writable(r, c);
      }
    }
  }
}

#ifdef HAVE_KAFKA
static int kin_commit(void *ud) {
  return commit_outputs(ud);
}

static void kin_counters(ps_receiver *r) {
  if (r->kin != NULL) {
    ps__kin_counters k;
    ps__kin_get_counters(r->kin, &k);
    r->ctr.kafka_messages = k.messages;
    r->ctr.kafka_duplicates = k.duplicates;
    r->ctr.kafka_gaps = k.gaps;
    r->ctr.kafka_bad = k.bad;
    r->ctr.packets = k.packets;
    r->ctr.bytes = k.bytes;
    r->ctr.sessions_total = k.streams;
  }
}
#endif

int ps_receiver_consume_kafka(ps_receiver *r,
                              const ps_kafka_input_options *opts, size_t size) {
#ifdef HAVE_KAFKA
  ps_kafka_input_options o;
  if (ps__copy_in(&o, sizeof(o), opts, size, sizeof(o)) != 0) {
    return ps__seterr(r->errmsg, PS_ERR_INVALID, "bad Kafka input options");
  }
  if (o.brokers == NULL || *o.brokers == '\0' || o.topic == NULL ||
      *o.topic == '\0' || o.group == NULL || *o.group == '\0') {
    return ps__seterr(r->errmsg, PS_ERR_INVALID,
                      "the Kafka input needs brokers, a topic and a group");
  }
  if (r->kin != NULL || r->env.n_sinks == 0) {
    return ps__seterr(r->errmsg, PS_ERR_STATE,
                      r->kin ? "the Kafka input is set already"
                             : "add the outputs before the Kafka input");
  }
  ps__kin_env env = {.sinks = r->sinks,
                     .n_sinks = r->env.n_sinks,
                     .streams = &r->streams,
                     .log = r->env.log,
                     .log_ud = r->env.log_ud,
                     .commit = kin_commit,
                     .ud = r,
                     .max_streams = &r->max_sessions};
  int rc = ps__kin_new(&r->kin, &env, o.brokers, o.topic, o.group, o.properties,
                       r->errmsg);
  if (rc != 0) {
    return rc;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_KIN};
  epoll_ctl(r->epfd, EPOLL_CTL_ADD, ps__kin_fd(r->kin), &ev);
  return 0;
#else
  (void)opts;
  (void)size;
  return ps__seterr(r->errmsg, PS_ERR_STATE,
                    "this library was built without Kafka (librdkafka)");
#endif
}

static int step(ps_receiver *r, int timeout_ms) {
  struct epoll_event evs[64];
  int n = epoll_wait(r->epfd, evs, 64, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) {
      return ps__seterr(r->errmsg, PS_ERR_SYSTEM, "epoll_wait: %s",
                        strerror(errno));
    }
    n = 0;
  }
  for (int i = 0; i < n; i++) {
    if (evs[i].data.u64 == TAG_STOP) {
      r->stopping = 1;
      continue;
    }
    if (evs[i].data.u64 == TAG_LISTEN) {
      ps_receiver_accept(r);
      continue;
    }
    if (evs[i].data.u64 == TAG_SINK || evs[i].data.u64 == TAG_KIN) {
      continue; /* served below, every round */
    }
    if (evs[i].data.u64 == TAG_ADMIN) {
      continue; /* served once per step, below */
    }
    ps__watch *w = evs[i].data.ptr;
    if (w->ready != NULL) {
      w->ready(w, evs[i].events); /* a live output's socket */
      continue;
    }
    conn *c = evs[i].data.ptr;
    /* Closed earlier in this step (by its own events or to make room):
     * still allocated until bury_dead(), and skipped. */
    if (c->tx.fd < 0) {
      continue;
    }
    if (c->lingering) {
      linger_read(r, c);
      continue;
    }
    if ((evs[i].events & EPOLLOUT) && conn_writable(r, c)) {
      continue;
    }
    if (r->blocked && !(evs[i].events & EPOLLIN)) {
      if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
        /* Gone while we could not read it: it resends when back. */
        conn_close(r, c, "connection lost while the output was blocked");
      }
      continue;
    }
    if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
        conn_readable(r, c)) {
      continue;
    }
    if (!conn_writable(r, c)) {
      due_add(r, c);
    }
  }
#ifdef HAVE_KAFKA
  if (r->kin != NULL) {
    int blocked = r->blocked && ps__now_ms() < r->retry_at_ms;
    ps__kin_step(r->kin, blocked);
    kin_counters(r);
  }
#endif
  ack_round(r);
  poll_async(r);
  release_acks(r);
  check_deadlines(r);
  if (r->admin != NULL) {
    /* Answers see the round's writes; MHD also runs its own timeouts
     * here. */
    ps__captures_tick(&r->caps, ps__now_ms());
    ps__admin_run(r->admin);
    /* A capture started or a state that changed is kept at once (a
     * round without packets commits no outputs). */
    if (r->caps.dirty & 1) {
      caps_save(r, 0);
    }
  }
  bury_dead(r);
  int64_t now = ps__now_ms();
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    ps__sink_tick(r->sinks[i], now);
  }
  if (r->gone) {
    return PS_ERR_IO;
  }
  return r->stopping ? PS_ERR_STOPPED : 0;
}

int ps_receiver_process(ps_receiver *r) {
  return step(r, 0);
}

int ps_receiver_shutdown(ps_receiver *r) {
  /* Finish what the sensors already sent: take what is in the socket
   * buffers before closing (sensors that completed their stream leave on
   * their own). */
  conn *next;
  for (conn *c = r->conns; c != NULL; c = next) {
    next = c->next;
    if (!conn_readable(r, c)) {
      conn_writable(r, c);
    }
  }
  /* Acknowledge what was taken, so the sensors do not resend it to the
   * next receiver (the acknowledgements go out as each one closes). */
  int committed = commit_outputs(r) == 0;
  if (committed && r->async != NULL) {
    /* Kafka: acknowledge what its reports say it keeps, waiting up to
     * 10 s for them; the rest the sensors resend to the next receiver. */
    uint64_t tok = r->async->ops->token(r->async);
    for (conn *c = r->conns; c != NULL; c = c->next) {
      if (c->sess.ack_due) {
        c->sess.ack_due = 0;
        hold_ack(r, c, c->sess.last_seq, tok);
      }
    }
    int64_t until = ps__now_ms() + 10000;
    while (!r->gone && r->async->ops->durable(r->async) < tok &&
           ps__now_ms() < until) {
      struct epoll_event ev;
      epoll_wait(r->epfd, &ev, 1, 50);
      poll_async(r);
    }
    release_acks(r);
  } else if (committed) {
    for (conn *c = r->conns; c != NULL; c = c->next) {
      if (c->sess.ack_due) {
        ps__session_ack(&c->sess);
      }
    }
  }
#ifdef HAVE_KAFKA
  if (r->kin != NULL && !r->shut) {
    ps__kin_close(r->kin);
    kin_counters(r);
  }
#endif
  while (r->conns != NULL) {
    conn_close(r, r->conns,
               r->conns->sess.state == PS_SESS_DONE
                   ? NULL
                   : "the receiver is shutting down");
  }
  while (r->lingering != NULL) {
    linger_end(r, r->lingering);
  }
  bury_dead(r);
  hslog_flush(r, ps__now_ms(), 1);
  if (r->shut) {
    return 0;
  }
  r->shut = 1;
  int rc = 0;
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    ps_sink *sk = r->sinks[i];
    int e = ps__sink_close(sk);
    if (e != 0 && rc == 0) {
      rc = ps__seterr(r->errmsg, e, "%s", sk->errmsg);
    }
  }
  /* The captures' own files too (all their interfaces are gone). */
  for (ps__capture *c = r->caps.head; c != NULL; c = c->next) {
    if (c->sink != NULL) {
      int e = ps__sink_close(c->sink);
      if (e != 0 && rc == 0) {
        rc = ps__seterr(r->errmsg, e, "%s", c->sink->errmsg);
      }
      ps_sink_free(c->sink);
      c->sink = NULL;
    }
  }
  caps_save(r, 1);
  if (rc == 0) {
    count_written(r); /* (what the last flush wrote) */
  }
  if (r->journal != NULL && rc == 0) {
    /* The files are closed: record their final sizes. */
    char eb[PS_ERRMSG_MAX];
    if (ps__journal_commit(r->journal, NULL, 0, &r->streams, eb) != 0) {
      rc = ps__seterr(r->errmsg, PS_ERR_IO, "%s", eb);
    }
  }
  return rc;
}

int ps_receiver_run(ps_receiver *r) {
  int has_input = r->n_listen > 0;
#ifdef HAVE_KAFKA
  has_input |= r->kin != NULL;
#endif
  if (!has_input) {
    return ps__seterr(r->errmsg, PS_ERR_STATE, "the receiver listens nowhere");
  }
  int rc;
  do {
    rc = step(r, ps_receiver_get_timeout_ms(r));
  } while (rc == 0);
  char why[PS_ERRMSG_MAX];
  snprintf(why, sizeof(why), "%s", r->errmsg);
  int src = ps_receiver_shutdown(r);
  if (rc == PS_ERR_STOPPED) {
    rc = src;
  } else {
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", why);
  }
  return rc;
}

void ps_receiver_free(ps_receiver *r) {
  if (r == NULL) {
    return;
  }
  ps_receiver_shutdown(r);
#ifdef HAVE_KAFKA
  ps__kin_free(r->kin);
#endif
  ps__admin_free(r->admin);
  ps__key_clear(&r->admin_token, &r->admin_token_len);
  ps__admin_tls_clear(&r->admin_tls);
  caps_save(r, 1);
  ps__captures_free(&r->caps);
  free(r->capture_dir);
  free(r->caps_path);
  ps__fleet_free(&r->fleet);
  for (unsigned i = 0; i < r->env.n_sinks; i++) {
    ps_sink_free(r->sinks[i]);
  }
  for (unsigned i = 0; i < r->n_listen; i++) {
    close(r->listen_fd[i]);
  }
  if (r->spare_fd >= 0) {
    close(r->spare_fd);
  }
  close(r->stop_fd);
  close(r->epfd);
  ps__journal_close(r->journal);
  ps__streamtab_free(&r->streams);
  ps__tls_creds_free(r->tls_creds);
  ps__key_clear(&r->auth_key, &r->auth_len);
  free(r);
}
