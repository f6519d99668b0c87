/* Unit tests of lib/ps_codec: zlib and stored blocks, and every way a
 * decompression is refused. */
#include "config.h"

#include "unit_util.h"

#include "ps_codec.h"
#include "ps_proto.h"

#include <zlib.h>

static char eb[PS_ERRMSG_MAX];

/* zlib-compresses in with the library's own API (the oracle). */
static uint8_t *zcompress(const uint8_t *in, size_t n, size_t *outlen) {
  uLongf cap = compressBound((uLong)n);
  uint8_t *out = malloc(cap);
  ck_assert_ptr_nonnull(out);
  ck_assert_int_eq(compress2(out, &cap, in, (uLong)n, 6), Z_OK);
  *outlen = cap;
  return out;
}

/* Text-like data that compresses well. */
static void fill_text(uint8_t *p, size_t n) {
  static const char words[] = "GET /index.html HTTP/1.1\r\nHost: example.org"
                              "\r\nUser-Agent: test\r\n\r\n";
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
  }
}

START_TEST(test_zlib_roundtrip) {
  size_t n = 100000;
  uint8_t *in = malloc(n), *back = malloc(n);
  fill_text(in, n);
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 0);
  ck_assert_ptr_nonnull(c);
  ps__buf out = {0};
  uint8_t used = 0xff;
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
  ck_assert_uint_lt(ps__buf_size(&out), n / 10);
  /* The bytes are a standard zlib stream. */
  uLongf zn = (uLongf)n;
  ck_assert_int_eq(
      uncompress(back, &zn, ps__buf_head(&out), (uLong)ps__buf_size(&out)),
      Z_OK);
  ck_assert_uint_eq(zn, n);
  ck_assert_mem_eq(back, in, n);
  memset(back, 0, n);
  ck_assert_int_eq(ps__codec_decompress(c, PS_WIRE_CODEC_ZLIB,
                                        ps__buf_head(&out), ps__buf_size(&out),
                                        back, n, eb),
                   0);
  ck_assert_mem_eq(back, in, n);

  /* The context is reused: a second, different block after the first. */
  ps__buf out2 = {0};
  for (size_t i = 0; i < n; i += 97) {
    in[i] = (uint8_t)i;
  }
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out2, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
  ck_assert_int_eq(ps__codec_decompress(c, PS_WIRE_CODEC_ZLIB,
                                        ps__buf_head(&out2),
                                        ps__buf_size(&out2), back, n, eb),
                   0);
  ck_assert_mem_eq(back, in, n);
  ps__buf_free(&out);
  ps__buf_free(&out2);
  ps__codec_free(c);
  free(in);
  free(back);
}
END_TEST

START_TEST(test_compress_appends) {
  uint8_t in[1000];
  fill_text(in, sizeof(in));
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 9);
  ps__buf out = {0};
  ck_assert_int_eq(ps__buf_append(&out, "HDR", 3), 0);
  uint8_t used;
  ck_assert_int_eq(ps__codec_compress(c, in, sizeof(in), &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
  ck_assert_mem_eq(ps__buf_head(&out), "HDR", 3);
  uint8_t back[1000];
  ck_assert_int_eq(ps__codec_decompress(c, used, ps__buf_head(&out) + 3,
                                        ps__buf_size(&out) - 3, back,
                                        sizeof(back), eb),
                   0);
  ck_assert_mem_eq(back, in, sizeof(in));
  ps__buf_free(&out);
  ps__codec_free(c);
}
END_TEST

START_TEST(test_incompressible_stored) {
  size_t n = 65536;
  uint8_t *in = malloc(n);
  unit_fill_random(in, n, 12345);
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 1);
  ps__buf out = {0};
  uint8_t used = 0xff;
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_STORED);
  ck_assert_uint_eq(ps__buf_size(&out), n);
  ck_assert_mem_eq(ps__buf_head(&out), in, n);
  uint8_t *back = malloc(n);
  ck_assert_int_eq(
      ps__codec_decompress(c, used, ps__buf_head(&out), n, back, n, eb), 0);
  ck_assert_mem_eq(back, in, n);
  /* The next block is stored without trying (back-off), the one after
   * compresses again. */
  ps__buf out2 = {0};
  fill_text(in, n);
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out2, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_STORED);
  ps__buf_reset(&out2);
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out2, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
  ck_assert_int_eq(ps__codec_decompress(c, used, ps__buf_head(&out2),
                                        ps__buf_size(&out2), back, n, eb),
                   0);
  ck_assert_mem_eq(back, in, n);
  ps__buf_free(&out);
  ps__buf_free(&out2);
  ps__codec_free(c);
  free(in);
  free(back);
}
END_TEST

