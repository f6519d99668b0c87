/* GnuTLS sessions pushed and pulled through memory buffers. */
#include "config.h"

#include "ps_tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TLS 1.2 and 1.3 only, GnuTLS's normal cipher choice otherwise. */
#define PS_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct ps__tls_creds {
  int server;
  int require_client_cert;
  int insecure;
  char *server_name;
  uint8_t pin[32];
  int have_pin;
  gnutls_certificate_credentials_t x509;
};

struct ps__tls {
  ps__tls_creds *c;
  gnutls_session_t s;
  ps__buf cin, cout;
  int done;
  char name[256];
  char subject[512];
  char desc[128];
};

static int tls_err(char *errbuf, const char *what, int rc) {
  return ps__seterr(errbuf, PS_ERR_TLS, "%s: %s", what, gnutls_strerror(rc));
}

static int parse_pin(ps__tls_creds *c, const char *pin, char *errbuf) {
  if (strncmp(pin, "sha256:", 7) != 0) {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "TLS pin '%.40s' must look like sha256:BASE64", pin);
  }
  gnutls_datum_t in = {(unsigned char *)(uintptr_t)(pin + 7),
                       (unsigned)strlen(pin + 7)};
  gnutls_datum_t out = {NULL, 0};
  int rc = gnutls_base64_decode2(&in, &out);
  if (rc < 0 || out.size != 32) {
    gnutls_free(out.data);
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "TLS pin is not the base64 of a SHA-256 digest");
  }
  memcpy(c->pin, out.data, 32);
  gnutls_free(out.data);
  c->have_pin = 1;
  return 0;
}

/* An empty string is not "unset": it is refused, because read as
 * "not given" it silently weakens TLS (an empty server_name used to
 * switch host-name verification off; an empty client_ca_file would stop
 * requiring client certificates). An unset shell variable is enough to
 * produce one. */
static int check_strings(const ps_tls_options *o, char *errbuf) {
  if (o->server_name != NULL && *o->server_name == '\0') {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "empty TLS server name: give the name the "
                      "receiver's certificate must carry, or NULL to "
                      "check the host connected to");
  }
  const struct {
    const char *value, *what;
  } f[] = {{o->ca_file, "CA file"},
           {o->cert_file, "certificate file"},
           {o->key_file, "key file"},
           {o->client_ca_file, "client CA file"},
           {o->pin, "pin"}};
  for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
    if (f[i].value != NULL && *f[i].value == '\0') {
      return ps__seterr(errbuf, PS_ERR_INVALID,
                        "empty TLS %s: give one, or NULL for none", f[i].what);
    }
  }
  return 0;
}

int ps__tls_creds_new(ps__tls_creds **out, int server,
                      const ps_tls_options *opts, size_t size, char *errbuf) {
  *out = NULL;
  ps_tls_options copy;
  const ps_tls_options *o = &copy;
  if (opts == NULL) {
    return ps__seterr(errbuf, PS_ERR_INVALID, "no TLS options");
  }
  if (ps__copy_in(&copy, sizeof(copy), opts, size,
                  PS__SIZE_TO(ps_tls_options, insecure)) != 0) {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "TLS options of %zu bytes: pass sizeof(ps_tls_options) "
                      "of a zeroed struct (PS_TLS_OPTIONS_INIT)",
                      size);
  }
  int rc = check_strings(o, errbuf);
  if (rc != 0) {
    return rc;
  }
  if (server && (o->cert_file == NULL || o->key_file == NULL)) {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "a TLS receiver needs a certificate and a key file");
  }
  if ((o->cert_file == NULL) != (o->key_file == NULL)) {
    return ps__seterr(errbuf, PS_ERR_INVALID,
                      "a TLS certificate needs its key file, and a key its "
                      "certificate");
  }
  ps__tls_creds *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  c->server = server;
  c->insecure = !server && o->insecure;
  rc = gnutls_certificate_allocate_credentials(&c->x509);
  if (rc < 0) {
    free(c);
    return tls_err(errbuf, "TLS credentials", rc);
  }
  if (!server && o->pin != NULL && (rc = parse_pin(c, o->pin, errbuf)) != 0) {
    ps__tls_creds_free(c);
    return rc;
  }
  if (!server && o->server_name != NULL) {
    c->server_name = strdup(o->server_name);
  }
  if (o->cert_file != NULL) {
    rc = gnutls_certificate_set_x509_key_file(c->x509, o->cert_file,
                                              o->key_file, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
      ps__tls_creds_free(c);
      return ps__seterr(errbuf, PS_ERR_TLS,
                        "cannot load TLS certificate %s with key %s: %s",
                        o->cert_file, o->key_file, gnutls_strerror(rc));
    }
  }
  const char *ca = server ? o->client_ca_file : o->ca_file;
  if (ca != NULL) {
    rc = gnutls_certificate_set_x509_trust_file(c->x509, ca,
                                                GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
      ps__tls_creds_free(c);
      return ps__seterr(errbuf, PS_ERR_TLS,
                        "cannot load CA certificates from %s: %s", ca,
                        rc < 0 ? gnutls_strerror(rc) : "no certificate");
    }
    c->require_client_cert = server;
  } else if (!server) {
    rc = gnutls_certificate_set_x509_system_trust(c->x509);
    if (rc < 0 && !c->insecure) {
      ps__tls_creds_free(c);
      return tls_err(errbuf, "cannot load the system trust store", rc);
    }
  }
  *out = c;
  return 0;
}

