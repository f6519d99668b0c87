/* The sensor end of a stream: batching, compression, the hello exchange,
 * acknowledgements, and what makes delivery survive faults: a bounded
 * replay queue of sealed batches kept until the receiver acknowledges
 * them, reconnection with backoff, and failover between receivers.
 * Frames come from ps_proto; this module owns the socket.
 *
 * The capture path never waits for the receiver: a sealed batch goes to
 * the replay queue, and the socket is fed from the queue with what it
 * takes now. When the queue is full, the overflow policy drops batches
 * and counts every packet dropped. */
#include "config.h"

#include "ps_codec.h"
#include "ps_net.h"
#include "ps_proto.h"
#include "ps_spool.h"
#include "ps_stream.h"
#include "ps_tls.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Wire bytes waiting for the socket before the queue stops feeding it:
 * the replay queue holds the rest, so this only bounds the copy. */
#define FEED_LOW_WATER (256u * 1024)
/* drop-newest, connected, queue full: batches still sent (not kept) as
 * long as this many bytes of them wait for the socket. */
#define NORETAIN_SLACK (1u << 20)
#define HEARTBEAT_MS 5000
#define PEER_TIMEOUT_MS 30000 /* default: a receiver silent this long is dead */
#define HELLO_TIMEOUT_MS 10000
#define CONNECT_TRY_MS 5000
/* Re-attempts happen on the capture path: they block at most this long
 * for the TCP connect, and RETRY_HELLO_MS for TLS and hello. */
#define RETRY_CONNECT_MS 2000
#define RETRY_HELLO_MS 5000
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define REPLAY_DEFAULT (8u * 1024 * 1024)
#define REPLAY_MIN (64u * 1024)
#define MAX_RECEIVERS 8

/* ST_UP: connected. ST_DOWN: connected once, now waiting to reconnect
 * (the stream is usable; batches queue). */
enum stream_state { ST_NEW, ST_UP, ST_DOWN, ST_CLOSED, ST_FAILED };

/* A replay queue entry. */
enum rq_state {
  RQ_FULL, /* frame bytes kept: can be (re)sent */
  RQ_STUB, /* bytes gone, written to a connection: waiting for its ACK */
  RQ_GONE  /* dropped and counted: a placeholder until the head passes */
};
#define RQ_NORETAIN 0x1 /* drop the bytes once written (drop-newest) */
#define RQ_LIMBO 0x2    /* stub of a broken connection */

typedef struct if_count {
  uint32_t iface;
  uint32_t n;
} if_count;

typedef struct rq_ent {
  uint64_t seq;
  uint8_t *frame; /* the whole BATCH frame (RQ_FULL) */
  size_t len;
  uint32_t count; /* packets */
  uint8_t state;
  uint8_t flags;
  uint16_t n_if;
  if_count *ifc; /* packets per interface */
} rq_ent;

/* A frame other than BATCH, sent once every batch up to after_seq has
 * gone to the socket (interfaces before their packets, counters after
 * the packets they count, CLOSE last). */
typedef struct ctl_frame {
  struct ctl_frame *next;
  uint64_t after_seq;
  size_t len;
  uint8_t bytes[];
} ctl_frame;

typedef struct iface_info {
  char *name;
  uint32_t linktype;
  uint32_t snaplen;
  uint8_t tsres;
  int has_stats;
  ps_capture_stats stats; /* the latest, resent after a reconnect */
  ps_stream_iface_counters c;
} iface_info;

typedef struct receiver_addr {
  char host[256];
  uint16_t port;
} receiver_addr;

struct ps_stream {
  enum stream_state state;
  char name[256];
  uint64_t stream_id;
  receiver_addr rcv[MAX_RECEIVERS];
  unsigned n_rcv;
  unsigned cur_rcv; /* receiver of the connection or of the next attempt */
  char host[256];   /* of the connection being made or made */
  uint16_t port;
  uint8_t codec_pref;
  int level;
  size_t batch_max;
  unsigned delay_ms;
  unsigned connect_timeout_s;
  size_t replay_max;
  ps_overflow overflow;
  ps_log_fn log;
  void *log_ud;

  int fd;
  int stop_fd; /* eventfd, written by ps_stream_stop() */
  volatile sig_atomic_t stopped;
  ps__limits lim;    /* what we may send: from the receiver's welcome */
  ps__limits in_lim; /* what we accept: receivers send only small frames */
  uint64_t session_id;
  uint8_t codec; /* negotiated with the first receiver */
  ps__codec *cc;
  int64_t hs_timeout_ms; /* TLS + hello of the attempt being made */

  ps__buf out; /* wire bytes not yet written */
  ps__buf in;  /* wire bytes not yet parsed */
  ps__buf raw; /* the batch being filled */
  uint32_t batch_count;
  uint32_t cur_ifc[PS_MAX_IFACES]; /* packets per interface in raw */
  uint8_t cur_touched[PS_MAX_IFACES];
  unsigned n_touched;
  int64_t batch_start_ms;
  int64_t last_write_ms;
  int64_t last_read_ms; /* last bytes from the receiver */
  int64_t peer_timeout_ms;

  /* The replay queue: a ring of entries in seq order. */
  rq_ent *rq;
  size_t rq_cap, rq_head, rq_n;
  size_t rq_fed;          /* entries [0, rq_fed) went to this connection */
  size_t retained_bytes;  /* frame bytes of RQ_FULL entries (the bound) */
  size_t noretain_bytes;  /* of RQ_NORETAIN entries not yet written */
  ctl_frame *ctl, **ctl_tail;

  uint64_t seq;       /* last batch sealed */
  uint64_t acked;     /* last acknowledged */
  uint64_t max_fed;   /* highest seq written to any connection */
  uint64_t resend_upto; /* seqs up to this went to an earlier connection */
  int limbo;          /* stubs of a broken connection wait for an ACK */
  int heard;          /* this connection has had its resume point */
  int close_queued;   /* CLOSE went to this connection */
  uint64_t close_seq; /* in the CLOSE sent */
  int close_confirmed;
  int overflowing;    /* logged the current overflow episode */

  int64_t next_attempt_ms;
  int64_t backoff_ms;
  /* The receiver acknowledged a new batch on this connection or answered
   * a heartbeat: only then does a loss start the backoff afresh. */
  int worked;
  unsigned tried_in_round;
  uint64_t generation; /* connections made */

  uint32_t n_ifaces;
  iface_info ifaces[PS_MAX_IFACES];
  char *spool_dir;   /* ps_stream_set_spool() */
  ps__spool *spool;  /* open from the first connect on */
  int spool_failed;  /* a write failed: logged, the queue goes on */
  ps_stream_counters ctr;
  ps__tls_creds *tls_creds; /* set: connect with TLS */
  ps__tls *tls;
  int tls_ready;
  int tls_first; /* first byte the receiver sent, -1 before any */
  uint8_t *auth_key;
  size_t auth_len;
  uint8_t snonce[PS_NONCE_LEN];
  char errmsg[PS_ERRMSG_MAX];
};

int ps_stream_create(ps_stream **out, const char *sensor_name) {
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  char host[256];
  if (sensor_name == NULL) {
    if (gethostname(host, sizeof(host)) != 0) {
      strcpy(host, "sensor");
    }
    host[sizeof(host) - 1] = '\0';
    sensor_name = host;
  }
  size_t n = strlen(sensor_name);
  if (!ps__valid_name(sensor_name, n)) {
    return PS_ERR_INVALID;
  }
  ps_stream *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return PS_ERR_NOMEM;
  }
  s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->stop_fd < 0) {
    free(s);
    return PS_ERR_SYSTEM;
  }
  memcpy(s->name, sensor_name, n + 1);
  /* The receiver recognises this stream across connections by (name,
   * stream id): a fresh random id per stream object. */
  gnutls_rnd(GNUTLS_RND_NONCE, &s->stream_id, sizeof(s->stream_id));
  s->fd = -1;
  s->codec_pref = ps_codec_available(PS_CODEC_LZ4) ? PS_WIRE_CODEC_LZ4
                                                   : PS_WIRE_CODEC_ZLIB;
  s->batch_max = 256 * 1024;
  s->peer_timeout_ms = PEER_TIMEOUT_MS;
  s->delay_ms = 100;
  s->replay_max = REPLAY_DEFAULT;
  s->overflow = PS_OVERFLOW_DROP_OLDEST;
  s->hs_timeout_ms = HELLO_TIMEOUT_MS;
  s->backoff_ms = BACKOFF_FIRST_MS;
  s->ctl_tail = &s->ctl;
  *out = s;
  return 0;
}

static rq_ent *rq_at(ps_stream *s, size_t i) {
  return &s->rq[(s->rq_head + i) % s->rq_cap];
}

static void ent_free(rq_ent *e) {
  free(e->frame);
  free(e->ifc);
  e->frame = NULL;
  e->ifc = NULL;
}

static void ctl_clear(ps_stream *s) {
  while (s->ctl != NULL) {
    ctl_frame *c = s->ctl;
    s->ctl = c->next;
    free(c);
  }
  s->ctl_tail = &s->ctl;
}

