/* A callback sink for the unit tests that records what it is handed:
 * every packet (header and a copy of its bytes), the sessions and
 * interfaces it saw, the last counters. It can also refuse a session, an
 * interface or the n-th packet, to test what the receiver does then. */
#ifndef PS_TEST_RECORDER_H
#define PS_TEST_RECORDER_H

#include <packetstreamer/packetstreamer.h>

#include <stddef.h>
#include <stdint.h>

typedef struct rec_pkt {
  ps_packet p; /* p.data is NULL: the bytes are in data */
  uint8_t *data;
  uint32_t linktype; /* of the packet's interface */
} rec_pkt;

typedef struct recorder {
  int starts, ifaces, ends, stats_calls;
  /* The last session that started. */
  uint64_t session_id;
  char sensor[256];
  char peer[80];
  uint32_t linktypes[8]; /* by interface id, for ids below 8 */
  rec_pkt *pkts;
  size_t npkts, cap;
  uint64_t bytes; /* sum of the recorded packets' caplen */
  ps_capture_stats last_stats;
  uint32_t last_stats_iface;
  /* Set by the test: what the callbacks answer. */
  int refuse_start, refuse_iface;
  size_t refuse_packet_at; /* 1-based; 0: never */
} recorder;

/* Makes *out a callback sink that records into r (zeroed first; r must
 * outlive the sink). Asserts success. */
void rec_sink(ps_sink **out, recorder *r);

/* Frees the recorded packets and zeroes r. */
void rec_free(recorder *r);

#endif
