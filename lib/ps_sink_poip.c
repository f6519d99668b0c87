/* PCAP-over-IP: a live output that serves a capture-file stream to TCP
 * consumers (tshark -i TCP@..., Arkime, NetworkMiner, Zeek), listening
 * for them or connecting out to one.
 *
 * Each consumer (a client here, whichever side connected) has its own
 * writer of the shared format table (ps_fmt.h: the same record encoder
 * the file sink uses), since a stream numbers its pcapng interfaces
 * from 0 and a classic pcap stream has the link type of its start. Its
 * bytes wait in a bounded queue of whole records; a record that does not
 * fit is dropped for that client only, so a stopped or slow consumer
 * never holds back the receiver, the files or another consumer, and what
 * it gets stays a valid capture. The sockets are non-blocking and
 * watched by the receiver's epoll loop (ps__sink_loop): no thread. */
#include "config.h"

#include "ps_fmt.h"
#include "ps_net.h"
#include "ps_sink.h"
#include "ps_tls.h"
#include "ps_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_QUEUE (4u << 20)
#define MIN_QUEUE (64u << 10)
#define DEFAULT_MAX_CLIENTS 64
#define SEND_HIGH_WATER (256u << 10) /* send as the queue passes this */
#define READ_BUDGET (64u << 10)      /* a client's input per wakeup */
#define BACKOFF_MIN_MS 500
#define MAX_ALLOW 32
#define MAX_FILTERS 32
#define REFUSE_LOG_WINDOW_MS 10000
#define REFUSE_LOG_MAX 10
#define CLOSE_DRAIN_MS 1000 /* at the end, queued records get this long */
#define DROP_LOG_MS 10000   /* a client's "does not keep up": this often */
/* A record's bytes beyond the packet's: pcapng's EPB (32 and padding)
 * is the largest. */
#define RECORD_OVERHEAD 40

typedef struct poip_sink poip_sink;

/* One sensor interface, as the receiver announced it (the sink's slot
 * for it). */
typedef struct poip_iface {
  struct poip_iface *next, *prev;
  unsigned idx; /* its entry in every client's slots */
  int selected; /* its sensor matches the sensor pattern */
  char *sensor, *peer, *name;
  ps_session_info s;
  ps_interface_info info;
  const struct bpf_program *prog; /* the filter for its link type */
  int no_filter;                  /* the filter cannot apply: send none */
  int warned;                     /* its link-type skip was logged */
} poip_iface;

/* Per interface, in a client: not in its stream, in it, or of a link
 * type its stream cannot hold. */
enum { IF_NONE = 0, IF_JOINED, IF_SKIPPED };

typedef struct poip_client {
  ps__watch w;
  poip_sink *ps;
  struct poip_client *next, *prev;
  ps__transport tx;
  ps__buf out; /* whole records; the front may be partly sent */
  ps__buf scratch;
  ps__fmtw *fw;
  void **slots;
  uint8_t *state;
  unsigned n_slots;
  uint32_t events;
  int has_header; /* classic pcap waits for its first interface */
  int dead;
  int dropping;
  int drop_logged;     /* this episode's start was logged */
  int64_t drop_log_ms; /* when a start was last logged */
  uint64_t drop_run;   /* dropped since the last "keeps up" line */
  ps_pcap_over_ip_client_counters ctr;
} poip_client;

typedef struct poip_listen {
  ps__watch w;
  poip_sink *ps;
  int fd;
} poip_listen;

typedef struct allow_net {
  int family;
  uint8_t addr[16];
  unsigned bits;
} allow_net;

typedef struct filter_prog {
  uint32_t linktype;
  int ok;
  struct bpf_program prog;
} filter_prog;

struct poip_sink {
  ps_sink base;
  int connect_out;
  char where[300]; /* "127.0.0.1:19000", for log lines */
  const ps__fmt *fmt;
  ps__fmt_params params;
  ps_pcap_over_ip_format format;
  char *sensor_glob, *filter;
  unsigned max_clients;
  uint64_t queue;
  allow_net allow[MAX_ALLOW];
  unsigned n_allow;
  ps__tls_creds *creds;
  ps__sink_loop *loop;
  poip_listen lis[PS_MAX_LISTENERS];
  unsigned n_lis;
  /* Connection out. */
  char *host, *server_name;
  uint16_t port;
  unsigned backoff_max_ms, backoff_ms;
  int64_t retry_at;
  ps__net_lookup *lookup;
  struct addrinfo *ai, *ai_next;
  ps__watch cw; /* the connect in progress */
  int cfd;
  int64_t connect_until;
  int64_t connected_at;
  int conn_failing; /* the last attempt failed (logged once per outage) */
  /* Clients. */
  poip_client *clients, *clients_tail, *dead;
  unsigned n_clients;
  poip_iface *ifaces;
  uint8_t *idx_used;
  unsigned idx_cap;
  filter_prog filters[MAX_FILTERS];
  unsigned n_filters;
  int noted;
  uint64_t next_id;
  uint64_t served, refused_limit, refused_allow;
  int64_t refuse_log_since;
  unsigned refuse_log_n;
  uint64_t refuse_log_hidden;
  int64_t accept_paused_until; /* out of descriptors: listeners unwatched */
  int64_t emfile_log_ms;
  int closed;
};

static const ps__sink_ops poip_ops;

/* ---------------- clients ---------------- */

static void client_set_events(poip_client *c) {
  uint32_t want =
      EPOLLIN | (ps__transport_pending(&c->tx, &c->out) > 0 ? EPOLLOUT : 0);
  if (want != c->events && c->ps->loop != NULL) {
    c->ps->loop->watch(c->ps->loop, c->tx.fd, want, &c->w, 0);
    c->events = want;
  }
}

static void client_counts_line(poip_client *c, const char *what,
                               const char *reason) {
  char since[32];
  time_t t = (time_t)c->ctr.connected_since;
  struct tm tm;
  strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
  const ps_log_field f[] = {
      {"packets", c->ctr.packets},
      {"dropped", c->ctr.dropped},
      {"skipped", c->ctr.skipped},
      {"bytes", c->ctr.bytes},
      {"connected_since", (uint64_t)c->ctr.connected_since},
  };
  ps__logx(
      c->ps->base.log, c->ps->base.log_ud,
      reason ? PS_LOG_WARNING : PS_LOG_INFO, "pcap_over_ip_client", NULL, f,
      sizeof(f) / sizeof(f[0]),
      "pcap-over-ip %s client %s %s: %llu packets sent, %llu dropped (queue "
      "full), %llu skipped (not in its %s stream), %llu bytes; connected "
      "since %s%s%s",
      c->ps->where, c->ctr.peer, what, (unsigned long long)c->ctr.packets,
      (unsigned long long)c->ctr.dropped, (unsigned long long)c->ctr.skipped,
      c->ps->fmt->name, (unsigned long long)c->ctr.bytes, since,
      reason ? ": " : "", reason ? reason : "");
}

