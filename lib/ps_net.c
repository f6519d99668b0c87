/* Socket helpers. */
#include "config.h"

#include "ps_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { LOOKUP_RUNNING, LOOKUP_DONE, LOOKUP_ABANDONED };

struct ps__net_lookup {
  struct gaicb cb;
  struct addrinfo hints;
  char host[256];
  char port[8];
  int efd;          /* written when the lookup is done */
  atomic_int state; /* shared with the resolver's thread */
  int rc;           /* of a lookup done at once */
};

static void lookup_destroy(ps__net_lookup *l) {
  if (l->cb.ar_result != NULL) {
    freeaddrinfo(l->cb.ar_result);
  }
  if (l->efd >= 0) {
    close(l->efd);
  }
  free(l);
}

#ifdef HAVE_GETADDRINFO_A
/* In the resolver's thread, once: wake the owner, or, if it is gone,
 * clean up after it. Nothing touches l after the exchange unless the
 * owner gave it up. */
static void lookup_done(union sigval v) {
  ps__net_lookup *l = v.sival_ptr;
  uint64_t one = 1;
  ssize_t n = write(l->efd, &one, sizeof(one));
  (void)n;
  if (atomic_exchange(&l->state, LOOKUP_DONE) == LOOKUP_ABANDONED) {
    lookup_destroy(l);
  }
}
#endif

int ps__net_lookup_start(ps__net_lookup **out, const char *host, uint16_t port,
                         char *errbuf) {
  ps__net_lookup *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  l->efd = -1;
  snprintf(l->host, sizeof(l->host), "%s", host);
  snprintf(l->port, sizeof(l->port), "%u", port);
  l->hints.ai_family = AF_UNSPEC;
  l->hints.ai_socktype = SOCK_STREAM;
  l->hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV | AI_NUMERICHOST;
  /* An address needs no resolver: done at once. */
  int gai = getaddrinfo(l->host, l->port, &l->hints, &l->cb.ar_result);
  l->hints.ai_flags &= ~AI_NUMERICHOST;
#ifdef HAVE_GETADDRINFO_A
  if (gai == EAI_NONAME) {
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->cb.ar_name = l->host;
    l->cb.ar_service = l->port;
    l->cb.ar_request = &l->hints;
    struct gaicb *list[1] = {&l->cb};
    struct sigevent ev;
    memset(&ev, 0, sizeof(ev));
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = lookup_done;
    ev.sigev_value.sival_ptr = l;
    atomic_init(&l->state, LOOKUP_RUNNING);
    if (l->efd < 0 || getaddrinfo_a(GAI_NOWAIT, list, 1, &ev) != 0) {
      lookup_destroy(l);
      return ps__seterr(errbuf, PS_ERR_SYSTEM,
                        "cannot resolve receiver host %s: %s", host,
                        strerror(errno));
    }
    *out = l;
    return 0;
  }
#else
  if (gai == EAI_NONAME) {
    gai = getaddrinfo(l->host, l->port, &l->hints, &l->cb.ar_result);
  }
#endif
  l->rc = gai;
  atomic_init(&l->state, LOOKUP_DONE);
  *out = l;
  return 0;
}

int ps__net_lookup_fd(const ps__net_lookup *l) {
  return l->efd;
}

int ps__net_lookup_result(ps__net_lookup *l, struct addrinfo **ai,
                          char *errbuf) {
  if (atomic_load(&l->state) != LOOKUP_DONE) {
    return 1;
  }
  int gai = l->rc;
#ifdef HAVE_GETADDRINFO_A
  if (l->cb.ar_name != NULL) {
    gai = gai_error(&l->cb);
  }
#endif
  if (gai != 0) {
    /* A temporary failure is worth a retry; an unknown name is not. */
    return ps__seterr(
        errbuf, gai == EAI_AGAIN ? PS_ERR_CONNECT : PS_ERR_RESOLVE,
        "cannot resolve receiver host %s: %s", l->host, gai_strerror(gai));
  }
  *ai = l->cb.ar_result;
  l->cb.ar_result = NULL;
  return 0;
}

