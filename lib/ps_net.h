/* Sockets: resolve, connect, listen, name. The only module besides the
 * capture and the loops that makes network syscalls. */
#ifndef PS_NET_H
#define PS_NET_H

#include "ps_common.h"

#include <netdb.h>
#include <sys/socket.h>

/* A receiver's host being resolved for TCP without waiting: an address
 * at once, a name in the background (getaddrinfo_a; where the C library
 * lacks it, with getaddrinfo, which waits). */
typedef struct ps__net_lookup ps__net_lookup;

/* Starts resolving host to port. Returns 0 with *out, or PS_ERR_NOMEM /
 * PS_ERR_SYSTEM with the text in errbuf. */
int ps__net_lookup_start(ps__net_lookup **out, const char *host, uint16_t port,
                         char *errbuf);

/* A descriptor that becomes readable when the lookup is done (-1 when it
 * was done at once). */
int ps__net_lookup_fd(const ps__net_lookup *l);

/* 1 while the lookup runs; 0 when done, with *ai (the caller frees it
 * with freeaddrinfo); or PS_ERR_RESOLVE (an unknown name) or
 * PS_ERR_CONNECT (a temporary failure) with the text in errbuf. */
int ps__net_lookup_result(ps__net_lookup *l, struct addrinfo **ai,
                          char *errbuf);

/* Forgets the lookup: freed now, or by the resolver when it is done. */
void ps__net_lookup_free(ps__net_lookup *l);

/* Starts a non-blocking connect to ai (TCP_NODELAY). Returns the socket,
 * connected or on its way, or -1 with the errno in *err. */
int ps__net_connect_start(const struct addrinfo *ai, int *err);

/* How a connect started by ps__net_connect_start() is going, without
 * waiting: 0 connected, EINPROGRESS still on its way, else the errno it
 * failed with. */
int ps__net_connect_result(int fd);

/* Creates listening non-blocking sockets for addr (NULL/"" = any) and
 * port; writes up to max fds to fds and returns how many, or a negative
 * ps_error. */
int ps__net_listen(const char *addr, uint16_t port, int *fds, int max,
                   char *errbuf);

/* "ADDR:PORT" or "[ADDR6]:PORT" of a socket address. */
void ps__net_addr_str(const struct sockaddr *sa, char *out, size_t outlen);

/* Numeric address (without port, without IPv6 scope) and port of the
 * peer / local end of fd. Returns 0 or -1. */
int ps__net_endpoint(int fd, int peer, char *addr, size_t addrlen,
                     uint16_t *port);

#endif
