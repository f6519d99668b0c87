/* pcapstat: two small helpers for bench/run.sh.
 *
 *   pcapstat count FILE   prints "PACKETS BYTES" (caplen sum) of any file
 *                         libpcap reads (pcap or pcapng)
 *   pcapstat lat          reads a classic pcap stream on stdin (as
 *                         `ps-receiver -w -` or `tcpdump -U -w -` write it)
 *                         and prints, per packet, as soon as it is read:
 *                         "SEQ CAPTURE_TS ARRIVAL_TS LATENCY_MS"
 *                         where CAPTURE_TS is the packet's own time stamp
 *                         (the kernel's capture time on the sensor) and
 *                         ARRIVAL_TS the wall clock when its record was
 *                         complete on stdin. Same host, same clock. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int readn(uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(0, p + got, n - got);
    if (r <= 0) {
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static uint32_t u32(const uint8_t *p, int swap) {
  uint32_t v;
  memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

static int lat(void) {
  uint8_t gh[24], ph[16];
  static uint8_t buf[262144 + 16];
  if (readn(gh, 24) != 0) {
    fprintf(stderr, "pcapstat: no pcap header on stdin\n");
    return 1;
  }
  uint32_t magic = u32(gh, 0);
  int swap = 0, nano = 0;
  if (magic == 0xa1b2c3d4u) {
  } else if (magic == 0xd4c3b2a1u) {
    swap = 1;
  } else if (magic == 0xa1b23c4du) {
    nano = 1;
  } else if (magic == 0x4d3cb2a1u) {
    nano = 1;
    swap = 1;
  } else {
    fprintf(stderr, "pcapstat: not a classic pcap stream\n");
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  unsigned long long seq = 0;
  while (readn(ph, 16) == 0) {
    uint32_t caplen = u32(ph + 8, swap);
    if (caplen > sizeof(buf) || readn(buf, caplen) != 0) {
      break;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double cap =
        (double)u32(ph, swap) + (double)u32(ph + 4, swap) / (nano ? 1e9 : 1e6);
    double arr = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    printf("%llu %.6f %.6f %.3f\n", ++seq, cap, arr, (arr - cap) * 1000.0);
  }
  return 0;
}

static int count(const char *path) {
  char eb[PCAP_ERRBUF_SIZE];
  pcap_t *p = pcap_open_offline(path, eb);
  if (p == NULL) {
    fprintf(stderr, "pcapstat: %s: %s\n", path, eb);
    return 1;
  }
  struct pcap_pkthdr *h;
  const u_char *d;
  unsigned long long n = 0, bytes = 0;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    n++;
    bytes += h->caplen;
  }
  pcap_close(p);
  printf("%llu %llu\n", n, bytes);
  return rc == PCAP_ERROR ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "count") == 0) {
    return count(argv[2]);
  }
  if (argc == 2 && strcmp(argv[1], "lat") == 0) {
    return lat();
  }
  fprintf(stderr, "usage: pcapstat count FILE | pcapstat lat < STREAM\n");
  return 2;
}