int ps__tls_creds_insecure(const ps__tls_creds *c) {
  return c->insecure;
}

void ps__tls_creds_free(ps__tls_creds *c) {
  if (c == NULL) {
    return;
  }
  gnutls_certificate_free_credentials(c->x509);
  free(c->server_name);
  free(c);
}

static ssize_t pull(gnutls_transport_ptr_t p, void *data, size_t len) {
  ps__tls *t = p;
  size_t have = ps__buf_size(&t->cin);
  if (have == 0) {
    gnutls_transport_set_errno(t->s, EAGAIN);
    return -1;
  }
  size_t n = have < len ? have : len;
  memcpy(data, ps__buf_head(&t->cin), n);
  ps__buf_consume(&t->cin, n);
  return (ssize_t)n;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *data, size_t len) {
  ps__tls *t = p;
  if (ps__buf_append(&t->cout, data, len) != 0) {
    gnutls_transport_set_errno(t->s, ENOMEM);
    return -1;
  }
  return (ssize_t)len;
}

int ps__tls_new(ps__tls **out, ps__tls_creds *c, const char *server_name,
                char *errbuf) {
  *out = NULL;
  ps__tls *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  t->c = c;
  int rc = gnutls_init(&t->s, (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
                                  GNUTLS_NONBLOCK);
  if (rc < 0) {
    free(t);
    return tls_err(errbuf, "TLS session", rc);
  }
  rc = gnutls_priority_set_direct(t->s, PS_TLS_PRIORITY, NULL);
  if (rc == 0) {
    rc = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->x509);
  }
  if (rc < 0) {
    ps__tls_free(t);
    return tls_err(errbuf, "TLS session setup", rc);
  }
  gnutls_transport_set_ptr(t->s, t);
  gnutls_transport_set_push_function(t->s, push);
  gnutls_transport_set_pull_function(t->s, pull);
  if (c->server) {
    if (c->require_client_cert) {
      gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
      gnutls_session_set_verify_cert(t->s, NULL, 0);
    }
  } else {
    const char *name = c->server_name ? c->server_name : server_name;
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
    if (name != NULL && *name != '\0') {
      /* SNI only for names, not addresses (RFC 6066). */
      if (strspn(name, "0123456789.") != strlen(name) && !strchr(name, ':')) {
        gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, name, strlen(name));
      }
    }
    if (!c->insecure) {
      /* The handshake itself fails unless the chain and the name
       * verify. GnuTLS skips the name check for a NULL name: without a
       * name there is no verified receiver, so no session. */
      if (t->name[0] == '\0') {
        ps__tls_free(t);
        return ps__seterr(errbuf, PS_ERR_TLS,
                          "no host name to verify the receiver's "
                          "certificate against");
      }
      gnutls_session_set_verify_cert(t->s, t->name, 0);
    }
  }
  *out = t;
  return 0;
}

void ps__tls_free(ps__tls *t) {
  if (t == NULL) {
    return;
  }
  gnutls_deinit(t->s);
  ps__buf_free(&t->cin);
  ps__buf_free(&t->cout);
  free(t);
}

ps__buf *ps__tls_cin(ps__tls *t) {
  return &t->cin;
}
ps__buf *ps__tls_cout(ps__tls *t) {
  return &t->cout;
}
const char *ps__tls_peer_subject(ps__tls *t) {
  return t->subject;
}
const char *ps__tls_description(ps__tls *t) {
  return t->desc;
}

/* The peer's leaf certificate, or NULL. */
static int peer_cert(ps__tls *t, gnutls_x509_crt_t *crt) {
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->s, &n);
  if (certs == NULL || n == 0) {
    return -1;
  }
  if (gnutls_x509_crt_init(crt) < 0) {
    return -1;
  }
  if (gnutls_x509_crt_import(*crt, &certs[0], GNUTLS_X509_FMT_DER) < 0) {
    gnutls_x509_crt_deinit(*crt);
    return -1;
  }
  return 0;
}

