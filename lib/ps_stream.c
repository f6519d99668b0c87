/* The sensor end of a stream, its public face: settings, what failures
 * mean, reconnection and failover, and the one wait of the calls
 * documented to wait.
 *
 * What happens on a connection is the session's (ps_ssession: hello,
 * proofs, resume point, acknowledgements, heartbeats, close) over a
 * connection made and pumped without waiting (ps_sconn over
 * ps_transport); the bytes kept until acknowledged are the replay
 * queue's (ps_replay), which receiver and when the failover's
 * (ps_failover), the copy on disk the spool's (ps_stream_spool). The
 * stream's own state changes in set_state() and each state is handled
 * in one place (ps__stream_step()), so a reconnect is a series of
 * non-blocking steps and the capture path never waits for a receiver. */
#include "config.h"

#include "ps_net.h"
#include "ps_stream.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define PEER_TIMEOUT_MS 30000 /* default: a receiver silent this long */
/* The first connection (ps_stream_connect(), the user is watching) gives
 * each address CONNECT_TRY_MS and TLS + hello HELLO_TIMEOUT_MS; later
 * ones RETRY_CONNECT_MS and RETRY_HELLO_MS. None of them blocks. */
#define HELLO_TIMEOUT_MS 10000
#define CONNECT_TRY_MS 5000
#define RETRY_CONNECT_MS 2000
#define RETRY_HELLO_MS 5000
#define REPLAY_DEFAULT (8u * 1024 * 1024)
#define REPLAY_MIN (64u * 1024)
#define PS_BATCH_SIZE_MIN 4096u
#define PS_BATCH_SIZE_MAX 4194304u

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
  s->env.name = s->name;
  /* The receiver recognises this stream across connections by (name,
   * stream id): a fresh random id per stream object. */
  gnutls_rnd(GNUTLS_RND_NONCE, &s->env.stream_id, sizeof(s->env.stream_id));
  s->env.codec_pref =
      ps_codec_available(PS_CODEC_LZ4) ? PS_WIRE_CODEC_LZ4 : PS_WIRE_CODEC_ZLIB;
  s->env.peer_timeout_ms = PEER_TIMEOUT_MS;
  s->env.ifaces = s->ifaces;
  s->env.rq = &s->rq;
  s->batch_max = 256 * 1024;
  s->delay_ms = 100;
  ps__replay_init(&s->rq, REPLAY_DEFAULT, PS_OVERFLOW_DROP_OLDEST);
  *out = s;
  return 0;
}

void ps_stream_free(ps_stream *s) {
  if (s == NULL) {
    return;
  }
  ps__sconn_close(&s->conn);
  close(s->stop_fd);
  ps__replay_free(&s->rq);
  for (uint32_t i = 0; i < s->env.n_ifaces; i++) {
    free(s->ifaces[i].name);
    for (unsigned k = 0; k < s->ifaces[i].n_opts; k++) {
      free(s->ifaces[i].opt_key[k]);
      free(s->ifaces[i].opt_value[k]);
    }
  }
  ps__codec_free(s->cc);
  ps__tls_creds_free(s->tls_creds);
  ps__key_clear(&s->auth_key, &s->auth_len);
  ps__stream_spool_close(&s->spool, 0);
  free(s->spool.dir);
  free((void *)s->env.announce);
  free((void *)s->env.session_state);
  free(s);
}

void ps_stream_set_log_ex(ps_stream *s, ps_log_ex_fn fn, void *user_data) {
  s->logex.fn = fn;
  s->logex.ud = user_data;
  ps_stream_set_log(s, fn ? ps__log_ex_adapter : NULL, &s->logex);
}

void ps_stream_set_log(ps_stream *s, ps_log_fn fn, void *user_data) {
  s->log = s->env.log = s->rq.log = s->spool.log = fn;
  s->log_ud = s->env.log_ud = s->rq.log_ud = s->spool.log_ud = user_data;
}

void ps__stream_set_clock(ps_stream *s, const ps__stream_clock *c) {
  s->clock = *c;
}

int64_t ps__stream_now(ps_stream *s) {
  return s->clock.now ? s->clock.now(s->clock.ud) : ps__now_ms();
}

#define BEFORE_CONNECT(s)                                                      \
  do {                                                                         \
    if ((s)->state != ST_NEW) {                                                \
      return ps__seterr((s)->errmsg, PS_ERR_STATE,                             \
                        "stream already connected");                           \
    }                                                                          \
  } while (0)

