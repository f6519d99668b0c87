/* Unit tests of lib/ps_tls, in memory: a client and a server ps__tls hand
 * each other the ciphertext of their cout buffers, with no socket. The
 * certificates and keys are made at run time with GnuTLS's own API (a
 * throwaway CA, server and client certificates, RSA and ECDSA) in a
 * mkdtemp directory, so no private key is ever committed. */
#include "config.h"

#include "unit_util.h"

#include "ps_tls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------ test PKI */

static char dir[] = "/tmp/ps-test-tls-XXXXXX";
static char paths[32][300];
static int n_paths;

static const char *path_of(const char *name) {
  for (int i = 0; i < n_paths; i++) {
    const char *p = strrchr(paths[i], '/') + 1;
    if (strcmp(p, name) == 0) {
      return paths[i];
    }
  }
  ck_abort_msg("no test file %s", name);
  return NULL;
}

static void write_datum(const char *name, const gnutls_datum_t *d) {
  ck_assert_int_lt(n_paths, 32);
  char *p = paths[n_paths++];
  snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(d->data, 1, d->size, f), d->size);
  ck_assert_int_eq(fclose(f), 0);
}

typedef struct ident {
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
} ident;

static void gen_key(ident *id, gnutls_pk_algorithm_t algo) {
  ck_assert_int_eq(gnutls_x509_privkey_init(&id->key), 0);
  unsigned bits = algo == GNUTLS_PK_RSA
                      ? 2048
                      : GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1);
  ck_assert_int_eq(gnutls_x509_privkey_generate(id->key, algo, bits, 0), 0);
}

enum { CA, SERVER, CLIENT };

/*
 * A certificate for id's key, signed by issuer (NULL: self-signed), valid
 * from now + from_s to now + to_s. dns: a DNS subjectAltName, or NULL.
 */
static void gen_cert(ident *id, int kind, const char *dn, const char *dns,
                     const ident *issuer, long from_s, long to_s,
                     unsigned char serial) {
  gnutls_x509_crt_t c;
  const char *err = NULL;
  time_t now = time(NULL);
  unsigned char ser[2] = {0x01, serial};
  ck_assert_int_eq(gnutls_x509_crt_init(&c), 0);
  ck_assert_int_eq(gnutls_x509_crt_set_version(c, 3), 0);
  ck_assert_int_eq(gnutls_x509_crt_set_serial(c, ser, sizeof(ser)), 0);
  ck_assert_int_eq(gnutls_x509_crt_set_activation_time(c, now + from_s), 0);
  ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(c, now + to_s), 0);
  ck_assert_msg(gnutls_x509_crt_set_dn(c, dn, &err) == 0, "dn %s: %s", dn,
                err ? err : "?");
  ck_assert_int_eq(gnutls_x509_crt_set_key(c, id->key), 0);
  ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(c, kind == CA, -1), 0);
  unsigned usage = kind == CA ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                              : GNUTLS_KEY_DIGITAL_SIGNATURE;
  if (kind != CA &&
      gnutls_x509_privkey_get_pk_algorithm(id->key) == GNUTLS_PK_RSA) {
    usage |= GNUTLS_KEY_KEY_ENCIPHERMENT;
  }
  ck_assert_int_eq(gnutls_x509_crt_set_key_usage(c, usage), 0);
  if (kind != CA) {
    ck_assert_int_eq(gnutls_x509_crt_set_key_purpose_oid(
                         c,
                         kind == SERVER ? GNUTLS_KP_TLS_WWW_SERVER
                                        : GNUTLS_KP_TLS_WWW_CLIENT,
                         0),
                     0);
  }
  if (dns != NULL) {
    ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME,
                                                          dns, strlen(dns),
                                                          GNUTLS_FSAN_SET),
                     0);
  }
  unsigned char kid[64];
  size_t kidlen = sizeof(kid);
  ck_assert_int_eq(gnutls_x509_crt_get_key_id(c, 0, kid, &kidlen), 0);
  ck_assert_int_eq(gnutls_x509_crt_set_subject_key_id(c, kid, kidlen), 0);
  if (issuer != NULL) {
    kidlen = sizeof(kid);
    ck_assert_int_eq(gnutls_x509_crt_get_key_id(issuer->crt, 0, kid, &kidlen),
                     0);
    ck_assert_int_eq(gnutls_x509_crt_set_authority_key_id(c, kid, kidlen), 0);
  }
  ck_assert_int_eq(gnutls_x509_crt_sign2(c, issuer ? issuer->crt : c,
                                         issuer ? issuer->key : id->key,
                                         GNUTLS_DIG_SHA256, 0),
                   0);
  id->crt = c;
}

