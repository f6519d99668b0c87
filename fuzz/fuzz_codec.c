/*
 * Fuzz target for the compression layer. The first 4 bytes (big-endian)
 * are the declared raw length, capped at 1 MiB; the rest is inflated
 * into a buffer of exactly that length (twice, the second time through
 * the reset path). Then the whole input goes through compress and back
 * and must come out unchanged.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_codec.h"
#include "ps_proto.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DECLARED (1u << 20)

static void check_fail(int rc, const char *err) {
  CHECK(rc == PS_ERR_CODEC);
  fuzz_check_reason(err, PS_ERRMSG_MAX);
}

static void decompress_input(const uint8_t *data, size_t size) {
  if (size < 4) {
    return;
  }
  size_t outlen = ps__get32(data) % (MAX_DECLARED + 1);
  const uint8_t *in = data + 4;
  size_t inlen = size - 4;
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 0);
  CHECK(c != NULL);
  /* Exactly outlen bytes, so ASan sees a write past the declared size. */
  uint8_t *out1 = malloc(outlen ? outlen : 1);
  uint8_t *out2 = malloc(outlen ? outlen : 1);
  CHECK(out1 != NULL && out2 != NULL);
  char err[PS_ERRMSG_MAX];
  int rc1 =
      ps__codec_decompress(c, PS_WIRE_CODEC_ZLIB, in, inlen, out1, outlen, err);
  if (rc1 != 0) {
    check_fail(rc1, err);
  }
  int rc2 =
      ps__codec_decompress(c, PS_WIRE_CODEC_ZLIB, in, inlen, out2, outlen, err);
  if (rc2 != 0) {
    check_fail(rc2, err);
  }
  /* A context reused after a failure must behave as a fresh one. */
  CHECK(rc1 == rc2);
  CHECK(rc1 != 0 || memcmp(out1, out2, outlen) == 0);
  /* Stored data is taken only at exactly its declared size. */
  int rc3 = ps__codec_decompress(c, PS_WIRE_CODEC_STORED, in, inlen, out2,
                                 outlen, err);
  if (inlen == outlen) {
    CHECK(rc3 == 0 && memcmp(out2, in, inlen) == 0);
  } else {
    check_fail(rc3, err);
  }
  free(out1);
  free(out2);
  ps__codec_free(c);
}

static void round_trip(uint8_t codec, const uint8_t *data, size_t size) {
  ps__codec *enc = ps__codec_new(codec, 0);
  ps__codec *dec = ps__codec_new(codec, 0);
  CHECK(enc != NULL && dec != NULL);
  ps__buf buf = {0};
  /* Something in front, as a batch header would be: the codec appends. */
  CHECK(ps__buf_append(&buf, "HDR", 3) == 0);
  uint8_t used = 0xff;
  CHECK(ps__codec_compress(enc, data, size, &buf, &used) == 0);
  CHECK(used == PS_WIRE_CODEC_STORED || used == codec);
  CHECK(memcmp(ps__buf_head(&buf), "HDR", 3) == 0);
  size_t clen = ps__buf_size(&buf) - 3;
  /* The codec only compresses when it pays. */
  CHECK(used == PS_WIRE_CODEC_STORED ? clen == size : clen < size);
  uint8_t *out = malloc(size ? size : 1);
  CHECK(out != NULL);
  char err[PS_ERRMSG_MAX];
  int rc = ps__codec_decompress(dec, used, ps__buf_head(&buf) + 3, clen, out,
                                size, err);
  if (rc != 0 || memcmp(out, data, size) != 0) {
    abort();
  }
  /* One byte less room than the data needs must fail, not overflow. */
  if (size > 0 && used == PS_WIRE_CODEC_ZLIB) {
    rc = ps__codec_decompress(dec, used, ps__buf_head(&buf) + 3, clen, out,
                              size - 1, err);
    check_fail(rc, err);
  }
  free(out);
  ps__buf_free(&buf);
  ps__codec_free(enc);
  ps__codec_free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  decompress_input(data, size);
  round_trip(PS_WIRE_CODEC_ZLIB, data, size);
  round_trip(PS_WIRE_CODEC_STORED, data, size);
  return 0;
}
