/* LZ4, zlib, and "stored" for data that does not shrink. */
#include "config.h"

#include "ps_codec.h"
#include "ps_proto.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_LZ4
#include <lz4.h>
#endif

/* A batch that does not shrink to this (in 1/64ths of its size) counts
 * as incompressible: saving less than a quarter is not worth the CPU on
 * the capture host (with traffic that is 70% encrypted, LZ4 saves 20%
 * and took two thirds of the sensor's cycles; docs/PERFORMANCE.md). */
#define WORTH_64THS 48
#define BACKOFF_MAX 64

struct ps__codec {
  uint8_t codec;
  int level;
  int deflate_ready;
  int inflate_ready;
  z_stream def;
  z_stream inf;
  /* Back-off: after a batch that did not compress, the next `backoff`
   * batches are stored without trying; the pause doubles while traffic
   * stays incompressible (encrypted payloads) and ends at the first
   * batch that compresses again. */
  unsigned backoff;
  unsigned skip;
};

uint32_t ps__codec_supported(void) {
  return (1u << PS_WIRE_CODEC_STORED) | (1u << PS_WIRE_CODEC_ZLIB)
#ifdef HAVE_LZ4
         | (1u << PS_WIRE_CODEC_LZ4)
#endif
      ;
}

int ps_codec_available(ps_codec c) {
  return (unsigned)c <= PS_WIRE_CODEC_MAX &&
         (ps__codec_supported() & (1u << c)) != 0;
}

const char *ps__codec_name(uint8_t codec) {
  switch (codec) {
  case PS_WIRE_CODEC_STORED:
    return "none";
  case PS_WIRE_CODEC_ZLIB:
    return "zlib";
  case PS_WIRE_CODEC_LZ4:
    return "lz4";
  default:
    return "unknown";
  }
}

ps__codec *ps__codec_new(uint8_t codec, int level) {
  if (codec > PS_WIRE_CODEC_MAX || !(ps__codec_supported() & (1u << codec))) {
    return NULL;
  }
  ps__codec *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return NULL;
  }
  c->codec = codec;
  /* Level 1 by default: on captured traffic it keeps most of the gain of
   * higher levels for a fraction of their CPU (see docs/PERFORMANCE.md). */
  c->level = level > 0 ? level : 1;
  return c;
}

void ps__codec_free(ps__codec *c) {
  if (c == NULL) {
    return;
  }
  if (c->deflate_ready) {
    deflateEnd(&c->def);
  }
  if (c->inflate_ready) {
    inflateEnd(&c->inf);
  }
  free(c);
}

/* Compresses into room bytes at dst; returns the size, or 0 when the
 * result would not fit (not worth sending). */
static size_t compress_into(ps__codec *c, const uint8_t *in, size_t inlen,
                            uint8_t *dst, size_t room, int *err) {
  *err = 0;
  if (c->codec == PS_WIRE_CODEC_ZLIB) {
    if (!c->deflate_ready) {
      if (deflateInit(&c->def, c->level) != Z_OK) {
        *err = PS_ERR_NOMEM;
        return 0;
      }
      c->deflate_ready = 1;
    } else {
      deflateReset(&c->def);
    }
    c->def.next_in = (Bytef *)(uintptr_t)in;
    c->def.avail_in = (uInt)inlen;
    c->def.next_out = dst;
    c->def.avail_out = (uInt)room;
    /* Z_OK/Z_BUF_ERROR here mean "did not fit": store it. */
    return deflate(&c->def, Z_FINISH) == Z_STREAM_END ? room - c->def.avail_out
                                                      : 0;
  }
#ifdef HAVE_LZ4
  if (c->codec == PS_WIRE_CODEC_LZ4 && inlen <= LZ4_MAX_INPUT_SIZE) {
    int n = LZ4_compress_default((const char *)in, (char *)dst, (int)inlen,
                                 (int)room);
    return n > 0 ? (size_t)n : 0;
  }
#endif
  return 0;
}