void ps__net_lookup_free(ps__net_lookup *l) {
  if (l != NULL &&
      atomic_exchange(&l->state, LOOKUP_ABANDONED) != LOOKUP_RUNNING) {
    lookup_destroy(l);
  }
}

int ps__net_connect_start(const struct addrinfo *ai, int *err) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  ai->ai_protocol);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    *err = errno;
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

int ps__net_connect_result(int fd) {
  struct pollfd pfd = {fd, POLLOUT, 0};
  int n;
  do {
    n = poll(&pfd, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return errno;
  }
  if (n == 0) {
    return EINPROGRESS;
  }
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
    return errno;
  }
  return soerr;
}

int ps__net_listen(const char *addr, uint16_t port, int *fds, int max,
                   char *errbuf) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int any = addr == NULL || *addr == '\0';
  if (any) {
    /* One IPv6 socket that also takes IPv4 (v4-mapped), the common Linux
     * setup; falls back to IPv4 below when IPv6 is off. */
    hints.ai_family = AF_INET6;
  }
  char portstr[8];
  snprintf(portstr, sizeof(portstr), "%u", port);
  int gai = getaddrinfo(any ? NULL : addr, portstr, &hints, &res);
  if (gai != 0 && any) {
    hints.ai_family = AF_INET;
    gai = getaddrinfo(NULL, portstr, &hints, &res);
  }
  if (gai != 0) {
    return ps__seterr(errbuf, PS_ERR_RESOLVE,
                      "cannot resolve listen address %s: %s", any ? "*" : addr,
                      gai_strerror(gai));
  }
  int n = 0, rc = 0;
  for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    if (fd < 0) {
      rc = ps__seterr(errbuf, PS_ERR_SYSTEM, "socket: %s", strerror(errno));
      continue;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one,
                 sizeof(int));
    }
    char name[80];
    ps__net_addr_str(ai->ai_addr, name, sizeof(name));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      int e = errno;
      rc =
          ps__seterr(errbuf, e == EADDRINUSE ? PS_ERR_ADDRINUSE : PS_ERR_SYSTEM,
                     "cannot listen on %s: %s", name, strerror(e));
      close(fd);
      continue;
    }
    if (listen(fd, 4096) != 0) { /* the kernel caps it at net.core.somaxconn */
      rc = ps__seterr(errbuf, PS_ERR_SYSTEM, "cannot listen on %s: %s", name,
                      strerror(errno));
      close(fd);
      continue;
    }
    fds[n++] = fd;
  }
  freeaddrinfo(res);
  if (n == 0) {
    if (rc == 0) {
      rc = ps__seterr(errbuf, PS_ERR_SYSTEM, "no address to listen on");
    }
    return rc;
  }
  return n;
}

void ps__net_addr_str(const struct sockaddr *sa, char *out, size_t outlen) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
    port = ntohs(s4->sin_port);
    snprintf(out, outlen, "%s:%u", host, port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    port = ntohs(s6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], host, sizeof(host));
      snprintf(out, outlen, "%s:%u", host, port);
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
      snprintf(out, outlen, "[%s]:%u", host, port);
    }
  } else {
    snprintf(out, outlen, "unknown");
  }
}

int ps__net_endpoint(int fd, int peer, char *addr, size_t addrlen,
                     uint16_t *port) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
                : getsockname(fd, (struct sockaddr *)&ss, &sl);
  if (rc != 0) {
    return -1;
  }
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)addrlen);
    *port = ntohs(s4->sin_port);
    return 0;
  }
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], addr, (socklen_t)addrlen);
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)addrlen);
    }
    *port = ntohs(s6->sin6_port);
    return 0;
  }
  return -1;
}