/* Writes name.pem (the certificate) and, with key_name, the key. */
static void save(const ident *id, const char *name, const char *key_name) {
  gnutls_datum_t d;
  ck_assert_int_eq(gnutls_x509_crt_export2(id->crt, GNUTLS_X509_FMT_PEM, &d),
                   0);
  write_datum(name, &d);
  gnutls_free(d.data);
  if (key_name != NULL) {
    ck_assert_int_eq(
        gnutls_x509_privkey_export2(id->key, GNUTLS_X509_FMT_PEM, &d), 0);
    write_datum(key_name, &d);
    gnutls_free(d.data);
  }
}

static void ident_free(ident *id) {
  gnutls_x509_crt_deinit(id->crt);
  gnutls_x509_privkey_deinit(id->key);
}

/* "sha256:BASE64" of the certificate's SubjectPublicKeyInfo, computed
 * with GnuTLS's key id (as certtool's pin-sha256), not the way ps_tls.c
 * does it. */
static char pin_ecdsa[64], pin_other[64];

static void make_pin(const ident *id, char *out, size_t cap) {
  unsigned char kid[32];
  size_t len = sizeof(kid);
  ck_assert_int_eq(
      gnutls_x509_crt_get_key_id(id->crt, GNUTLS_KEYID_USE_SHA256, kid, &len),
      0);
  ck_assert_uint_eq(len, 32);
  gnutls_datum_t in = {kid, 32}, b64;
  ck_assert_int_eq(gnutls_base64_encode2(&in, &b64), 0);
  snprintf(out, cap, "sha256:%.*s", (int)b64.size, (char *)b64.data);
  gnutls_free(b64.data);
}

/* Runs once, in the parent process, before the forked tests. */
static void pki_setup(void) {
  ck_assert_ptr_nonnull(mkdtemp(dir));
  ident ca, ca2, ca3, rsa, ec, expired, self, client, client2, client3;
  gen_key(&ca, GNUTLS_PK_ECDSA);
  gen_cert(&ca, CA, "CN=PS Test CA,O=libpacketstreamer tests", NULL, NULL,
           -3600, 86400, 1);
  gen_key(&ca2, GNUTLS_PK_ECDSA);
  gen_cert(&ca2, CA, "CN=Other CA,O=libpacketstreamer tests", NULL, NULL, -3600,
           86400, 2);
  gen_key(&rsa, GNUTLS_PK_RSA);
  gen_cert(&rsa, SERVER, "CN=receiver.test", "receiver.test", &ca, -3600, 86400,
           3);
  gen_key(&ec, GNUTLS_PK_ECDSA);
  gen_cert(&ec, SERVER, "CN=receiver.test", "receiver.test", &ca, -3600, 86400,
           4);
  gen_key(&expired, GNUTLS_PK_ECDSA);
  gen_cert(&expired, SERVER, "CN=receiver.test", "receiver.test", &ca,
           -3 * 86400, -86400, 5);
  gen_key(&self, GNUTLS_PK_ECDSA);
  gen_cert(&self, SERVER, "CN=receiver.test", "receiver.test", NULL, -3600,
           86400, 6);
  gen_key(&client, GNUTLS_PK_ECDSA);
  gen_cert(&client, CLIENT, "CN=sensor-7,O=Capture Team", NULL, &ca, -3600,
           86400, 7);
  gen_key(&client2, GNUTLS_PK_ECDSA);
  gen_cert(&client2, CLIENT, "CN=sensor-8", NULL, &ca2, -3600, 86400, 8);
  gen_key(&ca3, GNUTLS_PK_ECDSA);
  gen_cert(&ca3, CA, "CN=PS Test CA,O=libpacketstreamer tests", NULL, NULL,
           -3600, 86400, 9);
  gen_key(&client3, GNUTLS_PK_ECDSA);
  gen_cert(&client3, CLIENT, "CN=impostor", NULL, &ca3, -3600, 86400, 10);
  save(&ca, "ca.pem", NULL);
  save(&ca2, "ca2.pem", NULL);
  save(&rsa, "rsa.pem", "rsa-key.pem");
  save(&ec, "ec.pem", "ec-key.pem");
  save(&expired, "expired.pem", "expired-key.pem");
  save(&self, "self.pem", "self-key.pem");
  save(&client, "client.pem", "client-key.pem");
  save(&client2, "client2.pem", "client2-key.pem");
  save(&client3, "client3.pem", "client3-key.pem");
  make_pin(&ec, pin_ecdsa, sizeof(pin_ecdsa));
  make_pin(&rsa, pin_other, sizeof(pin_other));
  ident *all[] = {&ca,      &ca2,  &ca3,    &rsa,     &ec,
                  &expired, &self, &client, &client2, &client3};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    ident_free(all[i]);
  }
}

