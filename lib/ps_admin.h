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

#include "ps_common.h"
#include "ps_fleet.h"

/* The largest request body taken (a capture request is a few hundred
 * bytes): a larger one is answered 413. */
#define PS_ADMIN_MAX_BODY 65536u
/* Admin connections at once; more wait in the listen backlog. */
#define PS_ADMIN_MAX_CONNS 32u

typedef struct ps__admin ps__admin;
struct ps_receiver;

/* Serves the admin API of r on the listening socket fd (taken over).
 * token: the bearer token every request must carry (NULL: none; the
 * caller has checked that fd is then on loopback). Returns 0 or a
 * ps_error with the reason in errbuf. */
int ps__admin_new(ps__admin **out, struct ps_receiver *r, int fd,
                  const uint8_t *token, size_t token_len, char *errbuf);
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

/* What the admin API reads from the receiver (ps_receiver.c). */
const ps_receiver_counters *ps__receiver_ctr(struct ps_receiver *r);
uint64_t ps__receiver_journal_commits(struct ps_receiver *r);
ps__fleet *ps__receiver_fleet(struct ps_receiver *r);

#endif
