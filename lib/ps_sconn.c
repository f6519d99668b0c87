/* One connection of a sensor's stream: connect, TLS and the session,
 * pumped without waiting. */
#include "config.h"

#include "ps_net.h"
#include "ps_sconn.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

#define READ_CHUNK 16384

/* Starts the TCP connect to the next address of the attempt. */
static int next_address(ps__sconn *c, int64_t now) {
  while (c->ai_next != NULL) {
    struct addrinfo *ai = c->ai_next;
    c->ai_next = ai->ai_next;
    int fd = ps__net_connect_start(ai, &c->conn_err);
    if (fd >= 0) {
      ps__transport_init(&c->tx, fd, NULL);
      c->try_until_ms = now + c->connect_ms;
      return 0;
    }
  }
  return ps__seterr(c->errmsg, PS_ERR_CONNECT,
                    "cannot connect to receiver %s port %u: %s", c->host,
                    c->port, strerror(c->conn_err));
}

int ps__sconn_open(ps__sconn *c, const ps__ssession_env *env,
                   ps__tls_creds *creds, const char *host, uint16_t port,
                   int64_t connect_ms, int64_t hello_ms, int64_t now_ms) {
  ps__sconn_close(c);
  memset(c, 0, sizeof(*c));
  ps__transport_init(&c->tx, -1, NULL);
  c->env = env;
  c->creds = creds;
  snprintf(c->host, sizeof(c->host), "%s", host);
  c->port = port;
  c->connect_ms = connect_ms;
  c->hello_ms = hello_ms;
  c->conn_err = ECONNREFUSED;
  c->log = env->log;
  c->log_ud = env->log_ud;
  c->try_until_ms = now_ms + connect_ms;
  return ps__net_lookup_start(&c->lookup, host, port, c->errmsg);
}

/* The name resolved (or not): the connects start. */
static int on_lookup(ps__sconn *c, int64_t now) {
  int rc = ps__net_lookup_result(c->lookup, &c->ai, c->errmsg);
  if (rc == 1) {
    if (now < c->try_until_ms) {
      return 0;
    }
    rc = ps__seterr(c->errmsg, PS_ERR_CONNECT,
                    "cannot resolve receiver host %s: no answer within "
                    "%lld s",
                    c->host, (long long)(c->connect_ms / 1000));
  }
  ps__net_lookup_free(c->lookup);
  c->lookup = NULL;
  if (rc != 0) {
    return rc;
  }
  c->ai_next = c->ai;
  return next_address(c, now);
}