static void pki_teardown(void) {
  for (int i = 0; i < n_paths; i++) {
    unlink(paths[i]);
  }
  rmdir(dir);
}

/* ------------------------------------------------------ harness */

typedef struct pair {
  ps__tls_creds *cc, *sc;
  ps__tls *c, *s;
  int rc_c, rc_s;
  char ebc[PS_ERRMSG_MAX], ebs[PS_ERRMSG_MAX];
} pair;

/* Moves everything from one side's cout to the other's cin. */
static size_t move(ps__tls *from, ps__tls *to) {
  ps__buf *o = ps__tls_cout(from);
  size_t n = ps__buf_size(o);
  if (n > 0) {
    ck_assert_int_eq(ps__buf_append(ps__tls_cin(to), ps__buf_head(o), n), 0);
    ps__buf_consume(o, n);
  }
  return n;
}

static void pair_free(pair *p) {
  ps__tls_free(p->c);
  ps__tls_free(p->s);
  ps__tls_creds_free(p->cc);
  ps__tls_creds_free(p->sc);
}

/*
 * Client with co, server with so, the client verifying name (NULL: the
 * creds' server_name only). Runs both handshakes until neither makes
 * progress; p->rc_c and p->rc_s hold the last results (1: still waiting).
 */
static void handshake(pair *p, const ps_tls_options *co,
                      const ps_tls_options *so, const char *name) {
  memset(p, 0, sizeof(*p));
  char eb[PS_ERRMSG_MAX] = "";
  ck_assert_msg(ps__tls_creds_new(&p->cc, 0, co, sizeof(*co), eb) == 0,
                "client: %s", eb);
  ck_assert_msg(ps__tls_creds_new(&p->sc, 1, so, sizeof(*so), eb) == 0,
                "server: %s", eb);
  ck_assert_int_eq(ps__tls_new(&p->c, p->cc, name, eb), 0);
  ck_assert_int_eq(ps__tls_new(&p->s, p->sc, NULL, eb), 0);
  p->rc_c = p->rc_s = 1;
  for (int round = 0; round < 20; round++) {
    if (p->rc_c == 1) {
      p->rc_c = ps__tls_handshake(p->c, p->ebc);
    }
    size_t moved = move(p->c, p->s);
    if (p->rc_s == 1) {
      p->rc_s = ps__tls_handshake(p->s, p->ebs);
    }
    moved += move(p->s, p->c);
    if (moved == 0 && (p->rc_c != 1 || p->rc_s != 1)) {
      break;
    }
  }
}

static ps_tls_options server_opts(const char *cert, const char *key) {
  ps_tls_options o = PS_TLS_OPTIONS_INIT;
  o.cert_file = path_of(cert);
  o.key_file = path_of(key);
  return o;
}

