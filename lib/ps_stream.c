/* The sensor end of a connection: batching, compression, the hello
 * exchange, acknowledgements. Frames come from ps_proto; this module owns
 * the socket. */
#include "config.h"

#include "ps_codec.h"
#include "ps_net.h"
#include "ps_proto.h"
#include "ps_stream.h"
#include "ps_tls.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes queued for the socket before send blocks: small, so a slow
 * receiver costs little memory (the sensor's RSS target is 12 MB). */
#define OUT_HIGH_WATER (1u << 20)
#define HEARTBEAT_MS 5000
#define PEER_TIMEOUT_MS 30000 /* default: a receiver silent this long is dead */
#define HELLO_TIMEOUT_MS 10000
#define CONNECT_TRY_MS 5000
#define BACKOFF_MAX_S 30

enum stream_state { ST_NEW, ST_OPEN, ST_CLOSED, ST_FAILED };

struct ps_stream {
  enum stream_state state;
  char name[256];
  char host[256];
  uint16_t port;
  uint8_t codec_pref;
  int level;
  size_t batch_max;
  unsigned delay_ms;
  unsigned connect_timeout_s;
  ps_log_fn log;
  void *log_ud;

  int fd;
  int stop_fd; /* eventfd, written by ps_stream_stop() */
  volatile sig_atomic_t stopped;
  ps__limits lim;    /* what we may send: from the receiver's welcome */
  ps__limits in_lim; /* what we accept: receivers send only small frames */
  uint64_t session_id;
  uint8_t codec; /* negotiated */
  ps__codec *cc;

  ps__buf out;  /* wire bytes not yet written */
  ps__buf in;   /* wire bytes not yet parsed */
  ps__buf raw;  /* the batch being filled */
  uint32_t batch_count;
  int64_t batch_start_ms;
  int64_t last_write_ms;
  int64_t last_read_ms;  /* last bytes from the receiver */
  int64_t peer_timeout_ms;
  uint64_t seq;
  uint64_t acked;
  int close_confirmed;
  uint32_t n_ifaces;
  uint8_t iface_tsres[PS_MAX_IFACES];
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
  s->fd = -1;
  s->codec_pref = ps_codec_available(PS_CODEC_LZ4) ? PS_WIRE_CODEC_LZ4
                                                   : PS_WIRE_CODEC_ZLIB;
  s->batch_max = 256 * 1024;
  s->peer_timeout_ms = PEER_TIMEOUT_MS;
  s->delay_ms = 100;
  *out = s;
  return 0;
}

void ps_stream_free(ps_stream *s) {
  if (s == NULL) {
    return;
  }
  if (s->fd >= 0) {
    close(s->fd);
  }
  close(s->stop_fd);
  ps__codec_free(s->cc);
  ps__buf_free(&s->out);
  ps__buf_free(&s->in);
  ps__buf_free(&s->raw);
  ps__tls_free(s->tls);
  ps__tls_creds_free(s->tls_creds);
  ps__key_clear(&s->auth_key, &s->auth_len);
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

int ps__stream_fd(ps_stream *s) { return s->state == ST_OPEN ? s->fd : -1; }

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

static int fail(ps_stream *s, int code) {
  s->state = ST_FAILED;
  return code;
}

/* Handles one frame from the receiver. */
static int handle_frame(ps_stream *s, const ps__frame *f) {
  uint64_t seq;
  switch (f->type) {
  case PS_FRAME_ACK:
    if (ps__dec_seq(f, &seq, s->errmsg) != 0) {
      return fail(s, PS_ERR_PROTOCOL);
    }
    if (seq > s->seq || seq < s->acked) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                                "receiver acknowledged batch %llu, but %llu "
                                "were sent and %llu acknowledged",
                                (unsigned long long)seq,
                                (unsigned long long)s->seq,
                                (unsigned long long)s->acked));
    }
    s->ctr.batches_acked += seq - s->acked;
    s->acked = seq;
    return 0;
  case PS_FRAME_CLOSE:
    if (ps__dec_seq(f, &seq, s->errmsg) != 0) {
      return fail(s, PS_ERR_PROTOCOL);
    }
    if (seq != s->seq) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                                "receiver closed after batch %llu of %llu",
                                (unsigned long long)seq,
                                (unsigned long long)s->seq));
    }
    s->ctr.batches_acked += seq - s->acked;
    s->acked = seq;
    s->close_confirmed = 1;
    return 0;
  case PS_FRAME_HEARTBEAT:
    return ps__dec_empty(f, s->errmsg) ? fail(s, PS_ERR_PROTOCOL) : 0;
  case PS_FRAME_ERROR: {
    ps__error_msg m;
    if (ps__dec_error(f, &m, s->errmsg) != 0) {
      return fail(s, PS_ERR_PROTOCOL);
    }
    char text[PS_MAX_ERROR_TEXT + 1];
    size_t k = 0;
    for (size_t i = 0; i < m.text_len; i++) {
      unsigned char c = (unsigned char)m.text[i];
      text[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    text[k] = '\0';
    return fail(s, ps__seterr(s->errmsg, PS_ERR_REFUSED,
                              "receiver refused this sensor: %s", text));
  }
  default:
    return fail(s, ps__seterr(s->errmsg, PS_ERR_PROTOCOL,
                              "unexpected %s frame from the receiver",
                              ps__frame_name(f->type)));
  }
}