int ps_stream_set_codec(ps_stream *s, ps_codec codec) {
  BEFORE_CONNECT(s);
  if (!ps_codec_available(codec)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "codec %d is not in this build: use PS_CODEC_NONE, "
                      "PS_CODEC_ZLIB or PS_CODEC_LZ4 (ps_codec_available())",
                      (int)codec);
  }
  s->env.codec_pref = (uint8_t)codec;
  return 0;
}

int ps_stream_set_codec_level(ps_stream *s, int level) {
  BEFORE_CONNECT(s);
  if (level < 0 || level > 9) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "compression level %d: use 1..9, or 0 for the codec's "
                      "default",
                      level);
  }
  s->level = level;
  return 0;
}

int ps_stream_set_batch_size(ps_stream *s, size_t bytes) {
  BEFORE_CONNECT(s);
  if (bytes < PS_BATCH_SIZE_MIN || bytes > PS_BATCH_SIZE_MAX) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "batch size %zu: use %u..%u bytes", bytes,
                      PS_BATCH_SIZE_MIN, PS_BATCH_SIZE_MAX);
  }
  s->batch_max = bytes;
  return 0;
}

int ps_stream_set_batch_max_delay_ms(ps_stream *s, unsigned ms) {
  BEFORE_CONNECT(s);
  if (ms > 60000) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "batch max delay %u ms: use 0..60000", ms);
  }
  s->max_delay_ms = ms;
  return 0;
}

int ps_stream_set_batch_delay_ms(ps_stream *s, unsigned ms) {
  BEFORE_CONNECT(s);
  if (ms < 1 || ms > 10000) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "batch delay %u ms: use 1..10000", ms);
  }
  s->delay_ms = ms;
  return 0;
}

int ps_stream_set_replay_size(ps_stream *s, size_t bytes) {
  BEFORE_CONNECT(s);
  if (bytes < REPLAY_MIN) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "replay buffer of %zu bytes: at least %u", bytes,
                      REPLAY_MIN);
  }
  s->rq.max = bytes;
  return 0;
}

int ps_stream_set_overflow(ps_stream *s, ps_overflow policy) {
  BEFORE_CONNECT(s);
  if (policy != PS_OVERFLOW_DROP_OLDEST && policy != PS_OVERFLOW_DROP_NEWEST) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "overflow policy %d: use PS_OVERFLOW_DROP_OLDEST or "
                      "PS_OVERFLOW_DROP_NEWEST",
                      (int)policy);
  }
  s->rq.policy = policy;
  return 0;
}

int ps_stream_set_spool(ps_stream *s, const char *dir) {
  BEFORE_CONNECT(s);
  char *d = dir != NULL && *dir != '\0' ? strdup(dir) : NULL;
  if (d == NULL) {
    return dir == NULL || *dir == '\0'
               ? ps__seterr(s->errmsg, PS_ERR_INVALID, "no spool directory")
               : ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  free(s->spool.dir);
  s->spool.dir = d;
  return 0;
}

int ps_stream_add_receiver(ps_stream *s, const char *host, uint16_t port) {
  BEFORE_CONNECT(s);
  return ps__failover_add(&s->fo, host, port, 0, s->errmsg);
}

int ps_stream_set_tls(ps_stream *s, const ps_tls_options *opts, size_t size) {
  BEFORE_CONNECT(s);
  ps__tls_creds *c;
  int rc = ps__tls_creds_new(&c, 0, opts, size, s->errmsg);
  if (rc != 0) {
    return rc;
  }
  ps__tls_creds_free(s->tls_creds);
  s->tls_creds = c;
  s->env.tls = 1;
  return 0;
}

int ps_stream_set_auth_key(ps_stream *s, const uint8_t *key, size_t len) {
  BEFORE_CONNECT(s);
  int rc = ps__key_set(&s->auth_key, &s->auth_len, key, len, s->errmsg);
  s->env.auth_key = s->auth_key;
  s->env.auth_len = s->auth_len;
  return rc;
}

int ps_stream_set_peer_timeout_ms(ps_stream *s, unsigned ms) {
  BEFORE_CONNECT(s);
  if (ms > PS_TIMEOUT_MS_MAX) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "peer timeout %u ms: at most %u (a day)", ms,
                      PS_TIMEOUT_MS_MAX);
  }
  s->env.peer_timeout_ms = ms ? (int64_t)ms : PEER_TIMEOUT_MS;
  return 0;
}