static ps_tls_options client_opts(const char *ca) {
  ps_tls_options o = PS_TLS_OPTIONS_INIT;
  o.ca_file = ca ? path_of(ca) : NULL;
  return o;
}

static void expect_ok(const pair *p) {
  ck_assert_msg(p->rc_c == 0, "client: %d %s", p->rc_c, p->ebc);
  ck_assert_msg(p->rc_s == 0, "server: %d %s", p->rc_s, p->ebs);
}

/* Sends n bytes from one side and checks the other reads them back. */
static void round_trip(ps__tls *from, ps__tls *to, size_t n) {
  uint8_t *data = malloc(n);
  unit_fill_random(data, n, (uint32_t)n);
  char eb[PS_ERRMSG_MAX];
  ck_assert_int_eq(ps__tls_write(from, data, n, eb), 0);
  /* Ciphertext, not the plaintext, is what goes out. */
  ck_assert_uint_gt(ps__buf_size(ps__tls_cout(from)), n);
  if (n >= 16) {
    ck_assert_ptr_null(memmem(ps__buf_head(ps__tls_cout(from)),
                              ps__buf_size(ps__tls_cout(from)), data, 16));
  }
  move(from, to);
  ps__buf plain = {0};
  ck_assert_int_eq(ps__tls_read(to, &plain, eb), 0);
  ck_assert_uint_eq(ps__buf_size(&plain), n);
  ck_assert_mem_eq(ps__buf_head(&plain), data, n);
  ck_assert_uint_eq(ps__buf_size(ps__tls_cin(to)), 0);
  ps__buf_free(&plain);
  free(data);
}

/* ------------------------------------------------------ handshakes */

static void good_chain(const char *cert, const char *key) {
  ps_tls_options so = server_opts(cert, key), co = client_opts("ca.pem");
  pair p;
  handshake(&p, &co, &so, "receiver.test");
  expect_ok(&p);
  const char *d = ps__tls_description(p.c);
  ck_assert_msg(strncmp(d, "TLS1.3 ", 7) == 0 || strncmp(d, "TLS1.2 ", 7) == 0,
                "description %s", d);
  ck_assert_str_eq(ps__tls_peer_subject(p.c), "CN=receiver.test");
  ck_assert_str_eq(ps__tls_peer_subject(p.s), ""); /* no client cert */
  /* The handshake is done for good: calling again is a no-op. */
  ck_assert_int_eq(ps__tls_handshake(p.c, p.ebc), 0);
  round_trip(p.c, p.s, 1);
  round_trip(p.c, p.s, 1000);
  round_trip(p.s, p.c, 333);
  round_trip(p.c, p.s, 100000); /* several records */
  round_trip(p.s, p.c, 70000);
  pair_free(&p);
}

START_TEST(test_rsa_server) {
  good_chain("rsa.pem", "rsa-key.pem");
}
END_TEST

START_TEST(test_ecdsa_server) {
  good_chain("ec.pem", "ec-key.pem");
}
END_TEST

START_TEST(test_server_name_from_creds) {
  /* tls_options.server_name wins over the name given to ps__tls_new. */
  ps_tls_options so = server_opts("ec.pem", "ec-key.pem");
  ps_tls_options co = client_opts("ca.pem");
  co.server_name = "receiver.test";
  pair p;
  handshake(&p, &co, &so, "10.1.2.3");
  expect_ok(&p);
  pair_free(&p);

  co.server_name = "other.test";
  handshake(&p, &co, &so, "receiver.test");
  ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, "for other.test");
  ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, "does not match");
  pair_free(&p);
}
END_TEST

/* Certificates the client must refuse, and why. Its alert tells the
 * server. */
static const struct refused_cert {
  const char *cert, *key; /* the server's */
  const char *ca;         /* the client's */
  const char *name;       /* the name the client wants */
  const char *why, *why2; /* in the client's error */
} refused_certs[] = {
    {"ec.pem", "ec-key.pem", "ca2.pem", "receiver.test",
     "TLS certificate verification failed for receiver.test",
     "issuer is unknown"},
    {"self.pem", "self-key.pem", "ca.pem", "receiver.test",
     "TLS certificate verification failed for receiver.test",
     "issuer is unknown"},
    {"rsa.pem", "rsa-key.pem", "ca.pem", "elsewhere.test", "for elsewhere.test",
     "does not match"},
    /* An address is verified too (it is only kept out of SNI). */
    {"rsa.pem", "rsa-key.pem", "ca.pem", "192.0.2.7", "for 192.0.2.7",
     "does not match"},
    {"expired.pem", "expired-key.pem", "ca.pem", "receiver.test",
     "TLS certificate verification failed for receiver.test", "expired"},
};