void ps_stream_free(ps_stream *s) {
  if (s == NULL) {
    return;
  }
  if (s->fd >= 0) {
    close(s->fd);
  }
  close(s->stop_fd);
  for (size_t i = 0; i < s->rq_n; i++) {
    ent_free(rq_at(s, i));
  }
  free(s->rq);
  ctl_clear(s);
  for (uint32_t i = 0; i < s->n_ifaces; i++) {
    free(s->ifaces[i].name);
  }
  ps__codec_free(s->cc);
  ps__buf_free(&s->out);
  ps__buf_free(&s->in);
  ps__buf_free(&s->raw);
  ps__tls_free(s->tls);
  ps__tls_creds_free(s->tls_creds);
  ps__key_clear(&s->auth_key, &s->auth_len);
  ps__spool_close(s->spool, 0);
  free(s->spool_dir);
  free(s);
}

void ps_stream_set_log(ps_stream *s, ps_log_fn fn, void *user_data) {
  s->log = fn;
  s->log_ud = user_data;
}

int ps_stream_set_codec(ps_stream *s, ps_codec codec, int level) {
  if (s->state != ST_NEW) {
    return PS_ERR_STATE;
  }
  if (!ps_codec_available(codec) || level < 0 || level > 9) {
    return PS_ERR_INVALID;
  }
  s->codec_pref = (uint8_t)codec;
  s->level = level;
  return 0;
}

int ps_stream_set_batching(ps_stream *s, size_t max_bytes,
                           unsigned max_delay_ms) {
  if (s->state != ST_NEW) {
    return PS_ERR_STATE;
  }
  if (max_bytes < 4096 || max_bytes > 4194304 || max_delay_ms < 1 ||
      max_delay_ms > 10000) {
    return PS_ERR_INVALID;
  }
  s->batch_max = max_bytes;
  s->delay_ms = max_delay_ms;
  return 0;
}

int ps_stream_set_replay(ps_stream *s, size_t max_bytes,
                         ps_overflow policy) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  if (max_bytes < REPLAY_MIN ||
      (policy != PS_OVERFLOW_DROP_OLDEST &&
       policy != PS_OVERFLOW_DROP_NEWEST)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "replay buffer of %zu bytes (at least %u) or unknown "
                      "overflow policy %d",
                      max_bytes, REPLAY_MIN, (int)policy);
  }
  s->replay_max = max_bytes;
  s->overflow = policy;
  return 0;
}

int ps_stream_set_spool(ps_stream *s, const char *dir) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  if (dir == NULL || *dir == '\0') {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "no spool directory");
  }
  char *d = strdup(dir);
  if (d == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  free(s->spool_dir);
  s->spool_dir = d;
  return 0;
}

int ps_stream_add_receiver(ps_stream *s, const char *host, uint16_t port) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  if (host == NULL || *host == '\0' || strlen(host) >= sizeof(s->host) ||
      port == 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "invalid receiver address");
  }
  if (s->n_rcv >= MAX_RECEIVERS) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d receivers",
                      MAX_RECEIVERS);
  }
  strcpy(s->rcv[s->n_rcv].host, host);
  s->rcv[s->n_rcv].port = port;
  s->n_rcv++;
  return 0;
}

int ps_stream_set_tls(ps_stream *s, const ps_tls_options *opts) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  ps__tls_creds *c;
  int rc = ps__tls_creds_new(&c, 0, opts, s->errmsg);
  if (rc != 0) {
    return rc;
  }
  ps__tls_creds_free(s->tls_creds);
  s->tls_creds = c;
  return 0;
}

int ps_stream_set_auth_key(ps_stream *s, const uint8_t *key, size_t len) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  return ps__key_set(&s->auth_key, &s->auth_len, key, len, s->errmsg);
}

int ps_stream_set_peer_timeout(ps_stream *s, unsigned seconds) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  if (seconds > 86400) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "peer timeout too long");
  }
  s->peer_timeout_ms = seconds ? (int64_t)seconds * 1000 : PEER_TIMEOUT_MS;
  return 0;
}

int ps_stream_set_connect_timeout(ps_stream *s, unsigned seconds) {
  if (s->state != ST_NEW) {
    return PS_ERR_STATE;
  }
  s->connect_timeout_s = seconds;
  return 0;
}

const char *ps_stream_errmsg(ps_stream *s) { return s->errmsg; }

void ps_stream_stop(ps_stream *s) {
  uint64_t one = 1;
  s->stopped = 1;
  ssize_t n = write(s->stop_fd, &one, sizeof(one));
  (void)n;
}

void ps_stream_get_counters(ps_stream *s, ps_stream_counters *out) {
  *out = s->ctr;
}

int ps_stream_get_iface_counters(ps_stream *s, uint32_t iface,
                                 ps_stream_iface_counters *out) {
  if (out == NULL || iface >= s->n_ifaces) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "unknown interface %u",
                      iface);
  }
  *out = s->ifaces[iface].c;
  return 0;
}

unsigned ps_stream_interface_count(ps_stream *s) { return s->n_ifaces; }

int ps__stream_fd(ps_stream *s) { return s->state == ST_UP ? s->fd : -1; }

int ps__stream_usable(ps_stream *s) {
  return s->state == ST_UP || s->state == ST_DOWN;
}

uint64_t ps__stream_generation(ps_stream *s) { return s->generation; }

int ps__stream_want_write(ps_stream *s) {
  return ps__buf_size(&s->out) > 0 ||
         (s->tls != NULL && ps__buf_size(ps__tls_cout(s->tls)) > 0);
}

int ps__stream_endpoints(ps_stream *s, char *raddr, size_t rlen,
                         uint16_t *rport, char *laddr, size_t llen,
                         uint16_t *lport) {
  if (s->fd < 0 || ps__net_endpoint(s->fd, 1, raddr, rlen, rport) != 0 ||
      ps__net_endpoint(s->fd, 0, laddr, llen, lport) != 0) {
    return -1;
  }
  return 0;
}

static void lose_all(ps_stream *s);
static void spool_meta(ps_stream *s);

/* The stream ends for good: nothing it holds can be sent any more. */
static int fail(ps_stream *s, int code) {
  lose_all(s);
  s->state = ST_FAILED;
  return code;
}

/* ------------------------------------------------------ accounting */

/* Counts the packets of entry e into the counter at byte offset off of
 * ps_stream_iface_counters, and n into the stream counter *total. */
static void count_ent(ps_stream *s, const rq_ent *e, size_t off,
                      uint64_t *total) {
  *total += e->count;
  for (uint16_t i = 0; i < e->n_if; i++) {
    if (e->ifc[i].iface < s->n_ifaces) {
      uint64_t *c = (uint64_t *)((char *)&s->ifaces[e->ifc[i].iface].c + off);
      *c += e->ifc[i].n;
    }
  }
  s->ctr.packets_queued -= e->count;
}

#define CNT(field) offsetof(ps_stream_iface_counters, field)

/* Entry dropped unsent: counted and turned into a placeholder. */
static void ent_drop(ps_stream *s, rq_ent *e) {
  if (e->state == RQ_FULL) {
    if (e->flags & RQ_NORETAIN) {
      s->noretain_bytes -= e->len;
    } else {
      s->retained_bytes -= e->len;
    }
  }
  count_ent(s, e, CNT(packets_dropped_overflow),
            &s->ctr.packets_dropped_overflow);
  s->ctr.batches_dropped_overflow++;
  ent_free(e);
  e->state = RQ_GONE;
}

/* Entry sent but never acknowledged: counted lost. */
static void ent_lose(ps_stream *s, rq_ent *e) {
  if (e->state == RQ_FULL) {
    if (e->flags & RQ_NORETAIN) {
      s->noretain_bytes -= e->len;
    } else {
      s->retained_bytes -= e->len;
    }
  }
  count_ent(s, e, CNT(packets_lost), &s->ctr.packets_lost);
  ent_free(e);
  e->state = RQ_GONE;
}

/* The written bytes of a batch go; its seq and counts stay until the
 * ACK. */
static void ent_stub(ps_stream *s, rq_ent *e) {
  if (e->flags & RQ_NORETAIN) {
    s->noretain_bytes -= e->len;
  } else {
    s->retained_bytes -= e->len;
  }
  free(e->frame);
  e->frame = NULL;
  e->state = RQ_STUB;
}

static void rq_pop(ps_stream *s) {
  ent_free(rq_at(s, 0));
  s->rq_head = (s->rq_head + 1) % s->rq_cap;
  s->rq_n--;
  if (s->rq_fed > 0) {
    s->rq_fed--;
  }
}

/* The spool keeps nothing that left the queue. */
static void spool_release(ps_stream *s) {
  if (s->spool != NULL) {
    ps__spool_release(s->spool, s->rq_n ? rq_at(s, 0)->seq : s->seq + 1);
  }
}

/* Placeholders at the head have nothing left to wait for. */
static void rq_trim(ps_stream *s) {
  while (s->rq_n > 0 && rq_at(s, 0)->state == RQ_GONE) {
    rq_pop(s);
  }
  spool_release(s);
}

