/* udpsend DST_IPV4 PORT COUNT [PPS [FIRST]]: sends COUNT UDP datagrams whose
 * payload sizes (8..1407) and bytes are a function of their index, so a
 * capture can be checked exactly: the payload starts with the index (4
 * bytes, big-endian) and "psq1" (see seqcheck.c). PPS paces the sending
 * (default, or 0: as fast as small socket buffers allow); FIRST is the
 * first index (default 0). Prints the sum of the
 * Ethernet frame sizes (14 + 20 + 8 + payload each). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 6) {
    fprintf(stderr, "usage: udpsend DST_IPV4 PORT COUNT [PPS [FIRST]]\n");
    return 2;
  }
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof(dst));
  dst.sin_family = AF_INET;
  dst.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "udpsend: bad address %s\n", argv[1]);
    return 2;
  }
  int n = atoi(argv[3]);
  double pps = argc >= 5 ? atof(argv[4]) : 0;
  int first = argc == 6 ? atoi(argv[5]) : 0;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  unsigned char buf[1408];
  unsigned long long frames = 0;
  double start = now_s();
  for (int i = first; i < first + n; i++) {
    size_t len = (size_t)(i * 37 % 1400) + 8;
    buf[0] = (unsigned char)(i >> 24);
    buf[1] = (unsigned char)(i >> 16);
    buf[2] = (unsigned char)(i >> 8);
    buf[3] = (unsigned char)i;
    memcpy(buf + 4, "psq1", 4);
    for (size_t k = 8; k < len; k++) {
      buf[k] = (unsigned char)(i * 7 + k * 13);
    }
    if (sendto(fd, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
      perror("sendto");
      return 1;
    }
    frames += 14 + 20 + 8 + len;
    if (pps > 0) {
      double due = start + (i - first + 1) / pps - now_s();
      if (due > 0) {
        usleep((useconds_t)(due * 1e6));
      }
    } else if (i % 50 == 49) {
      /* Pace a little so no socket buffer on the way drops anything. */
      usleep(2000);
    }
  }
  printf("%llu\n", frames);
  close(fd);
  return 0;
}
