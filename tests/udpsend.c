/* udpsend DST_IPV4 PORT COUNT: sends COUNT UDP datagrams whose payload
 * sizes (1..1400) and bytes are a function of their index, so a capture
 * can be checked exactly. Prints the sum of the Ethernet frame sizes
 * (14 + 20 + 8 + payload each). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: udpsend DST_IPV4 PORT COUNT\n");
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
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  unsigned char buf[1400];
  unsigned long long frames = 0;
  for (int i = 0; i < n; i++) {
    size_t len = (size_t)(i * 37 % 1400) + 1;
    for (size_t k = 0; k < len; k++) {
      buf[k] = (unsigned char)(i * 7 + k * 13);
    }
    if (sendto(fd, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
      perror("sendto");
      return 1;
    }
    frames += 14 + 20 + 8 + len;
    /* Pace a little so no socket buffer on the way drops anything. */
    if (i % 50 == 49) {
      usleep(2000);
    }
  }
  printf("%llu\n", frames);
  close(fd);
  return 0;
}