static rq_ent *rq_push(ps_stream *s) {
  if (s->rq_n == s->rq_cap) {
    size_t cap = s->rq_cap ? s->rq_cap * 2 : 64;
    rq_ent *n = malloc(cap * sizeof(*n));
    if (n == NULL) {
      return NULL;
    }
    for (size_t i = 0; i < s->rq_n; i++) {
      n[i] = *rq_at(s, i);
    }
    free(s->rq);
    s->rq = n;
    s->rq_cap = cap;
    s->rq_head = 0;
  }
  rq_ent *e = &s->rq[(s->rq_head + s->rq_n) % s->rq_cap];
  s->rq_n++;
  memset(e, 0, sizeof(*e));
  return e;
}

/* Everything up to seq is written by the receiver. */
static void release_upto(ps_stream *s, uint64_t seq) {
  while (s->rq_n > 0 && rq_at(s, 0)->seq <= seq) {
    rq_ent *e = rq_at(s, 0);
    if (e->state != RQ_GONE) {
      if (e->state == RQ_FULL) {
        if (e->flags & RQ_NORETAIN) {
          s->noretain_bytes -= e->len;
        } else {
          s->retained_bytes -= e->len;
        }
      }
      count_ent(s, e, CNT(packets_acked), &s->ctr.packets_acked);
      s->ctr.batches_acked++;
    }
    rq_pop(s);
  }
  rq_trim(s);
  if (seq > s->acked) {
    s->acked = seq;
  }
}

/* The resume point of a new connection tells which batches written to a
 * broken connection the receiver has (they are covered by it); stubs
 * above it cannot be resent: lost. */
static void resolve_limbo(ps_stream *s) {
  s->heard = 1;
  if (!s->limbo) {
    return;
  }
  s->limbo = 0;
  for (size_t i = 0; i < s->rq_n; i++) {
    rq_ent *e = rq_at(s, i);
    if (e->state == RQ_STUB && (e->flags & RQ_LIMBO)) {
      ent_lose(s, e);
    }
  }
  rq_trim(s);
}

/* Counts everything not acknowledged as lost: the end of the stream. */
static void lose_all(ps_stream *s) {
  for (size_t i = 0; i < s->rq_n; i++) {
    rq_ent *e = rq_at(s, i);
    if (e->state != RQ_GONE) {
      ent_lose(s, e);
    }
  }
  rq_trim(s);
  if (s->batch_count > 0) {
    /* Never sealed: also sent by the caller, never acknowledged. */
    s->ctr.packets_lost += s->batch_count;
    s->ctr.packets_queued -= s->batch_count;
    for (unsigned i = 0; i < s->n_touched; i++) {
      uint8_t id = s->cur_touched[i];
      s->ifaces[id].c.packets_lost += s->cur_ifc[id];
      s->cur_ifc[id] = 0;
    }
    s->n_touched = 0;
    s->batch_count = 0;
    ps__buf_reset(&s->raw);
  }
  s->limbo = 0;
}

/* ------------------------------------------------------ frames in */

/* Handles one frame from the receiver. */
static int handle_frame(ps_stream *s, const ps__frame *f) {
  uint64_t seq;
  switch (f->type) {
  case PS_FRAME_ACK:
    if (ps__dec_seq(f, &seq, s->errmsg) != 0) {
      return PS_ERR_PROTOCOL;
    }
    /* (The resume point, which may be lower, is taken in hello().) */
    if (seq > s->max_fed || seq < s->acked) {
      return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                        "receiver acknowledged batch %llu, but %llu were "
                        "sent and %llu acknowledged",
                        (unsigned long long)seq,
                        (unsigned long long)s->max_fed,
                        (unsigned long long)s->acked);
    }
    s->worked |= seq > s->acked;
    release_upto(s, seq);
    return 0;
  case PS_FRAME_CLOSE:
    if (ps__dec_seq(f, &seq, s->errmsg) != 0) {
      return PS_ERR_PROTOCOL;
    }
    if (!s->close_queued || seq != s->close_seq) {
      return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                        "receiver closed after batch %llu of %llu",
                        (unsigned long long)seq,
                        (unsigned long long)s->close_seq);
    }
    release_upto(s, seq);
    s->close_confirmed = 1;
    s->worked = 1;
    return 0;
  case PS_FRAME_HEARTBEAT:
    if (ps__dec_empty(f, s->errmsg) != 0) {
      return PS_ERR_PROTOCOL;
    }
    s->worked = 1;
    return 0;
  case PS_FRAME_ERROR: {
    ps__error_msg m;
    if (ps__dec_error(f, &m, s->errmsg) != 0) {
      return PS_ERR_PROTOCOL;
    }
    char text[PS_MAX_ERROR_TEXT + 1];
    size_t k = 0;
    for (size_t i = 0; i < m.text_len; i++) {
      unsigned char c = (unsigned char)m.text[i];
      text[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    text[k] = '\0';
    /* Full, out of memory, cannot write: the receiver's state, not a
     * verdict on this sensor. Retried with backoff (not final). */
    if (m.code == (uint16_t)-PS_ERR_BUSY || m.code == (uint16_t)-PS_ERR_NOMEM ||
        m.code == (uint16_t)-PS_ERR_IO) {
      return ps__seterr(s->errmsg, PS_ERR_BUSY,
                        "receiver %s port %u cannot take this sensor now: "
                        "%s",
                        s->host, s->port, text);
    }
    return ps__seterr(s->errmsg, PS_ERR_REFUSED,
                      "receiver refused this sensor: %s", text);
  }
  default:
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "unexpected %s frame from the receiver",
                      ps__frame_name(f->type));
  }
}

static int parse_input(ps_stream *s) {
  for (;;) {
    ps__frame f;
    size_t used;
    int rc = ps__frame_parse(ps__buf_head(&s->in), ps__buf_size(&s->in),
                             &s->in_lim, &f, &used, s->errmsg);
    if (rc <= 0) {
      return rc;
    }
    rc = handle_frame(s, &f);
    ps__buf_consume(&s->in, used);
    if (rc != 0) {
      return rc;
    }
  }
}

/* Moves what TLS has decrypted into s->in. */
static int tls_decrypt(ps_stream *s) {
  int rc = ps__tls_read(s->tls, &s->in, s->errmsg);
  if (rc == PS_ERR_CLOSED && s->close_confirmed) {
    return 0;
  }
  return rc;
}