/* TCP is up: TLS (if set) and the hello start. */
static int start_session(ps__sconn *c, int64_t now) {
  freeaddrinfo(c->ai);
  c->ai = c->ai_next = NULL;
  if (c->creds != NULL) {
    /* The first call writes our half of the handshake. */
    int rc = ps__tls_new(&c->tx.tls, c->creds, c->host, c->errmsg);
    if (rc == 0 && (rc = ps__tls_handshake(c->tx.tls, c->errmsg)) == 1) {
      rc = 0;
    }
    if (rc != 0) {
      return rc;
    }
  }
  uint8_t snonce[PS_NONCE_LEN];
  gnutls_rnd(GNUTLS_RND_NONCE, snonce, sizeof(snonce));
  c->connected = 1;
  if (ps__ssession_init(&c->sess, c->env, c->host, c->port, snonce, now,
                        c->hello_ms) != 0) {
    return ps__seterr(c->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  return 0;
}

static int on_connect(ps__sconn *c, int64_t now) {
  int e = ps__net_connect_result(c->tx.fd);
  if (e == EINPROGRESS) {
    if (now < c->try_until_ms) {
      return 0;
    }
    e = ETIMEDOUT;
  }
  if (e != 0) {
    c->conn_err = e;
    ps__transport_close(&c->tx);
    return next_address(c, now);
  }
  return start_session(c, now);
}

/* Words what the transport said. */
static int transport_error(ps__sconn *c, int rc, const char *eb) {
  if (c->tx.tls != NULL && !c->tx.tls_ready) {
    /* TLS records start with content types 0x14..0x17; anything else is
     * a receiver answering in the plain protocol. */
    int b0 = c->tx.first_byte;
    if (rc == PS_ERR_TLS && b0 >= 0 && (b0 < 0x14 || b0 > 0x17)) {
      return ps__seterr(c->errmsg, PS_ERR_TLS,
                        "receiver %s port %u answered without TLS: it does "
                        "not serve TLS (does it speak TLS?)",
                        c->host, c->port);
    }
    if (rc == PS_ERR_CLOSED || rc == PS_ERR_SYSTEM) {
      return ps__seterr(c->errmsg, PS_ERR_TLS,
                        "receiver %s port %u closed the connection during "
                        "the TLS handshake (does it speak TLS?)",
                        c->host, c->port);
    }
  }
  if (rc == PS_ERR_CLOSED && c->tx.eof) {
    return ps__seterr(c->errmsg, PS_ERR_CLOSED,
                      "receiver %s port %u closed the connection", c->host,
                      c->port);
  }
  if (rc == PS_ERR_SYSTEM) {
    return ps__seterr(c->errmsg, PS_ERR_CLOSED,
                      "reading from receiver %s port %u: %s", c->host, c->port,
                      eb);
  }
  return ps__seterr(c->errmsg, rc, "%s", eb);
}

static int session_error(ps__sconn *c, int rc) {
  return ps__seterr(c->errmsg, rc, "%s", c->sess.errmsg);
}

/* Reads what is there without waiting, and hands it to the session. */
static int read_in(ps__sconn *c, int64_t now) {
  char eb[PS_ERRMSG_MAX];
  for (;;) {
    size_t got;
    int was_ready = c->tx.tls_ready;
    int rc = ps__transport_recv(&c->tx, &c->rx, READ_CHUNK, &got, eb);
    if (!was_ready && c->tx.tls_ready) {
      int insecure = ps__tls_creds_insecure(c->creds);
      ps__log(c->log, c->log_ud, PS_LOG_INFO, "TLS to %s port %u: %s, %s%s",
              c->host, c->port, ps__tls_description(c->tx.tls),
              insecure ? "NOT VERIFIED (--tls-insecure)" : "verified ",
              insecure ? "" : ps__tls_peer_subject(c->tx.tls));
    }
    /* What came before an error is read first: it may say why. */
    if (ps__buf_size(&c->rx) > 0) {
      int src = ps__ssession_input(&c->sess, ps__buf_head(&c->rx),
                                   ps__buf_size(&c->rx), now);
      ps__buf_reset(&c->rx);
      if (src != 0) {
        return session_error(c, src);
      }
    }
    if (rc != 0) {
      /* After the confirmed close the receiver may go as it likes. */
      return ps__sconn_closed(c) ? 0 : transport_error(c, rc, eb);
    }
    if (got == 0) {
      return 0;
    }
  }
}

/* Feeds the socket what it takes now. */
static int write_out(ps__sconn *c, int64_t now) {
  char eb[PS_ERRMSG_MAX];
  for (;;) {
    int rc = ps__ssession_output(&c->sess, ps__transport_backlog(&c->tx));
    if (rc != 0) {
      return session_error(c, rc);
    }
    uint64_t before = *c->wire_bytes;
    rc = ps__transport_send(&c->tx, &c->sess.out, c->wire_bytes, eb);
    if (*c->wire_bytes != before) {
      ps__ssession_wrote(&c->sess, now);
    }
    if (rc == PS_ERR_SYSTEM) {
      /* A receiver that refused us closes the connection: its reason is
       * waiting to be read and says more than "broken pipe". */
      int why = read_in(c, now);
      if (why == PS_ERR_REFUSED || why == PS_ERR_BUSY) {
        return why;
      }
      return ps__seterr(c->errmsg, PS_ERR_CLOSED,
                        "writing to receiver %s port %u: %s", c->host, c->port,
                        eb);
    }
    if (rc != 0) {
      return transport_error(c, rc, eb);
    }
    if (ps__transport_pending(&c->tx, &c->sess.out) > 0 ||
        !ps__ssession_want_write(&c->sess)) {
      return 0;
    }
  }
}

int ps__sconn_step(ps__sconn *c, int64_t now, int closing) {
  if (c->lookup != NULL) {
    int rc = on_lookup(c, now);
    if (rc != 0 || c->lookup != NULL) {
      return rc;
    }
  }
  if (!c->connected) {
    int rc = on_connect(c, now);
    if (rc != 0 || !c->connected) {
      return rc;
    }
  }
  int rc;
  if (c->tx.tls != NULL && !c->tx.tls_ready && now >= c->sess.deadline_ms) {
    return ps__seterr(c->errmsg, PS_ERR_TIMEOUT,
                      "receiver %s port %u did not complete the TLS "
                      "handshake within %d s",
                      c->host, c->port, (int)(c->hello_ms / 1000));
  }
  if ((rc = ps__ssession_tick(&c->sess, now, ps__transport_backlog(&c->tx))) !=
          0 ||
      (closing && (rc = ps__ssession_close(&c->sess)) != 0)) {
    return session_error(c, rc);
  }
  if ((rc = read_in(c, now)) != 0 || ps__sconn_closed(c)) {
    return rc;
  }
  return write_out(c, now);
}

int ps__sconn_fd(const ps__sconn *c) {
  return c->lookup != NULL ? ps__net_lookup_fd(c->lookup) : c->tx.fd;
}

int ps__sconn_want_write(ps__sconn *c) {
  if (c->lookup != NULL) {
    return 0;
  }
  if (!c->connected) {
    return c->tx.fd >= 0; /* writable once the connect is done */
  }
  /* Before the TLS handshake is done, only its own records can go. */
  return ps__transport_backlog(&c->tx) > 0 ||
         ((c->tx.tls == NULL || c->tx.tls_ready) &&
          ps__ssession_want_write(&c->sess));
}

int64_t ps__sconn_next_deadline(const ps__sconn *c, int64_t now) {
  if (c->lookup != NULL || !c->connected) {
    return c->try_until_ms > now ? c->try_until_ms - now : 0;
  }
  return ps__ssession_next_deadline(&c->sess, now);
}

int ps__sconn_active(const ps__sconn *c) {
  return c->connected && c->sess.state == PS_SS_ACTIVE;
}

int ps__sconn_closed(const ps__sconn *c) {
  return c->connected && c->sess.state == PS_SS_CLOSED;
}

void ps__sconn_close(ps__sconn *c) {
  if (c->tx.tls != NULL && c->tx.fd >= 0) {
    ps__buf none = {0};
    char eb[PS_ERRMSG_MAX];
    ps__transport_send(&c->tx, &none, NULL, eb);
  }
  if (c->env != NULL) {
    ps__transport_close(&c->tx);
  }
  if (c->connected) {
    ps__ssession_free(&c->sess);
    c->connected = 0;
  }
  ps__buf_free(&c->rx);
  ps__net_lookup_free(c->lookup);
  c->lookup = NULL;
  if (c->ai != NULL) {
    freeaddrinfo(c->ai);
  }
  c->ai = c->ai_next = NULL;
}
