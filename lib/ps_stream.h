/* Internal stream functions the sensor uses. */
#ifndef PS_STREAM_H
#define PS_STREAM_H

#include "ps_common.h"

/* The connection's socket (-1 when not connected, also while waiting
 * to reconnect). */
int ps__stream_fd(ps_stream *s);
/* Whether the stream takes packets: connected, or connected once and
 * waiting to reconnect. */
int ps__stream_usable(ps_stream *s);
/* Number of connections made so far: changes on every reconnect. */
uint64_t ps__stream_generation(ps_stream *s);
/* Whether the replay queue can take the current batch grown by a packet
 * of caplen bytes without dropping anything (file readers wait for it). */
int ps__stream_has_room(ps_stream *s, uint32_t caplen);
/* Whether bytes are waiting to be written (poll for POLLOUT). */
int ps__stream_want_write(ps_stream *s);
/* Numeric address and port of the receiver this stream is connected to,
 * and of our own end. Returns 0 or -1. */
int ps__stream_endpoints(ps_stream *s, char *raddr, size_t rlen,
                         uint16_t *rport, char *laddr, size_t llen,
                         uint16_t *lport);

#endif