/* Reads what is there without blocking. */
static int do_read(ps_stream *s) {
  for (;;) {
    ps__buf *dst = s->tls ? ps__tls_cin(s->tls) : &s->in;
    uint8_t *p = ps__buf_reserve(dst, 16384);
    if (p == NULL) {
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    ssize_t n = recv(s->fd, p, 16384, 0);
    if (n > 0) {
      dst->len += (size_t)n;
      s->last_read_ms = ps__now_ms();
      int rc = 0;
      if (s->tls != NULL) {
        if (!s->tls_ready) {
          if (s->tls_first < 0) {
            s->tls_first = p[0];
          }
          continue; /* the handshake loop reads cin */
        }
        rc = tls_decrypt(s);
      }
      /* During the hello, hello() itself reads the welcome. */
      if (rc == 0 && s->state == ST_UP) {
        rc = parse_input(s);
      }
      if (rc != 0) {
        return rc;
      }
      continue;
    }
    if (n == 0) {
      if (s->close_confirmed) {
        return 0;
      }
      return ps__seterr(s->errmsg, PS_ERR_CLOSED,
                        "receiver %s port %u closed the connection",
                        s->host, s->port);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 0;
    }
    return ps__seterr(s->errmsg, PS_ERR_CLOSED,
                      "reading from receiver %s port %u: %s", s->host,
                      s->port, strerror(errno));
  }
}

/* ------------------------------------------------------ frames out */

/* The bytes that go on the wire: frames, or their TLS records. */
static ps__buf *wire(ps_stream *s) {
  return s->tls ? ps__tls_cout(s->tls) : &s->out;
}

static size_t pending(ps_stream *s) {
  return ps__buf_size(&s->out) + (s->tls ? ps__buf_size(wire(s)) : 0);
}

static int do_write(ps_stream *s) {
  if (s->tls != NULL && s->tls_ready && ps__buf_size(&s->out) > 0) {
    int rc = ps__tls_write(s->tls, ps__buf_head(&s->out),
                           ps__buf_size(&s->out), s->errmsg);
    if (rc != 0) {
      return rc;
    }
    ps__buf_reset(&s->out);
  }
  ps__buf *w = wire(s);
  while (ps__buf_size(w) > 0) {
    ssize_t n = send(s->fd, ps__buf_head(w), ps__buf_size(w), MSG_NOSIGNAL);
    if (n > 0) {
      ps__buf_consume(w, (size_t)n);
      s->ctr.wire_bytes += (uint64_t)n;
      s->last_write_ms = ps__now_ms();
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 0;
    }
    int e = n < 0 ? errno : EPIPE;
    /* A receiver that refused us closes the connection: its reason is
     * waiting to be read and says more than "broken pipe". */
    int why = s->state == ST_UP ? do_read(s) : 0;
    if (why == PS_ERR_REFUSED || why == PS_ERR_BUSY) {
      return why;
    }
    return ps__seterr(s->errmsg, PS_ERR_CLOSED,
                      "writing to receiver %s port %u: %s", s->host, s->port,
                      strerror(e));
  }
  return 0;
}

/* The next queue entry to write to this connection, or NULL. */
static rq_ent *next_to_feed(ps_stream *s) {
  while (s->rq_fed < s->rq_n && rq_at(s, s->rq_fed)->state != RQ_FULL) {
    s->rq_fed++; /* stubs of an earlier connection and placeholders */
  }
  return s->rq_fed < s->rq_n ? rq_at(s, s->rq_fed) : NULL;
}

/* Copies frames from the queues to the connection's buffer, in order,
 * until it holds enough for the socket. */
static int feed(ps_stream *s) {
  while (s->state == ST_UP && pending(s) < FEED_LOW_WATER) {
    rq_ent *e = next_to_feed(s);
    uint64_t next = e ? e->seq : UINT64_MAX;
    if (s->ctl != NULL && s->ctl->after_seq < next) {
      ctl_frame *c = s->ctl;
      if (ps__buf_append(&s->out, c->bytes, c->len) != 0) {
        return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
      }
      s->ctl = c->next;
      if (s->ctl == NULL) {
        s->ctl_tail = &s->ctl;
      }
      free(c);
      continue;
    }
    if (e == NULL) {
      break;
    }
    if (ps__buf_append(&s->out, e->frame, e->len) != 0) {
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    if (e->seq <= s->resend_upto) {
      s->ctr.batches_resent++;
    }
    if (e->seq > s->max_fed) {
      s->max_fed = e->seq;
    }
    if (e->flags & RQ_NORETAIN) {
      ent_stub(s, e);
    }
    s->rq_fed++;
  }
  return 0;
}

/* Feeds the socket what it takes now; never waits. */
static int pump(ps_stream *s) {
  for (;;) {
    int rc = feed(s);
    if (rc == 0) {
      rc = do_write(s);
    }
    if (rc != 0 || s->state != ST_UP || pending(s) > 0) {
      return rc;
    }
    if (next_to_feed(s) == NULL && s->ctl == NULL) {
      return 0;
    }
  }
}

/* Queues a frame the encoder put at the end of s->out (from offset at)
 * to follow every batch sealed so far. */
static int queue_ctl(ps_stream *s, size_t at) {
  size_t len = ps__buf_size(&s->out) - at;
  ctl_frame *c = malloc(sizeof(*c) + len);
  if (c == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  c->next = NULL;
  c->after_seq = s->seq;
  c->len = len;
  memcpy(c->bytes, ps__buf_head(&s->out) + at, len);
  s->out.len -= len;
  *s->ctl_tail = c;
  s->ctl_tail = &c->next;
  return 0;
}

/* One round of I/O: waits at most timeout_ms for the socket, then reads
 * and writes what it can. Returns errors as they are; settle() decides
 * what they mean for the stream. */
static int io_round(ps_stream *s, int timeout_ms) {
  if (s->stopped) {
    return ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped");
  }
  /* A receiver answers every heartbeat and acknowledges every batch: one
   * that says nothing for this long has vanished (a crashed host, a cut
   * path), even if TCP has not noticed. */
  if (s->state == ST_UP &&
      ps__now_ms() - s->last_read_ms > s->peer_timeout_ms) {
    return ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                      "receiver %s port %u has been silent for %lld s (no "
                      "acknowledgement, no heartbeat): presumed dead",
                      s->host, s->port,
                      (long long)(s->peer_timeout_ms / 1000));
  }
  struct pollfd pfd[2] = {
      {s->fd, (short)(POLLIN | (pending(s) ? POLLOUT : 0)), 0},
      {s->stop_fd, POLLIN, 0}};
  int n = poll(pfd, 2, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) {
      return s->stopped ? ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped")
                        : 0;
    }
    return ps__seterr(s->errmsg, PS_ERR_SYSTEM, "poll: %s", strerror(errno));
  }
  if (pfd[1].revents & POLLIN) {
    return ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped");
  }
  int rc = 0;
  if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
    rc = do_read(s);
  }
  if (rc == 0 && s->state == ST_UP) {
    rc = pump(s);
  } else if (rc == 0 && (pfd[0].revents & POLLOUT)) {
    rc = do_write(s); /* the handshake */
  }
  return rc;
}

/* Closes the socket and forgets the connection's state. */
static void drop_connection(ps_stream *s) {
  if (s->fd >= 0) {
    close(s->fd);
  }
  s->fd = -1;
  ps__buf_reset(&s->in);
  ps__buf_reset(&s->out);
  ps__tls_free(s->tls);
  s->tls = NULL;
  s->tls_ready = 0;
  ctl_clear(s);
}

/* Errors that end the stream: the receiver refused us, it or we failed
 * to prove who we are, a stop. Anything else is the network's, or the
 * receiver's passing state (PS_ERR_BUSY: full, out of memory, cannot
 * write), and is retried. */
static int is_final(int rc) {
  return rc == PS_ERR_REFUSED || rc == PS_ERR_AUTH || rc == PS_ERR_TLS ||
         rc == PS_ERR_STOPPED || rc == PS_ERR_NOMEM;
}

/* Backoff with +-25% jitter, so that sensors cut off together do not
 * come back together. */
static int64_t jittered(int64_t ms) {
  uint32_t r;
  gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
  return ms * 3 / 4 + (int64_t)(r % (uint32_t)(ms / 2 + 1));
}

/* Plans the next attempt after a failed one (or the loss of a connection
 * that worked, after_loss): the next receiver at once while some are
 * untried in this round, else after the backoff. */
static void schedule_retry(ps_stream *s, int after_loss) {
  int64_t now = ps__now_ms();
  if (after_loss) {
    s->tried_in_round = 0;
    s->backoff_ms = BACKOFF_FIRST_MS;
  } else {
    s->cur_rcv = (s->cur_rcv + 1) % s->n_rcv;
    if (++s->tried_in_round < s->n_rcv) {
      s->next_attempt_ms = now;
      return;
    }
    s->tried_in_round = 0;
  }
  int64_t d = jittered(s->backoff_ms);
  s->next_attempt_ms = now + d;
  s->backoff_ms =
      s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
  ps__log(s->log, s->log_ud, PS_LOG_WARNING,
          "reconnecting to %s port %u in %lld ms", s->rcv[s->cur_rcv].host,
          s->rcv[s->cur_rcv].port, (long long)d);
}

/* What an error on an established connection means: final ones end the
 * stream; the others drop the connection, keep every unacknowledged
 * batch, and schedule a reconnect (returning 0: the caller goes on). */
static int settle(ps_stream *s, int rc) {
  if (rc == 0 || s->state != ST_UP) {
    return rc;
  }
  if (is_final(rc)) {
    if (rc != PS_ERR_STOPPED) {
      drop_connection(s);
      return fail(s, rc);
    }
    return rc;
  }
  ps__log(s->log, s->log_ud, PS_LOG_WARNING,
          "connection to receiver %s port %u lost: %s", s->host, s->port,
          s->errmsg);
  drop_connection(s);
  /* Batches written to the lost connection are sent again; the stubs of
   * those the queue could not keep wait for the next connection's first
   * acknowledgement. */
  for (size_t i = 0; i < s->rq_fed; i++) {
    rq_ent *e = rq_at(s, i);
    if (e->state == RQ_STUB) {
      e->flags |= RQ_LIMBO;
      s->limbo = 1;
    }
  }
  s->rq_fed = 0;
  s->heard = 0;
  s->resend_upto = s->max_fed;
  s->state = ST_DOWN;
  /* A connection that never worked (welcomed, then broken) is a failed
   * attempt: the backoff keeps growing, and the next receiver is tried. */
  schedule_retry(s, s->worked);
  return 0;
}

/* ------------------------------------------------------ connecting */
/* Waits for the receiver's next frame during the hello exchange (ERROR
 * frames become PS_ERR_REFUSED); the caller consumes *used bytes. */
static int next_frame(ps_stream *s, int64_t deadline, ps__frame *f,
                      size_t *used) {
  int closed = 0;
  for (;;) {
    int rc = ps__frame_parse(ps__buf_head(&s->in), ps__buf_size(&s->in),
                             &s->in_lim, f, used, s->errmsg);
    if (rc < 0) {
      /* TLS records start with content types 0x14..0x17. */
      uint8_t b0 = *ps__buf_head(&s->in);
      if (s->tls == NULL && b0 >= 0x14 && b0 <= 0x17) {
        return ps__seterr(s->errmsg, PS_ERR_TLS,
                          "receiver %s port %u answered with TLS: connect "
                          "with --tls",
                          s->host, s->port);
      }
      return rc;
    }
    if (rc == 1) {
      return f->type == PS_FRAME_ERROR ? handle_frame(s, f) : 0;
    }
    if (closed) {
      return closed;
    }
    int left = (int)(deadline - ps__now_ms());
    if (left <= 0) {
      return ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                        "receiver %s port %u did not answer the hello "
                        "within %d s",
                        s->host, s->port, (int)(s->hs_timeout_ms / 1000));
    }
    rc = io_round(s, left);
    /* A receiver that refuses us says why, then closes: read the why. */
    if (rc == PS_ERR_CLOSED && ps__buf_size(&s->in) > 0) {
      closed = rc;
    } else if (rc != 0) {
      return rc;
    }
  }
}

