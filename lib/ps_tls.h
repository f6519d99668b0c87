/*
 * TLS over the connection's buffers (GnuTLS with custom push/pull): the
 * caller moves ciphertext between the socket and cin/cout, and plaintext
 * in and out through ps__tls_read/ps__tls_write. Nothing here touches a
 * socket, so a handshake can be tested over a socketpair or in memory.
 */
#ifndef PS_TLS_H
#define PS_TLS_H

#include "ps_common.h"

typedef struct ps__tls_creds ps__tls_creds;
typedef struct ps__tls ps__tls;

/* Loads certificates and keys now (so bad files fail before any
 * connection). server: cert_file and key_file required; client_ca_file
 * makes client certificates required. client: ca_file or the system
 * trust store, optional cert/key, pin, insecure. */
int ps__tls_creds_new(ps__tls_creds **out, int server, const ps_tls_options *o,
                      size_t size, char *errbuf);
void ps__tls_creds_free(ps__tls_creds *c);
/* Whether these client credentials skip verification. */
int ps__tls_creds_insecure(const ps__tls_creds *c);

/* A session. server_name: the name to verify (client side); NULL falls
 * back to the creds' server_name. */
int ps__tls_new(ps__tls **out, ps__tls_creds *c, const char *server_name,
                char *errbuf);
void ps__tls_free(ps__tls *t);

/* Ciphertext from the peer goes in here; ciphertext for the peer comes
 * out of here. */
ps__buf *ps__tls_cin(ps__tls *t);
ps__buf *ps__tls_cout(ps__tls *t);

/* Advances the handshake: 0 done (and verified), 1 needs more input,
 * or an error (PS_ERR_TLS, text in errbuf). */
int ps__tls_handshake(ps__tls *t, char *errbuf);

/* Decrypts what cin holds into plain. Returns 0, PS_ERR_CLOSED when the
 * peer closed the TLS session, or PS_ERR_TLS. */
int ps__tls_read(ps__tls *t, ps__buf *plain, char *errbuf);

/* Encrypts n bytes into cout. */
int ps__tls_write(ps__tls *t, const uint8_t *p, size_t n, char *errbuf);

/* The verified peer certificate's subject DN ("" if none); a short text
 * naming protocol and cipher. */
const char *ps__tls_peer_subject(ps__tls *t);
const char *ps__tls_description(ps__tls *t);

#endif