START_TEST(test_refused_cert) {
  const struct refused_cert *c = &refused_certs[_i];
  ps_tls_options so = server_opts(c->cert, c->key);
  ps_tls_options co = client_opts(c->ca);
  pair p;
  handshake(&p, &co, &so, c->name);
  ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, c->why);
  ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, c->why2);
  ck_assert_err(p.rc_s, PS_ERR_TLS, p.ebs, "the peer sent alert");
  ck_assert_str_eq(ps__tls_peer_subject(p.s), "");
  pair_free(&p);
}
END_TEST

START_TEST(test_pin_match) {
  ps_tls_options so = server_opts("ec.pem", "ec-key.pem");
  ps_tls_options co = client_opts("ca.pem");
  co.pin = pin_ecdsa;
  pair p;
  handshake(&p, &co, &so, "receiver.test");
  expect_ok(&p);
  round_trip(p.c, p.s, 64);
  pair_free(&p);
  /* A pin with --tls-insecure: the key alone is what is trusted. */
  co = client_opts(NULL);
  co.insecure = 1;
  co.pin = pin_ecdsa;
  handshake(&p, &co, &so, "whatever.test");
  expect_ok(&p);
  pair_free(&p);
}
END_TEST

START_TEST(test_pin_mismatch) {
  ps_tls_options so = server_opts("ec.pem", "ec-key.pem");
  ps_tls_options co = client_opts("ca.pem");
  co.pin = pin_other; /* the RSA server's key */
  pair p;
  handshake(&p, &co, &so, "receiver.test");
  ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, "does not match the pinned key");
  /* The message names the key that was offered. */
  char want[128];
  snprintf(want, sizeof(want), "public key %s does", pin_ecdsa);
  ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, want);
  pair_free(&p);
}
END_TEST

START_TEST(test_insecure_accepts_self_signed) {
  ps_tls_options so = server_opts("self.pem", "self-key.pem");
  ps_tls_options co = client_opts(NULL);
  co.insecure = 1;
  pair p;
  handshake(&p, &co, &so, "not-the-name.test");
  expect_ok(&p);
  ck_assert_int_eq(ps__tls_creds_insecure(p.cc), 1);
  ck_assert_int_eq(ps__tls_creds_insecure(p.sc), 0);
  round_trip(p.s, p.c, 500);
  pair_free(&p);
  /* An expired certificate too: nothing is checked. */
  so = server_opts("expired.pem", "expired-key.pem");
  handshake(&p, &co, &so, "receiver.test");
  expect_ok(&p);
  pair_free(&p);
}
END_TEST

/* ------------------------------------------------------ mutual TLS */

START_TEST(test_mtls_subject) {
  ps_tls_options so = server_opts("rsa.pem", "rsa-key.pem");
  so.client_ca_file = path_of("ca.pem");
  ps_tls_options co = client_opts("ca.pem");
  co.cert_file = path_of("client.pem");
  co.key_file = path_of("client-key.pem");
  pair p;
  handshake(&p, &co, &so, "receiver.test");
  expect_ok(&p);
  const char *subj = ps__tls_peer_subject(p.s);
  ck_assert_msg(strstr(subj, "CN=sensor-7") != NULL &&
                    strstr(subj, "O=Capture Team") != NULL,
                "subject %s", subj);
  round_trip(p.c, p.s, 2000);
  pair_free(&p);
}
END_TEST

