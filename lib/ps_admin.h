/*
 * The receiver's admin API: HTTP/1.1 served by libmicrohttpd, JSON by
 * jansson, driven by the receiver's own epoll loop (MHD in "external
 * epoll" mode: MHD's epoll descriptor sits in the receiver's set, and
 * MHD_run() is called from the loop). There is no thread: every request
 * is answered inside ps_receiver_process(), on the thread that drives
 * the receiver, so handlers read and change the receiver's state
 * directly, with nothing handed across.
 */
#ifndef PS_ADMIN_H
#define PS_ADMIN_H

#include "ps_capture.h"
#include "ps_common.h"
#include "ps_fleet.h"

/* The largest request body taken (a capture request is a few hundred
 * bytes): a larger one is answered 413. */
#define PS_ADMIN_MAX_BODY 65536u
/* Admin connections at once; more wait in the listen backlog. */
#define PS_ADMIN_MAX_CONNS 32u

typedef struct ps__admin ps__admin;
struct ps_receiver;

/* TLS for the admin API: PEM text (not file names: MHD takes them from
 * memory). cert and key both or neither; trust (the client CAs) only
 * with them, and then every request needs a client certificate that
 * verifies against it. */
typedef struct ps__admin_tls {
  char *cert, *key, *trust;
} ps__admin_tls;
void ps__admin_tls_clear(ps__admin_tls *t);

/* Serves the admin API of r on the listening socket fd (taken over).
 * token: the bearer token every request must carry (NULL: none); tls:
 * HTTPS, NULL or cert NULL for plain HTTP (the caller has checked that
 * fd is on loopback when there is neither a token nor a client CA).
 * Returns 0 or a ps_error with the reason in errbuf. */
int ps__admin_new(ps__admin **out, struct ps_receiver *r, int fd,
                  const uint8_t *token, size_t token_len,
                  const ps__admin_tls *tls, char *errbuf);
void ps__admin_free(ps__admin *a);
/* The descriptor to watch for reading, and MHD's next deadline (ms, -1
 * for none). */
int ps__admin_fd(ps__admin *a);
int ps__admin_timeout_ms(ps__admin *a);
/* Serves what is ready (never blocks). */
void ps__admin_run(ps__admin *a);
uint16_t ps__admin_port(ps__admin *a);

/* Whether the bearer credentials in an Authorization header value
 * (may be NULL) are token, compared in constant time. Pure. */
int ps__admin_token_ok(const char *header, const uint8_t *token,
                       size_t token_len);

/* The Prometheus text exposition (format 0.0.4) of the receiver's
 * counters and every sensor's, appended to out. Pure. Returns 0 or
 * PS_ERR_NOMEM. */
int ps__admin_metrics(ps__buf *out, const ps_receiver_counters *c,
                      uint64_t journal_commits, const ps__fleet *fl);

/* The body of POST /api/v1/captures, validated into *out (JSON with
 * the keys of ps-receiver(1); every limit of ps__capreq checked).
 * Returns 0 or PS_ERR_INVALID with the reason (for the 400 answer) in
 * errbuf. Pure. */
int ps__admin_parse_capture(const char *body, size_t len, ps__capreq *out,
                            char *errbuf);
/* The body of PATCH /api/v1/captures/ID: filter, sample and/or max_pps.
 * *what: PS_CHANGE_* bits; filter: PS_MAX_FILTER + 1 bytes. Pure. */
int ps__admin_parse_change(const char *body, size_t len, uint32_t *what,
                           char *filter, uint32_t *sample_n, uint32_t *max_pps,
                           char *errbuf);
/* Compiles filter for a link type (pcap's LINKTYPE_ value), as the
 * sensor will: 0, or PS_ERR_FILTER with libpcap's words in errbuf. */
int ps__admin_check_filter(const char *filter, uint32_t linktype, char *errbuf,
                           size_t errlen);
/* All answers to capture c are in: its waiting request is answered. */
void ps__admin_answered(ps__admin *a, ps__capture *c);

/* What the admin API reads from the receiver (ps_receiver.c). */
const ps_receiver_counters *ps__receiver_ctr(struct ps_receiver *r);
uint64_t ps__receiver_journal_commits(struct ps_receiver *r);
ps__fleet *ps__receiver_fleet(struct ps_receiver *r);
ps__captures *ps__receiver_captures(struct ps_receiver *r);
/* The directory captures' own files go under, or NULL (none). */
const char *ps__receiver_capture_dir(struct ps_receiver *r);

#endif
