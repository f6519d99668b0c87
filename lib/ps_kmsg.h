/* The Kafka message format (docs/KAFKA.md) read back, sans I/O: a
 * message's headers and its value, one pcapng section as the Kafka
 * output writes it (ps_sink_kafka.c). Used by the receiver's Kafka input
 * (--from-kafka); everything a message can hold is checked here, so a
 * message that is not ours, or is damaged, is refused with the reason
 * and never reaches the outputs (fuzz/fuzz_kmsg.c). */
#ifndef PS_KMSG_H
#define PS_KMSG_H

#include "ps_common.h"

#define PS_KMSG_MAX_IFACES 64

/* The headers of one message. */
typedef struct ps__kmsg_meta {
  char sensor[256];
  uint64_t stream;
  uint64_t seq;
  unsigned part, parts;
  uint32_t packets;
} ps__kmsg_meta;

/* Sets *m from the message's headers (name/value pairs, values not
 * NUL-terminated), as got from librdkafka. 0, or PS_ERR_PROTOCOL with
 * the reason in errmsg (a header missing: not one of ours; a value out
 * of range). */
typedef struct ps__kmsg_hdr {
  const char *name;
  const void *value;
  size_t len;
} ps__kmsg_hdr;
int ps__kmsg_meta_parse(ps__kmsg_meta *m, const ps__kmsg_hdr *h, size_t n,
                        char *errmsg);

typedef struct ps__kmsg_iface {
  char name[256]; /* the sensor's interface name (after "SENSOR/") */
  uint32_t linktype;
  uint32_t snaplen;
  uint8_t tsres;
} ps__kmsg_iface;

/* Walks one pcapng section: calls iface for each interface block and
 * packet for each enhanced packet block, in order, after the whole
 * section was checked (a damaged section calls nothing). sensor: the
 * ps-sensor header; interface names must start with "SENSOR/". Returns
 * the number of packets, or PS_ERR_PROTOCOL with the reason in errmsg,
 * or what a callback returned (negative). */
typedef struct ps__kmsg_cb {
  int (*iface)(void *ud, unsigned idx, const ps__kmsg_iface *ifc);
  int (*packet)(void *ud, unsigned idx, const ps_packet *pkt);
  void *ud;
} ps__kmsg_cb;
int ps__kmsg_section(const uint8_t *p, size_t n, const char *sensor,
                     const ps__kmsg_cb *cb, char *errmsg);

#endif