static int parse_input(ps_stream *s) {
  for (;;) {
    ps__frame f;
    size_t used;
    int rc = ps__frame_parse(ps__buf_head(&s->in), ps__buf_size(&s->in),
                             &s->in_lim, &f, &used, s->errmsg);
    if (rc < 0) {
      return fail(s, rc);
    }
    if (rc == 0) {
      return 0;
    }
    rc = handle_frame(s, &f);
    ps__buf_consume(&s->in, used);
    if (rc != 0) {
      return rc;
    }
  }
}

/* Reads what is there without blocking. */
/* Moves what TLS has decrypted into s->in. */
static int tls_decrypt(ps_stream *s) {
  int rc = ps__tls_read(s->tls, &s->in, s->errmsg);
  if (rc == PS_ERR_CLOSED && s->close_confirmed) {
    return 0;
  }
  return rc ? fail(s, rc) : 0;
}

static int do_read(ps_stream *s) {
  for (;;) {
    ps__buf *dst = s->tls ? ps__tls_cin(s->tls) : &s->in;
    uint8_t *p = ps__buf_reserve(dst, 16384);
    if (p == NULL) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
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
      if (rc == 0 && s->state != ST_NEW) {
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
      return fail(s, ps__seterr(s->errmsg, PS_ERR_CLOSED,
                                "receiver %s port %u closed the connection",
                                s->host, s->port));
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 0;
    }
    return fail(s, ps__seterr(s->errmsg, PS_ERR_CLOSED,
                              "reading from receiver %s port %u: %s",
                              s->host, s->port, strerror(errno)));
  }
}

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
      return fail(s, rc);
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
    if (s->state == ST_OPEN && do_read(s) == PS_ERR_REFUSED) {
      return PS_ERR_REFUSED;
    }
    return fail(s, ps__seterr(s->errmsg, PS_ERR_CLOSED,
                              "writing to receiver %s port %u: %s", s->host,
                              s->port, strerror(e)));
  }
  return 0;
}

/* One round of I/O: waits at most timeout_ms for the socket, then reads
 * and writes what it can. */
static int io_round(ps_stream *s, int timeout_ms) {
  if (s->stopped) {
    return ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped");
  }
  /* A receiver answers every heartbeat and acknowledges every batch: one
   * that says nothing for this long has vanished (a crashed host, a cut
   * path), even if TCP has not noticed. */
  if (s->state == ST_OPEN &&
      ps__now_ms() - s->last_read_ms > s->peer_timeout_ms) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                              "receiver %s port %u has been silent for "
                              "%lld s (no acknowledgement, no heartbeat): "
                              "presumed dead",
                              s->host, s->port,
                              (long long)(s->peer_timeout_ms / 1000)));
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
    return fail(s, ps__seterr(s->errmsg, PS_ERR_SYSTEM, "poll: %s",
                              strerror(errno)));
  }
  if (pfd[1].revents & POLLIN) {
    return ps__seterr(s->errmsg, PS_ERR_STOPPED, "stopped");
  }
  int rc = 0;
  if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
    rc = do_read(s);
  }
  if (rc == 0 && (pfd[0].revents & POLLOUT)) {
    rc = do_write(s);
  }
  return rc;
}