/* Ends a client: one line with its counts; freed at the next tick (its
 * events may still be in this round's batch). */
static void client_close(poip_client *c, const char *what, const char *reason) {
  poip_sink *ps = c->ps;
  if (c->dead) {
    return;
  }
  c->dead = 1;
  client_counts_line(c, what, reason);
  if (ps->loop != NULL && c->tx.fd >= 0) {
    ps->loop->unwatch(ps->loop, c->tx.fd);
  }
  ps__transport_close(&c->tx);
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    ps->clients = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  } else {
    ps->clients_tail = c->prev;
  }
  ps->n_clients--;
  c->next = ps->dead;
  ps->dead = c;
  if (ps->connect_out) {
    /* A consumer that stayed a while gets a quick reconnect; one that
     * drops us at once, the growing back-off (else a consumer refusing
     * us by closing would see a connection every 500 ms for ever). */
    if (ps__now_ms() - ps->connected_at > 10000) {
      ps->backoff_ms = BACKOFF_MIN_MS;
    }
    ps->retry_at = ps__now_ms() + ps->backoff_ms;
    ps->backoff_ms = ps->backoff_ms * 2 > ps->backoff_max_ms
                         ? ps->backoff_max_ms
                         : ps->backoff_ms * 2;
  }
}

static void client_free(poip_client *c) {
  if (c->fw != NULL) {
    for (unsigned i = 0; i < c->n_slots; i++) {
      if (c->state[i] == IF_JOINED) {
        c->fw->fmt->leave(c->fw, c->slots[i]);
      }
    }
    c->fw->fmt->destroy(c->fw);
  }
  ps__transport_close(&c->tx);
  ps__buf_free(&c->out);
  ps__buf_free(&c->scratch);
  free(c->slots);
  free(c->state);
  free(c);
}

/* Writes what the socket takes now. Returns 0, or -1 when the client
 * was closed. */
static int client_send(poip_client *c) {
  char eb[PS_ERRMSG_MAX];
  int rc = ps__transport_send(&c->tx, &c->out, &c->ctr.bytes, eb);
  if (rc != 0) {
    char why[PS_ERRMSG_MAX + 16];
    snprintf(why, sizeof(why), "write error: %s", eb);
    client_close(c, "dropped", why);
    return -1;
  }
  client_set_events(c);
  return 0;
}

static int client_grow(poip_client *c, unsigned idx) {
  if (idx < c->n_slots) {
    return 0;
  }
  unsigned n = c->n_slots ? c->n_slots : 8;
  while (n <= idx) {
    n *= 2;
  }
  void **sl = realloc(c->slots, n * sizeof(*sl));
  if (sl == NULL) {
    return PS_ERR_NOMEM;
  }
  c->slots = sl;
  uint8_t *st = realloc(c->state, n);
  if (st == NULL) {
    return PS_ERR_NOMEM;
  }
  c->state = st;
  memset(c->slots + c->n_slots, 0, (n - c->n_slots) * sizeof(*sl));
  memset(c->state + c->n_slots, 0, n - c->n_slots);
  c->n_slots = n;
  return 0;
}

/* An interface joins a client's stream: out is the stream (after its
 * header), or NULL before it (the header lists it). */
static int client_join(poip_client *c, poip_iface *pi, ps__buf *out) {
  poip_sink *ps = c->ps;
  if (!pi->selected) {
    return 0;
  }
  if (client_grow(c, pi->idx) != 0) {
    return PS_ERR_NOMEM;
  }
  if (!ps->fmt->accepts(c->fw, pi->info.linktype)) {
    c->state[pi->idx] = IF_SKIPPED;
    return 0;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char note[400];
  if (ps->fmt->join(c->fw, &pi->s, &pi->info, &now, out, &c->slots[pi->idx],
                    note, sizeof(note)) != 0) {
    return PS_ERR_NOMEM;
  }
  c->state[pi->idx] = IF_JOINED;
  if (note[0] != '\0' && !ps->noted) {
    ps->noted = 1;
    ps__sink_log(&ps->base, PS_LOG_INFO, "pcap-over-ip %s: %s", ps->where,
                 note);
  }
  return 0;
}

static void client_ready(ps__watch *w, uint32_t events);

/* A new consumer over fd (connected; tls set up or NULL): its stream
 * starts with a header listing the interfaces active now. */
static poip_client *client_new(poip_sink *ps, int fd, ps__tls *tls,
                               const char *peer) {
  poip_client *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    ps__tls_free(tls);
    close(fd);
    return NULL;
  }
  c->w.ready = client_ready;
  c->ps = ps;
  ps__transport_init(&c->tx, fd, tls);
  c->ctr.id = ++ps->next_id;
  snprintf(c->ctr.peer, sizeof(c->ctr.peer), "%s", peer);
  c->ctr.connected_since = (int64_t)time(NULL);
  int rc = (c->fw = ps->fmt->create(ps->fmt, &ps->params)) ? 0 : PS_ERR_NOMEM;
  for (poip_iface *pi = ps->ifaces; pi != NULL && rc == 0; pi = pi->next) {
    rc = client_join(c, pi, NULL);
  }
  /* A classic pcap stream no interface came to yet has no link type:
   * its header comes with the first one (the consumer waits for it). */
  if (rc == 0) {
    int h = ps->fmt->header(c->fw, &c->out, 0);
    if (h < 0) {
      rc = PS_ERR_NOMEM;
    }
    c->has_header = h == 1;
  }
  if (rc == 0 && ps->loop->watch(ps->loop, fd, EPOLLIN, &c->w, 1) != 0) {
    rc = PS_ERR_SYSTEM;
  }
  if (rc != 0) {
    ps__sink_log(&ps->base, PS_LOG_ERROR, "pcap-over-ip %s: client %s: %s",
                 ps->where, peer,
                 rc == PS_ERR_NOMEM ? "out of memory" : strerror(errno));
    client_free(c);
    return NULL;
  }
  c->events = EPOLLIN;
  c->prev = ps->clients_tail;
  if (ps->clients_tail) {
    ps->clients_tail->next = c;
  } else {
    ps->clients = c;
  }
  ps->clients_tail = c;
  ps->n_clients++;
  ps->served++;
  ps__sink_log(&ps->base, PS_LOG_INFO,
               "pcap-over-ip %s: client %s connected (%s stream%s)", ps->where,
               peer,
               ps->format == PS_PCAP_OVER_IP_PCAPNG    ? "pcapng"
               : ps->format == PS_PCAP_OVER_IP_PCAP_NS ? "pcap-ns"
                                                       : "pcap",
               tls ? ", TLS" : "");
  client_send(c);
  return c;
}