START_TEST(test_small_input_stored) {
  uint8_t in[65];
  memset(in, 'a', sizeof(in));
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 0);
  uint8_t used = 0xff;
  /* From 1: an empty input hits ps__buf_reserve(n = 0) on an empty
   * buffer, which returns NULL (reported, ps_common.c). */
  for (size_t n = 1; n <= 64; n++) {
    ps__buf out = {0};
    ck_assert_int_eq(ps__codec_compress(c, in, n, &out, &used), 0);
    ck_assert_uint_eq(used, PS_WIRE_CODEC_STORED);
    ck_assert_uint_eq(ps__buf_size(&out), n);
    ck_assert_mem_eq(ps__buf_head(&out), in, n);
    ps__buf_free(&out);
  }
  /* 65 identical bytes do shrink. */
  ps__buf out = {0};
  ck_assert_int_eq(ps__codec_compress(c, in, 65, &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
  ck_assert_uint_lt(ps__buf_size(&out), 65);
  ps__buf_free(&out);
  ps__codec_free(c);
}
END_TEST

START_TEST(test_stored_codec_never_compresses) {
  uint8_t in[4096];
  fill_text(in, sizeof(in));
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_STORED, 0);
  ck_assert_ptr_nonnull(c);
  ps__buf out = {0};
  uint8_t used = 0xff;
  ck_assert_int_eq(ps__codec_compress(c, in, sizeof(in), &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_STORED);
  ck_assert_uint_eq(ps__buf_size(&out), sizeof(in));
  ck_assert_mem_eq(ps__buf_head(&out), in, sizeof(in));
  ps__buf_free(&out);
  ps__codec_free(c);
  ck_assert_ptr_null(ps__codec_new(PS_WIRE_CODEC_MAX + 1, 0));
  ps__codec_free(NULL);
}
END_TEST

START_TEST(test_codec_names) {
  ck_assert_str_eq(ps__codec_name(PS_WIRE_CODEC_STORED), "none");
  ck_assert_str_eq(ps__codec_name(PS_WIRE_CODEC_ZLIB), "zlib");
  ck_assert_str_eq(ps__codec_name(7), "unknown");
#ifdef HAVE_LZ4
  ck_assert_uint_eq(ps__codec_supported(), 7);
#else
  ck_assert_uint_eq(ps__codec_supported(), 3);
#endif
}
END_TEST

START_TEST(test_decompress_bomb) {
  size_t big = 10u * 1024 * 1024, declared = 1024 * 1024;
  uint8_t *zeros = calloc(1, big);
  size_t zn;
  uint8_t *z = zcompress(zeros, big, &zn);
  free(zeros);
  ck_assert_uint_lt(zn, 20000);
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 0);
  /* Guard bytes past the declared size must stay untouched. */
  uint8_t *out = malloc(declared + 64);
  memset(out + declared, 0xa5, 64);
  ck_assert_err(
      ps__codec_decompress(c, PS_WIRE_CODEC_ZLIB, z, zn, out, declared, eb),
      PS_ERR_CODEC, eb,
      "zlib batch inflates beyond its declared 1048576 bytes");
  for (int i = 0; i < 64; i++) {
    ck_assert_uint_eq(out[declared + i], 0xa5);
  }
  free(out);
  free(z);
  ps__codec_free(c);
}
END_TEST

