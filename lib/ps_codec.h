/* Compression behind one interface. Sans I/O: buffers in, buffers out. */
#ifndef PS_CODEC_H
#define PS_CODEC_H

#include "ps_common.h"

typedef struct ps__codec ps__codec;

/* Creates a codec context for the wire codec id (PS_WIRE_CODEC_*) and
 * level (0 = default). Returns NULL when out of memory or unknown. */
ps__codec *ps__codec_new(uint8_t codec, int level);
void ps__codec_free(ps__codec *c);

/*
 * Compresses in[0..inlen) and appends the result to out. Sets *used to
 * the codec that the appended bytes are in: the context's codec, or
 * PS_WIRE_CODEC_STORED (bytes copied as they are) when compressing did not
 * make them smaller. Returns 0 or PS_ERR_NOMEM.
 */
int ps__codec_compress(ps__codec *c, const uint8_t *in, size_t inlen,
                       ps__buf *out, uint8_t *used);

/*
 * Decompresses in[0..inlen), encoded with codec, into out[0..outlen):
 * the data must expand to exactly outlen bytes, never more (so a
 * decompression bomb stops at the limit the caller already checked).
 * Returns 0 or PS_ERR_CODEC with the reason in errbuf.
 */
int ps__codec_decompress(ps__codec *c, uint8_t codec, const uint8_t *in,
                         size_t inlen, uint8_t *out, size_t outlen,
                         char *errbuf);

/* The codecs this build supports, as a HELLO bit mask. */
uint32_t ps__codec_supported(void);
const char *ps__codec_name(uint8_t codec);

#endif