/* A consumer says nothing in PCAP-over-IP: what it sends (TLS aside) is
 * read and dropped, so it can neither fill our buffers nor make us
 * block; its end of the stream ends the client. */
static void client_readable(poip_client *c) {
  char eb[PS_ERRMSG_MAX];
  size_t budget = READ_BUDGET;
  while (budget > 0 && !c->dead) {
    size_t n;
    int rc = ps__transport_recv(&c->tx, &c->scratch, 16384, &n, eb);
    ps__buf_reset(&c->scratch);
    if (rc == PS_ERR_CLOSED) {
      client_close(c, "disconnected", NULL);
      return;
    }
    if (rc != 0) {
      char why[PS_ERRMSG_MAX + 16];
      snprintf(why, sizeof(why), "%s%s",
               rc == PS_ERR_SYSTEM ? "read error: " : "", eb);
      client_close(c, "dropped", why);
      return;
    }
    if (n == 0) {
      break;
    }
    budget -= n < budget ? n : budget;
  }
  /* The TLS handshake may have just finished: the stream can go. */
  if (!c->dead && c->tx.tls != NULL) {
    client_send(c);
  }
}

static void client_ready(ps__watch *w, uint32_t events) {
  poip_client *c = (poip_client *)w;
  if (c->dead) {
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    client_readable(c);
  }
  if (!c->dead && (events & EPOLLOUT)) {
    client_send(c);
  }
}

/* ---------------- listening ---------------- */