/* Shared-key authentication: prove we hold the key, then check that the
 * receiver does too (a fake receiver learns nothing and gets nothing). */
static int authenticate(ps_stream *s, const ps__welcome *w, int64_t deadline) {
  uint8_t mac[PS_MAC_LEN], theirs[PS_MAC_LEN];
  size_t name_len = strlen(s->name);
  if (ps__auth_mac(s->auth_key, s->auth_len, 0, w->nonce, s->snonce, s->name,
                   name_len, mac) != 0 ||
      ps__enc_mac(&s->out, PS_FRAME_AUTH, mac) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_AUTH, "cannot compute the proof");
  }
  ps__frame f;
  size_t used;
  int rc = next_frame(s, deadline, &f, &used);
  if (rc != 0) {
    return rc;
  }
  if (f.type != PS_FRAME_AUTH_OK || ps__dec_mac(&f, theirs, s->errmsg) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "expected the receiver's proof, got %s",
                      ps__frame_name(f.type));
  }
  ps__buf_consume(&s->in, used);
  if (ps__auth_mac(s->auth_key, s->auth_len, 1, w->nonce, s->snonce, s->name,
                   name_len, mac) != 0 ||
      gnutls_memcmp(mac, theirs, PS_MAC_LEN) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_AUTH,
                      "receiver %s port %u failed to prove it holds the "
                      "shared key: not streaming to it",
                      s->host, s->port);
  }
  return 0;
}

static int hello(ps_stream *s) {
  ps__hello h = {.min_version = PS_PROTO_VERSION,
                 .max_version = PS_PROTO_VERSION,
                 .codecs = (1u << PS_WIRE_CODEC_STORED) |
                           (1u << s->codec_pref),
                 .flags = PS_HELLO_STREAM,
                 .name = s->name,
                 .name_len = strlen(s->name),
                 .stream_id = s->stream_id};
  gnutls_rnd(GNUTLS_RND_NONCE, s->snonce, sizeof(s->snonce));
  memcpy(h.nonce, s->snonce, PS_NONCE_LEN);
  int rc = ps__enc_hello(&s->out, &h);
  if (rc != 0) {
    return ps__seterr(s->errmsg, rc, "cannot encode hello");
  }
  /* A receiver sends nothing larger than an error message, ever. */
  s->in_lim.max_frame = 4 + PS_MAX_ERROR_TEXT;
  s->in_lim.max_batch_raw = 0;
  s->in_lim.max_batch_packets = 0;
  int64_t deadline = ps__now_ms() + s->hs_timeout_ms;
  ps__frame f;
  size_t used;
  if ((rc = next_frame(s, deadline, &f, &used)) != 0) {
    return rc;
  }
  if (f.type != PS_FRAME_WELCOME) {
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "expected a welcome from the receiver, got %s",
                      ps__frame_name(f.type));
  }
  ps__welcome w;
  if (ps__dec_welcome(&f, &w, s->errmsg) != 0) {
    return PS_ERR_PROTOCOL;
  }
  if (w.version != PS_PROTO_VERSION ||
      (w.codec != PS_WIRE_CODEC_STORED && w.codec != s->codec_pref)) {
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "receiver chose version %u codec %u, which we did "
                      "not offer",
                      w.version, w.codec);
  }
  /* Queued batches carry the codec of the first connection: a receiver
   * that would not take it cannot take them. */
  if (s->cc != NULL && w.codec != s->codec) {
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "receiver %s port %u chose compression %s, but the "
                      "queued batches use %s",
                      s->host, s->port, ps__codec_name(w.codec),
                      ps__codec_name(s->codec));
  }
  ps__buf_consume(&s->in, used);
  if ((w.flags & PS_WELCOME_AUTH) && s->auth_key == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_AUTH,
                      "receiver %s port %u requires a shared key: give "
                      "--auth-key-file",
                      s->host, s->port);
  }
  if (!(w.flags & PS_WELCOME_AUTH) && s->auth_key != NULL) {
    return ps__seterr(s->errmsg, PS_ERR_AUTH,
                      "receiver %s port %u does not authenticate, but a "
                      "shared key was given: not streaming to a receiver "
                      "that cannot prove it holds the key",
                      s->host, s->port);
  }
  if (s->auth_key != NULL && (rc = authenticate(s, &w, deadline)) != 0) {
    return rc;
  }
  /* Then the receiver says how far it has this stream (0: not at all, as
   * a receiver failed over to, or one that lost its journal): that much
   * is delivered, batches of a broken connection above it that the queue
   * no longer holds are lost, and what it holds above it is sent again.
   * Only this first ACK may be below the last one (another receiver's). */
  if ((rc = next_frame(s, deadline, &f, &used)) != 0) {
    return rc;
  }
  uint64_t resume;
  if (f.type != PS_FRAME_ACK || ps__dec_seq(&f, &resume, s->errmsg) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "expected the receiver's resume point, got %s",
                      ps__frame_name(f.type));
  }
  if (resume > s->max_fed) {
    return ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                      "receiver %s port %u says it has batch %llu of this "
                      "stream, but only %llu were sent",
                      s->host, s->port, (unsigned long long)resume,
                      (unsigned long long)s->max_fed);
  }
  ps__buf_consume(&s->in, used);
  release_upto(s, resume);
  resolve_limbo(s);
  s->lim.max_frame = w.max_frame;
  s->lim.max_batch_raw = w.max_batch_raw;
  s->lim.max_batch_packets = w.max_batch_packets;
  s->session_id = w.session_id;
  s->codec = w.codec;
  return 0;
}

/* The TLS handshake, before the hello, verifying the receiver. */
static int tls_start(ps_stream *s) {
  int rc = ps__tls_new(&s->tls, s->tls_creds, s->host, s->errmsg);
  if (rc != 0) {
    return rc;
  }
  s->tls_first = -1;
  int64_t deadline = ps__now_ms() + s->hs_timeout_ms;
  while ((rc = ps__tls_handshake(s->tls, s->errmsg)) == 1) {
    int left = (int)(deadline - ps__now_ms());
    if (left <= 0) {
      return ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                        "receiver %s port %u did not complete the TLS "
                        "handshake within %d s",
                        s->host, s->port, (int)(s->hs_timeout_ms / 1000));
    }
    if ((rc = io_round(s, left)) != 0) {
      return rc == PS_ERR_CLOSED
                 ? ps__seterr(s->errmsg, PS_ERR_TLS,
                              "receiver %s port %u closed the connection "
                              "during the TLS handshake (does it speak "
                              "TLS?)",
                              s->host, s->port)
                 : rc;
    }
  }
  if (rc == 0) {
    s->tls_ready = 1;
    ps__log(s->log, s->log_ud, PS_LOG_INFO, "TLS to %s port %u: %s, %s%s",
            s->host, s->port, ps__tls_description(s->tls),
            ps__tls_creds_insecure(s->tls_creds)
                ? "NOT VERIFIED (--tls-insecure)"
                : "verified ",
            ps__tls_creds_insecure(s->tls_creds)
                ? ""
                : ps__tls_peer_subject(s->tls));
    rc = do_write(s); /* e.g. an alert or ticket ack */
    if (rc == 0 && ps__buf_size(ps__tls_cin(s->tls)) > 0) {
      rc = tls_decrypt(s);
    }
  } else {
    do_write(s); /* our alert tells the receiver why */
    /* TLS records start with content types 0x14..0x17; anything else is
     * a receiver answering in the plain protocol. */
    if (s->tls_first >= 0 && (s->tls_first < 0x14 || s->tls_first > 0x17)) {
      rc = ps__seterr(s->errmsg, PS_ERR_TLS,
                      "receiver %s port %u answered without TLS: it does "
                      "not serve TLS (does it speak TLS?)",
                      s->host, s->port);
    }
  }
  return rc;
}


/* Announces every interface, then queues the latest counters of each to
 * follow the batches: the start of every connection after the first. */
static int announce(ps_stream *s) {
  for (uint32_t i = 0; i < s->n_ifaces; i++) {
    iface_info *f = &s->ifaces[i];
    ps__iface m = {.id = i,
                   .linktype = f->linktype,
                   .snaplen = f->snaplen,
                   .tsres = f->tsres,
                   .name = f->name,
                   .name_len = strlen(f->name)};
    if (ps__enc_iface(&s->out, &m) != 0) {
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "cannot encode interface");
    }
  }
  for (uint32_t i = 0; i < s->n_ifaces; i++) {
    if (!s->ifaces[i].has_stats) {
      continue;
    }
    ps__stats m = {.iface = i, .c = s->ifaces[i].stats};
    size_t at = ps__buf_size(&s->out);
    if (ps__enc_stats(&s->out, &m) != 0 || queue_ctl(s, at) != 0) {
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
  }
  return 0;
}

/* One attempt at receiver i: TCP, TLS, hello. On success the stream is
 * ST_UP; on failure nothing of the attempt is left. */
