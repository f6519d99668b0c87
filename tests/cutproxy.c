/*
 * cutproxy: a TCP proxy for the fault tests that cuts connections.
 *
 *   cutproxy PORTFILE TARGET_PORT CUTS MIN MAX SEED
 *
 * Listens on 127.0.0.1 (a free port, written to PORTFILE once
 * listening) and forwards every connection to 127.0.0.1:TARGET_PORT,
 * both ways. The first CUTS connections are cut after a pseudo-random
 * number of bytes (MIN..MAX, from SEED) from the client to the server
 * has been forwarded: the bytes up to the cut go through (so the cut
 * falls inside a frame), then both sides are reset (odd cuts) or closed
 * (even cuts). Later connections are forwarded whole. Prints one line
 * per cut on standard error. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 8
#define BUF 65536

typedef struct dir {
  int from, to;
  uint8_t buf[BUF];
  size_t len, off;
} dir;

typedef struct pair {
  int used;
  int cfd, sfd;
  dir up, down; /* client to server, server to client */
  uint64_t up_bytes;
  uint64_t cut_at; /* 0: never */
} pair;

static uint32_t rng;

static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static void nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void end_pair(pair *p, int reset) {
  if (reset) {
    struct linger l = {1, 0};
    setsockopt(p->cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    setsockopt(p->sfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(p->cfd);
  close(p->sfd);
  p->used = 0;
}

/* Moves bytes one way; returns -1 when the pair is over. */
static int pump(pair *p, dir *d, int is_up) {
  if (d->len == d->off) {
    size_t want = BUF;
    if (is_up && p->cut_at) {
      want = p->cut_at - p->up_bytes < BUF ? (size_t)(p->cut_at - p->up_bytes)
                                           : BUF;
    }
    ssize_t n = recv(d->from, d->buf, want, 0);
    if (n == 0) {
      return -1;
    }
    if (n < 0) {
      return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    d->len = (size_t)n;
    d->off = 0;
    if (is_up) {
      p->up_bytes += (uint64_t)n;
    }
  }
  while (d->off < d->len) {
    ssize_t n = send(d->to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
    if (n < 0) {
      return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    d->off += (size_t)n;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: cutproxy PORTFILE TARGET_PORT CUTS MIN MAX SEED\n");
    return 2;
  }
  uint16_t target = (uint16_t)atoi(argv[2]);
  int cuts = atoi(argv[3]);
  uint64_t lo = strtoull(argv[4], NULL, 10), hi = strtoull(argv[5], NULL, 10);
  rng = (uint32_t)strtoul(argv[6], NULL, 10) | 1u;
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16)) {
    perror("cutproxy: listen");
    return 1;
  }
  socklen_t sl = sizeof(a);
  getsockname(lfd, (struct sockaddr *)&a, &sl);
  FILE *pf = fopen(argv[1], "w");
  if (pf == NULL) {
    perror(argv[1]);
    return 1;
  }
  fprintf(pf, "%u\n", ntohs(a.sin_port));
  fclose(pf);

  static pair pairs[MAX_PAIRS];
  int done = 0;
  for (;;) {
    struct pollfd pfd[1 + 2 * MAX_PAIRS];
    int map[1 + 2 * MAX_PAIRS];
    int n = 0;
    pfd[n] = (struct pollfd){lfd, POLLIN, 0};
    map[n++] = -1;
    for (int i = 0; i < MAX_PAIRS; i++) {
      pair *p = &pairs[i];
      if (!p->used) {
        continue;
      }
      pfd[n] = (struct pollfd){
          p->cfd, (short)(POLLIN | (p->down.off < p->down.len ? POLLOUT : 0)),
          0};
      map[n++] = i;
      pfd[n] = (struct pollfd){
          p->sfd, (short)(POLLIN | (p->up.off < p->up.len ? POLLOUT : 0)), 0};
      map[n++] = i;
    }
    if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR) {
      perror("cutproxy: poll");
      return 1;
    }
    if (pfd[0].revents & POLLIN) {
      int cfd = accept(lfd, NULL, NULL);
      int slot = -1;
      for (int i = 0; i < MAX_PAIRS && cfd >= 0; i++) {
        if (!pairs[i].used) {
          slot = i;
          break;
        }
      }
      int sfd = -1;
      if (slot >= 0) {
        struct sockaddr_in t = {.sin_family = AF_INET,
                                .sin_port = htons(target),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        sfd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(sfd, (struct sockaddr *)&t, sizeof(t)) != 0) {
          close(sfd);
          sfd = -1;
        }
      }
      if (sfd < 0) {
        if (cfd >= 0) {
          close(cfd);
        }
      } else {
        pair *p = &pairs[slot];
        memset(p, 0, sizeof(*p));
        p->used = 1;
        p->cfd = cfd;
        p->sfd = sfd;
        nonblock(cfd);
        nonblock(sfd);
        p->up.from = cfd;
        p->up.to = sfd;
        p->down.from = sfd;
        p->down.to = cfd;
        if (done < cuts) {
          p->cut_at = lo + (hi > lo ? next_rand() % (hi - lo + 1) : 0);
        }
      }
    }
    for (int k = 1; k < n; k++) {
      pair *p = &pairs[map[k]];
      if (!p->used || pfd[k].revents == 0) {
        continue;
      }
      if (pump(p, &p->up, 1) != 0 || pump(p, &p->down, 0) != 0) {
        end_pair(p, 0);
        continue;
      }
      if (p->cut_at && p->up_bytes >= p->cut_at && p->up.off == p->up.len) {
        done++;
        fprintf(stderr, "cutproxy: cut %d after %llu bytes (%s)\n", done,
                (unsigned long long)p->up_bytes, done % 2 ? "reset" : "close");
        end_pair(p, done % 2);
      }
    }
  }
}