int ps_stream_set_connect_timeout_ms(ps_stream *s, unsigned ms) {
  BEFORE_CONNECT(s);
  if (ms > PS_TIMEOUT_MS_MAX) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "connect timeout %u ms: at most %u (a day), or 0 to "
                      "retry forever",
                      ms, PS_TIMEOUT_MS_MAX);
  }
  s->connect_timeout_ms = ms;
  return 0;
}

const char *ps_stream_errmsg(ps_stream *s) {
  return s->errmsg;
}

void ps_stream_stop(ps_stream *s) {
  uint64_t one = 1;
  s->stopped = 1;
  ssize_t n = write(s->stop_fd, &one, sizeof(one));
  (void)n;
}

int ps_stream_get_fd(ps_stream *s) {
  return s->state == ST_ATTEMPT || s->state == ST_UP ? ps__sconn_fd(&s->conn)
                                                     : -1;
}

int ps_stream_want_write(ps_stream *s) {
  return ps_stream_get_fd(s) >= 0 && ps__sconn_want_write(&s->conn);
}

int ps_stream_get_endpoints(ps_stream *s, char *raddr, size_t rlen,
                            uint16_t *rport, char *laddr, size_t llen,
                            uint16_t *lport) {
  int fd = ps_stream_get_fd(s);
  if (fd < 0 || raddr == NULL || laddr == NULL || rport == NULL ||
      lport == NULL || ps__net_endpoint(fd, 1, raddr, rlen, rport) != 0 ||
      ps__net_endpoint(fd, 0, laddr, llen, lport) != 0) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "not connected");
  }
  return 0;
}

/* ------------------------------------------------------ states */

/* The one place the stream's state changes. */
static void set_state(ps_stream *s, enum stream_state st) {
  s->state = st;
}

/* The stream ends for good: nothing it holds can be sent any more. */
int ps__stream_fail(ps_stream *s, int code) {
  ps__replay_lose_all(&s->rq);
  ps__sconn_close(&s->conn);
  set_state(s, ST_FAILED);
  return code;
}

/* The one place that decides what an error means for the stream: 1 when
 * it ends it (the receiver refused us, it or we failed to prove who we
 * are, no memory, a stop), 0 when the network is to blame and another
 * attempt may work. PS_ERR_BUSY is never final: the receiver said it is
 * full (520), out of memory (501) or cannot write (514), its passing
 * state rather than a verdict on this sensor, so it is retried with
 * backoff like a network error. Before the first connection, a name that
 * does not resolve and a receiver that breaks the protocol end it too. */
static int is_final(const ps_stream *s, int rc) {
  if (ps_error_is_final(rc)) {
    return 1;
  }
  return s->generation == 0 && (rc == PS_ERR_RESOLVE || rc == PS_ERR_PROTOCOL);
}

static uint32_t jitter(void) {
  uint32_t r;
  gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
  return r;
}

static void log_retry(ps_stream *s, int64_t now) {
  ps__logx(s->log, s->log_ud, PS_LOG_WARNING, "reconnecting", s->name, NULL, 0,
           "reconnecting to %s port %u in %lld ms", ps__failover_host(&s->fo),
           ps__failover_port(&s->fo), (long long)(s->fo.next_ms - now));
}

/* An attempt failed (errmsg says why): another receiver, later, or,
 * before the first connection past its timeout, never. */