static int connect_once(ps_stream *s, unsigned i, int connect_ms,
                        int64_t hello_ms) {
  strcpy(s->host, s->rcv[i].host);
  s->port = s->rcv[i].port;
  s->hs_timeout_ms = hello_ms;
  s->close_confirmed = 0;
  int rc = ps__net_connect(s->host, s->port, connect_ms, s->stop_fd,
                           s->errmsg);
  if (rc < 0) {
    return rc;
  }
  s->fd = rc;
  rc = s->tls_creds ? tls_start(s) : 0;
  if (rc == 0) {
    rc = hello(s);
  }
  if (rc == 0 && s->cc == NULL) {
    s->cc = ps__codec_new(s->codec, s->level);
    if (s->cc == NULL) {
      rc = ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
  }
  if (rc == 0 && (s->generation > 0 || s->n_ifaces > 0)) {
    rc = announce(s); /* again, or those a spooled stream had */
  }
  if (rc != 0) {
    drop_connection(s);
    return rc;
  }
  s->state = ST_UP;
  if (s->generation == 0) {
    spool_meta(s); /* the codec is known now */
  }
  s->generation++;
  s->close_queued = 0;
  s->heard = 0;
  s->rq_fed = 0;
  s->tried_in_round = 0;
  s->worked = 0;
  s->last_write_ms = s->last_read_ms = ps__now_ms();
  ps__log(s->log, s->log_ud, PS_LOG_INFO,
          "connected to receiver %s port %u as sensor %s (session %llu, "
          "compression %s)",
          s->host, s->port, s->name, (unsigned long long)s->session_id,
          ps__codec_name(s->codec));
  return 0;
}

/* Sleeps ms unless stopped. */
static int backoff_sleep(ps_stream *s, int64_t ms) {
  struct pollfd pfd = {s->stop_fd, POLLIN, 0};
  int n = poll(&pfd, 1, ms > INT32_MAX ? INT32_MAX : (int)ms);
  return (n > 0 || s->stopped) ? PS_ERR_STOPPED : 0;
}

/* ------------------------------------------------------ spool */

/* Records the stream (id, codec, interfaces) so a later run can take up
 * its spooled batches. */
static void spool_meta(ps_stream *s) {
  if (s->spool == NULL || s->spool_failed) {
    return;
  }
  ps__spool_meta *m = calloc(1, sizeof(*m));
  char eb[PS_ERRMSG_MAX];
  if (m == NULL) {
    return;
  }
  m->stream_id = s->stream_id;
  m->codec = s->codec;
  snprintf(m->name, sizeof(m->name), "%s", s->name);
  m->n_ifaces = s->n_ifaces;
  for (uint32_t i = 0; i < s->n_ifaces; i++) {
    m->ifaces[i].linktype = s->ifaces[i].linktype;
    m->ifaces[i].snaplen = s->ifaces[i].snaplen;
    m->ifaces[i].tsres = s->ifaces[i].tsres;
    snprintf(m->ifaces[i].name, sizeof(m->ifaces[i].name), "%s",
             s->ifaces[i].name);
  }
  if (ps__spool_set_meta(s->spool, m, eb) != 0) {
    s->spool_failed = 1;
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "%s: batches are kept in memory only from now on", eb);
  }
  free(m);
}

/* A batch entering the queue goes to the spool too. */
static void spool_append(ps_stream *s, const rq_ent *e) {
  if (s->spool == NULL || s->spool_failed) {
    return;
  }
  uint32_t ifc[2 * PS_MAX_IFACES];
  for (uint16_t k = 0; k < e->n_if; k++) {
    ifc[2 * k] = e->ifc[k].iface;
    ifc[2 * k + 1] = e->ifc[k].n;
  }
  ps__spool_rec r = {.seq = e->seq, .count = e->count, .n_if = e->n_if,
                     .ifc = ifc, .frame = e->frame, .len = e->len};
  char eb[PS_ERRMSG_MAX];
  if (ps__spool_append(s->spool, &r, eb) != 0) {
    s->spool_failed = 1;
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "%s: batches are kept in memory only from now on", eb);
  }
}

typedef struct adopt_ctx {
  ps_stream *s;
  const ps__spool_meta *meta;
  uint64_t batches;
} adopt_ctx;

/* One batch a previous run left in the spool: back into the queue. */
static int adopt_batch(void *ud, const ps__spool_rec *r) {
  adopt_ctx *a = ud;
  ps_stream *s = a->s;
  if (a->batches == 0 && strcmp(a->meta->name, s->name) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "the spool %s holds the stream of sensor %s: give "
                      "--name %s, or another --spool-dir",
                      s->spool_dir, a->meta->name, a->meta->name);
  }
  rq_ent *e = rq_push(s);
  if (e == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  memset(e, 0, sizeof(*e));
  e->frame = malloc(r->len);
  e->ifc = malloc((r->n_if ? r->n_if : 1) * sizeof(*e->ifc));
  if (e->frame == NULL || e->ifc == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  memcpy(e->frame, r->frame, r->len);
  e->len = r->len;
  e->seq = r->seq;
  e->count = r->count;
  e->n_if = r->n_if;
  for (uint16_t k = 0; k < r->n_if; k++) {
    e->ifc[k] = (if_count){r->ifc[2 * k], r->ifc[2 * k + 1]};
  }
  e->state = RQ_FULL;
  s->retained_bytes += r->len;
  s->seq = r->seq;
  s->ctr.packets_queued += r->count;
  s->ctr.packets_recovered += r->count;
  a->batches++;
  return 0;
}

/* Opens the spool; a previous run's unacknowledged batches are taken up:
 * same stream id, its interfaces first, its batches first in the queue
 * (the receiver's resume point says which it already has). */
static int spool_start(ps_stream *s) {
  int rc =
      ps__spool_open(&s->spool, s->spool_dir, s->log, s->log_ud, s->errmsg);
  if (rc != 0) {
    return rc;
  }
  ps__spool_meta *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  adopt_ctx a = {.s = s, .meta = m};
  rc = ps__spool_recover(s->spool, m, adopt_batch, &a, s->errmsg);
  if (rc == 1) {
    s->stream_id = m->stream_id;
    s->codec = m->codec;
    if (m->codec != PS_WIRE_CODEC_STORED) {
      s->codec_pref = m->codec;
    }
    s->cc = ps__codec_new(s->codec, s->level);
    for (uint32_t i = 0; i < m->n_ifaces && s->cc != NULL; i++) {
      iface_info *f = &s->ifaces[i];
      f->name = strdup(m->ifaces[i].name);
      f->linktype = m->ifaces[i].linktype;
      f->snaplen = m->ifaces[i].snaplen;
      f->tsres = m->ifaces[i].tsres;
      s->n_ifaces = i + 1;
      if (f->name == NULL) {
        break;
      }
    }
    if (s->cc == NULL || s->n_ifaces != m->n_ifaces) {
      free(m);
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->rq_n; i++) {
      const rq_ent *e = rq_at(s, i);
      for (uint16_t k = 0; k < e->n_if; k++) {
        if (e->ifc[k].iface < s->n_ifaces) {
          s->ifaces[e->ifc[k].iface].c.packets_recovered += e->ifc[k].n;
        }
      }
    }
    s->max_fed = s->resend_upto = s->seq;
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "spool %s: %llu packets in %llu batches a previous run of "
            "sensor %s did not get acknowledged; sending them first",
            s->spool_dir, (unsigned long long)s->ctr.packets_recovered,
            (unsigned long long)a.batches, s->name);
    rc = 0;
  }
  free(m);
  return rc;
}

int ps_stream_connect(ps_stream *s, const char *host, uint16_t port) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  if (host != NULL) {
    if (*host == '\0' || strlen(host) >= sizeof(s->host) || port == 0) {
      return ps__seterr(s->errmsg, PS_ERR_INVALID,
                        "invalid receiver address");
    }
    if (s->n_rcv >= MAX_RECEIVERS) {
      return ps__seterr(s->errmsg, PS_ERR_LIMIT, "at most %d receivers",
                        MAX_RECEIVERS);
    }
    memmove(&s->rcv[1], &s->rcv[0], s->n_rcv * sizeof(s->rcv[0]));
    strcpy(s->rcv[0].host, host);
    s->rcv[0].port = port;
    s->n_rcv++;
  }
  if (s->n_rcv == 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "no receiver: give one to ps_stream_connect() or "
                      "ps_stream_add_receiver()");
  }
  if (s->spool_dir != NULL && s->spool == NULL) {
    int rc = spool_start(s);
    if (rc != 0) {
      return fail(s, rc);
    }
  }
  int64_t give_up = s->connect_timeout_s
                        ? ps__now_ms() + (int64_t)s->connect_timeout_s * 1000
                        : INT64_MAX;
  /* The first connection waits 1 s, 2 s, 4 s ... up to 30 s between
   * rounds: the user is watching. Reconnects use schedule_retry(). */
  int delay_s = 1;
  unsigned tried = 0;
  s->cur_rcv = 0;
  for (unsigned attempt = 1;; attempt++) {
    int rc = connect_once(s, s->cur_rcv, CONNECT_TRY_MS, HELLO_TIMEOUT_MS);
    if (rc == 0) {
      return 0;
    }
    /* Refusals, unknown names, protocol breaks and stops are final;
     * network trouble moves on to the next receiver. */
    if (is_final(rc) || rc == PS_ERR_RESOLVE || rc == PS_ERR_PROTOCOL) {
      return fail(s, rc);
    }
    s->cur_rcv = (s->cur_rcv + 1) % s->n_rcv;
    if (++tried < s->n_rcv) {
      ps__log(s->log, s->log_ud, PS_LOG_WARNING,
              "%s; trying receiver %s port %u", s->errmsg,
              s->rcv[s->cur_rcv].host, s->rcv[s->cur_rcv].port);
      continue;
    }
    tried = 0;
    if (ps__now_ms() + delay_s * 1000 > give_up) {
      char why[PS_ERRMSG_MAX];
      memcpy(why, s->errmsg, sizeof(why));
      return fail(s, ps__seterr(s->errmsg, PS_ERR_CONNECT,
                                "%s (gave up after %u attempts)", why,
                                attempt));
    }
    ps__log(s->log, s->log_ud, PS_LOG_WARNING, "%s; retrying in %d s",
            s->errmsg, delay_s);
    if (backoff_sleep(s, delay_s * 1000) != 0) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_STOPPED,
                                "stopped while connecting"));
    }
    delay_s = delay_s * 2 > BACKOFF_MAX_MS / 1000 ? BACKOFF_MAX_MS / 1000
                                                  : delay_s * 2;
  }
}

