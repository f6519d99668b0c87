/* Internal stream functions the sensor uses. */
#ifndef PS_STREAM_H
#define PS_STREAM_H

#include "ps_common.h"

/* The connection's socket (-1 when not connected). */
int ps__stream_fd(ps_stream *s);
/* Whether bytes are waiting to be written (poll for POLLOUT). */
int ps__stream_want_write(ps_stream *s);
/* Numeric address and port of the receiver this stream is connected to,
 * and of our own end. Returns 0 or -1. */
int ps__stream_endpoints(ps_stream *s, char *raddr, size_t rlen,
                         uint16_t *rport, char *laddr, size_t llen,
                         uint16_t *lport);

#endif