static int allowed(const poip_sink *ps, const struct sockaddr_storage *ss) {
  if (ps->n_allow == 0) {
    return 1;
  }
  uint8_t a[16];
  int fam;
  if (ss->ss_family == AF_INET) {
    fam = AF_INET;
    memcpy(a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
  } else if (ss->ss_family == AF_INET6) {
    const uint8_t *p = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(p, mapped, 12) == 0) {
      fam = AF_INET; /* an IPv4 client of a dual-stack socket */
      memcpy(a, p + 12, 4);
    } else {
      fam = AF_INET6;
      memcpy(a, p, 16);
    }
  } else {
    return 0;
  }
  for (unsigned i = 0; i < ps->n_allow; i++) {
    const allow_net *n = &ps->allow[i];
    if (n->family != fam) {
      continue;
    }
    unsigned full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(a, n->addr, full) != 0) {
      continue;
    }
    if (rest == 0 ||
        ((a[full] ^ n->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Lines about refused clients: anyone can make many, so at most
 * REFUSE_LOG_MAX per window, then one line with the number not shown. */
static int refuse_log_allow(poip_sink *ps) {
  int64_t now = ps__now_ms();
  if (now - ps->refuse_log_since >= REFUSE_LOG_WINDOW_MS) {
    if (ps->refuse_log_hidden > 0) {
      ps__sink_log(&ps->base, PS_LOG_WARNING,
                   "pcap-over-ip %s: %llu more clients refused (not logged "
                   "one by one)",
                   ps->where, (unsigned long long)ps->refuse_log_hidden);
    }
    ps->refuse_log_since = now;
    ps->refuse_log_n = 0;
    ps->refuse_log_hidden = 0;
  }
  if (ps->refuse_log_n < REFUSE_LOG_MAX) {
    ps->refuse_log_n++;
    return 1;
  }
  ps->refuse_log_hidden++;
  return 0;
}

static void listen_ready(ps__watch *w, uint32_t events) {
  poip_listen *l = (poip_listen *)w;
  poip_sink *ps = l->ps;
  (void)events;
  for (int k = 0; k < 256; k++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* The connection stays in the backlog, so level-triggered epoll
         * would wake the loop for it at once, again and again: the
         * listeners rest for a second (poip_tick). */
        int e = errno;
        int64_t now = ps__now_ms();
        if (now - ps->emfile_log_ms >= 10000) {
          ps->emfile_log_ms = now;
          ps__sink_log(&ps->base, PS_LOG_WARNING,
                       "pcap-over-ip %s: accept: %s; not accepting for 1 s "
                       "(raise the open files limit, ulimit -n)",
                       ps->where, strerror(e));
        }
        for (unsigned i = 0; i < ps->n_lis; i++) {
          ps->loop->watch(ps->loop, ps->lis[i].fd, 0, &ps->lis[i].w, 0);
        }
        ps->accept_paused_until = now + 1000;
        ps->base.tick_at = ps->accept_paused_until;
        return;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && refuse_log_allow(ps)) {
        ps__sink_log(&ps->base, PS_LOG_WARNING, "pcap-over-ip %s: accept: %s",
                     ps->where, strerror(errno));
      }
      return;
    }
    char peer[80];
    ps__net_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
    if (!allowed(ps, &ss)) {
      ps->refused_allow++;
      if (refuse_log_allow(ps)) {
        ps__sink_log(&ps->base, PS_LOG_WARNING,
                     "pcap-over-ip %s: refused client %s: not in allow=",
                     ps->where, peer);
      }
      close(fd);
      continue;
    }
    if (ps->n_clients >= ps->max_clients) {
      ps->refused_limit++;
      if (refuse_log_allow(ps)) {
        ps__sink_log(&ps->base, PS_LOG_WARNING,
                     "pcap-over-ip %s: refused client %s: at the limit of %u "
                     "clients (max-clients)",
                     ps->where, peer, ps->max_clients);
      }
      close(fd);
      continue;
    }
    ps__tls *tls = NULL;
    char eb[PS_ERRMSG_MAX];
    if (ps->creds != NULL && ps__tls_new(&tls, ps->creds, NULL, eb) != 0) {
      ps__sink_log(&ps->base, PS_LOG_ERROR, "pcap-over-ip %s: client %s: %s",
                   ps->where, peer, eb);
      close(fd);
      continue;
    }
    client_new(ps, fd, tls, peer);
  }
}

/* ---------------- connecting out ---------------- */

static void connect_failed(poip_sink *ps, const char *why) {
  if (!ps->conn_failing) {
    ps__sink_log(&ps->base, PS_LOG_WARNING,
                 "pcap-over-ip %s: cannot connect: %s; retrying with "
                 "back-off (up to %u s)",
                 ps->where, why, ps->backoff_max_ms / 1000);
  }
  ps->conn_failing = 1;
  ps->retry_at = ps__now_ms() + ps->backoff_ms;
  ps->backoff_ms = ps->backoff_ms * 2 > ps->backoff_max_ms ? ps->backoff_max_ms
                                                           : ps->backoff_ms * 2;
}

static void connect_drop_fd(poip_sink *ps) {
  if (ps->cfd >= 0) {
    ps->loop->unwatch(ps->loop, ps->cfd);
    close(ps->cfd);
    ps->cfd = -1;
  }
}

/* Starts a connect to the next address; 0, or -1 when none is left. */
static int connect_next(poip_sink *ps, char *why, size_t whylen) {
  while (ps->ai_next != NULL) {
    const struct addrinfo *ai = ps->ai_next;
    ps->ai_next = ai->ai_next;
    int err = 0;
    int fd = ps__net_connect_start(ai, &err);
    if (fd < 0) {
      snprintf(why, whylen, "%s", strerror(err));
      continue;
    }
    if (ps->loop->watch(ps->loop, fd, EPOLLOUT, &ps->cw, 1) != 0) {
      snprintf(why, whylen, "epoll: %s", strerror(errno));
      close(fd);
      continue;
    }
    ps->cfd = fd;
    ps->connect_until = ps__now_ms() + 10000;
    return 0;
  }
  return -1;
}

static void connect_done(poip_sink *ps) {
  int fd = ps->cfd;
  ps->loop->unwatch(ps->loop, fd);
  ps->cfd = -1;
  freeaddrinfo(ps->ai);
  ps->ai = ps->ai_next = NULL;
  ps__tls *tls = NULL;
  char eb[PS_ERRMSG_MAX];
  if (ps->creds != NULL) {
    int rc = ps__tls_new(&tls, ps->creds,
                         ps->server_name ? ps->server_name : ps->host, eb);
    /* The first call writes our half of the handshake. */
    if (rc == 0 && (rc = ps__tls_handshake(tls, eb)) == 1) {
      rc = 0;
    }
    if (rc != 0) {
      ps__tls_free(tls);
      close(fd);
      connect_failed(ps, eb);
      return;
    }
  }
  if (ps->conn_failing) {
    ps__sink_log(&ps->base, PS_LOG_INFO, "pcap-over-ip %s: connected again",
                 ps->where);
  }
  ps->conn_failing = 0;
  ps->connected_at = ps__now_ms();
  char peer[80];
  uint16_t port = 0;
  char a[64] = "?";
  ps__net_endpoint(fd, 1, a, sizeof(a), &port);
  snprintf(peer, sizeof(peer), strchr(a, ':') ? "[%s]:%u" : "%s:%u", a, port);
  if (client_new(ps, fd, tls, peer) == NULL) {
    connect_failed(ps, "cannot start the stream"); /* (logged) */
  }
}

static void connect_ready(ps__watch *w, uint32_t events) {
  poip_sink *ps = (poip_sink *)((char *)w - offsetof(poip_sink, cw));
  (void)events;
  if (ps->cfd < 0) {
    return;
  }
  int e = ps__net_connect_result(ps->cfd);
  if (e == EINPROGRESS) {
    return;
  }
  if (e == 0) {
    connect_done(ps);
    return;
  }
  connect_drop_fd(ps);
  char why[PS_ERRMSG_MAX];
  snprintf(why, sizeof(why), "%s", strerror(e));
  if (connect_next(ps, why, sizeof(why)) != 0) {
    freeaddrinfo(ps->ai);
    ps->ai = ps->ai_next = NULL;
    connect_failed(ps, why);
  }
}

/* The connection out's timers: start a lookup when a retry is due, see
 * it through, give up a connect that takes too long. */
static void connect_tick(poip_sink *ps, int64_t now) {
  char why[PS_ERRMSG_MAX];
  if (ps->clients != NULL) {
    return;
  }
  if (ps->cfd >= 0) {
    if (now >= ps->connect_until) {
      connect_drop_fd(ps);
      snprintf(why, sizeof(why), "connect timed out");
      if (connect_next(ps, why, sizeof(why)) != 0) {
        freeaddrinfo(ps->ai);
        ps->ai = ps->ai_next = NULL;
        connect_failed(ps, why);
      }
    }
    return;
  }
  if (ps->lookup != NULL) {
    int rc = ps__net_lookup_result(ps->lookup, &ps->ai, why);
    if (rc == 1 && now < ps->connect_until) {
      return;
    }
    ps__net_lookup_free(ps->lookup);
    ps->lookup = NULL;
    if (rc != 0) {
      connect_failed(ps, rc == 1 ? "no answer from the resolver" : why);
      return;
    }
    ps->ai_next = ps->ai;
    snprintf(why, sizeof(why), "no address");
    if (connect_next(ps, why, sizeof(why)) != 0) {
      freeaddrinfo(ps->ai);
      ps->ai = ps->ai_next = NULL;
      connect_failed(ps, why);
    }
    return;
  }
  if (now < ps->retry_at) {
    return;
  }
  if (ps__net_lookup_start(&ps->lookup, ps->host, ps->port, why) != 0) {
    connect_failed(ps, why);
    return;
  }
  ps->connect_until = now + 10000;
  connect_tick(ps, now); /* an address resolves at once */
}

/* ---------------- sink operations ---------------- */

static const struct bpf_program *filter_for(poip_sink *ps, uint32_t linktype,
                                            const char *who) {
  for (unsigned i = 0; i < ps->n_filters; i++) {
    if (ps->filters[i].linktype == linktype) {
      return ps->filters[i].ok ? &ps->filters[i].prog : NULL;
    }
  }
  if (ps->n_filters == MAX_FILTERS) {
    return NULL;
  }
  filter_prog *f = &ps->filters[ps->n_filters++];
  f->linktype = linktype;
  /* LINKTYPE_RAW is DLT_RAW to libpcap's compiler; the FCS bits are no
   * part of the link type. */
  int dlt = (int)(linktype & 0x03ffffffu);
  if (dlt == 101) {
    dlt = DLT_RAW;
  }
  pcap_t *p = pcap_open_dead(dlt, PS_MAX_CAPLEN);
  f->ok = p != NULL &&
          pcap_compile(p, &f->prog, ps->filter, 1, PCAP_NETMASK_UNKNOWN) == 0;
  if (!f->ok) {
    ps__sink_log(&ps->base, PS_LOG_WARNING,
                 "pcap-over-ip %s: filter '%s' cannot apply to link type %s "
                 "(%u) of %s: %s; its packets are not sent",
                 ps->where, ps->filter,
                 ps__linktype_name(linktype) ?: "unknown", linktype, who,
                 p ? pcap_geterr(p) : "out of memory");
  }
  if (p != NULL) {
    pcap_close(p);
  }
  return f->ok ? &f->prog : NULL;
}

static int idx_take(poip_sink *ps, unsigned *out) {
  for (unsigned i = 0; i < ps->idx_cap; i++) {
    if (!ps->idx_used[i]) {
      ps->idx_used[i] = 1;
      *out = i;
      return 0;
    }
  }
  unsigned n = ps->idx_cap ? ps->idx_cap * 2 : 16;
  uint8_t *u = realloc(ps->idx_used, n);
  if (u == NULL) {
    return PS_ERR_NOMEM;
  }
  memset(u + ps->idx_cap, 0, n - ps->idx_cap);
  ps->idx_used = u;
  *out = ps->idx_cap;
  u[ps->idx_cap] = 1;
  ps->idx_cap = n;
  return 0;
}

static void iface_free(poip_iface *pi) {
  free(pi->sensor);
  free(pi->peer);
  free(pi->name);
  free(pi);
}

static int poip_iface_op(ps_sink *sk, const ps_session_info *s,
                         const ps_interface_info *ifc, void **slot) {
  poip_sink *ps = (poip_sink *)sk;
  poip_iface *pi = calloc(1, sizeof(*pi));
  if (pi == NULL || (pi->sensor = strdup(s->sensor)) == NULL ||
      (pi->peer = strdup(s->peer ? s->peer : "")) == NULL ||
      (pi->name = strdup(ifc->name ? ifc->name : "")) == NULL ||
      idx_take(ps, &pi->idx) != 0) {
    if (pi != NULL) {
      iface_free(pi);
    }
    /* A live output never refuses a sensor: this interface is just not
     * served. */
    ps__sink_log(sk, PS_LOG_ERROR, "pcap-over-ip %s: out of memory", ps->where);
    *slot = NULL;
    return 0;
  }
  pi->s = *s;
  pi->s.sensor = pi->sensor;
  pi->s.peer = pi->peer;
  pi->s.tls_subject = NULL;
  pi->info = *ifc;
  pi->info.name = pi->name;
  pi->selected =
      ps->sensor_glob == NULL || fnmatch(ps->sensor_glob, s->sensor, 0) == 0;
  if (pi->selected && ps->filter != NULL) {
    char who[600];
    snprintf(who, sizeof(who), "%s/%s", s->sensor, pi->name);
    pi->prog = filter_for(ps, ifc->linktype, who);
    pi->no_filter = pi->prog == NULL;
  }
  pi->next = ps->ifaces;
  if (ps->ifaces) {
    ps->ifaces->prev = pi;
  }
  ps->ifaces = pi;
  poip_client *next;
  for (poip_client *c = ps->clients; c != NULL; c = next) {
    next = c->next;
    int rc = client_join(c, pi, c->has_header ? &c->out : NULL);
    if (rc == 0 && !c->has_header) {
      int h = ps->fmt->header(c->fw, &c->out, 0);
      rc = h < 0 ? PS_ERR_NOMEM : 0;
      c->has_header = h == 1;
    }
    if (rc != 0) {
      client_close(c, "dropped", "out of memory");
    }
  }
  *slot = pi;
  return 0;
}

/* A record for c, or a drop: the queue holds whole records only. */
static void client_packet(poip_client *c, poip_iface *pi,
                          const ps_interface_info *ifc, const ps_packet *pkt) {
  poip_sink *ps = c->ps;
  uint8_t st = pi->idx < c->n_slots ? c->state[pi->idx] : IF_NONE;
  if (st != IF_JOINED) {
    if (st == IF_SKIPPED) {
      c->ctr.skipped++;
      if (!pi->warned) {
        pi->warned = 1;
        ps__sink_log(&ps->base, PS_LOG_WARNING,
                     "pcap-over-ip %s: sensor %s interface %s has link type "
                     "%s (%u), which a client's pcap stream of another link "
                     "type cannot hold: its packets are not sent to such "
                     "clients (use format=pcapng for mixed sources)",
                     ps->where, pi->sensor, pi->name,
                     ps__linktype_name(ifc->linktype) ?: "unknown",
                     ifc->linktype);
      }
    }
    return;
  }
  size_t queued = ps__transport_pending(&c->tx, &c->out);
  /* Once dropping, a client is sent to again only when half its queue
   * is free: a consumer at half the rate then loses runs of packets,
   * not every other one, and costs two log lines per DROP_LOG_MS at
   * most, not two per packet. */
  if (queued + pkt->caplen + RECORD_OVERHEAD > ps->queue ||
      (c->dropping && queued > ps->queue / 2)) {
    c->ctr.dropped++;
    c->drop_run++;
    if (!c->dropping) {
      c->dropping = 1;
      int64_t now = ps__now_ms();
      if (c->drop_log_ms == 0 || now - c->drop_log_ms >= DROP_LOG_MS) {
        c->drop_log_ms = now;
        c->drop_logged = 1;
        ps__sink_log(&ps->base, PS_LOG_WARNING,
                     "pcap-over-ip %s: client %s does not keep up: its queue "
                     "of %llu bytes is full, dropping packets for it",
                     ps->where, c->ctr.peer, (unsigned long long)ps->queue);
      }
    }
    return;
  }
  int rc = ps->fmt->record(c->fw, c->slots[pi->idx], ifc, pkt, &c->out);
  if (rc != 0) {
    c->ctr.skipped++; /* a time stamp its format cannot hold */
    return;
  }
  c->ctr.packets++;
  if (c->dropping) {
    c->dropping = 0;
    if (c->drop_logged) {
      c->drop_logged = 0;
      ps__sink_log(&ps->base, PS_LOG_INFO,
                   "pcap-over-ip %s: client %s keeps up again after %llu "
                   "packets dropped",
                   ps->where, c->ctr.peer, (unsigned long long)c->drop_run);
      c->drop_run = 0;
    }
  }
  if (ps__buf_size(&c->out) >= SEND_HIGH_WATER && !(c->events & EPOLLOUT)) {
    client_send(c);
  }
}

static int poip_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                       const ps_interface_info *ifc, const ps_packet *pkt) {
  poip_sink *ps = (poip_sink *)sk;
  poip_iface *pi = slot;
  (void)s;
  if (pi == NULL || !pi->selected || ps->clients == NULL || pi->no_filter) {
    return 0;
  }
  if (pi->prog != NULL) {
    struct pcap_pkthdr h = {.caplen = pkt->caplen, .len = pkt->len};
    if (pcap_offline_filter(pi->prog, &h, pkt->data) == 0) {
      return 0;
    }
  }
  poip_client *next;
  for (poip_client *c = ps->clients; c != NULL; c = next) {
    next = c->next; /* a failed send closes c */
    client_packet(c, pi, ifc, pkt);
  }
  return 0;
}

static void poip_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                           const ps_interface_info *ifc,
                           const ps_capture_stats *st) {
  poip_sink *ps = (poip_sink *)sk;
  poip_iface *pi = slot;
  (void)s;
  (void)ifc;
  if (pi == NULL) {
    return;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (poip_client *c = ps->clients; c != NULL; c = c->next) {
    if (pi->idx >= c->n_slots) {
      continue;
    }
    if (c->state[pi->idx] == IF_JOINED) {
      if (st != NULL) {
        ps->fmt->stats(c->fw, c->slots[pi->idx], st, &now, &c->out);
      }
      ps->fmt->leave(c->fw, c->slots[pi->idx]);
    }
    c->state[pi->idx] = IF_NONE;
    c->slots[pi->idx] = NULL;
  }
  ps->idx_used[pi->idx] = 0;
  if (pi->prev) {
    pi->prev->next = pi->next;
  } else {
    ps->ifaces = pi->next;
  }
  if (pi->next) {
    pi->next->prev = pi->prev;
  }
  iface_free(pi);
}

/* Sends what each client has queued, as far as its socket takes it now;
 * never fails (live: acknowledgement does not wait for it). */
static int poip_flush(ps_sink *sk) {
  poip_sink *ps = (poip_sink *)sk;
  poip_client *next;
  for (poip_client *c = ps->clients; c != NULL; c = next) {
    next = c->next;
    if (!(c->events & EPOLLOUT) && ps__buf_size(&c->out) > 0) {
      client_send(c);
    }
  }
  return 0;
}

static int64_t poip_tick(ps_sink *sk, int64_t now) {
  poip_sink *ps = (poip_sink *)sk;
  poip_flush(sk);
  while (ps->dead != NULL) {
    poip_client *c = ps->dead;
    ps->dead = c->next;
    client_free(c);
  }
  if (ps->accept_paused_until != 0 && !ps->closed) {
    if (now < ps->accept_paused_until) {
      return ps->accept_paused_until;
    }
    ps->accept_paused_until = 0;
    for (unsigned i = 0; i < ps->n_lis; i++) {
      ps->loop->watch(ps->loop, ps->lis[i].fd, EPOLLIN, &ps->lis[i].w, 0);
    }
  }
  if (!ps->connect_out || ps->closed) {
    return -1;
  }
  connect_tick(ps, now);
  if (ps->clients != NULL) {
    return -1;
  }
  if (ps->lookup != NULL) {
    return now + 20; /* a name resolving: looked at again soon */
  }
  return ps->cfd >= 0 ? ps->connect_until : ps->retry_at;
}

static int poip_attach(ps_sink *sk, ps__sink_loop *loop) {
  poip_sink *ps = (poip_sink *)sk;
  if (ps->loop != NULL) {
    return ps__seterr(sk->errmsg, PS_ERR_STATE,
                      "the PCAP-over-IP sink is already in a receiver");
  }
  ps->loop = loop;
  for (unsigned i = 0; i < ps->n_lis; i++) {
    if (loop->watch(loop, ps->lis[i].fd, EPOLLIN, &ps->lis[i].w, 1) != 0) {
      return ps__seterr(sk->errmsg, PS_ERR_SYSTEM, "epoll: %s",
                        strerror(errno));
    }
  }
  if (ps->connect_out) {
    ps->retry_at = 0;
    sk->tick_at = 0; /* the first connect at the first round */
  }
  return 0;
}

/* The end: what is queued gets a short while to go (a consumer reading
 * at its pace gets its stream's end), then every client is closed with
 * its counts. */
static int poip_close(ps_sink *sk) {
  poip_sink *ps = (poip_sink *)sk;
  if (ps->closed) {
    return 0;
  }
  ps->closed = 1;
  int64_t until = ps__now_ms() + CLOSE_DRAIN_MS;
  for (;;) {
    int waiting = 0;
    poip_client *next;
    for (poip_client *c = ps->clients; c != NULL; c = next) {
      next = c->next;
      if (ps__transport_pending(&c->tx, &c->out) > 0 && client_send(c) == 0 &&
          ps__transport_pending(&c->tx, &c->out) > 0) {
        waiting = 1;
      }
    }
    if (!waiting || ps__now_ms() >= until) {
      break;
    }
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  while (ps->clients != NULL) {
    poip_client *c = ps->clients;
    size_t left = ps__transport_pending(&c->tx, &c->out);
    char why[96];
    snprintf(why, sizeof(why), "%zu bytes still queued at the end", left);
    client_close(c, "closed", left ? why : NULL);
  }
  for (unsigned i = 0; i < ps->n_lis; i++) {
    if (ps->loop != NULL) {
      ps->loop->unwatch(ps->loop, ps->lis[i].fd);
    }
    close(ps->lis[i].fd);
    ps->lis[i].fd = -1;
  }
  ps->n_lis = 0;
  if (ps->loop != NULL) {
    connect_drop_fd(ps);
  } else if (ps->cfd >= 0) {
    close(ps->cfd);
    ps->cfd = -1;
  }
  if (ps->served > 0 || ps->refused_limit > 0 || ps->refused_allow > 0 ||
      !ps->connect_out) {
    ps__sink_log(sk, PS_LOG_INFO,
                 "pcap-over-ip %s: %llu clients served, %llu refused at "
                 "max-clients, %llu refused by allow=",
                 ps->where, (unsigned long long)ps->served,
                 (unsigned long long)ps->refused_limit,
                 (unsigned long long)ps->refused_allow);
  }
  return 0;
}

static void poip_destroy(ps_sink *sk) {
  poip_sink *ps = (poip_sink *)sk;
  poip_close(sk);
  while (ps->dead != NULL) {
    poip_client *c = ps->dead;
    ps->dead = c->next;
    client_free(c);
  }
  while (ps->ifaces != NULL) {
    poip_iface *pi = ps->ifaces;
    ps->ifaces = pi->next;
    iface_free(pi);
  }
  if (ps->lookup != NULL) {
    ps__net_lookup_free(ps->lookup);
  }
  if (ps->ai != NULL) {
    freeaddrinfo(ps->ai);
  }
  for (unsigned i = 0; i < ps->n_filters; i++) {
    if (ps->filters[i].ok) {
      pcap_freecode(&ps->filters[i].prog);
    }
  }
  ps__tls_creds_free(ps->creds);
  free(ps->idx_used);
  free(ps->sensor_glob);
  free(ps->filter);
  free(ps->host);
  free(ps->server_name);
  ps__sink_fini(sk);
  free(ps);
}

static const ps__sink_ops poip_ops = {
    .kind = "pcap-over-ip",
    .live = 1,
    .attach = poip_attach,
    .tick = poip_tick,
    .iface = poip_iface_op,
    .packet = poip_packet,
    .iface_end = poip_iface_end,
    .flush = poip_flush,
    .close = poip_close,
    .destroy = poip_destroy,
};

/* ---------------- construction ---------------- */

static int parse_allow(poip_sink *ps, const char *list) {
  const char *p = list;
  while (*p != '\0') {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char item[80];
    if (n == 0 || n >= sizeof(item)) {
      return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                        "allow: '%.*s' is not an address or CIDR", (int)n, p);
    }
    memcpy(item, p, n);
    item[n] = '\0';
    if (ps->n_allow == MAX_ALLOW) {
      return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                        "allow: at most %d networks", MAX_ALLOW);
    }
    allow_net *a = &ps->allow[ps->n_allow];
    char *slash = strchr(item, '/');
    if (slash != NULL) {
      *slash = '\0';
    }
    if (inet_pton(AF_INET, item, a->addr) == 1) {
      a->family = AF_INET;
      a->bits = 32;
    } else if (inet_pton(AF_INET6, item, a->addr) == 1) {
      a->family = AF_INET6;
      a->bits = 128;
    } else {
      return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                        "allow: '%s' is not an IPv4 or IPv6 address", item);
    }
    if (slash != NULL) {
      char *end;
      unsigned long b = strtoul(slash + 1, &end, 10);
      if (slash[1] == '\0' || *end != '\0' || b > a->bits) {
        return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                          "allow: '/%s' is not a prefix length (0..%u)",
                          slash + 1, a->bits);
      }
      a->bits = (unsigned)b;
    }
    ps->n_allow++;
    p += n;
    if (*p == ',') {
      p++;
    }
  }
  return 0;
}

