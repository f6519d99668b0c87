/* A non-blocking connection: the socket pump under both protocol ends. */
#include "config.h"

#include "ps_transport.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void ps__transport_init(ps__transport *t, int fd, ps__tls *tls) {
  memset(t, 0, sizeof(*t));
  t->fd = fd;
  t->tls = tls;
  t->first_byte = -1;
}

void ps__transport_close(ps__transport *t) {
  if (t->fd >= 0) {
    close(t->fd);
  }
  t->fd = -1;
  ps__tls_free(t->tls);
  t->tls = NULL;
  t->tls_ready = 0;
}

int ps__transport_recv(ps__transport *t, ps__buf *plain, size_t n, size_t *got,
                       char *errbuf) {
  *got = 0;
  ps__buf *dst = t->tls ? ps__tls_cin(t->tls) : plain;
  uint8_t *p = ps__buf_reserve(dst, n);
  if (p == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  ssize_t k;
  do {
    k = recv(t->fd, p, n, 0);
  } while (k < 0 && errno == EINTR);
  if (k == 0) {
    t->eof = 1;
    errbuf[0] = '\0';
    return PS_ERR_CLOSED;
  }
  if (k < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return 0;
    }
    return ps__seterr(errbuf, PS_ERR_SYSTEM, "%s", strerror(errno));
  }
  dst->len += (size_t)k;
  *got = (size_t)k;
  if (t->first_byte < 0) {
    t->first_byte = p[0];
  }
  if (t->tls == NULL) {
    return 0;
  }
  if (!t->tls_ready) {
    int rc = ps__tls_handshake(t->tls, errbuf);
    if (rc == 1) {
      return 0;
    }
    if (rc != 0) {
      return rc;
    }
    t->tls_ready = 1;
  }
  return ps__tls_read(t->tls, plain, errbuf);
}

int ps__transport_send(ps__transport *t, ps__buf *plain, uint64_t *sent,
                       char *errbuf) {
  ps__buf *w = plain;
  if (t->tls != NULL) {
    if (t->tls_ready && ps__buf_size(plain) > 0) {
      int rc = ps__tls_write(t->tls, ps__buf_head(plain), ps__buf_size(plain),
                             errbuf);
      ps__buf_reset(plain);
      if (rc != 0) {
        return rc;
      }
    }
    w = ps__tls_cout(t->tls);
  }
  while (ps__buf_size(w) > 0) {
    ssize_t n = send(t->fd, ps__buf_head(w), ps__buf_size(w), MSG_NOSIGNAL);
    if (n > 0) {
      ps__buf_consume(w, (size_t)n);
      if (sent != NULL) {
        *sent += (uint64_t)n;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 0;
    }
    return ps__seterr(errbuf, PS_ERR_SYSTEM, "%s",
                      strerror(n < 0 ? errno : EPIPE));
  }
  return 0;
}

size_t ps__transport_backlog(const ps__transport *t) {
  return t->tls ? ps__buf_size(ps__tls_cout(t->tls)) : 0;
}

size_t ps__transport_pending(const ps__transport *t, const ps__buf *plain) {
  return ps__buf_size(plain) + ps__transport_backlog(t);
}