/* What a row does to the batch before it is inflated. */
enum damage {
  INTACT,
  BAD_HEADER,   /* zlib: the first byte zeroed */
  BAD_CHECKSUM, /* zlib: the last byte flipped */
  CUT_HALF,     /* only the first half */
  TRAILING,     /* "JUNK" after the end */
  RANDOM,       /* 200 random bytes after a zlib header */
  EMPTY,        /* no bytes at all */
};

static const struct decompress_case {
  uint8_t ctx;  /* the codec the context is for */
  uint8_t wire; /* the codec the batch says */
  enum damage damage;
  size_t n;        /* raw bytes */
  size_t declared; /* raw bytes the batch declares */
  const char *msg; /* NULL: inflated, and equal to the raw bytes */
} decompress_cases[] = {
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, INTACT, 5000, 5001,
     "zlib batch inflates to 5000 bytes, declared 5001"},
    /* One byte fewer declared: more output than room. */
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, INTACT, 5000, 4999,
     "beyond its declared 4999 bytes"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, INTACT, 5000, 5000, NULL},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, TRAILING, 3000, 3000,
     "has trailing bytes"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, BAD_HEADER, 3000, 3000,
     "corrupt zlib batch: incorrect header"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, BAD_CHECKSUM, 3000, 3000,
     "corrupt zlib batch: incorrect data check"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, CUT_HALF, 3000, 3000,
     "corrupt zlib batch"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, RANDOM, 3000, 3000, "zlib batch"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_ZLIB, EMPTY, 3000, 3000,
     "corrupt zlib batch"},
    {PS_WIRE_CODEC_STORED, PS_WIRE_CODEC_ZLIB, INTACT, 3000, 3000,
     "batch compressed with zlib, which was not negotiated"},
    {PS_WIRE_CODEC_STORED, 5, INTACT, 3000, 3000, "compressed with unknown"},
    /* Stored is always allowed, at its exact size. */
    {PS_WIRE_CODEC_STORED, PS_WIRE_CODEC_STORED, INTACT, 100, 100, NULL},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_STORED, INTACT, 100, 100, NULL},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_STORED, INTACT, 100, 101,
     "stored batch of 100 bytes declared as 101"},
    {PS_WIRE_CODEC_ZLIB, PS_WIRE_CODEC_STORED, INTACT, 100, 99,
     "declared as 99"},
};

/* Each row is refused with its message, writes nothing past the declared
 * size, and leaves the context usable for the next batch. */
START_TEST(test_decompress_table) {
  const struct decompress_case *k = &decompress_cases[_i];
  uint8_t in[5000];
  fill_text(in, k->n);
  size_t zn;
  uint8_t *z = zcompress(in, k->n, &zn);
  uint8_t *batch = malloc(zn + 200);
  const uint8_t *src = k->wire == PS_WIRE_CODEC_STORED ? in : z;
  size_t len = k->wire == PS_WIRE_CODEC_STORED ? k->n : zn;
  memcpy(batch, src, len);
  switch (k->damage) {
  case INTACT:
    break;
  case BAD_HEADER:
    batch[0] = 0x00;
    break;
  case BAD_CHECKSUM:
    batch[len - 1] ^= 0xff;
    break;
  case CUT_HALF:
    len /= 2;
    break;
  case TRAILING:
    memcpy(batch + len, "JUNK", 4);
    len += 4;
    break;
  case RANDOM:
    len = 200;
    unit_fill_random(batch, len, 7);
    batch[0] = 0x78;
    batch[1] = 0x9c;
    break;
  case EMPTY:
    len = 0;
    break;
  }
  ps__codec *c = ps__codec_new(k->ctx, 0);
  ck_assert_ptr_nonnull(c);
  /* Guard bytes past the declared size must stay untouched. */
  uint8_t *out = malloc(k->declared + 64);
  memset(out, 0, k->declared);
  memset(out + k->declared, 0xa5, 64);
  int rc = ps__codec_decompress(c, k->wire, batch, len, out, k->declared, eb);
  if (k->msg == NULL) {
    ck_assert_msg(rc == 0, "refused: %d %s", rc, eb);
    ck_assert_mem_eq(out, in, k->n);
  } else {
    ck_assert_err(rc, PS_ERR_CODEC, eb, k->msg);
  }
  for (int i = 0; i < 64; i++) {
    ck_assert_uint_eq(out[k->declared + i], 0xa5);
  }
  /* Still usable. */
  memset(out, 0, k->declared);
  if (k->ctx == PS_WIRE_CODEC_ZLIB) {
    ck_assert_int_eq(
        ps__codec_decompress(c, PS_WIRE_CODEC_ZLIB, z, zn, out, k->n, eb), 0);
  } else {
    ck_assert_int_eq(
        ps__codec_decompress(c, PS_WIRE_CODEC_STORED, in, k->n, out, k->n, eb),
        0);
  }
  ck_assert_mem_eq(out, in, k->n);
  free(out);
  free(batch);
  free(z);
  ps__codec_free(c);
}
END_TEST