/* Checks the options and builds the common part. On an error the sink
 * holds the message. */
static int poip_new(ps_sink **out, int connect_out,
                    const ps_pcap_over_ip_options *opts, size_t size) {
  poip_sink *ps = calloc(1, sizeof(*ps));
  if (ps == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__sink_init(&ps->base, &poip_ops);
  ps->connect_out = connect_out;
  ps->cfd = -1;
  ps->cw.ready = connect_ready;
  *out = &ps->base;
  ps_pcap_over_ip_options o = PS_PCAP_OVER_IP_OPTIONS_INIT;
  if (opts != NULL && ps__copy_in(&o, sizeof(o), opts, size,
                                  PS__SIZE_TO(ps_pcap_over_ip_options,
                                              reconnect_max_ms)) != 0) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "options struct of the wrong size: pass "
                      "sizeof(ps_pcap_over_ip_options) of a zeroed struct "
                      "(PS_PCAP_OVER_IP_OPTIONS_INIT)");
  }
  switch (o.format) {
  case PS_PCAP_OVER_IP_PCAP:
  case PS_PCAP_OVER_IP_PCAP_NS:
    ps->fmt = &ps__fmt_pcap;
    break;
  case PS_PCAP_OVER_IP_PCAPNG:
    ps->fmt = &ps__fmt_pcapng;
    break;
  default:
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "unknown PCAP-over-IP format %d: use pcap, pcap-ns or "
                      "pcapng",
                      (int)o.format);
  }
  ps->format = o.format;
  ps__fmt_params_init(&ps->params, o.format == PS_PCAP_OVER_IP_PCAP_NS);
  if (o.max_clients > 100000) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "max-clients %u: at most 100000", o.max_clients);
  }
  ps->max_clients = o.max_clients ? o.max_clients : DEFAULT_MAX_CLIENTS;
  if (o.queue_bytes != 0 &&
      (o.queue_bytes < MIN_QUEUE || o.queue_bytes > ((uint64_t)4 << 30))) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "queue of %llu bytes: give 64 KiB to 4 GiB",
                      (unsigned long long)o.queue_bytes);
  }
  ps->queue = o.queue_bytes ? o.queue_bytes : DEFAULT_QUEUE;
  if (o.reconnect_max_ms != 0 &&
      (o.reconnect_max_ms < 1000 || o.reconnect_max_ms > 3600000)) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "reconnect back-off of %u ms: give 1000 to 3600000",
                      o.reconnect_max_ms);
  }
  ps->backoff_max_ms = o.reconnect_max_ms ? o.reconnect_max_ms : 30000;
  ps->backoff_ms = BACKOFF_MIN_MS;
  const char *empty = o.sensor && !*o.sensor                 ? "sensor"
                      : o.filter && !*o.filter               ? "filter"
                      : o.allow && !*o.allow                 ? "allow"
                      : o.tls_cert_file && !*o.tls_cert_file ? "tls-cert"
                      : o.tls_key_file && !*o.tls_key_file   ? "tls-key"
                      : o.tls_ca_file && !*o.tls_ca_file     ? "tls-ca"
                      : o.tls_server_name && !*o.tls_server_name
                          ? "tls-server-name"
                          : NULL;
  if (empty != NULL) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "empty %s: give a value or leave it out", empty);
  }
  if (connect_out &&
      (o.allow || o.max_clients || o.tls_cert_file || o.tls_key_file)) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "allow, max-clients, tls-cert and tls-key apply to a "
                      "PCAP-over-IP listener, not to a connection out");
  }
  if (!connect_out &&
      (o.tls_ca_file || o.tls_server_name || o.reconnect_max_ms)) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "tls-ca, tls-server-name and the reconnect back-off "
                      "apply to a PCAP-over-IP connection out, not to a "
                      "listener");
  }
  if ((o.tls_cert_file == NULL) != (o.tls_key_file == NULL)) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "a PCAP-over-IP listener serves TLS with tls-cert and "
                      "tls-key together");
  }
  if ((o.sensor && (ps->sensor_glob = strdup(o.sensor)) == NULL) ||
      (o.filter && (ps->filter = strdup(o.filter)) == NULL) ||
      (o.tls_server_name &&
       (ps->server_name = strdup(o.tls_server_name)) == NULL)) {
    return PS_ERR_NOMEM;
  }
  if (o.allow != NULL) {
    int rc = parse_allow(ps, o.allow);
    if (rc != 0) {
      return rc;
    }
  }
  if (ps->filter != NULL) {
    /* A typo fails now, not when a sensor comes (compiled for Ethernet;
     * each link type gets its own program later). */
    struct bpf_program prog;
    pcap_t *p = pcap_open_dead(DLT_EN10MB, PS_MAX_CAPLEN);
    if (p == NULL) {
      return PS_ERR_NOMEM;
    }
    int bad = pcap_compile(p, &prog, ps->filter, 1, PCAP_NETMASK_UNKNOWN);
    if (bad) {
      ps__seterr(ps->base.errmsg, PS_ERR_FILTER, "filter '%s': %s", ps->filter,
                 pcap_geterr(p));
    } else {
      pcap_freecode(&prog);
    }
    pcap_close(p);
    if (bad) {
      return PS_ERR_FILTER;
    }
  }
  if (o.tls_cert_file != NULL || o.tls_ca_file != NULL) {
    ps_tls_options t = {0};
    t.cert_file = o.tls_cert_file;
    t.key_file = o.tls_key_file;
    t.ca_file = o.tls_ca_file;
    t.server_name = o.tls_server_name;
    int rc = ps__tls_creds_new(&ps->creds, !connect_out, &t, sizeof(t),
                               ps->base.errmsg);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

static int finish(ps_sink **out, int rc) {
  if (rc == PS_ERR_NOMEM) {
    ps_sink_free(*out);
    *out = NULL;
  }
  return rc;
}

int ps_pcap_over_ip_sink(ps_sink **out, const char *addr, uint16_t port,
                         const ps_pcap_over_ip_options *opts, size_t size) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  int rc = poip_new(out, 0, opts, size);
  if (rc != 0) {
    return finish(out, rc);
  }
  poip_sink *ps = (poip_sink *)*out;
  const char *a = addr && *addr ? addr : "127.0.0.1";
  int fds[PS_MAX_LISTENERS];
  int n = ps__net_listen(a, port, fds, PS_MAX_LISTENERS, ps->base.errmsg);
  if (n < 0) {
    return finish(out, n);
  }
  for (int i = 0; i < n; i++) {
    ps->lis[i].w.ready = listen_ready;
    ps->lis[i].ps = ps;
    ps->lis[i].fd = fds[i];
  }
  ps->n_lis = (unsigned)n;
  char la[64] = "?";
  uint16_t lp = 0;
  ps__net_endpoint(fds[0], 0, la, sizeof(la), &lp);
  snprintf(ps->where, sizeof(ps->where), strchr(la, ':') ? "[%s]:%u" : "%s:%u",
           la, lp);
  return 0;
}