static int wait_write_below(ps_stream *s, size_t limit) {
  int rc = do_write(s);
  while (rc == 0 && pending(s) > limit) {
    rc = io_round(s, 1000);
  }
  return rc;
}

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
                        s->host, s->port, HELLO_TIMEOUT_MS / 1000);
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
                 .name = s->name,
                 .name_len = strlen(s->name)};
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
  int64_t deadline = ps__now_ms() + HELLO_TIMEOUT_MS;
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
  int64_t deadline = ps__now_ms() + HELLO_TIMEOUT_MS;
  while ((rc = ps__tls_handshake(s->tls, s->errmsg)) == 1) {
    int left = (int)(deadline - ps__now_ms());
    if (left <= 0) {
      return ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                        "receiver %s port %u did not complete the TLS "
                        "handshake within %d s",
                        s->host, s->port, HELLO_TIMEOUT_MS / 1000);
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

/* Sleeps ms unless stopped. */
static int backoff_sleep(ps_stream *s, int ms) {
  struct pollfd pfd = {s->stop_fd, POLLIN, 0};
  int n = poll(&pfd, 1, ms);
  return (n > 0 || s->stopped) ? PS_ERR_STOPPED : 0;
}

int ps_stream_connect(ps_stream *s, const char *host, uint16_t port) {
  if (s->state != ST_NEW) {
    return ps__seterr(s->errmsg, PS_ERR_STATE, "stream already connected");
  }
  if (host == NULL || *host == '\0' || strlen(host) >= sizeof(s->host) ||
      port == 0) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid receiver address");
  }
  strcpy(s->host, host);
  s->port = port;
  int64_t give_up = s->connect_timeout_s
                        ? ps__now_ms() + (int64_t)s->connect_timeout_s * 1000
                        : INT64_MAX;
  int delay_s = 1;
  for (unsigned attempt = 1;; attempt++) {
    int rc = ps__net_connect(host, port, CONNECT_TRY_MS, s->stop_fd,
                             s->errmsg);
    if (rc >= 0) {
      s->fd = rc;
      rc = s->tls_creds ? tls_start(s) : 0;
      if (rc == 0) {
        rc = hello(s);
      }
      if (rc == 0) {
        s->state = ST_OPEN;
        s->cc = ps__codec_new(s->codec, s->level);
        if (s->cc == NULL) {
          return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM,
                                    "out of memory"));
        }
        s->last_write_ms = s->last_read_ms = ps__now_ms();
        ps__log(s->log, s->log_ud, PS_LOG_INFO,
                "connected to receiver %s port %u as sensor %s (session "
                "%llu, compression %s)",
                host, port, s->name, (unsigned long long)s->session_id,
                ps__codec_name(s->codec));
        return 0;
      }
      close(s->fd);
      s->fd = -1;
      ps__buf_reset(&s->in);
      ps__buf_reset(&s->out);
      ps__tls_free(s->tls);
      s->tls = NULL;
      s->tls_ready = 0;
      if (s->state == ST_FAILED) {
        s->state = ST_NEW; /* a refusal below is final anyway */
      }
    }
    /* Refusals, protocol breaks and stops are final; network trouble is
     * retried. */
    if (rc != PS_ERR_CONNECT && rc != PS_ERR_CLOSED && rc != PS_ERR_TIMEOUT) {
      return fail(s, rc);
    }
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
    delay_s = delay_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : delay_s * 2;
  }
}

