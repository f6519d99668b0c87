/* Sockets: resolve, connect, listen, name. The only module besides the
 * capture and the loops that makes network syscalls. */
#ifndef PS_NET_H
#define PS_NET_H

#include "ps_common.h"

#include <sys/socket.h>

/* Connects a non-blocking TCP socket to host:port, trying every address,
 * each for at most timeout_ms; stop_fd (or -1) aborts the wait when it
 * becomes readable. Returns the fd, or a negative ps_error with the text
 * in errbuf. */
int ps__net_connect(const char *host, uint16_t port, int timeout_ms,
                    int stop_fd, char *errbuf);

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
