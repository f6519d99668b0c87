/*
 * One non-blocking connection, plain TCP or TLS over it (ps_tls), shared
 * by the receiver's loop and the sensor's stream: moves bytes between the
 * socket and the protocol's buffers and never waits. The only syscalls
 * here are recv() and send() on the connection's own descriptor; the
 * protocol on top (ps_session, ps_ssession) never sees either.
 */
#ifndef PS_TRANSPORT_H
#define PS_TRANSPORT_H

#include "ps_common.h"
#include "ps_tls.h"

typedef struct ps__transport {
  int fd;         /* non-blocking socket, -1 when closed */
  ps__tls *tls;   /* NULL: plain TCP */
  int tls_ready;  /* the TLS handshake is done (and verified) */
  int first_byte; /* the first byte the peer sent, -1 before any */
  int eof;        /* the peer closed its side */
} ps__transport;

/* Takes over fd and tls (NULL for plain TCP); both are freed by
 * ps__transport_close(). */
void ps__transport_init(ps__transport *t, int fd, ps__tls *tls);

/* Closes the socket and frees the TLS session. */
void ps__transport_close(ps__transport *t);

/*
 * One recv() of at most n bytes. What the peer's protocol sent is put at
 * the end of plain: the bytes themselves, or with TLS what they decrypt
 * to (after the handshake, which this advances: see tls_ready). *got is
 * the number of bytes read from the socket (0: none were waiting).
 * Returns 0, or a negative ps_error with the reason in errbuf:
 * PS_ERR_CLOSED when the peer closed the TCP connection (eof set, errbuf
 * empty) or ended TLS, PS_ERR_SYSTEM when the read failed (errbuf: the
 * system's reason, for the caller to word), PS_ERR_TLS, PS_ERR_NOMEM.
 * plain may have grown even when an error is returned: what the peer
 * said before it left is worth reading.
 */
int ps__transport_recv(ps__transport *t, ps__buf *plain, size_t n, size_t *got,
                       char *errbuf);

/*
 * Writes what waits, until the socket is full: plain (encrypted first
 * with TLS once the handshake is done; during it only the handshake's
 * own records go) and the TLS records. *sent (if not NULL) grows by the
 * bytes written. Returns 0, PS_ERR_SYSTEM when the write failed (errbuf:
 * the system's reason), PS_ERR_TLS or PS_ERR_NOMEM.
 */
int ps__transport_send(ps__transport *t, ps__buf *plain, uint64_t *sent,
                       char *errbuf);

/* Bytes waiting to be written: in plain and in TLS records. */
size_t ps__transport_pending(const ps__transport *t, const ps__buf *plain);

/* TLS records not yet written (0 without TLS). */
size_t ps__transport_backlog(const ps__transport *t);

#endif