static int check_open(ps_stream *s) {
  if (s->state == ST_OPEN) {
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
  if (out == NULL || name == NULL ||
      !ps__valid_name(name, strlen(name)) ||
      (tsres != PS_TSRES_USEC && tsres != PS_TSRES_NSEC)) {
    return ps__seterr(s->errmsg, PS_ERR_INVALID,
                      "invalid interface name or timestamp resolution");
  }
  if (s->n_ifaces >= PS_MAX_IFACES) {
    return ps__seterr(s->errmsg, PS_ERR_LIMIT,
                      "a stream carries at most %u interfaces",
                      PS_MAX_IFACES);
  }
  ps__iface m = {.id = s->n_ifaces,
                 .linktype = linktype,
                 .snaplen = snaplen,
                 .tsres = tsres,
                 .name = name,
                 .name_len = strlen(name)};
  /* The announcement must precede the packets: send the batch so far. */
  rc = ps_stream_flush(s);
  if (rc != 0) {
    return rc;
  }
  rc = ps__enc_iface(&s->out, &m);
  if (rc != 0) {
    return ps__seterr(s->errmsg, rc, "cannot encode interface");
  }
  s->iface_tsres[s->n_ifaces] = tsres;
  *out = s->n_ifaces++;
  return do_write(s);
}

/* Compresses and queues the current batch. */
static int seal_batch(ps_stream *s) {
  if (s->batch_count == 0) {
    return 0;
  }
  /* The frame goes straight into the send queue: header room first, the
   * (compressed or stored) data after it, then the header is filled in.
   * One copy of the batch, not two. */
  const size_t hdr = PS_FRAME_HDR + PS_BATCH_HDR;
  size_t at = ps__buf_size(&s->out);
  if (ps__buf_reserve(&s->out, hdr) == NULL) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
  }
  s->out.len += hdr;
  uint8_t used;
  int rc = ps__codec_compress(s->cc, ps__buf_head(&s->raw),
                              ps__buf_size(&s->raw), &s->out, &used);
  if (rc != 0) {
    return fail(s, ps__seterr(s->errmsg, rc, "out of memory compressing"));
  }
  ps__batch b = {.seq = ++s->seq,
                 .codec = used,
                 .count = s->batch_count,
                 .raw_len = (uint32_t)ps__buf_size(&s->raw)};
  ps__put_batch_hdr(ps__buf_head(&s->out) + at, &b,
                    ps__buf_size(&s->out) - at - hdr);
  s->ctr.batches_sent++;
  ps__buf_reset(&s->raw);
  s->batch_count = 0;
  rc = wait_write_below(s, OUT_HIGH_WATER);
  /* Take the acknowledgements as they come (one recv per batch), or a
   * long stream would fill the receiver's send queue with them. */
  return rc ? rc : do_read(s);
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
    rc = seal_batch(s);
    if (rc != 0) {
      return rc;
    }
  }
  if (ps__batch_put(&s->raw, pkt) != 0) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
  }
  int64_t now = ps__now_ms();
  if (s->batch_count++ == 0) {
    s->batch_start_ms = now;
  }
  s->ctr.packets_sent++;
  s->ctr.bytes_sent += pkt->caplen;
  if (ps__buf_size(&s->raw) >= limit ||
      now - s->batch_start_ms >= (int64_t)s->delay_ms) {
    return seal_batch(s);
  }
  return 0;
}

int ps_stream_flush(ps_stream *s) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  rc = seal_batch(s);
  return rc ? rc : do_write(s);
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
  if (s->state != ST_OPEN) {
    return due;
  }
  int64_t beat = s->last_write_ms + heartbeat_ms(s) - ps__now_ms();
  int b = beat < 0 ? 0 : (int)beat;
  return due < 0 || b < due ? b : due;
}

int ps_stream_poll(ps_stream *s, int timeout_ms) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  int due = batch_due_ms(s);
  if (due == 0) {
    rc = seal_batch(s);
    if (rc != 0) {
      return rc;
    }
    due = -1;
  }
  if (ps__now_ms() - s->last_write_ms >= heartbeat_ms(s) && pending(s) == 0) {
    if (ps__enc_heartbeat(&s->out) != 0) {
      return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
    }
  }
  if (due >= 0 && (timeout_ms < 0 || due < timeout_ms)) {
    timeout_ms = due;
  }
  return io_round(s, timeout_ms);
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
  /* Counters describe the packets before them: send those first. */
  rc = seal_batch(s);
  if (rc != 0) {
    return rc;
  }
  ps__stats m = {.iface = iface, .c = *stats};
  if (ps__enc_stats(&s->out, &m) != 0) {
    return fail(s, ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory"));
  }
  return do_write(s);
}

int ps_stream_close(ps_stream *s, int timeout_ms) {
  int rc = check_open(s);
  if (rc != 0) {
    return rc;
  }
  rc = seal_batch(s);
  if (rc == 0 && ps__enc_close(&s->out, s->seq) != 0) {
    rc = ps__seterr(s->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : ps__now_ms() + timeout_ms;
  if (rc == 0) {
    rc = do_write(s);
  }
  while (rc == 0 && !s->close_confirmed) {
    int64_t left = deadline - ps__now_ms();
    if (left <= 0) {
      rc = ps__seterr(s->errmsg, PS_ERR_TIMEOUT,
                      "receiver did not confirm the end of the stream "
                      "(%llu of %llu batches acknowledged)",
                      (unsigned long long)s->acked,
                      (unsigned long long)s->seq);
      break;
    }
    rc = io_round(s, left > 1000 ? 1000 : (int)left);
  }
  close(s->fd);
  s->fd = -1;
  s->state = rc == 0 ? ST_CLOSED : ST_FAILED;
  return rc;
}