START_TEST(test_mtls_no_client_cert) {
  ps_tls_options so = server_opts("ec.pem", "ec-key.pem");
  so.client_ca_file = path_of("ca.pem");
  ps_tls_options co = client_opts("ca.pem");
  pair p;
  handshake(&p, &co, &so, "receiver.test");
  /* GnuTLS 3.7 says "Certificate is required." (ps_tls.c words
   * GNUTLS_E_NO_CERTIFICATE_FOUND its own way, but TLS 1.3 reports
   * GNUTLS_E_CERTIFICATE_REQUIRED). */
  ck_assert_err(p.rc_s, PS_ERR_TLS, p.ebs, "TLS handshake failed: ");
  ck_assert_err(p.rc_s, PS_ERR_TLS, p.ebs, "ertificate is required");
  ck_assert_str_eq(ps__tls_peer_subject(p.s), "");
  /* The client (done with TLS 1.3 before the server judged it) learns of
   * the refusal from the server's alert at its next read. */
  ck_assert_int_ne(p.rc_c, 1);
  if (p.rc_c == 0) {
    ps__buf plain = {0};
    char eb[PS_ERRMSG_MAX] = "";
    ck_assert_err(ps__tls_read(p.c, &plain, eb), PS_ERR_TLS, eb,
                  "the peer ended TLS with alert");
    ps__buf_free(&plain);
  } else {
    ck_assert_err(p.rc_c, PS_ERR_TLS, p.ebc, "the peer sent alert");
  }
  pair_free(&p);
}
END_TEST

START_TEST(test_mtls_wrong_client_ca) {
  ps_tls_options so = server_opts("ec.pem", "ec-key.pem");
  so.client_ca_file = path_of("ca.pem");
  ps_tls_options co = client_opts("ca.pem");
  co.cert_file = path_of("client2.pem"); /* issued by the other CA */
  co.key_file = path_of("client2-key.pem");
  pair p;
  handshake(&p, &co, &so, "receiver.test");
  /* The server names the CAs it accepts; a client holding none of their
   * certificates sends none. */
  ck_assert_err(p.rc_s, PS_ERR_TLS, p.ebs, "ertificate is required");
  ck_assert_str_eq(ps__tls_peer_subject(p.s), "");
  pair_free(&p);
  /* An impostor CA with the accepted CA's very name: the certificate is
   * sent, and its signature does not verify. */
  co.cert_file = path_of("client3.pem");
  co.key_file = path_of("client3-key.pem");
  handshake(&p, &co, &so, "receiver.test");
  ck_assert_err(p.rc_s, PS_ERR_TLS, p.ebs,
                "TLS certificate verification failed: ");
  ck_assert_err(p.rc_s, PS_ERR_TLS, p.ebs, "issuer is unknown");
  ck_assert_str_eq(ps__tls_peer_subject(p.s), "");
  pair_free(&p);
}
END_TEST

START_TEST(test_plain_bytes_to_server) {
  /* A sensor without TLS sends a hello in clear to a TLS receiver. */
  ps_tls_options so = server_opts("ec.pem", "ec-key.pem");
  ps__tls_creds *sc;
  ps__tls *s;
  char eb[PS_ERRMSG_MAX] = "";
  ck_assert_int_eq(ps__tls_creds_new(&sc, 1, &so, sizeof(so), eb), 0);
  ck_assert_int_eq(ps__tls_new(&s, sc, NULL, eb), 0);
  static const uint8_t hello[] = {1,   0,   0, 0, 0, 0, 0, 42, 'P', 'S',
                                  'T', 'R', 0, 1, 0, 1, 0, 0,  0,   3};
  ck_assert_int_eq(ps__buf_append(ps__tls_cin(s), hello, sizeof(hello)), 0);
  ck_assert_err(ps__tls_handshake(s, eb), PS_ERR_TLS, eb,
                "TLS handshake failed: ");
  ps__tls_free(s);
  ps__tls_creds_free(sc);
}
END_TEST

/* ------------------------------------------------------ credentials */