/* When a reconnect is due, one bounded attempt (RETRY_CONNECT_MS for
 * TCP, RETRY_HELLO_MS for TLS and hello). Returns 0 whether or not it
 * worked, or a final error. */
static int maybe_reconnect(ps_stream *s) {
  if (s->state != ST_DOWN || ps__now_ms() < s->next_attempt_ms) {
    return 0;
  }
  if (s->stopped) {
    return ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped");
  }
  unsigned i = s->cur_rcv;
  int rc = connect_once(s, i, RETRY_CONNECT_MS, RETRY_HELLO_MS);
  if (rc == 0) {
    s->ctr.reconnects++;
    return settle(s, pump(s));
  }
  if (is_final(rc)) {
    return fail(s, rc);
  }
  ps__log(s->log, s->log_ud, PS_LOG_WARNING, "%s", s->errmsg);
  schedule_retry(s, 0);
  return 0;
}

static int check_open(ps_stream *s) {
  if (s->state == ST_UP || s->state == ST_DOWN) {
    return 0;
  }
  if (s->state == ST_FAILED) {
    return PS_ERR_CLOSED;
  }
  return ps__seterr(s->errmsg, PS_ERR_STATE, "stream is not connected");
}

int ps_stream_add_interface(ps_stream *s, uint32_t *out, const char *name,
                            uint32_t linktype, uint32_t snaplen,
                            uint8_t tsres) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (out == NULL || name == NULL || !ps__valid_name(name, strlen(name)) ||
      (tsres != PS_TSRES_USEC && tsres != PS_TSRES_NSEC)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid interface name or timestamp resolution");
  }
  if (s->n_ifaces >= PS_MAX_IFACES) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT,
                      "a stream carries at most %u interfaces",
                      PS_MAX_IFACES);
  }
  iface_info *f = &s->ifaces[s->n_ifaces];
  f->name = strdup(name);
  if (f->name == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  f->linktype = linktype;
  f->snaplen = snaplen;
  f->tsres = tsres;
  ps__iface m = {.id = s->n_ifaces,
                 .linktype = linktype,
                 .snaplen = snaplen,
                 .tsres = tsres,
                 .name = name,
                 .name_len = strlen(name)};
  /* The announcement must precede the packets: seal the batch so far,
   * and the announcement follows it. While disconnected, the next
   * connection announces every interface first. */
  rc = ps_stream_flush(s);
  if (rc != 0) {
    free(f->name);
    f->name = NULL;
    return rc;
  }
  if (s->state == ST_UP) {
    size_t at = ps__buf_size(&s->out);
    if (ps__enc_iface(&s->out, &m) != 0 || queue_ctl(s, at) != 0) {
      free(f->name);
      f->name = NULL;
      return ps__seterr(s->errmsg, PS_ERR_NOMEM, "cannot encode interface");
    }
  }
  *out = s->n_ifaces++;
  spool_meta(s);
  return settle(s, pump(s));
}

/* Makes room for a frame of len bytes by the overflow policy. Returns 1
 * to keep the batch, 2 to send it without keeping it, 0 to drop it. */
static int make_room(ps_stream *s, size_t len) {
  if (s->retained_bytes + len <= s->replay_max) {
    return 1;
  }
  if (!s->overflowing) {
    s->overflowing = 1;
    ps__log(s->log, s->log_ud, PS_LOG_WARNING,
            "replay buffer full (%zu bytes unacknowledged): dropping the "
            "%s batches, and counting them",
            s->retained_bytes,
            s->overflow == PS_OVERFLOW_DROP_OLDEST ? "oldest" : "newest");
  }
  if (s->overflow == PS_OVERFLOW_DROP_OLDEST && len <= s->replay_max) {
    for (size_t i = 0;
         i < s->rq_n && s->retained_bytes + len > s->replay_max; i++) {
      rq_ent *e = rq_at(s, i);
      if (e->state != RQ_FULL || (e->flags & RQ_NORETAIN)) {
        continue;
      }
      /* Written to this connection: its ACK may still come. Written to
       * a broken one: the next connection's first ACK tells. Else never
       * sent: dropped. */
      if (i < s->rq_fed) {
        ent_stub(s, e);
      } else if (e->seq <= s->resend_upto && !s->heard) {
        ent_stub(s, e);
        e->flags |= RQ_LIMBO;
        s->limbo = 1;
      } else {
        ent_drop(s, e);
      }
    }
    rq_trim(s);
    return 1;
  }
  /* drop-newest, or a batch larger than the whole buffer. */
  if (s->state == ST_UP && s->noretain_bytes + len <= NORETAIN_SLACK) {
    return 2;
  }
  return 0;
}

