/* zlib, and "stored" for data that does not shrink. */
#include "config.h"

#include "ps_codec.h"
#include "ps_proto.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct ps__codec {
  uint8_t codec;
  int level;
  int deflate_ready;
  int inflate_ready;
  z_stream def;
  z_stream inf;
};

uint32_t ps__codec_supported(void) {
  return (1u << PS_WIRE_CODEC_STORED) | (1u << PS_WIRE_CODEC_ZLIB);
}

const char *ps__codec_name(uint8_t codec) {
  switch (codec) {
  case PS_WIRE_CODEC_STORED:
    return "none";
  case PS_WIRE_CODEC_ZLIB:
    return "zlib";
  default:
    return "unknown";
  }
}

ps__codec *ps__codec_new(uint8_t codec, int level) {
  if (codec > PS_WIRE_CODEC_MAX) {
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

int ps__codec_compress(ps__codec *c, const uint8_t *in, size_t inlen,
                       ps__buf *out, uint8_t *used) {
  if (c->codec == PS_WIRE_CODEC_ZLIB && inlen > 64 && inlen <= UINT32_MAX) {
    if (!c->deflate_ready) {
      if (deflateInit(&c->def, c->level) != Z_OK) {
        return PS_ERR_NOMEM;
      }
      c->deflate_ready = 1;
    } else {
      deflateReset(&c->def);
    }
    /* Output is only worth sending if smaller than the input, so the
     * output room is inlen - 1: Z_OK/Z_BUF_ERROR at that point means
     * "store it". */
    size_t room = inlen - 1;
    uint8_t *dst = ps__buf_reserve(out, room);
    if (dst == NULL) {
      return PS_ERR_NOMEM;
    }
    c->def.next_in = (Bytef *)(uintptr_t)in;
    c->def.avail_in = (uInt)inlen;
    c->def.next_out = dst;
    c->def.avail_out = (uInt)room;
    int rc = deflate(&c->def, Z_FINISH);
    if (rc == Z_STREAM_END) {
      out->len += room - c->def.avail_out;
      *used = PS_WIRE_CODEC_ZLIB;
      return 0;
    }
  }
  *used = PS_WIRE_CODEC_STORED;
  return ps__buf_append(out, in, inlen);
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