START_TEST(test_creds_errors) {
  ps__tls_creds *c = (ps__tls_creds *)1;
  char eb[PS_ERRMSG_MAX] = "";
  ck_assert_err(ps__tls_creds_new(&c, 0, NULL, 0, eb), PS_ERR_INVALID, eb,
                "no TLS options");
  ck_assert_ptr_null(c);
  ps_tls_options o = PS_TLS_OPTIONS_INIT;
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, 8, eb), PS_ERR_INVALID, eb,
                "TLS options of 8 bytes: pass sizeof(ps_tls_options)");
  struct {
    ps_tls_options o;
    const char *newer;
  } big = {.newer = "x"};
  ck_assert_err(ps__tls_creds_new(&c, 0, &big.o, sizeof(big), eb),
                PS_ERR_INVALID, eb, "pass sizeof(ps_tls_options)");

  /* A receiver needs a certificate and its key. */
  o = (ps_tls_options)PS_TLS_OPTIONS_INIT;
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "a TLS receiver needs a certificate and a key file");
  o.cert_file = path_of("ec.pem");
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "needs a certificate and a key file");
  /* A client certificate without its key, and a key without its cert. */
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "a TLS certificate needs its key file");
  o.cert_file = NULL;
  o.key_file = path_of("ec-key.pem");
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "a TLS certificate needs its key file");

  /* Files that are not there. */
  char missing[400];
  snprintf(missing, sizeof(missing), "%s/no-such.pem", dir);
  o = server_opts("ec.pem", "ec-key.pem");
  o.cert_file = missing;
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                "cannot load TLS certificate");
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                missing);
  o = server_opts("ec.pem", "ec-key.pem");
  o.key_file = missing;
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                "cannot load TLS certificate");
  /* A key that is not the certificate's. */
  o = server_opts("ec.pem", "rsa-key.pem");
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                "cannot load TLS certificate");
  /* A CA file that is missing, or holds no certificate. */
  o = client_opts(NULL);
  o.ca_file = missing;
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                "cannot load CA certificates from");
  o.ca_file = path_of("ec-key.pem");
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                "cannot load CA certificates from");
  o = server_opts("ec.pem", "ec-key.pem");
  o.client_ca_file = missing;
  ck_assert_err(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), PS_ERR_TLS, eb,
                "cannot load CA certificates from");
  ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_creds_bad_pin) {
  ps__tls_creds *c;
  char eb[PS_ERRMSG_MAX] = "";
  ps_tls_options o = client_opts("ca.pem");
  o.pin = "md5:AAAA";
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "TLS pin 'md5:AAAA' must look like sha256:BASE64");
  o.pin = "sha256:not base64!";
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "TLS pin is not the base64 of a SHA-256 digest");
  o.pin = "sha256:AAAA"; /* base64, but 3 bytes */
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "not the base64 of a SHA-256 digest");
  o.pin = "sha256:";
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "not the base64 of a SHA-256 digest");
  o.pin = pin_ecdsa;
  ck_assert_int_eq(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), 0);
  ps__tls_creds_free(c);
  /* The receiver ignores client-only settings. */
  o = server_opts("ec.pem", "ec-key.pem");
  o.pin = "junk";
  o.insecure = 1;
  ck_assert_int_eq(ps__tls_creds_new(&c, 1, &o, sizeof(o), eb), 0);
  ck_assert_int_eq(ps__tls_creds_insecure(c), 0);
  ps__tls_creds_free(c);
}
END_TEST

/* Review F3: an empty server name used to reach GnuTLS as "no name",
 * which verifies the chain but not the name, so a receiver with any
 * certificate of the CA was accepted. Every empty string is refused, by
 * the internal constructor and by both public setters. */