int ps_pcap_over_ip_connect_sink(ps_sink **out, const char *host, uint16_t port,
                                 const ps_pcap_over_ip_options *opts,
                                 size_t size) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  int rc = poip_new(out, 1, opts, size);
  if (rc != 0) {
    return finish(out, rc);
  }
  poip_sink *ps = (poip_sink *)*out;
  if (host == NULL || *host == '\0' || port == 0) {
    return ps__seterr(ps->base.errmsg, PS_ERR_INVALID,
                      "a PCAP-over-IP connection needs a host and a port "
                      "(1..65535)");
  }
  if ((ps->host = strdup(host)) == NULL) {
    return finish(out, PS_ERR_NOMEM);
  }
  ps->port = port;
  snprintf(ps->where, sizeof(ps->where),
           strchr(host, ':') ? "to [%s]:%u" : "to %s:%u", host, port);
  return 0;
}

int ps_pcap_over_ip_get_port(ps_sink *sink, uint16_t *out) {
  if (sink == NULL || sink->ops != &poip_ops || out == NULL) {
    return PS_ERR_INVALID;
  }
  poip_sink *ps = (poip_sink *)sink;
  char a[64];
  if (ps->n_lis == 0 ||
      ps__net_endpoint(ps->lis[0].fd, 0, a, sizeof(a), out) != 0) {
    return PS_ERR_INVALID;
  }
  return 0;
}

int ps_pcap_over_ip_get_client_counters(ps_sink *sink,
                                        ps_pcap_over_ip_client_counters *out,
                                        size_t size, unsigned i) {
  if (sink == NULL || sink->ops != &poip_ops) {
    return PS_ERR_INVALID;
  }
  poip_sink *ps = (poip_sink *)sink;
  poip_client *c = ps->clients;
  for (unsigned k = 0; c != NULL && k < i; k++) {
    c = c->next;
  }
  if (c == NULL) {
    return PS_ERR_INVALID;
  }
  ps__copy_out(out, size, &c->ctr, sizeof(c->ctr));
  return 0;
}