static int check_pin(ps__tls *t, char *errbuf) {
  gnutls_x509_crt_t crt;
  if (peer_cert(t, &crt) != 0) {
    return ps__seterr(errbuf, PS_ERR_TLS,
                      "TLS pin set but the receiver sent no certificate");
  }
  gnutls_pubkey_t pub;
  uint8_t der[4096], digest[32];
  size_t len = sizeof(der);
  int rc = gnutls_pubkey_init(&pub);
  if (rc == 0) {
    rc = gnutls_pubkey_import_x509(pub, crt, 0);
    if (rc == 0) {
      rc = gnutls_pubkey_export(pub, GNUTLS_X509_FMT_DER, der, &len);
    }
    gnutls_pubkey_deinit(pub);
  }
  gnutls_x509_crt_deinit(crt);
  if (rc == 0) {
    rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, digest);
  }
  if (rc < 0) {
    return tls_err(errbuf, "cannot hash the receiver's public key", rc);
  }
  if (gnutls_memcmp(digest, t->c->pin, 32) != 0) {
    /* The handshake is over: tell the receiver why we leave. */
    gnutls_alert_send(t->s, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
    gnutls_datum_t d = {digest, 32}, b64 = {NULL, 0};
    gnutls_base64_encode2(&d, &b64);
    ps__seterr(errbuf, PS_ERR_TLS,
               "the receiver's public key sha256:%.*s does not match the "
               "pinned key",
               (int)b64.size, b64.data ? (char *)b64.data : "?");
    gnutls_free(b64.data);
    return PS_ERR_TLS;
  }
  return 0;
}

static void describe(ps__tls *t) {
  gnutls_x509_crt_t crt;
  if (peer_cert(t, &crt) == 0) {
    gnutls_datum_t dn = {NULL, 0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
      snprintf(t->subject, sizeof(t->subject), "%.*s", (int)dn.size,
               (char *)dn.data);
      /* A subject is shown in logs: no control characters. */
      for (char *p = t->subject; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
          *p = '?';
        }
      }
      gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(crt);
  }
  snprintf(t->desc, sizeof(t->desc), "%s %s",
           gnutls_protocol_get_name(gnutls_protocol_get_version(t->s)) ?: "TLS",
           gnutls_cipher_get_name(gnutls_cipher_get(t->s)) ?: "?");
}

int ps__tls_handshake(ps__tls *t, char *errbuf) {
  if (t->done) {
    return 0;
  }
  int rc = gnutls_handshake(t->s);
  if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
    return 1;
  }
  if (rc < 0) {
    /* Tell the peer why (it reads the alert from cout). */
    gnutls_alert_send_appropriate(t->s, rc);
  }
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    return ps__seterr(errbuf, PS_ERR_TLS,
                      "TLS handshake failed: the peer "
                      "sent alert: %s",
                      gnutls_alert_get_name(gnutls_alert_get(t->s)) ?: "?");
  }
  if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
    unsigned status = gnutls_session_get_verify_cert_status(t->s);
    gnutls_datum_t txt = {NULL, 0};
    gnutls_certificate_verification_status_print(
        status, gnutls_certificate_type_get(t->s), &txt, 0);
    /* GnuTLS ends the text with a space. */
    while (txt.data && txt.size > 0 && txt.data[txt.size - 1] == ' ') {
      txt.data[--txt.size] = '\0';
    }
    ps__seterr(errbuf, PS_ERR_TLS,
               "TLS certificate verification failed%s%s: %s",
               t->c->server ? "" : " for ",
               t->c->server ? "" : (t->name[0] ? t->name : "the receiver"),
               txt.data ? (char *)txt.data : "unknown reason");
    gnutls_free(txt.data);
    return PS_ERR_TLS;
  }
  if (rc < 0) {
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND ||
        rc == GNUTLS_E_CERTIFICATE_REQUIRED ||
        (t->c->server && t->c->require_client_cert &&
         rc == GNUTLS_E_CERTIFICATE_ERROR)) {
      return ps__seterr(errbuf, PS_ERR_TLS,
                        "TLS handshake failed: the peer sent no certificate "
                        "(%s)",
                        gnutls_strerror(rc));
    }
    return ps__seterr(errbuf, PS_ERR_TLS, "TLS handshake failed: %s",
                      gnutls_strerror(rc));
  }
  if (!t->c->server && t->c->have_pin && (rc = check_pin(t, errbuf)) != 0) {
    return rc;
  }
  describe(t);
  t->done = 1;
  return 0;
}

int ps__tls_read(ps__tls *t, ps__buf *plain, char *errbuf) {
  for (;;) {
    uint8_t *p = ps__buf_reserve(plain, 16384);
    if (p == NULL) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
    }
    ssize_t n = gnutls_record_recv(t->s, p, 16384);
    if (n > 0) {
      plain->len += (size_t)n;
      continue;
    }
    if (n == 0) {
      return ps__seterr(errbuf, PS_ERR_CLOSED, "the peer ended TLS");
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      return 0;
    }
    if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
      return ps__seterr(errbuf, PS_ERR_TLS, "the peer ended TLS with alert: %s",
                        gnutls_alert_get_name(gnutls_alert_get(t->s)) ?: "?");
    }
    return ps__seterr(errbuf, PS_ERR_TLS, "TLS record error: %s",
                      gnutls_strerror((int)n));
  }
}

int ps__tls_write(ps__tls *t, const uint8_t *p, size_t n, char *errbuf) {
  while (n > 0) {
    ssize_t k = gnutls_record_send(t->s, p, n);
    if (k == GNUTLS_E_INTERRUPTED) {
      continue;
    }
    if (k < 0) { /* push never blocks, so GNUTLS_E_AGAIN is an error too */
      return ps__seterr(errbuf, PS_ERR_TLS, "TLS write error: %s",
                        gnutls_strerror((int)k));
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}