START_TEST(test_empty_strings_refused) {
  ps__tls_creds *c = (ps__tls_creds *)1;
  char eb[PS_ERRMSG_MAX] = "";
  ps_tls_options o = client_opts("ca.pem");
  o.server_name = "";
  ck_assert_err(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), PS_ERR_INVALID, eb,
                "empty TLS server name");
  ck_assert_ptr_null(c);
  /* The others, on the side that reads them. */
  struct {
    int server;
    const char **field;
    const char *msg;
  } cases[] = {{0, &o.ca_file, "empty TLS CA file"},
               {0, &o.cert_file, "empty TLS certificate file"},
               {0, &o.key_file, "empty TLS key file"},
               {0, &o.pin, "empty TLS pin"},
               {1, &o.cert_file, "empty TLS certificate file"},
               {1, &o.key_file, "empty TLS key file"},
               {1, &o.client_ca_file, "empty TLS client CA file"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    o = cases[i].server ? server_opts("ec.pem", "ec-key.pem")
                        : client_opts("ca.pem");
    if (!cases[i].server && cases[i].field == &o.key_file) {
      o.cert_file = path_of("client.pem");
    }
    if (!cases[i].server && cases[i].field == &o.cert_file) {
      o.key_file = path_of("client-key.pem");
    }
    *cases[i].field = "";
    ck_assert_err(ps__tls_creds_new(&c, cases[i].server, &o, sizeof(o), eb),
                  PS_ERR_INVALID, eb, cases[i].msg);
  }

  /* The public setters say the same. */
  ps_stream *st;
  ck_assert_int_eq(ps_stream_create(&st, "t"), 0);
  o = client_opts("ca.pem");
  o.server_name = "";
  ck_assert_err(ps_stream_set_tls(st, &o, sizeof(o)), PS_ERR_INVALID,
                ps_stream_errmsg(st), "empty TLS server name");
  o.server_name = "receiver.test";
  ck_assert_int_eq(ps_stream_set_tls(st, &o, sizeof(o)), 0);
  ps_stream_free(st);
  ps_receiver *r;
  ck_assert_int_eq(ps_receiver_create(&r), 0);
  o = server_opts("ec.pem", "ec-key.pem");
  o.client_ca_file = "";
  ck_assert_err(ps_receiver_set_tls(r, &o, sizeof(o)), PS_ERR_INVALID,
                ps_receiver_errmsg(r), "empty TLS client CA file");
  ps_receiver_free(r);
}
END_TEST

/* Without a name there is nothing to check the certificate's name
 * against: no session, unless verification is off. */
START_TEST(test_no_name_no_session) {
  ps__tls_creds *c;
  ps__tls *t = (ps__tls *)1;
  char eb[PS_ERRMSG_MAX] = "";
  ps_tls_options o = client_opts("ca.pem");
  ck_assert_int_eq(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), 0);
  ck_assert_err(ps__tls_new(&t, c, NULL, eb), PS_ERR_TLS, eb,
                "no host name to verify the receiver's certificate against");
  ck_assert_ptr_null(t);
  ck_assert_err(ps__tls_new(&t, c, "", eb), PS_ERR_TLS, eb, "no host name");
  ck_assert_int_eq(ps__tls_new(&t, c, "receiver.test", eb), 0);
  ps__tls_free(t);
  ps__tls_creds_free(c);
  o.insecure = 1;
  o.ca_file = NULL;
  ck_assert_int_eq(ps__tls_creds_new(&c, 0, &o, sizeof(o), eb), 0);
  ck_assert_int_eq(ps__tls_new(&t, c, NULL, eb), 0);
  ps__tls_free(t);
  ps__tls_creds_free(c);
}
END_TEST

static Suite *tls_suite(void) {
  Suite *s = suite_create("tls");
  TCase *tc = tcase_create("handshake");
  tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_rsa_server);
  tcase_add_test(tc, test_ecdsa_server);
  tcase_add_test(tc, test_server_name_from_creds);
  tcase_add_loop_test(tc, test_refused_cert, 0,
                      sizeof(refused_certs) / sizeof(refused_certs[0]));
  tcase_add_test(tc, test_pin_match);
  tcase_add_test(tc, test_pin_mismatch);
  tcase_add_test(tc, test_insecure_accepts_self_signed);
  tcase_add_test(tc, test_mtls_subject);
  tcase_add_test(tc, test_mtls_no_client_cert);
  tcase_add_test(tc, test_mtls_wrong_client_ca);
  tcase_add_test(tc, test_plain_bytes_to_server);
  tcase_add_test(tc, test_creds_errors);
  tcase_add_test(tc, test_creds_bad_pin);
  tcase_add_test(tc, test_empty_strings_refused);
  tcase_add_test(tc, test_no_name_no_session);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(tls_suite());
}
