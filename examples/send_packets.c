/* send_packets: an agent that captures by its own means (here: it makes
 * the packets itself) and streams them with ps_stream_send().
 *
 *   send_packets HOST PORT COUNT
 *
 * Each packet is an IPv4/UDP datagram (link type RAW, 101) carrying its
 * own number.
 */
#include <packetstreamer/packetstreamer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINKTYPE_RAW 101

static size_t make_packet(uint8_t *buf, unsigned n) {
  size_t payload = 16 + n % 200;
  size_t total = 20 + 8 + payload;
  memset(buf, 0, total);
  buf[0] = 0x45; /* IPv4, 20-byte header */
  buf[2] = (uint8_t)(total >> 8);
  buf[3] = (uint8_t)total;
  buf[8] = 64;                                          /* TTL */
  buf[9] = 17;                                          /* UDP */
  buf[12] = 192, buf[13] = 0, buf[14] = 2, buf[15] = 1; /* 192.0.2.1 */
  buf[16] = 192, buf[17] = 0, buf[18] = 2, buf[19] = 2; /* 192.0.2.2 */
  buf[20] = 0x30, buf[21] = 0x39;                       /* port 12345 */
  buf[22] = 0x00, buf[23] = 0x35;                       /* port 53 */
  buf[24] = (uint8_t)((8 + payload) >> 8);
  buf[25] = (uint8_t)(8 + payload);
  snprintf((char *)buf + 28, payload, "packet %u", n);
  return total;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s HOST PORT COUNT\n", argv[0]);
    return 2;
  }
  unsigned count = (unsigned)strtoul(argv[3], NULL, 10);
  ps_stream *s = NULL;
  uint32_t iface;
  int rc = ps_stream_create(&s, "send-demo");
  if (rc == 0) {
    ps_stream_set_connect_timeout_ms(s, 10000);
    rc = ps_stream_connect(s, argv[1], (uint16_t)atoi(argv[2]));
  }
  if (rc == 0) {
    rc = ps_stream_add_interface(s, &iface, "generated", LINKTYPE_RAW, 65535,
                                 PS_TSRES_NSEC);
  }
  uint8_t buf[512];
  for (unsigned n = 0; rc == 0 && n < count; n++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t len = make_packet(buf, n);
    ps_packet pkt = {.ts_sec = ts.tv_sec,
                     .ts_frac = (uint32_t)ts.tv_nsec,
                     .caplen = (uint32_t)len,
                     .len = (uint32_t)len,
                     .iface = iface,
                     .data = buf};
    rc = ps_stream_send(s, &pkt); /* copies the bytes */
  }
  if (rc == 0) {
    rc = ps_stream_close(s, 30000);
  }
  if (rc != 0) {
    fprintf(stderr, "send_packets: %s: %s\n", ps_strerror(rc),
            s ? ps_stream_errmsg(s) : "");
  } else {
    printf("sent %u packets\n", count);
  }
  ps_stream_free(s);
  return rc == 0 ? 0 : 1;
}
