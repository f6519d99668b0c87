/*
 * One connection of a sensor's stream to one receiver, made and used
 * without ever waiting: the addresses of the receiver's name tried in
 * turn with non-blocking connects, TLS over the socket (ps_transport),
 * the session over that (ps_ssession). ps__sconn_step() does what is due
 * and the session's state says how far it got; what a failure means for
 * the stream (retry, fail over, give up) is the stream's to decide.
 */
#ifndef PS_SCONN_H
#define PS_SCONN_H

#include "ps_ssession.h"
#include "ps_tls.h"
#include "ps_transport.h"

#include <netdb.h>

typedef struct ps__sconn {
  const ps__ssession_env *env;
  ps__tls_creds *creds; /* NULL: plain TCP */
  char host[256];
  uint16_t port;
  int64_t connect_ms;            /* per address */
  int64_t hello_ms;              /* TLS and the hello exchange */
  struct ps__net_lookup *lookup; /* the name being resolved */
  struct addrinfo *ai, *ai_next;
  int conn_err;         /* errno of the last address tried */
  int64_t try_until_ms; /* of the lookup, or of the address being tried */
  int connected;        /* TCP is up: TLS and the session run */
  ps__transport tx;
  ps__ssession sess;
  ps__buf rx;           /* plaintext from the receiver */
  uint64_t *wire_bytes; /* counts the bytes written */
  ps_log_fn log;
  void *log_ud;
  char errmsg[PS_ERRMSG_MAX];
} ps__sconn;

/* Starts an attempt at host port: an address is connected to at once, a
 * name resolved in the background first (within connect_ms). Returns 0,
 * or PS_ERR_NOMEM, PS_ERR_SYSTEM with errmsg. ps__sconn_close() frees it
 * either way. */
int ps__sconn_open(ps__sconn *c, const ps__ssession_env *env,
                   ps__tls_creds *creds, const char *host, uint16_t port,
                   int64_t connect_ms, int64_t hello_ms, int64_t now_ms);

/*
 * Does what is due at now_ms without waiting: the connect (the next
 * address after a failed one), the TLS handshake, the session's deadlines
 * and heartbeats, the receiver's messages, and what the socket takes.
 * closing: ask the receiver to confirm the end of the stream. Returns 0
 * or a negative ps_error with errmsg in the stream's words: the session's
 * errors (PS_ERR_REFUSED, PS_ERR_AUTH, PS_ERR_PROTOCOL...), PS_ERR_TLS,
 * PS_ERR_TIMEOUT, PS_ERR_RESOLVE (an unknown name), PS_ERR_CONNECT (the
 * name did not resolve in time, or no address took the connect),
 * PS_ERR_CLOSED (the receiver went away), PS_ERR_NOMEM.
 */
int ps__sconn_step(ps__sconn *c, int64_t now_ms, int closing);

/* The descriptor to watch (the socket, or while a name resolves one that
 * says when it is done; -1 when there is none), whether to watch it for
 * writing, and ms to the next deadline of ps__sconn_step(). */
int ps__sconn_fd(const ps__sconn *c);
int ps__sconn_want_write(ps__sconn *c);
int64_t ps__sconn_next_deadline(const ps__sconn *c, int64_t now_ms);

/* Whether the session streams, and whether it confirmed the close. */
int ps__sconn_active(const ps__sconn *c);
int ps__sconn_closed(const ps__sconn *c);

/* Closes the socket (after the last TLS records, if it takes them) and
 * frees everything; a zeroed or closed one is fine too. */
void ps__sconn_close(ps__sconn *c);

#endif