/* Compresses the current batch and puts it in the replay queue. */
static int seal_batch(ps_stream *s) {
  if (s->batch_count == 0) {
    return 0;
  }
  /* Header room first, the (compressed or stored) data after it, then
   * the header is filled in: the queue entry takes the buffer as it is. */
  const size_t hdr = PS_FRAME_HDR + PS_BATCH_HDR;
  ps__buf fb = {0};
  if (ps__buf_reserve(&fb, hdr) == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  fb.len = hdr;
  uint8_t used;
  int rc = ps__codec_compress(s->cc, ps__buf_head(&s->raw),
                              ps__buf_size(&s->raw), &fb, &used);
  if_count *ifc = malloc(s->n_touched * sizeof(*ifc));
  if (rc != 0 || ifc == NULL) {
    ps__buf_free(&fb);
    free(ifc);
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory compressing");
  }
  for (unsigned i = 0; i < s->n_touched; i++) {
    uint8_t id = s->cur_touched[i];
    ifc[i] = (if_count){id, s->cur_ifc[id]};
    s->cur_ifc[id] = 0;
  }
  rq_ent tmp = {.len = ps__buf_size(&fb),
                .count = s->batch_count,
                .n_if = (uint16_t)s->n_touched,
                .ifc = ifc};
  s->n_touched = 0;
  s->batch_count = 0;
  size_t raw_len = ps__buf_size(&s->raw);
  ps__buf_reset(&s->raw);
  int keep = make_room(s, tmp.len);
  if (keep == 0) {
    ps__buf_free(&fb);
    count_ent(s, &tmp, CNT(packets_dropped_overflow),
              &s->ctr.packets_dropped_overflow);
    s->ctr.batches_dropped_overflow++;
    free(ifc);
    return 0;
  }
  rq_ent *e = rq_push(s);
  if (e == NULL) {
    ps__buf_free(&fb);
    free(ifc);
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  *e = tmp;
  e->seq = ++s->seq;
  e->frame = fb.data; /* off is 0: nothing was consumed */
  e->state = RQ_FULL;
  ps__batch b = {
      .seq = e->seq, .codec = used, .count = e->count, .raw_len = (uint32_t)raw_len};
  ps__put_batch_hdr(e->frame, &b, e->len - hdr);
  if (keep == 2) {
    e->flags |= RQ_NORETAIN;
    s->noretain_bytes += e->len;
  } else {
    s->retained_bytes += e->len;
    if (s->retained_bytes + e->len <= s->replay_max / 2) {
      s->overflowing = 0;
    }
    spool_append(s, e);
  }
  s->ctr.batches_sent++;
  return 0;
}

/* After queueing: write what the socket takes and read the ACKs that
 * came (one recv per batch, or a long stream would fill the receiver's
 * send queue with them), or try to reconnect. Never waits. */
static int after_queue(ps_stream *s) {
  if (s->state == ST_DOWN) {
    return maybe_reconnect(s);
  }
  int rc = pump(s);
  if (rc == 0 && s->state == ST_UP) {
    rc = do_read(s);
  }
  return settle(s, rc);
}

int ps_stream_send(ps_stream *s, const ps_packet *pkt) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (pkt == NULL || pkt->iface >= s->n_ifaces ||
      pkt->caplen > PS_MAX_CAPLEN || (pkt->caplen > 0 && pkt->data == NULL)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid packet (unknown interface %u or caplen %u "
                      "above %u)",
                      pkt ? pkt->iface : 0, pkt ? pkt->caplen : 0,
                      PS_MAX_CAPLEN);
  }
  size_t rec = PS_PKT_HDR + (size_t)pkt->caplen;
  size_t limit = s->batch_max < s->lim.max_batch_raw ? s->batch_max
                                                      : s->lim.max_batch_raw;
  if (s->batch_count > 0 &&
      (ps__buf_size(&s->raw) + rec > limit ||
       s->batch_count >= s->lim.max_batch_packets)) {
    if ((rc = seal_batch(s)) != 0 || (rc = after_queue(s)) != 0) {
      return rc;
    }
  }
  if (ps__batch_put(&s->raw, pkt) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  int64_t now = ps__now_ms();
  if (s->batch_count++ == 0) {
    s->batch_start_ms = now;
  }
  if (s->cur_ifc[pkt->iface]++ == 0) {
    s->cur_touched[s->n_touched++] = (uint8_t)pkt->iface;
  }
  s->ctr.packets_sent++;
  s->ctr.packets_queued++;
  s->ctr.bytes_sent += pkt->caplen;
  s->ifaces[pkt->iface].c.packets_sent++;
  if (ps__buf_size(&s->raw) >= limit ||
      now - s->batch_start_ms >= (int64_t)s->delay_ms) {
    if ((rc = seal_batch(s)) != 0) {
      return rc;
    }
    return after_queue(s);
  }
  if (s->state == ST_DOWN && now >= s->next_attempt_ms) {
    return maybe_reconnect(s);
  }
  return 0;
}

int ps_stream_flush(ps_stream *s) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  rc = seal_batch(s);
  return rc ? rc : after_queue(s);
}

int ps__stream_has_room(ps_stream *s, uint32_t caplen) {
  size_t next = ps__buf_size(&s->raw) + PS_PKT_HDR + caplen + PS_FRAME_HDR +
                PS_BATCH_HDR;
  return s->retained_bytes + next <= s->replay_max ||
         (s->retained_bytes == 0 && s->state == ST_UP);
}

/* Milliseconds until the current batch is due, -1 if it is empty. */
static int batch_due_ms(ps_stream *s) {
  if (s->batch_count == 0) {
    return -1;
  }
  int64_t left = s->batch_start_ms + s->delay_ms - ps__now_ms();
  return left < 0 ? 0 : (int)left;
}

/* Heartbeats come often enough for the peer timeout to mean silence. */
static int64_t heartbeat_ms(const ps_stream *s) {
  return s->peer_timeout_ms / 3 < HEARTBEAT_MS ? s->peer_timeout_ms / 3
                                               : HEARTBEAT_MS;
}

int ps_stream_next_deadline_ms(ps_stream *s) {
  int due = batch_due_ms(s);
  int64_t other;
  if (s->state == ST_UP) {
    other = s->last_write_ms + heartbeat_ms(s) - ps__now_ms();
  } else if (s->state == ST_DOWN) {
    other = s->next_attempt_ms - ps__now_ms();
  } else {
    return due;
  }
  int b = other < 0 ? 0 : other > INT32_MAX ? INT32_MAX : (int)other;
  return due < 0 || b < due ? b : due;
}

int ps_stream_poll(ps_stream *s, int timeout_ms) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (batch_due_ms(s) == 0) {
    if ((rc = seal_batch(s)) != 0 || (rc = after_queue(s)) != 0) {
      return rc;
    }
  }
  if (s->state == ST_DOWN) {
    if ((rc = maybe_reconnect(s)) != 0) {
      return rc;
    }
    if (s->state == ST_DOWN) {
      int wait = ps_stream_next_deadline_ms(s);
      if (timeout_ms >= 0 && (wait < 0 || wait > timeout_ms)) {
        wait = timeout_ms;
      }
      return backoff_sleep(s, wait) != 0
                 ? ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped")
                 : 0;
    }
  }
  if ((rc = settle(s, pump(s))) != 0 || s->state != ST_UP) {
    return rc;
  }
  if (ps__now_ms() - s->last_write_ms >= heartbeat_ms(s) && pending(s) == 0) {
    if (ps__enc_heartbeat(&s->out) != 0) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
    }
  }
  int due = batch_due_ms(s);
  if (due >= 0 && (timeout_ms < 0 || due < timeout_ms)) {
    timeout_ms = due;
  }
  return settle(s, io_round(s, timeout_ms));
}

int ps_stream_send_stats(ps_stream *s, uint32_t iface,
                         const ps_capture_stats *stats) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  if (iface >= s->n_ifaces || stats == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID, "unknown interface %u",
                      iface);
  }
  /* Counters describe the packets before them: seal those first. */
  if ((rc = seal_batch(s)) != 0) {
    return rc;
  }
  iface_info *f = &s->ifaces[iface];
  f->stats = *stats;
  f->stats.overflow =
      f->c.packets_dropped_overflow + f->c.packets_lost;
  f->has_stats = 1;
  if (s->state == ST_UP) {
    ps__stats m = {.iface = iface, .c = f->stats};
    size_t at = ps__buf_size(&s->out);
    if (ps__enc_stats(&s->out, &m) != 0 || queue_ctl(s, at) != 0) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
    }
  }
  return after_queue(s);
}

/* Ends the stream: counts what was not acknowledged as lost and says
 * how much. */
static int give_up_close(ps_stream *s, int rc) {
  uint64_t before = s->ctr.packets_lost;
  size_t batches = 0;
  for (size_t i = 0; i < s->rq_n; i++) {
    batches += rq_at(s, i)->state != RQ_GONE;
  }
  lose_all(s);
  uint64_t lost = s->ctr.packets_lost - before;
  if (lost > 0 || batches > 0) {
    char why[PS_ERRMSG_MAX];
    memcpy(why, s->errmsg, sizeof(why));
    ps__seterr(s->errmsg, rc,
               "%s: %llu packets in %zu batches were not acknowledged by "
               "the receiver (counted lost)",
               why, (unsigned long long)lost, batches);
  }
  drop_connection(s);
  s->state = ST_FAILED;
  return rc;
}

int ps_stream_close(ps_stream *s, int timeout_ms) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : ps__now_ms() + timeout_ms;
  if ((rc = seal_batch(s)) != 0) {
    return give_up_close(s, rc);
  }
  while (!s->close_confirmed) {
    int64_t left = deadline - ps__now_ms();
    if (left <= 0) {
      if (s->state == ST_UP) {
        ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                   "receiver %s port %u did not confirm the end of the "
                   "stream in time (%llu of %llu batches acknowledged)",
                   s->host, s->port, (unsigned long long)s->acked,
                   (unsigned long long)s->seq);
      } else {
        char why[PS_ERRMSG_MAX];
        memcpy(why, s->errmsg, sizeof(why));
        ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                   "no receiver took the end of the stream in time (last "
                   "failure: %s)",
                   why);
      }
      return give_up_close(s, PS_ERR_TIMEOUT);
    }
    int wait = left > 1000 ? 1000 : (int)left;
    if (s->state == ST_DOWN) {
      if ((rc = maybe_reconnect(s)) != 0) {
        return give_up_close(s, rc);
      }
      if (s->state == ST_DOWN) {
        int64_t due = s->next_attempt_ms - ps__now_ms();
        if (due < wait) {
          wait = due < 0 ? 0 : (int)due;
        }
        if (backoff_sleep(s, wait) != 0) {
          ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped while closing");
          return give_up_close(s, PS_ERR_STOPPED);
        }
        continue;
      }
    }
    /* CLOSE goes after the last batch, once per connection, naming the
     * last batch the receiver can have (a connection is up only after the
     * resume point settled the batches of a broken one). */
    if (!s->close_queued && !s->limbo) {
      s->close_seq = s->acked;
      for (size_t i = s->rq_n; i > 0; i--) {
        rq_ent *e = rq_at(s, i - 1);
        if (e->state != RQ_GONE) {
          s->close_seq = e->seq > s->acked ? e->seq : s->acked;
          break;
        }
      }
      size_t at = ps__buf_size(&s->out);
      if (ps__enc_close(&s->out, s->close_seq) != 0 ||
          queue_ctl(s, at) != 0) {
        return give_up_close(s, PS_ERR_NOMEM);
      }
      s->close_queued = 1;
    }
    rc = settle(s, pump(s));
    if (rc == 0 && s->state == ST_UP) {
      rc = settle(s, io_round(s, wait));
    }
    if (rc != 0) {
      return give_up_close(s, rc);
    }
    if (s->state == ST_DOWN) {
      s->close_queued = 0;
    }
  }
  drop_connection(s);
  s->state = ST_CLOSED;
  /* Everything acknowledged: the next run starts a new stream. */
  ps__spool_close(s->spool, 1);
  s->spool = NULL;
  return 0;
}