/* While traffic stays incompressible, compression is tried less and less
 * often (after 1, 2, 4 ... 64 stored batches), and resumes at once when a
 * tried batch compresses. */
START_TEST(test_backoff) {
  size_t n = 32768;
  uint8_t *rnd = malloc(n), *txt = malloc(n);
  unit_fill_random(rnd, n, 7);
  fill_text(txt, n);
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 1);
  ps__buf out = {0};
  uint8_t used;
  char tried[200] = "";
  /* Whether batch k is tried shows as a text batch put in its place: it
   * compresses only if tried. */
  for (int k = 0; k < 40; k++) {
    ps__codec *d = ps__codec_new(PS_WIRE_CODEC_ZLIB, 1);
    for (int i = 0; i < k; i++) {
      ps__buf_reset(&out);
      ck_assert_int_eq(ps__codec_compress(d, rnd, n, &out, &used), 0);
      ck_assert_uint_eq(used, PS_WIRE_CODEC_STORED);
    }
    ps__buf_reset(&out);
    ck_assert_int_eq(ps__codec_compress(d, txt, n, &out, &used), 0);
    strcat(tried, used == PS_WIRE_CODEC_ZLIB ? "T" : ".");
    ps__codec_free(d);
  }
  /* Tries at batches 0, 2, 5, 10, 19, 36: after each failed try the next
   * 1, 2, 4, 8, 16 batches are stored untried. */
  ck_assert_str_eq(tried, "T.T..T....T........T................T...");
  /* The pause stops growing at 64 batches. */
  for (int i = 0; i < 2000; i++) {
    ps__buf_reset(&out);
    ps__codec_compress(c, rnd, n, &out, &used);
  }
  int stored_run = 0;
  for (int i = 0; i < 200; i++) {
    ps__buf_reset(&out);
    ps__codec_compress(c, txt, n, &out, &used);
    if (used == PS_WIRE_CODEC_ZLIB) {
      break;
    }
    stored_run++;
  }
  ck_assert_int_le(stored_run, 64);
  ps__buf_free(&out);
  ps__codec_free(c);
  free(rnd);
  free(txt);
}
END_TEST