static int attempt_failed(ps_stream *s, int rc, int64_t now) {
  if (is_final(s, rc)) {
    return ps__stream_fail(s, rc);
  }
  ps__sconn_close(&s->conn);
  set_state(s, ST_WAIT);
  int first = s->generation == 0;
  char why[PS_ERRMSG_MAX];
  memcpy(why, s->errmsg, sizeof(why));
  switch (ps__failover_failed(&s->fo, now, first, jitter())) {
  case PS_FAILOVER_NEXT:
    if (first) {
      ps__logx(s->log, s->log_ud, PS_LOG_WARNING, "connect_failed", s->name,
               NULL, 0, "%s; trying receiver %s port %u", why,
               ps__failover_host(&s->fo), ps__failover_port(&s->fo));
    } else {
      ps__logx(s->log, s->log_ud, PS_LOG_WARNING, "connect_failed", s->name,
               NULL, 0, "%s", why);
    }
    break;
  case PS_FAILOVER_WAIT:
    if (first) {
      ps__logx(s->log, s->log_ud, PS_LOG_WARNING, "connect_failed", s->name,
               NULL, 0, "%s; retrying in %lld s", why,
               (long long)((s->fo.next_ms - now) / 1000));
    } else {
      ps__logx(s->log, s->log_ud, PS_LOG_WARNING, "connect_failed", s->name,
               NULL, 0, "%s", why);
      log_retry(s, now);
    }
    break;
  case PS_FAILOVER_GIVE_UP:
    return ps__stream_fail(s, ps__seterr(s->errmsg, PS_ERR_CONNECT,
                                         "%s (gave up after %u attempts)", why,
                                         s->fo.attempts));
  }
  return 0;
}

/* An established connection broke: final errors end the stream; the
 * others keep every unacknowledged batch and schedule a reconnect. */
static int connection_lost(ps_stream *s, int rc, int64_t now) {
  if (is_final(s, rc)) {
    return ps__stream_fail(s, rc);
  }
  ps__logx(s->log, s->log_ud, PS_LOG_WARNING, "connection_lost", s->name, NULL,
           0, "connection to receiver %s port %u lost: %s",
           ps__failover_host(&s->fo), ps__failover_port(&s->fo), s->errmsg);
  ps__sconn_close(&s->conn);
  ps__replay_connection_lost(&s->rq);
  set_state(s, ST_WAIT);
  if (s->worked) {
    ps__failover_lost(&s->fo, now, jitter());
  } else if (ps__failover_failed(&s->fo, now, 0, jitter()) ==
             PS_FAILOVER_NEXT) {
    /* Welcomed, then broken before the receiver acknowledged a new
     * batch or answered a heartbeat: a failed attempt, so the next
     * receiver is tried at once, and the backoff keeps growing. */
    return 0;
  }
  log_retry(s, now);
  return 0;
}

/* One attempt at the current receiver. */
static int start_attempt(ps_stream *s, int64_t now) {
  int64_t connect_ms = s->generation ? RETRY_CONNECT_MS : CONNECT_TRY_MS;
  int64_t hello_ms = s->generation ? RETRY_HELLO_MS : HELLO_TIMEOUT_MS;
  s->worked = 0;
  set_state(s, ST_ATTEMPT);
  int rc =
      ps__sconn_open(&s->conn, &s->env, s->tls_creds, ps__failover_host(&s->fo),
                     ps__failover_port(&s->fo), connect_ms, hello_ms, now);
  s->conn.wire_bytes = &s->rq.ctr.wire_bytes;
  if (rc != 0) {
    return attempt_failed(s, ps__seterr(s->errmsg, rc, "%s", s->conn.errmsg),
                          now);
  }
  return 0;
}

