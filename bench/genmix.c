/* genmix: writes a deterministic benchmark capture (classic pcap, usec,
 * LINKTYPE_ETHERNET) to stdout or a file.
 *
 *   genmix N [OUT.pcap] [SEED]
 *
 * N Ethernet/IPv4 frames of 64..1514 bytes (valid IPv4 header checksum,
 * UDP or TCP). Frame sizes follow a simple "internet mix": about 35%
 * small (64..127, ACK-like), 25% medium (128..1023), 40% near-MTU
 * (1400..1514). About 70% of the frames carry random bytes (incompressible,
 * like TLS records), about 30% carry text (HTTP-like headers and words).
 * No payload is all zeros. Same N and SEED give the same file, bit for
 * bit, on every machine (own PRNG, no libc rand). Frames go to a unicast
 * MAC that is not the receiving veth's, so the receiving namespace's IP
 * stack drops them after the capture point and never answers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint32_t range(uint32_t lo, uint32_t hi) { /* inclusive */
  return lo + (uint32_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint16_t ip_csum(const uint8_t *p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  }
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return (uint16_t)~sum;
}

static const char *words[] = {"GET",
                              "POST",
                              "HTTP/1.1",
                              "Host:",
                              "example.com",
                              "Accept:",
                              "text/html",
                              "application/json",
                              "User-Agent:",
                              "Mozilla/5.0",
                              "Content-Length:",
                              "Connection:",
                              "keep-alive",
                              "Cookie:",
                              "session=",
                              "Cache-Control:",
                              "no-cache",
                              "200",
                              "OK",
                              "Server:",
                              "nginx",
                              "Date:",
                              "Thu,",
                              "the",
                              "quick",
                              "brown",
                              "fox",
                              "jumps",
                              "over",
                              "lazy",
                              "dog",
                              "/index.html",
                              "/api/v1/items",
                              "{\"id\":",
                              "\"name\":",
                              "\"value\":",
                              "true",
                              "false",
                              "null",
                              "Set-Cookie:",
                              "Vary:",
                              "Accept-Encoding",
                              "gzip"};

static void fill_text(uint8_t *p, size_t n) {
  size_t o = 0;
  while (o < n) {
    const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
    size_t l = strlen(w);
    for (size_t i = 0; i < l && o < n; i++) {
      p[o++] = (uint8_t)w[i];
    }
    if (o < n) {
      p[o++] = (rnd() % 8 == 0) ? '\n' : ' ';
    }
  }
}

static void fill_random(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rnd();
    for (size_t j = 0; j < 8 && i + j < n; j++) {
      p[i + j] = (uint8_t)(v >> (8 * j));
    }
  }
  p[0] |= 1; /* never all zeros, even for a 1-byte payload */
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: genmix N [OUT.pcap|-] [SEED]\n");
    return 2;
  }
  char *end;
  unsigned long long n = strtoull(argv[1], &end, 10);
  if (*end != '\0' || n == 0) {
    fprintf(stderr, "genmix: N must be a positive integer\n");
    return 2;
  }
  FILE *f = stdout;
  if (argc >= 3 && strcmp(argv[2], "-") != 0) {
    f = fopen(argv[2], "wb");
    if (f == NULL) {
      perror(argv[2]);
      return 1;
    }
  }
  rng_state = argc == 4 ? strtoull(argv[3], NULL, 0) : 0x9e3779b97f4a7c15ULL;
  if (rng_state == 0) {
    rng_state = 1;
  }

  uint8_t gh[24] = {0};
  le32(gh, 0xa1b2c3d4u);
  gh[4] = 2; /* version 2.4 */
  gh[6] = 4;
  le32(gh + 16, 65535); /* snaplen */
  le32(gh + 20, 1);     /* LINKTYPE_ETHERNET */
  fwrite(gh, 1, sizeof(gh), f);

  static uint8_t frame[1514];
  uint32_t sec = 1700000000u, usec = 0;
  unsigned long long text_frames = 0, bytes = 0, text_bytes = 0;
  for (unsigned long long i = 0; i < n; i++) {
    uint32_t r = range(0, 99), len;
    if (r < 35) {
      len = range(64, 127);
    } else if (r < 60) {
      len = range(128, 1023);
    } else {
      len = range(1400, 1514);
    }
    int tcp = range(0, 99) < 65;
    int text = range(0, 99) < 30;
    uint32_t flow = range(0, 63);
    /* Ethernet */
    static const uint8_t dst[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x02};
    static const uint8_t src[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
    memcpy(frame, dst, 6);
    memcpy(frame + 6, src, 6);
    put16(frame + 12, 0x0800);
    /* IPv4 */
    uint8_t *ip = frame + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(len - 14));
    put16(ip + 4, (uint16_t)i);
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = tcp ? 6 : 17;
    put32(ip + 12, 0x0a000000u | (1u << 8) | (flow + 1));     /* 10.0.1.x */
    put32(ip + 16, 0x0a000000u | (2u << 8) | (flow % 7 + 1)); /* 10.0.2.y */
    put16(ip + 10, ip_csum(ip, 20));
    uint8_t *l4 = ip + 20;
    size_t hl;
    if (tcp) {
      hl = 20;
      memset(l4, 0, hl);
      put16(l4, (uint16_t)(40000 + flow));
      put16(l4 + 2, text ? 80 : 443);
      put32(l4 + 4, (uint32_t)(i * 1448u));
      put32(l4 + 8, (uint32_t)(flow * 7919u));
      l4[12] = 0x50;
      l4[13] = 0x18; /* PSH ACK */
      put16(l4 + 14, 502);
      put16(l4 + 16, (uint16_t)rnd()); /* checksum not computed */
    } else {
      hl = 8;
      put16(l4, (uint16_t)(50000 + flow));
      put16(l4 + 2, text ? 5353 : 443); /* QUIC-like or text */
      put16(l4 + 4, (uint16_t)(len - 14 - 20));
      put16(l4 + 6, 0);
    }
    uint8_t *pl = l4 + hl;
    size_t pn = len - 14 - 20 - hl;
    if (text) {
      fill_text(pl, pn);
      text_frames++;
      text_bytes += len;
    } else {
      fill_random(pl, pn);
    }
    bytes += len;
    uint8_t ph[16];
    le32(ph, sec);
    le32(ph + 4, usec);
    le32(ph + 8, len);
    le32(ph + 12, len);
    fwrite(ph, 1, 16, f);
    fwrite(frame, 1, len, f);
    usec += 10; /* nominal 100k pps; tcpreplay is told its own rate */
    if (usec >= 1000000) {
      usec -= 1000000;
      sec++;
    }
  }
  if (fflush(f) != 0 || (f != stdout && fclose(f) != 0)) {
    perror("genmix: write");
    return 1;
  }
  fprintf(stderr,
          "genmix: %llu frames, %llu bytes of frames (mean %.0f), text "
          "frames %.1f%%, text bytes %.1f%%\n",
          n, bytes, (double)bytes / (double)n,
          100.0 * (double)text_frames / (double)n,
          100.0 * (double)text_bytes / (double)bytes);
  return 0;
}