int ps__codec_compress(ps__codec *c, const uint8_t *in, size_t inlen,
                       ps__buf *out, uint8_t *used) {
  *used = PS_WIRE_CODEC_STORED;
  if (c->codec == PS_WIRE_CODEC_STORED || inlen <= 64 || inlen > UINT32_MAX) {
    return ps__buf_append(out, in, inlen);
  }
  if (c->skip > 0) {
    c->skip--;
    return ps__buf_append(out, in, inlen);
  }
  /* Only output that saves something is worth sending: room for just
   * under the worthwhile size, and the codec says when it did not fit. */
  size_t room = inlen / 64 * WORTH_64THS;
  uint8_t *dst = ps__buf_reserve(out, room > inlen ? room : inlen);
  if (dst == NULL) {
    return PS_ERR_NOMEM;
  }
  int err;
  size_t n = compress_into(c, in, inlen, dst, room, &err);
  if (err != 0) {
    return err;
  }
  if (n > 0) {
    out->len += n;
    *used = c->codec;
    c->backoff = 0;
    return 0;
  }
  c->backoff = c->backoff ? c->backoff * 2 : 1;
  if (c->backoff > BACKOFF_MAX) {
    c->backoff = BACKOFF_MAX;
  }
  c->skip = c->backoff;
  memcpy(dst, in, inlen);
  out->len += inlen;
  return 0;
}

int ps__codec_decompress(ps__codec *c, uint8_t codec, const uint8_t *in,
                         size_t inlen, uint8_t *out, size_t outlen,
                         char *errbuf) {
  if (codec == PS_WIRE_CODEC_STORED) {
    if (inlen != outlen) {
      return ps__seterr(errbuf, PS_ERR_CODEC,
                        "stored batch of %zu bytes declared as %zu", inlen,
                        outlen);
    }
    /* An empty batch may come with no buffer at all (out == NULL). */
    if (inlen > 0) {
      memcpy(out, in, inlen);
    }
    return 0;
  }
#ifdef HAVE_LZ4
  if (codec == PS_WIRE_CODEC_LZ4 && c->codec == PS_WIRE_CODEC_LZ4) {
    if (inlen > INT32_MAX || outlen > INT32_MAX) {
      return ps__seterr(errbuf, PS_ERR_CODEC, "lz4 batch too large");
    }
    /* _safe never writes past outlen nor reads past inlen. */
    int n = LZ4_decompress_safe((const char *)in, (char *)out, (int)inlen,
                                (int)outlen);
    if (n < 0) {
      return ps__seterr(errbuf, PS_ERR_CODEC,
                        "corrupt lz4 batch, or one that inflates beyond its "
                        "declared %zu bytes",
                        outlen);
    }
    if ((size_t)n != outlen) {
      return ps__seterr(errbuf, PS_ERR_CODEC,
                        "lz4 batch inflates to %d bytes, declared %zu", n,
                        outlen);
    }
    return 0;
  }
#endif
  if (codec != PS_WIRE_CODEC_ZLIB || c->codec != PS_WIRE_CODEC_ZLIB) {
    return ps__seterr(errbuf, PS_ERR_CODEC,
                      "batch compressed with %s, which was not negotiated",
                      ps__codec_name(codec));
  }
  if (!c->inflate_ready) {
    memset(&c->inf, 0, sizeof(c->inf));
    if (inflateInit(&c->inf) != Z_OK) {
      return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory for zlib");
    }
    c->inflate_ready = 1;
  } else {
    inflateReset(&c->inf);
  }
  c->inf.next_in = (Bytef *)(uintptr_t)in;
  c->inf.avail_in = (uInt)inlen;
  c->inf.next_out = out;
  c->inf.avail_out = (uInt)outlen;
  int rc = inflate(&c->inf, Z_FINISH);
  if (rc == Z_STREAM_END && c->inf.avail_out == 0 && c->inf.avail_in == 0) {
    return 0;
  }
  if (rc == Z_STREAM_END) {
    return ps__seterr(errbuf, PS_ERR_CODEC,
                      "zlib batch inflates to %zu bytes, declared %zu, or "
                      "has trailing bytes",
                      outlen - c->inf.avail_out, outlen);
  }
  if (rc == Z_BUF_ERROR && c->inf.avail_out == 0) {
    return ps__seterr(errbuf, PS_ERR_CODEC,
                      "zlib batch inflates beyond its declared %zu bytes",
                      outlen);
  }
  return ps__seterr(errbuf, PS_ERR_CODEC, "corrupt zlib batch: %s",
                    c->inf.msg ? c->inf.msg : "truncated");
}