#ifdef HAVE_LZ4
START_TEST(test_lz4_roundtrip_and_errors) {
  size_t n = 200000;
  uint8_t *in = malloc(n), *back = malloc(n);
  fill_text(in, n);
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_LZ4, 0);
  ck_assert_ptr_nonnull(c);
  ps__buf out = {0};
  uint8_t used;
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_LZ4);
  ck_assert_uint_lt(ps__buf_size(&out), n / 2);
  ck_assert_int_eq(ps__codec_decompress(c, used, ps__buf_head(&out),
                                        ps__buf_size(&out), back, n, eb),
                   0);
  ck_assert_mem_eq(back, in, n);
  /* Declared smaller than it inflates: refused, nothing written past. */
  memset(back, 0xAA, n);
  ck_assert_err(ps__codec_decompress(c, used, ps__buf_head(&out),
                                     ps__buf_size(&out), back, n / 2, eb),
                PS_ERR_CODEC, eb, "inflates beyond its declared 100000");
  ck_assert_uint_eq(back[n / 2], 0xAA);
  /* Declared larger than it inflates. */
  uint8_t *big = malloc(n + 10);
  ck_assert_err(ps__codec_decompress(c, used, ps__buf_head(&out),
                                     ps__buf_size(&out), big, n + 10, eb),
                PS_ERR_CODEC, eb, "lz4 batch");
  /* Corrupt. */
  uint8_t junk[64];
  unit_fill_random(junk, sizeof(junk), 3);
  ck_assert_err(ps__codec_decompress(c, PS_WIRE_CODEC_LZ4, junk, sizeof(junk),
                                     back, n, eb),
                PS_ERR_CODEC, eb, "lz4 batch");
  /* A zlib context does not take lz4. */
  ps__codec *z = ps__codec_new(PS_WIRE_CODEC_ZLIB, 1);
  ck_assert_err(ps__codec_decompress(z, PS_WIRE_CODEC_LZ4, ps__buf_head(&out),
                                     ps__buf_size(&out), back, n, eb),
                PS_ERR_CODEC, eb, "lz4, which was not negotiated");
  ck_assert_str_eq(ps__codec_name(PS_WIRE_CODEC_LZ4), "lz4");
  ck_assert_int_eq(ps_codec_available(PS_CODEC_LZ4), 1);
  ps__codec_free(z);
  ps__codec_free(c);
  ps__buf_free(&out);
  free(in);
  free(back);
  free(big);
}
END_TEST
#endif

/* Saving less than a quarter does not pay for the CPU: such a batch goes
 * stored (and starts the back-off). */
START_TEST(test_small_saving_stored) {
  size_t n = 65536;
  uint8_t *in = malloc(n);
  /* 80% random, 20% zeros: compresses to about 80%. */
  unit_fill_random(in, n, 99);
  memset(in + n / 5 * 4, 0, n - n / 5 * 4);
  ps__codec *c = ps__codec_new(PS_WIRE_CODEC_ZLIB, 1);
  ps__buf out = {0};
  uint8_t used;
  ck_assert_int_eq(ps__codec_compress(c, in, n, &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_STORED);
  ck_assert_uint_eq(ps__buf_size(&out), n);
  ck_assert_mem_eq(ps__buf_head(&out), in, n);
  /* Half zeros compresses to about half: worth it. */
  ps__codec *d = ps__codec_new(PS_WIRE_CODEC_ZLIB, 1);
  memset(in + n / 2, 0, n / 2);
  ps__buf_reset(&out);
  ck_assert_int_eq(ps__codec_compress(d, in, n, &out, &used), 0);
  ck_assert_uint_eq(used, PS_WIRE_CODEC_ZLIB);
  ck_assert_uint_lt(ps__buf_size(&out), n / 64 * 48);
  ps__buf_free(&out);
  ps__codec_free(c);
  ps__codec_free(d);
  free(in);
}
END_TEST

static Suite *codec_suite(void) {
  Suite *s = suite_create("codec");
  TCase *tc = tcase_create("compress");
  tcase_add_test(tc, test_zlib_roundtrip);
  tcase_add_test(tc, test_compress_appends);
  tcase_add_test(tc, test_incompressible_stored);
  tcase_add_test(tc, test_small_input_stored);
  tcase_add_test(tc, test_stored_codec_never_compresses);
  tcase_add_test(tc, test_codec_names);
  tcase_add_test(tc, test_backoff);
  tcase_add_test(tc, test_small_saving_stored);
#ifdef HAVE_LZ4
  tcase_add_test(tc, test_lz4_roundtrip_and_errors);
#endif
  suite_add_tcase(s, tc);
  tc = tcase_create("decompress");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_decompress_bomb);
  tcase_add_loop_test(tc, test_decompress_table, 0,
                      sizeof(decompress_cases) / sizeof(decompress_cases[0]));
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(codec_suite());
}