/* The session reached its active state: the stream is up. */
static int on_up(ps_stream *s) {
  if (!s->env.have_codec) {
    s->env.codec = s->conn.sess.codec;
    s->env.have_codec = 1;
  }
  if (s->cc == NULL &&
      (s->cc = ps__codec_new(s->env.codec, s->level)) == NULL) {
    return ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  s->lim = s->conn.sess.lim;
  set_state(s, ST_UP);
  if (s->generation++ == 0) {
    ps__stream_spool_meta(&s->spool, &s->env); /* the codec is known now */
  } else {
    s->rq.ctr.reconnects++;
  }
  ps__failover_connected(&s->fo, 0);
  ps__logx(s->log, s->log_ud, PS_LOG_INFO, "connected", s->name, NULL, 0,
           "connected to receiver %s port %u as sensor %s (session %llu, "
           "compression %s)",
           s->conn.host, s->conn.port, s->name,
           (unsigned long long)s->conn.sess.session_id,
           ps__codec_name(s->env.codec));
  return 0;
}

/* Connecting or up: the connection does what is due. */
static int on_conn(ps_stream *s, int64_t now) {
  int rc = ps__sconn_step(&s->conn, now, s->closing);
  if (rc != 0) {
    ps__seterr(s->errmsg, rc, "%s", s->conn.errmsg);
  }
  /* Up as soon as the session got going, even if the same step broke
   * the connection: then it is a lost connection, not a failed attempt. */
  if (s->state == ST_ATTEMPT && s->conn.connected && s->conn.sess.started) {
    int urc = on_up(s);
    rc = urc != 0 ? urc : rc;
  }
  /* The one place the backoff starts over: a connection that really
   * worked (also when the same step then broke it). */
  if (!s->worked && s->conn.connected && ps__ssession_worked(&s->conn.sess)) {
    s->worked = 1;
    ps__failover_connected(&s->fo, 1);
  }
  if (rc != 0) {
    return s->state == ST_UP ? connection_lost(s, rc, now)
                             : attempt_failed(s, rc, now);
  }
  if (ps__sconn_closed(&s->conn)) {
    ps__sconn_close(&s->conn);
    set_state(s, ST_CLOSED);
    /* Everything acknowledged: the next run starts a new stream. */
    ps__stream_spool_close(&s->spool, 1);
  }
  return 0;
}

/* Runs the handler of the current state until the state stays put;
 * every handler returns without waiting. */
int ps__stream_step(ps_stream *s, int64_t now) {
  enum stream_state was;
  int rc = 0;
  do {
    was = s->state;
    switch (s->state) {
    case ST_ATTEMPT:
    case ST_UP:
      rc = on_conn(s, now);
      break;
    case ST_WAIT:
      if (now >= s->fo.next_ms) {
        rc = s->stopped ? ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped")
                        : start_attempt(s, now);
      }
      break;
    default:
      break;
    }
  } while (rc == 0 && s->state != was && s->state != ST_WAIT);
  return rc;
}
/* ------------------------------------------------------ the calls */

static int usable(const ps_stream *s) {
  return s->generation > 0 && s->state != ST_CLOSED && s->state != ST_FAILED;
}

int ps__stream_check_open(ps_stream *s) {
  if (usable(s)) {
    return 0;
  }
  if (s->state == ST_FAILED) {
    return PS_ERR_CLOSED;
  }
  return ps__seterr(s->errmsg, PS_ERR_STATE, "stream is not connected");
}

/* Milliseconds until the current batch is due, -1 if it is empty. */
static int64_t batch_due_ms(ps_stream *s, int64_t now) {
  if (s->rq.batch_count == 0) {
    return -1;
  }
  int64_t left = s->rq.batch_start_ms + ps__stream_batch_delay(s) - now;
  return left < 0 ? 0 : left;
}

int ps__stream_seal(ps_stream *s) {
  return ps__replay_seal(&s->rq, s->cc, s->state == ST_UP, s->errmsg);
}

int ps_stream_next_deadline_ms(ps_stream *s) {
  int64_t now = ps__stream_now(s);
  int64_t due = batch_due_ms(s, now), other = -1;
  if (s->state == ST_ATTEMPT || s->state == ST_UP) {
    other = ps__sconn_next_deadline(&s->conn, now);
  } else if (s->state == ST_WAIT) {
    other = s->fo.next_ms > now ? s->fo.next_ms - now : 0;
  }
  if (other >= 0) {
    other = other > INT32_MAX ? INT32_MAX : other;
    due = due < 0 || other < due ? other : due;
  }
  return (int)(due < 0 ? -1 : due);
}

/* The wait of the calls documented to wait: for the connection, at most
 * timeout_ms, woken by ps_stream_stop(). */
static int wait_io(ps_stream *s, int timeout_ms) {
  struct pollfd pfd[2] = {
      {ps_stream_get_fd(s),
       (short)(POLLIN | (ps_stream_want_write(s) ? POLLOUT : 0)), 0},
      {s->stop_fd, POLLIN, 0}};
  int n = s->clock.poll ? s->clock.poll(s->clock.ud, pfd, 2, timeout_ms)
                        : poll(pfd, 2, timeout_ms);
  if (n < 0 && errno != EINTR) {
    return ps__seterr(s->errmsg, PS_ERR_SYSTEM, "poll: %s", strerror(errno));
  }
  return 0;
}

int ps_stream_connect(ps_stream *s, const char *host, uint16_t port) {
  BEFORE_CONNECT(s);
  int rc =
      host != NULL ? ps__failover_add(&s->fo, host, port, 1, s->errmsg) : 0;
  if (rc != 0) {
    return rc;
  }
  if (s->fo.n == 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "no receiver: give one to ps_stream_connect() or "
                      "ps_stream_add_receiver()");
  }
  if (s->spool.dir != NULL) {
    rc =
        ps__stream_spool_open(&s->spool, &s->env, s->ifaces, &s->rq, s->errmsg);
    if (rc == 1 && (s->cc = ps__codec_new(s->env.codec, s->level)) == NULL) {
      rc = ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
    }
    if (rc < 0) {
      return ps__stream_fail(s, rc);
    }
  }
  int64_t now = ps__stream_now(s);
  ps__failover_start(&s->fo, now, (int64_t)s->connect_timeout_ms);
  rc = start_attempt(s, now);
  if (rc == 0) {
    rc = ps__stream_step(s, now);
  }
  while (rc == 0 && s->state != ST_UP) {
    int wait = ps_stream_next_deadline_ms(s);
    if ((rc = wait_io(s, wait < 0 || wait > 1000 ? 1000 : wait)) != 0) {
      return ps__stream_fail(s, rc);
    }
    if (s->stopped) {
      return ps__stream_fail(
          s, ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped while connecting"));
    }
    rc = ps__stream_step(s, ps__stream_now(s));
  }
  return rc;
}

int ps_stream_process(ps_stream *s) {
  int rc = ps__stream_check_open(s);
  if (rc != 0) {
    return rc;
  }
  int64_t now = ps__stream_now(s);
  if (batch_due_ms(s, now) == 0 && (rc = ps__stream_seal(s)) != 0) {
    return rc;
  }
  if ((rc = ps__stream_step(s, now)) != 0) {
    return rc;
  }
  return s->stopped ? ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped") : 0;
}

int ps_stream_poll(ps_stream *s, int timeout_ms) {
  int rc = ps_stream_process(s);
  if (rc != 0) {
    return rc;
  }
  int wait = ps_stream_next_deadline_ms(s);
  if (timeout_ms >= 0 && (wait < 0 || wait > timeout_ms)) {
    wait = timeout_ms;
  }
  return (rc = wait_io(s, wait)) != 0 ? rc : ps_stream_process(s);
}

/* Ends the stream: counts what was not acknowledged as lost and says
 * how much. */
static int give_up_close(ps_stream *s, int rc) {
  uint64_t before = s->rq.ctr.packets_lost;
  size_t batches = ps__replay_pending(&s->rq);
  ps__stream_fail(s, rc);
  uint64_t lost = s->rq.ctr.packets_lost - before;
  if (lost > 0 || batches > 0) {
    char why[PS_ERRMSG_MAX];
    memcpy(why, s->errmsg, sizeof(why));
    ps__seterr(s->errmsg, rc,
               "%s: %llu packets in %zu batches were not acknowledged by "
               "the receiver (counted lost)",
               why, (unsigned long long)lost, batches);
  }
  return rc;
}

int ps_stream_close(ps_stream *s, int timeout_ms) {
  int rc = ps__stream_check_open(s);
  if (rc != 0) {
    return rc;
  }
  int64_t now = ps__stream_now(s);
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
  if ((rc = ps__stream_seal(s)) != 0) {
    return give_up_close(s, rc);
  }
  /* The session sends CLOSE after the last batch, once per connection,
   * and the receiver confirms it has written everything. */
  s->closing = 1;
  for (;;) {
    if ((rc = ps__stream_step(s, now)) != 0) {
      return give_up_close(s, rc);
    }
    if (s->state == ST_CLOSED) {
      return 0;
    }
    if (now >= deadline) {
      if (s->state == ST_UP) {
        ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                   "receiver %s port %u did not confirm the end of the "
                   "stream in time (%llu of %llu batches acknowledged)",
                   s->conn.host, s->conn.port, (unsigned long long)s->rq.acked,
                   (unsigned long long)s->rq.seq);
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
    int64_t wait = ps_stream_next_deadline_ms(s);
    if (wait < 0 || wait > deadline - now) {
      wait = deadline - now;
    }
    if ((rc = wait_io(s, wait > 1000 ? 1000 : (int)wait)) != 0) {
      return give_up_close(s, rc);
    }
    if (s->stopped) {
      ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped while closing");
      return give_up_close(s, PS_ERR_STOPPED);
    }
    now = ps__stream_now(s);
  }
}
