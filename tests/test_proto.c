/* Unit tests of lib/ps_proto: frame encoders and decoders, byte layouts,
 * and every way a decoder refuses malformed input. */
#include "config.h"

#include "unit_util.h"

#include "ps_kmsg.h"
#include "ps_proto.h"

static char eb[PS_ERRMSG_MAX];
static ps__limits lim;

static void setup(void) {
  ps__limits_default(&lim);
  memset(eb, 0, sizeof(eb));
}

/* Parses the single frame that b holds; asserts it takes all of b. */
static ps__frame parse_one(const ps__buf *b) {
  ps__frame f;
  size_t used = 0;
  int rc =
      ps__frame_parse(ps__buf_head(b), ps__buf_size(b), &lim, &f, &used, eb);
  ck_assert_msg(rc == 1, "frame_parse returned %d: %s", rc, eb);
  ck_assert_uint_eq(used, ps__buf_size(b));
  return f;
}

static ps__frame mkframe(uint8_t type, const uint8_t *payload, uint32_t len) {
  ps__frame f = {.type = type, .flags = 0, .len = len, .payload = payload};
  return f;
}

/* ------------------------------------------------------------ headers */

START_TEST(test_header_bytes_ack) {
  ps__buf b = {0};
  ck_assert_int_eq(ps__enc_ack(&b, 0x0102030405060708ull), 0);
  static const uint8_t want[] = {6, 0, 0, 0, 0, 0, 0, 8,
                                 1, 2, 3, 4, 5, 6, 7, 8};
  ck_assert_uint_eq(ps__buf_size(&b), sizeof(want));
  ck_assert_mem_eq(ps__buf_head(&b), want, sizeof(want));
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_header_bytes_heartbeat_close) {
  ps__buf b = {0};
  ck_assert_int_eq(ps__enc_heartbeat(&b), 0);
  ck_assert_int_eq(ps__enc_close(&b, 0xa1b2c3d4e5f60718ull), 0);
  static const uint8_t want[] = {
      8, 0, 0, 0, 0,    0,    0,    0,    9,    0,    0,    0,
      0, 0, 0, 8, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18};
  ck_assert_uint_eq(ps__buf_size(&b), sizeof(want));
  ck_assert_mem_eq(ps__buf_head(&b), want, sizeof(want));
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_header_bytes_hello) {
  ps__buf b = {0};
  ps__hello h = {.min_version = 1,
                 .max_version = 0x0203,
                 .codecs = 3,
                 .flags = PS_HELLO_STREAM,
                 .name = "s1",
                 .name_len = 2,
                 .stream_id = 0x1122334455667788ull};
  for (int i = 0; i < PS_NONCE_LEN; i++) {
    h.nonce[i] = (uint8_t)(0xf0 + i);
  }
  ck_assert_int_eq(ps__enc_hello(&b, &h), 0);
  static const uint8_t want[] = {
      1,    0,    0,    0,    0,    0,    0,    44,   'P',  'S',  'T',
      'R',  0,    1,    2,    3,    0,    0,    0,    3,    0,    0,
      0,    1,    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
      0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0,    2,    's',  '1',
      0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  ck_assert_uint_eq(ps__buf_size(&b), sizeof(want));
  ck_assert_mem_eq(ps__buf_head(&b), want, sizeof(want));
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_header_bytes_batch_and_record) {
  ps__buf b = {0};
  ps__batch m = {.seq = 0x0102030405060708ull,
                 .codec = PS_WIRE_CODEC_ZLIB,
                 .count = 3,
                 .raw_len = 0x01020304};
  ck_assert_int_eq(ps__enc_batch_hdr(&b, &m, 0x10), 0);
  static const uint8_t want[] = {5, 0, 0, 0, 0, 0, 0, 0x24, 1, 2, 3, 4, 5, 6,
                                 7, 8, 1, 0, 0, 0, 0, 0,    0, 3, 1, 2, 3, 4};
  /* Only the header is appended: the caller adds the data. */
  ck_assert_uint_eq(ps__buf_size(&b), sizeof(want));
  ck_assert_mem_eq(ps__buf_head(&b), want, sizeof(want));

  ps__buf raw = {0};
  const uint8_t data[3] = {0xde, 0xad, 0x01};
  ps_packet p = {.ts_sec = 0x1122334455667788ll,
                 .ts_frac = 0x99aabbcc,
                 .caplen = 3,
                 .len = 60,
                 .iface = 2,
                 .data = data};
  ck_assert_int_eq(ps__batch_put(&raw, &p), 0);
  static const uint8_t rec[] = {0,    0,    0,    2,    0x11, 0x22, 0x33,
                                0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                0xbb, 0xcc, 0,    0,    0,    3,    0,
                                0,    0,    60,   0xde, 0xad, 0x01};
  ck_assert_uint_eq(ps__buf_size(&raw), sizeof(rec));
  ck_assert_mem_eq(ps__buf_head(&raw), rec, sizeof(rec));
  ps__buf_free(&raw);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_header_bytes_stats_welcome_iface) {
  ps__buf b = {0};
  ps__stats st = {.iface = 7,
                  .c = {.captured = 1,
                        .bytes = 0x0203,
                        .received = 4,
                        .dropped = 5,
                        .ifdropped = 6,
                        .truncated = 0x0102030405060708ull,
                        .overflow = 9}};
  ck_assert_int_eq(ps__enc_stats(&b, &st), 0);
  ck_assert_uint_eq(ps__buf_size(&b), 8 + PS_STATS_LEN);
  const uint8_t *p = ps__buf_head(&b);
  static const uint8_t hdr[] = {7, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 7};
  ck_assert_mem_eq(p, hdr, sizeof(hdr));
  ck_assert_uint_eq(ps__get64(p + 12), 1);
  ck_assert_uint_eq(ps__get64(p + 20), 0x0203);
  ck_assert_uint_eq(ps__get64(p + 28), 4);
  ck_assert_uint_eq(ps__get64(p + 36), 5);
  ck_assert_uint_eq(ps__get64(p + 44), 6);
  static const uint8_t tr[] = {1, 2, 3, 4, 5, 6, 7, 8};
  ck_assert_mem_eq(p + 52, tr, 8);
  ck_assert_uint_eq(ps__get64(p + 60), 9);
  ps__buf_reset(&b);

  ps__welcome w = {.version = 1,
                   .codec = 1,
                   .max_frame = 0x01000014,
                   .max_batch_raw = 0x01000000,
                   .max_batch_packets = 0x00040000,
                   .session_id = 0x0a0b0c0d0e0f1011ull};
  ck_assert_int_eq(ps__enc_welcome(&b, &w), 0);
  static const uint8_t wel[] = {
      2, 0, 0, 0, 0, 0, 0, 40, 0,    1,    1,    0,    1,    0,    0,    0x14,
      1, 0, 0, 0, 0, 4, 0, 0,  0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11};
  ck_assert_uint_eq(ps__buf_size(&b), 8 + 40);
  ck_assert_mem_eq(ps__buf_head(&b), wel, sizeof(wel));
  ps__buf_reset(&b);

  ps__iface ifc = {.id = 3,
                   .linktype = 0x04000001,
                   .snaplen = 65535,
                   .tsres = PS_TSRES_NSEC,
                   .name = "eth0",
                   .name_len = 4};
  ck_assert_int_eq(ps__enc_iface(&b, &ifc), 0);
  static const uint8_t ifb[] = {4, 0, 0, 0, 0,   0,   0,   20, 0,    0,
                                0, 3, 4, 0, 0,   1,   0,   0,  0xff, 0xff,
                                9, 0, 0, 4, 'e', 't', 'h', '0'};
  ck_assert_uint_eq(ps__buf_size(&b), sizeof(ifb));
  ck_assert_mem_eq(ps__buf_head(&b), ifb, sizeof(ifb));
  ps__buf_free(&b);
}
END_TEST

/* --------------------------------------------------------- round trips */

START_TEST(test_roundtrip_hello) {
  ps__buf b = {0};
  char name[256];
  memset(name, 'n', 255);
  name[255] = '\0';
  ps__hello h = {.min_version = 1,
                 .max_version = 4,
                 .codecs = 3,
                 .flags = 0,
                 .name = name,
                 .name_len = 255};
  for (int i = 0; i < PS_NONCE_LEN; i++) {
    h.nonce[i] = (uint8_t)(i * 17);
  }
  ck_assert_int_eq(ps__enc_hello(&b, &h), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_HELLO);
  ck_assert_uint_eq(f.len, 34 + 255);
  ps__hello d;
  ck_assert_int_eq(ps__dec_hello(&f, &d, eb), 0);
  ck_assert_uint_eq(d.min_version, 1);
  ck_assert_uint_eq(d.max_version, 4);
  ck_assert_uint_eq(d.codecs, 3);
  ck_assert_uint_eq(d.flags, 0);
  ck_assert_mem_eq(d.nonce, h.nonce, PS_NONCE_LEN);
  ck_assert_uint_eq(d.name_len, 255);
  ck_assert_mem_eq(d.name, name, 255);
  ps__buf_free(&b);
  /* The stream flag carries 8 more bytes: the stream id. */
  h.flags = PS_HELLO_STREAM;
  h.stream_id = 0xfedcba9876543210ull;
  ck_assert_int_eq(ps__enc_hello(&b, &h), 0);
  f = parse_one(&b);
  ck_assert_uint_eq(f.len, 34 + 255 + 8);
  ck_assert_int_eq(ps__dec_hello(&f, &d, eb), 0);
  ck_assert_uint_eq(d.flags, PS_HELLO_STREAM);
  ck_assert_uint_eq(d.stream_id, 0xfedcba9876543210ull);
  /* Flag without its 8 bytes, or 8 bytes without the flag. */
  uint8_t *q = (uint8_t *)f.payload;
  f.len -= 8;
  ck_assert_err(ps__dec_hello(&f, &d, eb), PS_ERR_PROTOCOL, eb,
                "hello length 289 does not match its name length 255");
  f.len += 8;
  ps__put32(q + 12, 0);
  ck_assert_err(ps__dec_hello(&f, &d, eb), PS_ERR_PROTOCOL, eb,
                "hello length 297 does not match its name length 255");
  /* Any other bit is refused, so a later version can give it meaning. */
  ps__put32(q + 12, 0x80000001u);
  ck_assert_err(ps__dec_hello(&f, &d, eb), PS_ERR_PROTOCOL, eb,
                "hello with unknown flags 0x80000001");
  h.flags = 0x2;
  ck_assert_int_eq(ps__enc_hello(&b, &h), PS_ERR_INVALID);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_welcome) {
  ps__buf b = {0};
  ps__welcome w = {.version = 1,
                   .codec = PS_WIRE_CODEC_ZLIB,
                   .max_frame = lim.max_frame,
                   .max_batch_raw = lim.max_batch_raw,
                   .max_batch_packets = lim.max_batch_packets,
                   .session_id = 0xfedcba9876543210ull};
  for (int i = 0; i < PS_NONCE_LEN; i++) {
    w.nonce[i] = (uint8_t)(255 - i);
  }
  ck_assert_int_eq(ps__enc_welcome(&b, &w), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_WELCOME);
  ps__welcome d;
  ck_assert_int_eq(ps__dec_welcome(&f, &d, eb), 0);
  ck_assert_uint_eq(d.version, 1);
  ck_assert_uint_eq(d.codec, PS_WIRE_CODEC_ZLIB);
  ck_assert_uint_eq(d.max_frame, lim.max_frame);
  ck_assert_uint_eq(d.max_batch_raw, lim.max_batch_raw);
  ck_assert_uint_eq(d.max_batch_packets, lim.max_batch_packets);
  ck_assert_uint_eq(d.session_id, 0xfedcba9876543210ull);
  ck_assert_mem_eq(d.nonce, w.nonce, PS_NONCE_LEN);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_error) {
  ps__buf b = {0};
  ck_assert_int_eq(ps__enc_error(&b, 508, "bad sensor"), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_ERROR);
  ps__error_msg m;
  ck_assert_int_eq(ps__dec_error(&f, &m, eb), 0);
  ck_assert_uint_eq(m.code, 508);
  ck_assert_uint_eq(m.text_len, 10);
  ck_assert_mem_eq(m.text, "bad sensor", 10);
  ps__buf_reset(&b);

  /* Text beyond the protocol's limit is cut, and still decodes. */
  char longtext[2001];
  memset(longtext, 'x', 2000);
  longtext[2000] = '\0';
  ck_assert_int_eq(ps__enc_error(&b, 1, longtext), 0);
  f = parse_one(&b);
  ck_assert_uint_eq(f.len, 4 + PS_MAX_ERROR_TEXT);
  ck_assert_int_eq(ps__dec_error(&f, &m, eb), 0);
  ck_assert_uint_eq(m.text_len, PS_MAX_ERROR_TEXT);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_iface) {
  ps__buf b = {0};
  ps__iface ifc = {.id = 255,
                   .linktype = 0x34000001u,
                   .snaplen = 300000,
                   .tsres = PS_TSRES_USEC,
                   .name = "any",
                   .name_len = 3};
  ck_assert_int_eq(ps__enc_iface(&b, &ifc), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_IFACE);
  ps__iface d;
  ck_assert_int_eq(ps__dec_iface(&f, &d, eb), 0);
  ck_assert_uint_eq(d.id, 255);
  ck_assert_uint_eq(d.linktype, 0x34000001u);
  ck_assert_uint_eq(d.snaplen, 300000);
  ck_assert_uint_eq(d.tsres, PS_TSRES_USEC);
  ck_assert_uint_eq(d.name_len, 3);
  ck_assert_mem_eq(d.name, "any", 3);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_batch) {
  enum { N = 5 };
  static uint8_t data[N][1500];
  const uint32_t caplens[N] = {0, 1, 60, 1500, 24};
  ps_packet in[N];
  ps__buf raw = {0};
  for (uint32_t i = 0; i < N; i++) {
    unit_fill_pattern(data[i], caplens[i], i);
    in[i] = (ps_packet){.ts_sec = i == 2 ? -1 : (int64_t)1700000000 + i,
                        .ts_frac = i == 3 ? 0xffffffffu : i * 1000,
                        .caplen = caplens[i],
                        .len = caplens[i] + i,
                        .iface = i == 4 ? 255 : i,
                        .data = data[i]};
    ck_assert_int_eq(ps__batch_put(&raw, &in[i]), 0);
  }
  size_t raw_len = ps__buf_size(&raw);
  ck_assert_uint_eq(raw_len, N * PS_PKT_HDR + 0 + 1 + 60 + 1500 + 24);

  ps__buf b = {0};
  ps__batch m = {.seq = 42,
                 .codec = PS_WIRE_CODEC_STORED,
                 .count = N,
                 .raw_len = (uint32_t)raw_len};
  ck_assert_int_eq(ps__enc_batch_hdr(&b, &m, raw_len), 0);
  ck_assert_int_eq(ps__buf_append(&b, ps__buf_head(&raw), raw_len), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_BATCH);
  ps__batch d;
  ck_assert_int_eq(ps__dec_batch(&f, &lim, &d, eb), 0);
  ck_assert_uint_eq(d.seq, 42);
  ck_assert_uint_eq(d.codec, PS_WIRE_CODEC_STORED);
  ck_assert_uint_eq(d.count, N);
  ck_assert_uint_eq(d.raw_len, raw_len);
  ck_assert_uint_eq(d.data_len, raw_len);

  size_t off = 0;
  ps_packet p;
  for (uint32_t i = 0; i < N; i++) {
    ck_assert_int_eq(ps__batch_next(d.data, d.data_len, &off, &p, eb), 1);
    ck_assert_int_eq(p.ts_sec, in[i].ts_sec);
    ck_assert_uint_eq(p.ts_frac, in[i].ts_frac);
    ck_assert_uint_eq(p.caplen, in[i].caplen);
    ck_assert_uint_eq(p.len, in[i].len);
    ck_assert_uint_eq(p.iface, in[i].iface);
    if (p.caplen > 0) {
      ck_assert_mem_eq(p.data, data[i], p.caplen);
    }
  }
  ck_assert_int_eq(ps__batch_next(d.data, d.data_len, &off, &p, eb), 0);
  ck_assert_uint_eq(off, raw_len);
  ps__buf_free(&b);
  ps__buf_free(&raw);
}
END_TEST

START_TEST(test_roundtrip_stats) {
  ps__buf b = {0};
  ps__stats st = {.iface = 255,
                  .c = {.captured = UINT64_MAX,
                        .bytes = 1ull << 40,
                        .received = 3,
                        .dropped = 4,
                        .ifdropped = 5,
                        .truncated = 6}};
  ck_assert_int_eq(ps__enc_stats(&b, &st), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_STATS);
  ps__stats d;
  ck_assert_int_eq(ps__dec_stats(&f, &d, eb), 0);
  ck_assert_uint_eq(d.iface, 255);
  ck_assert_uint_eq(d.c.captured, UINT64_MAX);
  ck_assert_uint_eq(d.c.bytes, 1ull << 40);
  ck_assert_uint_eq(d.c.received, 3);
  ck_assert_uint_eq(d.c.dropped, 4);
  ck_assert_uint_eq(d.c.ifdropped, 5);
  ck_assert_uint_eq(d.c.truncated, 6);
  ck_assert_int_eq(d.v2, 0);
  ck_assert_uint_eq(d.c.sampled_out, 0);
  ps__buf_free(&b);
  /* Version 2 adds sampled_out at offset 60; a version 1 frame keeps its
   * 60 bytes and never carries it. */
  st.v2 = 1;
  st.c.sampled_out = 77;
  ck_assert_int_eq(ps__enc_stats(&b, &st), 0);
  f = parse_one(&b);
  ck_assert_uint_eq(f.len, 68);
  ck_assert_int_eq(ps__dec_stats(&f, &d, eb), 0);
  ck_assert_int_eq(d.v2, 1);
  ck_assert_uint_eq(d.c.sampled_out, 77);
  ck_assert_uint_eq(d.c.truncated, 6);
  ps__buf_free(&b);
  st.v2 = 0;
  ck_assert_int_eq(ps__enc_stats(&b, &st), 0);
  f = parse_one(&b);
  ck_assert_uint_eq(f.len, 60);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_seq_frames) {
  ps__buf b = {0};
  uint64_t seq = 0;
  ck_assert_int_eq(ps__enc_ack(&b, 77), 0);
  ps__frame f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_ACK);
  ck_assert_int_eq(ps__dec_seq(&f, &seq, eb), 0);
  ck_assert_uint_eq(seq, 77);
  ps__buf_reset(&b);

  ck_assert_int_eq(ps__enc_close(&b, UINT64_MAX), 0);
  f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_CLOSE);
  ck_assert_int_eq(ps__dec_seq(&f, &seq, eb), 0);
  ck_assert_uint_eq(seq, UINT64_MAX);
  ps__buf_reset(&b);

  ck_assert_int_eq(ps__enc_heartbeat(&b), 0);
  f = parse_one(&b);
  ck_assert_uint_eq(f.type, PS_FRAME_HEARTBEAT);
  ck_assert_uint_eq(f.len, 0);
  ck_assert_int_eq(ps__dec_empty(&f, eb), 0);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_two_frames_in_one_buffer) {
  ps__buf b = {0};
  ck_assert_int_eq(ps__enc_ack(&b, 1), 0);
  ck_assert_int_eq(ps__enc_heartbeat(&b), 0);
  ps__frame f;
  size_t used = 0;
  ck_assert_int_eq(
      ps__frame_parse(ps__buf_head(&b), ps__buf_size(&b), &lim, &f, &used, eb),
      1);
  ck_assert_uint_eq(used, 16);
  ck_assert_uint_eq(f.type, PS_FRAME_ACK);
  ck_assert_int_eq(ps__frame_parse(ps__buf_head(&b) + used,
                                   ps__buf_size(&b) - used, &lim, &f, &used,
                                   eb),
                   1);
  ck_assert_uint_eq(used, 8);
  ck_assert_uint_eq(f.type, PS_FRAME_HEARTBEAT);
  ps__buf_free(&b);
}
END_TEST

START_TEST(test_encoders_refuse_invalid) {
  ps__buf b = {0};
  ps__hello h = {.min_version = 1,
                 .max_version = 1,
                 .codecs = 1,
                 .name = "",
                 .name_len = 0};
  ck_assert_int_eq(ps__enc_hello(&b, &h), PS_ERR_INVALID);
  h.name = "a\nb";
  h.name_len = 3;
  ck_assert_int_eq(ps__enc_hello(&b, &h), PS_ERR_INVALID);
  ps__iface ifc = {
      .id = 256, .tsres = PS_TSRES_USEC, .name = "e", .name_len = 1};
  ck_assert_int_eq(ps__enc_iface(&b, &ifc), PS_ERR_INVALID);
  ifc.id = 0;
  ifc.tsres = 3;
  ck_assert_int_eq(ps__enc_iface(&b, &ifc), PS_ERR_INVALID);
  ps__batch m = {.seq = 1};
  ck_assert_int_eq(ps__enc_batch_hdr(&b, &m, PS_MAX_BATCH_RAW + 1),
                   PS_ERR_INVALID);
  /* Nothing half-written. */
  ck_assert_uint_eq(ps__buf_size(&b), 0);
  ps__buf_free(&b);
}
END_TEST

/* The control frames of version 2: what the encoder writes decodes to
 * the same values, and each limit is refused with its reason. */
static ps__frame as_frame(const ps__buf *b) {
  ps__frame f = {.type = ps__buf_head(b)[0],
                 .len = (uint32_t)(ps__buf_size(b) - PS_FRAME_HDR),
                 .payload = ps__buf_head(b) + PS_FRAME_HDR};
  return f;
}

START_TEST(test_control_frames) {
  ps__buf b = {0};
  ps__capture_start m = {.id = 3,
                         .duration_ms = 600000,
                         .snaplen = 128,
                         .sample_n = 10,
                         .n_ifaces = 1,
                         .filter = {"tcp port 443", 12}};
  m.ifaces[0] = (ps__text){"eth0", 4};
  ck_assert_int_eq(ps__enc_capture_start(&b, &m), 0);
  ps__frame f = as_frame(&b);
  ps__capture_start d;
  ck_assert_int_eq(ps__dec_capture_start(&f, &d, eb), 0);
  ck_assert_uint_eq(d.id, 3);
  ck_assert_uint_eq(d.duration_ms, 600000);
  ck_assert_uint_eq(d.sample_n, 10);
  ck_assert_uint_eq(d.n_ifaces, 1);
  ck_assert_int_eq(memcmp(d.filter.p, "tcp port 443", 12), 0);
  /* 65 interfaces: beyond the limit, before any is read. */
  uint8_t *p = ps__buf_head(&b) + PS_FRAME_HDR;
  p[40] = 65;
  ck_assert_err(ps__dec_capture_start(&f, &d, eb), PS_ERR_LIMIT, eb,
                "capture start naming 65 interfaces (at most 64)");
  p[40] = 1;
  p[36 + 3] = 1; /* flags */
  ck_assert_err(ps__dec_capture_start(&f, &d, eb), PS_ERR_PROTOCOL, eb,
                "capture start with unknown flags 0x1");
  p[36 + 3] = 0;
  p[f.len - 1] = '\x01'; /* a control byte in the filter */
  ck_assert_err(ps__dec_capture_start(&f, &d, eb), PS_ERR_PROTOCOL, eb,
                "invalid filter text");
  ps__buf_reset(&b);
  ps__capture_state_msg st = {.id = 3, .state = PS_CAP_ENDED, .packets = 5};
  ck_assert_int_eq(ps__enc_capture_state(&b, &st), 0);
  f = as_frame(&b);
  ps__buf_head(&b)[PS_FRAME_HDR + 8] = 9;
  ck_assert_err(ps__dec_capture_state(&f, &st, eb), PS_ERR_PROTOCOL, eb,
                "unknown capture state 9");
  ps__buf_reset(&b);
  /* The sensor's own capture: its filter, sampling and rate cap. */
  ps__capture_state_msg own = {.id = PS_CAPTURE_ID_OWN,
                               .state = PS_CAP_OWN,
                               .n_ifaces = 1,
                               .ifaces = {7},
                               .packets = 9,
                               .sampled_out = 4,
                               .text = {"udp port 53", 11},
                               .sample_n = 4,
                               .max_pps = 100};
  ck_assert_int_eq(ps__enc_capture_state(&b, &own), 0);
  f = as_frame(&b);
  ck_assert_int_eq(ps__dec_capture_state(&f, &st, eb), 0);
  ck_assert_uint_eq(st.id, PS_CAPTURE_ID_OWN);
  ck_assert_uint_eq(st.state, PS_CAP_OWN);
  ck_assert_uint_eq(st.n_ifaces, 1);
  ck_assert_uint_eq(st.ifaces[0], 7);
  ck_assert_uint_eq(st.packets, 9);
  ck_assert_uint_eq(st.sampled_out, 4);
  ck_assert_uint_eq(st.text.len, 11);
  ck_assert_int_eq(memcmp(st.text.p, "udp port 53", 11), 0);
  ck_assert_uint_eq(st.sample_n, 4);
  ck_assert_uint_eq(st.max_pps, 100);
  /* Cut short: the two counts are part of the frame. */
  f.len -= 4;
  ck_assert_err(ps__dec_capture_state(&f, &st, eb), PS_ERR_PROTOCOL, eb,
                "CAPTURE_STATE frame of 49 bytes: too short");
  ps__buf_reset(&b);
  /* An own state needs an own id, and a receiver's id is never own. */
  own.id = 5;
  ck_assert_int_eq(ps__enc_capture_state(&b, &own), 0);
  f = as_frame(&b);
  ck_assert_err(ps__dec_capture_state(&f, &st, eb), PS_ERR_PROTOCOL, eb,
                "capture state 6 for capture 5");
  ps__buf_reset(&b);
  own = (ps__capture_state_msg){.id = PS_CAPTURE_ID_OWN | 1,
                                .state = PS_CAP_RUNNING};
  ck_assert_int_eq(ps__enc_capture_state(&b, &own), 0);
  f = as_frame(&b);
  ck_assert_err(ps__dec_capture_state(&f, &st, eb), PS_ERR_PROTOCOL, eb,
                "capture state 1 for capture 9223372036854775809");
  ps__buf_reset(&b);
  ps__capture_change ch = {.id = 3, .what = 0};
  ck_assert_int_eq(ps__enc_capture_change(&b, &ch), PS_ERR_INVALID);
  ck_assert_int_eq(ps__enc_capture_stop(&b, 0), PS_ERR_INVALID);
  ps__buf_free(&b);
  ck_assert_int_eq(ps__valid_label_key("app_2", 5), 1);
  ck_assert_int_eq(ps__valid_label_key("2app", 4), 0);
  ck_assert_int_eq(ps__valid_label_key("a-b", 3), 0);
}
END_TEST

START_TEST(test_frame_names) {
  ck_assert_str_eq(ps__frame_name(PS_FRAME_HELLO), "HELLO");
  ck_assert_str_eq(ps__frame_name(PS_FRAME_BATCH), "BATCH");
  ck_assert_str_eq(ps__frame_name(PS_FRAME_CLOSE), "CLOSE");
  ck_assert_str_eq(ps__frame_name(0), "?");
  ck_assert_str_eq(ps__frame_name(10), "AUTH");
  ck_assert_str_eq(ps__frame_name(11), "AUTH_OK");
  ck_assert_str_eq(ps__frame_name(12), "ANNOUNCE");
  ck_assert_str_eq(ps__frame_name(17), "?");
  ck_assert_str_eq(ps__frame_name(255), "?");
}
END_TEST

/* ------------------------------------------------------- frame_parse */

START_TEST(test_parse_unknown_type) {
  ps__frame f;
  size_t used;
  const uint8_t bad[] = {0, PS_FRAME_LAST + 1, 0xff};
  for (size_t i = 0; i < sizeof(bad); i++) {
    /* Judged on the first byte: no need to wait for a header. */
    uint8_t buf[1] = {bad[i]};
    char want[64];
    snprintf(want, sizeof(want), "unknown frame type %u", bad[i]);
    ck_assert_err(ps__frame_parse(buf, 1, &lim, &f, &used, eb), PS_ERR_PROTOCOL,
                  eb, want);
  }
}
END_TEST

START_TEST(test_parse_flags_reserved) {
  ps__frame f;
  size_t used;
  uint8_t flags[8] = {PS_FRAME_BATCH, 1, 0, 0, 0, 0, 0, 0};
  ck_assert_err(ps__frame_parse(flags, 8, &lim, &f, &used, eb), PS_ERR_PROTOCOL,
                eb, "BATCH frame with non-zero flags");
  uint8_t res1[8] = {PS_FRAME_ACK, 0, 0x80, 0, 0, 0, 0, 8};
  ck_assert_err(ps__frame_parse(res1, 8, &lim, &f, &used, eb), PS_ERR_PROTOCOL,
                eb,
                "ACK frame with non-zero flags or "
                "reserved bits");
  uint8_t res2[8] = {PS_FRAME_ACK, 0, 0, 1, 0, 0, 0, 8};
  ck_assert_err(ps__frame_parse(res2, 8, &lim, &f, &used, eb), PS_ERR_PROTOCOL,
                eb, "reserved");
}
END_TEST

START_TEST(test_parse_over_limit) {
  ps__frame f;
  size_t used;
  lim.max_frame = 100;
  uint8_t hdr[8] = {PS_FRAME_BATCH, 0, 0, 0, 0, 0, 0, 101};
  /* Refused from the header alone, before any payload arrives. */
  ck_assert_err(ps__frame_parse(hdr, 8, &lim, &f, &used, eb), PS_ERR_LIMIT, eb,
                "BATCH frame of 101 bytes exceeds the frame limit of 100");
  uint8_t huge[8] = {PS_FRAME_BATCH, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  ck_assert_err(ps__frame_parse(huge, 8, &lim, &f, &used, eb), PS_ERR_LIMIT, eb,
                "4294967295 bytes");
  /* Exactly the limit is fine (needs its payload). */
  uint8_t ok[8 + 100] = {PS_FRAME_BATCH, 0, 0, 0, 0, 0, 0, 100};
  ck_assert_int_eq(ps__frame_parse(ok, 8, &lim, &f, &used, eb), 0);
  ck_assert_int_eq(ps__frame_parse(ok, sizeof(ok), &lim, &f, &used, eb), 1);
  ck_assert_uint_eq(used, sizeof(ok));
  ck_assert_uint_eq(f.len, 100);
  ck_assert_ptr_eq(f.payload, ok + 8);
}
END_TEST

START_TEST(test_parse_truncated_needs_more) {
  ps__buf b = {0};
  ps__stats st = {.iface = 1};
  ck_assert_int_eq(ps__enc_stats(&b, &st), 0);
  size_t n = ps__buf_size(&b);
  ps__frame f;
  size_t used = 12345;
  for (size_t k = 0; k < n; k++) {
    eb[0] = '\0';
    ck_assert_int_eq(ps__frame_parse(ps__buf_head(&b), k, &lim, &f, &used, eb),
                     0);
    ck_assert_uint_eq(used, 12345);
    ck_assert_str_eq(eb, "");
  }
  ck_assert_int_eq(ps__frame_parse(ps__buf_head(&b), n, &lim, &f, &used, eb),
                   1);
  ck_assert_uint_eq(used, n);
  ps__buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------ hello */

/* A valid hello payload in p (name "sensor-1"); returns its length. */
static uint32_t hello_payload(uint8_t *p) {
  ps__buf b = {0};
  ps__hello h = {.min_version = 1,
                 .max_version = 1,
                 .codecs = 3,
                 .name = "sensor-1",
                 .name_len = 8};
  ck_assert_int_eq(ps__enc_hello(&b, &h), 0);
  uint32_t n = (uint32_t)ps__buf_size(&b) - PS_FRAME_HDR;
  memcpy(p, ps__buf_head(&b) + PS_FRAME_HDR, n);
  ps__buf_free(&b);
  return n;
}

START_TEST(test_hello_valid_base) {
  uint8_t p[64];
  uint32_t n = hello_payload(p);
  ck_assert_uint_eq(n, 42);
  ps__frame f = mkframe(PS_FRAME_HELLO, p, n);
  ps__hello h;
  ck_assert_int_eq(ps__dec_hello(&f, &h, eb), 0);
}
END_TEST

/* ---------------------------------------------------------- welcome */

static uint32_t welcome_payload(uint8_t *p) {
  ps__buf b = {0};
  ps__welcome w = {.version = 1,
                   .codec = 1,
                   .max_frame = lim.max_frame,
                   .max_batch_raw = lim.max_batch_raw,
                   .max_batch_packets = lim.max_batch_packets,
                   .session_id = 9};
  ck_assert_int_eq(ps__enc_welcome(&b, &w), 0);
  memcpy(p, ps__buf_head(&b) + PS_FRAME_HDR, 40);
  ps__buf_free(&b);
  return 40;
}

START_TEST(test_default_limits_usable) {
  uint8_t p[64];
  ps__welcome w;
  ps__frame f = mkframe(PS_FRAME_WELCOME, p, welcome_payload(p));
  ck_assert_int_eq(ps__dec_welcome(&f, &w, eb), 0);
  ck_assert_uint_le(lim.max_frame, PS_MAX_FRAME_PAYLOAD);
  ck_assert_uint_le(lim.max_batch_raw, PS_MAX_BATCH_RAW);
  ck_assert_uint_le(lim.max_batch_packets, PS_MAX_BATCH_PACKETS);
}
END_TEST

/* The one welcome flag there is decodes. */
START_TEST(test_welcome_auth_flag) {
  uint8_t p[64];
  ps__welcome w;
  ps__frame f = mkframe(PS_FRAME_WELCOME, p, welcome_payload(p));
  p[3] = PS_WELCOME_AUTH;
  ck_assert_int_eq(ps__dec_welcome(&f, &w, eb), 0);
  ck_assert_uint_eq(w.flags, PS_WELCOME_AUTH);
}
END_TEST

/* ------------------------------------------------------------ error */

/* The ERROR codes are the protocol's (PROTOCOL.md §3.3), mapped from the
 * API's errors, never cast from them: an API error the protocol has no
 * code for goes out as a refusal (it went out as its own number, 500 or
 * 503, which no sensor knows). */
static const struct {
  int api;
  uint16_t wire;
  int retries;
} wire_map[] = {
    {PS_ERR_NOMEM, 501, 1},    {PS_ERR_PROTOCOL, 508, 0},
    {PS_ERR_LIMIT, 509, 0},    {PS_ERR_CODEC, 510, 0},
    {PS_ERR_REFUSED, 512, 0},  {PS_ERR_IO, 514, 1},
    {PS_ERR_LINKTYPE, 515, 0}, {PS_ERR_AUTH, 519, 0},
    {PS_ERR_BUSY, 520, 1},     {PS_ERR_INVALID, 512, 0},
    {PS_ERR_SYSTEM, 512, 0},   {PS_ERR_STATE, 512, 0},
    {PS_ERR_TLS, 512, 0},      {0, 512, 0},
};

START_TEST(test_wire_error_codes) {
  ck_assert_uint_eq(ps__wire_error(wire_map[_i].api), wire_map[_i].wire);
  ck_assert_int_eq(ps__wire_error_retries(ps__wire_error(wire_map[_i].api)),
                   wire_map[_i].retries);
}
END_TEST

START_TEST(test_wire_error_unknown_final) {
  /* Codes a later receiver may send are final for this sensor. */
  for (unsigned c = 0; c <= 65535; c++) {
    ck_assert_int_eq(ps__wire_error_retries((uint16_t)c),
                     c == 501 || c == 514 || c == 520);
  }
}
END_TEST

/* ------------------------------------------------------------ iface */

static uint32_t iface_payload(uint8_t *p, uint32_t id, uint8_t tsres,
                              uint8_t reserved, uint16_t name_len_field,
                              const char *name, size_t n) {
  ps__put32(p, id);
  ps__put32(p + 4, 1);
  ps__put32(p + 8, 65535);
  p[12] = tsres;
  p[13] = reserved;
  ps__put16(p + 14, name_len_field);
  memcpy(p + 16, name, n);
  return (uint32_t)(16 + n);
}

/* Version 2: options follow the name; a version 1 session refuses
 * them, and every option is checked. */
START_TEST(test_iface_options) {
  ps__buf b = {0};
  ps__iface m = {.id = 3,
                 .linktype = 1,
                 .snaplen = 9000,
                 .tsres = PS_TSRES_NSEC,
                 .name = "default/web-1/eth0",
                 .name_len = 18,
                 .n_opts = 2};
  m.opt[0] = (ps__iface_opt){"pod.name", 8, "web-1", 5};
  m.opt[1] = (ps__iface_opt){"netns.inode", 11, "4026532301", 10};
  ck_assert_int_eq(ps__enc_iface(&b, &m), 0);
  ps__frame f;
  size_t used;
  ps__limits dl;
  ps__limits_default(&dl);
  ck_assert_int_eq(
      ps__frame_parse(ps__buf_head(&b), ps__buf_size(&b), &dl, &f, &used, eb),
      1);
  ps__iface d;
  ck_assert_err(ps__dec_iface(&f, &d, eb), PS_ERR_PROTOCOL, eb,
                "interface 3 with a malformed name");
  ck_assert_int_eq(ps__dec_iface_v(&f, 2, &d, eb), 0);
  ck_assert_uint_eq(d.n_opts, 2);
  ck_assert_mem_eq(d.opt[1].key, "netns.inode", 11);
  ck_assert_mem_eq(d.opt[1].value, "4026532301", 10);
  ck_assert_uint_eq(d.opt[1].value_len, 10);

  /* Cut inside the last value: exact message, never read past. */
  ps__frame cut = f;
  cut.len -= 1;
  ck_assert_err(ps__dec_iface_v(&cut, 2, &d, eb), PS_ERR_PROTOCOL, eb,
                "interface 3 option 1 cut short");
  cut.len = f.len - 12; /* inside the second option's key */
  ck_assert_err(ps__dec_iface_v(&cut, 2, &d, eb), PS_ERR_PROTOCOL, eb,
                "option 1 cut short");

  /* Bad key, control byte in a value, a key twice, too many. */
  m.opt[1] = (ps__iface_opt){"Pod", 3, "x", 1};
  ck_assert_int_eq(ps__enc_iface(&b, &m), PS_ERR_INVALID);
  m.opt[1] = (ps__iface_opt){"pod", 3, "a\nb", 3};
  ck_assert_int_eq(ps__enc_iface(&b, &m), PS_ERR_INVALID);
  uint8_t p[64];
  memcpy(p, f.payload, 16 + 18);
  size_t n = 16 + 18;
  for (int k = 0; k < 2; k++) {
    p[n++] = 1;
    p[n++] = 'k';
    p[n++] = 0;
    p[n++] = 1;
    p[n++] = (uint8_t)('0' + k);
  }
  ps__frame g = mkframe(PS_FRAME_IFACE, p, (uint32_t)n);
  ck_assert_err(ps__dec_iface_v(&g, 2, &d, eb), PS_ERR_PROTOCOL, eb,
                "interface 3 option k given twice");
  p[16 + 18 + 5 + 1] = 'j';
  ck_assert_int_eq(ps__dec_iface_v(&g, 2, &d, eb), 0);
  p[16 + 18 + 5 + 1] = 'K';
  ck_assert_err(ps__dec_iface_v(&g, 2, &d, eb), PS_ERR_PROTOCOL, eb,
                "interface 3 option 1 is malformed");
  uint8_t q[16 + 18 + 17 * 6];
  memcpy(q, f.payload, 16 + 18);
  n = 16 + 18;
  for (int k = 0; k < 17; k++) {
    q[n++] = 2;
    q[n++] = 'k';
    q[n++] = (uint8_t)('a' + k);
    q[n++] = 0;
    q[n++] = 1;
    q[n++] = 'v';
  }
  g = mkframe(PS_FRAME_IFACE, q, (uint32_t)n);
  ck_assert_err(ps__dec_iface_v(&g, 2, &d, eb), PS_ERR_LIMIT, eb,
                "interface 3 has more than 16 options");
  ps__buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------ batch */

static uint32_t batch_payload(uint8_t *p, uint8_t codec, const uint8_t rsv[3],
                              uint32_t count, uint32_t raw_len,
                              uint32_t data_len) {
  ps__put64(p, 5);
  p[8] = codec;
  memcpy(p + 9, rsv, 3);
  ps__put32(p + 12, count);
  ps__put32(p + 16, raw_len);
  memset(p + PS_BATCH_HDR, 0, data_len);
  return PS_BATCH_HDR + data_len;
}

/* ------------------------------------------- decoders, by table */

/* What a row starts from before its patches. */
enum base { BASE_ZERO, BASE_HELLO, BASE_WELCOME, BASE_ERROR };

/* Writes v, width bytes wide (1, 2 or 4; 0: no patch), at off. */
typedef struct patch {
  uint16_t off;
  uint8_t width;
  uint32_t v;
} patch;

static const struct decode_case {
  uint8_t type;
  enum base base;
  patch patch[3];
  int len; /* the frame's payload length; -1: the base's */
  int code;
  const char *msg; /* in the error text */
} decode_cases[] = {
    /* hello */
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{3, 1, 'X'}},
     -1,
     PS_ERR_PROTOCOL,
     "not a libpacketstreamer hello"},
    /* Too short to hold the fixed part. */
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{0}},
     33,
     PS_ERR_PROTOCOL,
     "bad magic or size"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{0}},
     0,
     PS_ERR_PROTOCOL,
     "bad magic or size"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{4, 2, 0}},
     -1,
     PS_ERR_PROTOCOL,
     "invalid version range 0..1"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{4, 2, 3}, {6, 2, 2}},
     -1,
     PS_ERR_PROTOCOL,
     "invalid version range 3..2"},
    /* Name length one more than present, one less, absurd. */
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{32, 2, 9}},
     -1,
     PS_ERR_PROTOCOL,
     "hello length 42 does not match its name length 9"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{32, 2, 7}},
     -1,
     PS_ERR_PROTOCOL,
     "does not match its name length 7"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{32, 2, 0xffff}},
     -1,
     PS_ERR_PROTOCOL,
     "name length 65535"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{34 + 3, 1, '\n'}},
     -1,
     PS_ERR_PROTOCOL,
     "unprintable sensor name"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{34 + 3, 1, 0x7f}},
     -1,
     PS_ERR_PROTOCOL,
     "unprintable sensor name"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{34 + 3, 1, 0}},
     -1,
     PS_ERR_PROTOCOL,
     "unprintable sensor name"},
    /* An empty name: length 0, frame of the fixed part only. */
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{32, 2, 0}},
     34,
     PS_ERR_PROTOCOL,
     "empty, too long or unprintable"},
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{8, 4, 2}},
     -1,
     PS_ERR_PROTOCOL,
     "without the stored codec"}, /* zlib only */
    {PS_FRAME_HELLO,
     BASE_HELLO,
     {{8, 4, 0}},
     -1,
     PS_ERR_PROTOCOL,
     "without the stored codec"},
    /* welcome */
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{0}},
     39,
     PS_ERR_PROTOCOL,
     "welcome of 39 bytes"},
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{0}},
     41,
     PS_ERR_PROTOCOL,
     "welcome of 41 bytes"},
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{0}},
     0,
     PS_ERR_PROTOCOL,
     "welcome of 0 bytes"},
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{2, 1, PS_WIRE_CODEC_MAX + 1}},
     -1,
     PS_ERR_PROTOCOL,
     "welcome with unknown codec 3"},
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{3, 1, 2}},
     -1,
     PS_ERR_PROTOCOL,
     "welcome with unknown flags 0x2"},
    /* A batch must hold one full-size packet... */
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{8, 4, PS_PKT_HDR + PS_MAX_CAPLEN - 1}},
     -1,
     PS_ERR_PROTOCOL,
     "unusable limits"},
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{8, 4, PS_PKT_HDR + PS_MAX_CAPLEN},
      {4, 4, PS_BATCH_HDR + PS_PKT_HDR + PS_MAX_CAPLEN}},
     -1,
     0,
     NULL},
    /* ...a frame a full batch... */
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{8, 4, PS_PKT_HDR + PS_MAX_CAPLEN},
      {4, 4, PS_BATCH_HDR + PS_PKT_HDR + PS_MAX_CAPLEN - 1}},
     -1,
     PS_ERR_PROTOCOL,
     "unusable limits (frame 262187"},
    /* ...and a batch a packet. */
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{8, 4, PS_PKT_HDR + PS_MAX_CAPLEN},
      {4, 4, PS_BATCH_HDR + PS_PKT_HDR + PS_MAX_CAPLEN},
      {12, 4, 0}},
     -1,
     PS_ERR_PROTOCOL,
     "0 packets"},
    /* A batch limit near 2^32 must not wrap the frame check around. */
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{4, 4, 100}, {8, 4, 0xfffffff0u}},
     -1,
     PS_ERR_PROTOCOL,
     "unusable limits (frame 100, batch 4294967280 bytes"},
    /* Nor may a receiver ask for more than the protocol allows. */
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{8, 4, PS_MAX_BATCH_RAW + 1},
      {4, 4, PS_MAX_BATCH_RAW + 1 + PS_BATCH_HDR}},
     -1,
     PS_ERR_PROTOCOL,
     "limits above the protocol's"},
    {PS_FRAME_WELCOME,
     BASE_WELCOME,
     {{12, 4, PS_MAX_BATCH_PACKETS + 1}},
     -1,
     PS_ERR_PROTOCOL,
     "limits above the protocol's"},
    /* error: code, text length, "hello" */
    {PS_FRAME_ERROR,
     BASE_ERROR,
     {{0}},
     3,
     PS_ERR_PROTOCOL,
     "error frame of 3 bytes"},
    {PS_FRAME_ERROR,
     BASE_ERROR,
     {{2, 2, 6}},
     9,
     PS_ERR_PROTOCOL,
     "text length 6 does not fit"},
    {PS_FRAME_ERROR,
     BASE_ERROR,
     {{2, 2, 1025}},
     4 + 1025,
     PS_ERR_PROTOCOL,
     "text length 1025 does not fit"},
    {PS_FRAME_ERROR, BASE_ERROR, {{2, 2, 5}}, 9, 0, NULL},
    /* stats */
    {PS_FRAME_STATS,
     BASE_ZERO,
     {{0}},
     59,
     PS_ERR_PROTOCOL,
     "stats frame of 59 bytes"},
    {PS_FRAME_STATS,
     BASE_ZERO,
     {{0}},
     61,
     PS_ERR_PROTOCOL,
     "stats frame of 61 bytes"},
    {PS_FRAME_STATS,
     BASE_ZERO,
     {{0}},
     0,
     PS_ERR_PROTOCOL,
     "stats frame of 0 bytes"},
    {PS_FRAME_STATS,
     BASE_ZERO,
     {{0, 4, 256}},
     60,
     PS_ERR_PROTOCOL,
     "stats for interface id 256"},
    {PS_FRAME_STATS, BASE_ZERO, {{0, 4, 255}}, 60, 0, NULL},
    /* ack, close, heartbeat */
    {PS_FRAME_ACK,
     BASE_ZERO,
     {{0}},
     7,
     PS_ERR_PROTOCOL,
     "ACK frame of 7 bytes"},
    {PS_FRAME_CLOSE,
     BASE_ZERO,
     {{0}},
     9,
     PS_ERR_PROTOCOL,
     "CLOSE frame of 9 bytes"},
    {PS_FRAME_ACK,
     BASE_ZERO,
     {{0}},
     0,
     PS_ERR_PROTOCOL,
     "ACK frame of 0 bytes"},
    {PS_FRAME_HEARTBEAT,
     BASE_ZERO,
     {{0}},
     1,
     PS_ERR_PROTOCOL,
     "HEARTBEAT frame of 1 bytes"},
    /* the fixed parts of iface and batch */
    {PS_FRAME_IFACE,
     BASE_ZERO,
     {{0}},
     15,
     PS_ERR_PROTOCOL,
     "interface frame of 15 bytes"},
    {PS_FRAME_BATCH,
     BASE_ZERO,
     {{0}},
     19,
     PS_ERR_PROTOCOL,
     "batch frame of 19 bytes"},
};

/* Runs the decoder of the frame's type. A sequence number stays as it
 * was when the frame is refused. */
static int decode(const ps__frame *f) {
  switch (f->type) {
  case PS_FRAME_HELLO: {
    ps__hello h;
    return ps__dec_hello(f, &h, eb);
  }
  case PS_FRAME_WELCOME: {
    ps__welcome w;
    return ps__dec_welcome(f, &w, eb);
  }
  case PS_FRAME_ERROR: {
    ps__error_msg m;
    return ps__dec_error(f, &m, eb);
  }
  case PS_FRAME_STATS: {
    ps__stats m;
    return ps__dec_stats(f, &m, eb);
  }
  case PS_FRAME_IFACE: {
    ps__iface m;
    return ps__dec_iface(f, &m, eb);
  }
  case PS_FRAME_BATCH: {
    ps__batch m;
    return ps__dec_batch(f, &lim, &m, eb);
  }
  case PS_FRAME_ACK:
  case PS_FRAME_CLOSE: {
    uint64_t seq = 99;
    int rc = ps__dec_seq(f, &seq, eb);
    if (rc != 0) {
      ck_assert_uint_eq(seq, 99);
    }
    return rc;
  }
  case PS_FRAME_HEARTBEAT:
    return ps__dec_empty(f, eb);
  }
  ck_abort_msg("no decoder for frame type %u", f->type);
  return 0;
}

START_TEST(test_decode_table) {
  const struct decode_case *c = &decode_cases[_i];
  static uint8_t p[1100];
  memset(p, 0, sizeof(p));
  uint32_t n = 0;
  switch (c->base) {
  case BASE_ZERO:
    break;
  case BASE_HELLO:
    n = hello_payload(p);
    break;
  case BASE_WELCOME:
    n = welcome_payload(p);
    break;
  case BASE_ERROR:
    memcpy(p + 4, "hello", 5);
    break;
  }
  for (int k = 0; k < 3; k++) {
    const patch *pt = &c->patch[k];
    if (pt->width == 1) {
      p[pt->off] = (uint8_t)pt->v;
    } else if (pt->width == 2) {
      ps__put16(p + pt->off, (uint16_t)pt->v);
    } else if (pt->width == 4) {
      ps__put32(p + pt->off, pt->v);
    }
  }
  ps__frame f = mkframe(c->type, p, c->len < 0 ? n : (uint32_t)c->len);
  int rc = decode(&f);
  if (c->code == 0) {
    ck_assert_msg(rc == 0, "refused: %d %s", rc, eb);
  } else {
    ck_assert_err(rc, c->code, eb, c->msg);
  }
}
END_TEST

/* An interface announcement's fields, one at a time out of range. */
static const struct iface_case {
  uint32_t id;
  uint8_t tsres, reserved;
  uint16_t name_len_field;
  const char *name;
  size_t n;
  int code;
  const char *msg;
} iface_cases[] = {
    {255, PS_TSRES_NSEC, 0, 4, "eth0", 4, 0, NULL},
    {256, PS_TSRES_NSEC, 0, 4, "eth0", 4, PS_ERR_LIMIT,
     "interface id 256 exceeds the limit of 256"},
    {UINT32_MAX, PS_TSRES_NSEC, 0, 4, "eth0", 4, PS_ERR_LIMIT,
     "interface id 4294967295"},
    {1, 3, 0, 4, "eth0", 4, PS_ERR_PROTOCOL,
     "unsupported timestamp resolution 3"},
    {1, 0, 0, 4, "eth0", 4, PS_ERR_PROTOCOL, "resolution 0"},
    {1, PS_TSRES_USEC, 0, 5, "eth0", 4, PS_ERR_PROTOCOL,
     "interface 1 with a malformed name"},
    {1, PS_TSRES_USEC, 0, 3, "eth0", 4, PS_ERR_PROTOCOL, "malformed name"},
    {1, PS_TSRES_USEC, 1, 4, "eth0", 4, PS_ERR_PROTOCOL, "malformed name"},
    {1, PS_TSRES_USEC, 0, 4,
     "et\x1b"
     "0",
     4, PS_ERR_PROTOCOL, "malformed name"},
    {1, PS_TSRES_USEC, 0, 0, "", 0, PS_ERR_PROTOCOL, "malformed name"},
};

START_TEST(test_iface_table) {
  const struct iface_case *c = &iface_cases[_i];
  uint8_t p[300];
  ps__iface m;
  ps__frame f = mkframe(PS_FRAME_IFACE, p,
                        iface_payload(p, c->id, c->tsres, c->reserved,
                                      c->name_len_field, c->name, c->n));
  int rc = ps__dec_iface(&f, &m, eb);
  if (c->code == 0) {
    ck_assert_msg(rc == 0, "refused: %d %s", rc, eb);
    ck_assert_uint_eq(m.id, c->id);
    ck_assert_uint_eq(m.name_len, c->n);
    ck_assert_mem_eq(m.name, c->name, c->n);
  } else {
    ck_assert_err(rc, c->code, eb, c->msg);
  }
}
END_TEST

/* Batch headers (sequence 5) against limits of 1000 bytes and 10
 * packets; the boundary values are accepted. */
static const struct batch_case {
  uint8_t codec;
  uint8_t rsv[3];
  uint32_t count, raw_len, data_len;
  int code;
  const char *msg;
} batch_cases[] = {
    {0, {0}, 10, 1000, 1000, 0, NULL},
    {1, {0}, 4, 96, 96, 0, NULL},
    {0, {0}, 0, 0, 0, 0, NULL},
    {0,
     {0},
     1,
     1001,
     1001,
     PS_ERR_LIMIT,
     "batch 5 of 1001 bytes exceeds the decompressed batch limit of 1000"},
    {1, {0}, 1, 0xffffffffu, 10, PS_ERR_LIMIT, "decompressed batch limit"},
    {0,
     {0},
     11,
     1000,
     1000,
     PS_ERR_LIMIT,
     "batch 5 of 11 packets exceeds the limit of 10 packets"},
    {0,
     {0},
     5,
     119,
     119,
     PS_ERR_PROTOCOL,
     "batch 5 claims 5 packets in 119 bytes"},
    {0,
     {0},
     1,
     100,
     99,
     PS_ERR_PROTOCOL,
     "batch 5 carries 99 bytes for 100 raw bytes"},
    {0,
     {0},
     1,
     100,
     101,
     PS_ERR_PROTOCOL,
     "carries 101 bytes for 100 raw bytes"},
    {1,
     {0},
     1,
     100,
     101,
     PS_ERR_PROTOCOL,
     "carries 101 bytes for 100 raw bytes"},
    {1, {0}, 1, 100, 100, 0, NULL},
    {PS_WIRE_CODEC_MAX + 1,
     {0},
     1,
     100,
     100,
     PS_ERR_PROTOCOL,
     "batch 5 with unknown codec 3"},
    {0xff, {0}, 1, 100, 100, PS_ERR_PROTOCOL, "unknown codec 255"},
    {0,
     {0x40, 0, 0},
     1,
     100,
     100,
     PS_ERR_PROTOCOL,
     "batch 5 with non-zero reserved bytes"},
    {0,
     {0, 0x40, 0},
     1,
     100,
     100,
     PS_ERR_PROTOCOL,
     "batch 5 with non-zero reserved bytes"},
    {0,
     {0, 0, 0x40},
     1,
     100,
     100,
     PS_ERR_PROTOCOL,
     "batch 5 with non-zero reserved bytes"},
};

START_TEST(test_batch_table) {
  const struct batch_case *c = &batch_cases[_i];
  static uint8_t p[2048];
  ps__batch m;
  lim.max_batch_raw = 1000;
  lim.max_batch_packets = 10;
  ps__frame f = mkframe(
      PS_FRAME_BATCH, p,
      batch_payload(p, c->codec, c->rsv, c->count, c->raw_len, c->data_len));
  int rc = ps__dec_batch(&f, &lim, &m, eb);
  if (c->code == 0) {
    ck_assert_msg(rc == 0, "refused: %d %s", rc, eb);
    ck_assert_uint_eq(m.seq, 5);
    ck_assert_uint_eq(m.count, c->count);
    ck_assert_ptr_eq(m.data, p + PS_BATCH_HDR);
  } else {
    ck_assert_err(rc, c->code, eb, c->msg);
  }
}
END_TEST

/* One record of caplen bytes for iface in raw. */
static void put_record(ps__buf *raw, uint32_t iface, uint32_t caplen) {
  static uint8_t data[2000];
  unit_fill_pattern(data, sizeof(data), caplen);
  ps_packet p = {.ts_sec = 1,
                 .ts_frac = 2,
                 .caplen = caplen,
                 .len = caplen,
                 .iface = iface,
                 .data = data};
  ck_assert_int_eq(ps__batch_put(raw, &p), 0);
}

START_TEST(test_batch_next_malformed) {
  ps__buf raw = {0};
  ps_packet p;
  size_t off = 0;
  /* Empty batch: straight to the end. */
  ck_assert_int_eq(ps__batch_next(NULL, 0, &off, &p, eb), 0);

  put_record(&raw, 1, 10);
  put_record(&raw, 2, 20);
  const uint8_t *r = ps__buf_head(&raw);
  size_t n = ps__buf_size(&raw);
  ck_assert_uint_eq(n, 2 * PS_PKT_HDR + 30);

  /* The second record's header is cut. */
  off = 0;
  ck_assert_int_eq(ps__batch_next(r, 34 + 23, &off, &p, eb), 1);
  ck_assert_uint_eq(off, 34);
  ck_assert_err(ps__batch_next(r, 34 + 23, &off, &p, eb), PS_ERR_PROTOCOL, eb,
                "packet record cut short at offset 34");
  off = 0;
  ck_assert_err(ps__batch_next(r, 1, &off, &p, eb), PS_ERR_PROTOCOL, eb,
                "cut short at offset 0");

  /* The second record's data runs past the end. */
  off = 34;
  ck_assert_err(ps__batch_next(r, n - 1, &off, &p, eb), PS_ERR_PROTOCOL, eb,
                "packet of caplen 20 runs past the batch end");
  ck_assert_uint_eq(off, 34);
  ps__buf_free(&raw);

  /* caplen above PS_MAX_CAPLEN, and exactly at it. */
  size_t big = PS_PKT_HDR + PS_MAX_CAPLEN + 1;
  uint8_t *b = calloc(1, big);
  ck_assert_ptr_nonnull(b);
  ps__put32(b + 16, PS_MAX_CAPLEN + 1);
  off = 0;
  ck_assert_err(ps__batch_next(b, big, &off, &p, eb), PS_ERR_LIMIT, eb,
                "packet caplen 262145 exceeds the limit of 262144");
  ps__put32(b + 16, UINT32_MAX);
  off = 0;
  ck_assert_err(ps__batch_next(b, big, &off, &p, eb), PS_ERR_LIMIT, eb,
                "caplen 4294967295");
  ps__put32(b + 16, PS_MAX_CAPLEN);
  off = 0;
  ck_assert_int_eq(ps__batch_next(b, big - 1, &off, &p, eb), 1);
  ck_assert_uint_eq(p.caplen, PS_MAX_CAPLEN);
  ck_assert_uint_eq(off, big - 1);
  ck_assert_int_eq(ps__batch_next(b, big - 1, &off, &p, eb), 0);

  /* Interface id out of range. */
  ps__put32(b, 256);
  off = 0;
  ck_assert_err(ps__batch_next(b, big - 1, &off, &p, eb), PS_ERR_PROTOCOL, eb,
                "packet for interface id 256");
  ps__put32(b, 255);
  off = 0;
  ck_assert_int_eq(ps__batch_next(b, big - 1, &off, &p, eb), 1);
  ck_assert_uint_eq(p.iface, 255);
  free(b);
}
END_TEST

/* ------------------------------------------------- stats and seq sizes */

/* ---- the Kafka input's message decoder (ps_kmsg) ---- */

static int kmsg_meta(const char *sensor, size_t len, ps__kmsg_meta *m) {
  ps__kmsg_hdr h[] = {{"ps-sensor", sensor, len},
                      {"ps-stream", "00000000000000a1", 16},
                      {"ps-seq", "7", 1},
                      {"ps-part", "1/1", 3},
                      {"ps-packets", "1", 1}};
  return ps__kmsg_meta_parse(m, h, 5, eb);
}

/* A pcapng section as the Kafka output writes it: one interface named
 * ifname (ifname_len bytes), one packet. */
static size_t kmsg_section(uint8_t *p, const char *ifname, size_t ifname_len) {
  size_t o = 0;
  uint32_t v;
#define PUT32(x) (v = (uint32_t)(x), memcpy(p + o, &v, 4), o += 4)
#define PUT16(x) (memcpy(p + o, &(uint16_t){(uint16_t)(x)}, 2), o += 2)
  PUT32(0x0A0D0D0Au); /* SHB */
  PUT32(28);
  PUT32(0x1A2B3C4Du);
  PUT16(1);
  PUT16(0);
  memset(p + o, 0xff, 8);
  o += 8;
  PUT32(28);
  size_t pad = (4 - ifname_len % 4) % 4;
  uint32_t ilen = (uint32_t)(20 + 4 + ifname_len + pad + 4);
  PUT32(1); /* IDB */
  PUT32(ilen);
  PUT16(1);
  PUT16(0);
  PUT32(65535);
  PUT16(2); /* if_name */
  PUT16(ifname_len);
  memcpy(p + o, ifname, ifname_len);
  memset(p + o + ifname_len, 0, pad);
  o += ifname_len + pad;
  PUT32(0); /* opt_endofopt */
  PUT32(ilen);
  PUT32(6); /* EPB, 4 bytes of data */
  PUT32(36);
  PUT32(0);
  PUT32(0);
  PUT32(1);
  PUT32(4);
  PUT32(4);
  PUT32(0xdeadbeefu);
  PUT32(36);
#undef PUT32
#undef PUT16
  return o;
}

START_TEST(test_kmsg_sensor_control_bytes) {
  ps__kmsg_meta m;
  ck_assert_int_eq(kmsg_meta("s1", 2, &m), 0);
  ck_assert_str_eq(m.sensor, "s1");
  /* A newline would let a topic writer forge the receiver's log lines
   * ("Kafka input: stream ... of sensor NAME"). */
  static const char *const bad[] = {"s1\n2026-01-01T00:00:00Z ps-receiver: x",
                                    "s1\r", "a\x1b[2Jb", "del\x7f"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    eb[0] = '\0';
    ck_assert_int_eq(kmsg_meta(bad[i], strlen(bad[i]), &m), PS_ERR_PROTOCOL);
    ck_assert_msg(strstr(eb, "bad ps-sensor header") != NULL, "%zu: %s", i, eb);
  }
  ck_assert_int_eq(kmsg_meta("", 0, &m), PS_ERR_PROTOCOL);
}
END_TEST

START_TEST(test_kmsg_iface_control_bytes) {
  uint8_t p[512];
  size_t n = kmsg_section(p, "s1/eth0", 7);
  ck_assert_int_eq(ps__kmsg_section(p, n, "s1", NULL, eb), 1);
  static const char *const bad[] = {"s1/eth0\nforged line", "s1/\teth0",
                                    "s1/eth\x7f"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    eb[0] = '\0';
    n = kmsg_section(p, bad[i], strlen(bad[i]));
    ck_assert_int_eq(ps__kmsg_section(p, n, "s1", NULL, eb), PS_ERR_PROTOCOL);
    ck_assert_msg(strstr(eb, "interface name not of sensor s1") != NULL,
                  "%zu: %s", i, eb);
  }
}
END_TEST

static Suite *proto_suite(void) {
  Suite *s = suite_create("proto");
  TCase *tc = tcase_create("encode");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_header_bytes_ack);
  tcase_add_test(tc, test_header_bytes_heartbeat_close);
  tcase_add_test(tc, test_header_bytes_hello);
  tcase_add_test(tc, test_header_bytes_batch_and_record);
  tcase_add_test(tc, test_header_bytes_stats_welcome_iface);
  tcase_add_test(tc, test_roundtrip_hello);
  tcase_add_test(tc, test_roundtrip_welcome);
  tcase_add_test(tc, test_roundtrip_error);
  tcase_add_test(tc, test_roundtrip_iface);
  tcase_add_test(tc, test_roundtrip_batch);
  tcase_add_test(tc, test_roundtrip_stats);
  tcase_add_test(tc, test_roundtrip_seq_frames);
  tcase_add_test(tc, test_two_frames_in_one_buffer);
  tcase_add_test(tc, test_encoders_refuse_invalid);
  tcase_add_test(tc, test_frame_names);
  tcase_add_test(tc, test_control_frames);
  suite_add_tcase(s, tc);

  tc = tcase_create("malformed");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_parse_unknown_type);
  tcase_add_test(tc, test_parse_flags_reserved);
  tcase_add_test(tc, test_parse_over_limit);
  tcase_add_test(tc, test_parse_truncated_needs_more);
  tcase_add_test(tc, test_hello_valid_base);
  tcase_add_test(tc, test_default_limits_usable);
  tcase_add_test(tc, test_welcome_auth_flag);
  tcase_add_loop_test(tc, test_decode_table, 0,
                      sizeof(decode_cases) / sizeof(decode_cases[0]));
  tcase_add_loop_test(tc, test_iface_table, 0,
                      sizeof(iface_cases) / sizeof(iface_cases[0]));
  tcase_add_loop_test(tc, test_batch_table, 0,
                      sizeof(batch_cases) / sizeof(batch_cases[0]));
  tcase_add_loop_test(tc, test_wire_error_codes, 0,
                      (int)(sizeof(wire_map) / sizeof(wire_map[0])));
  tcase_add_test(tc, test_wire_error_unknown_final);
  tcase_add_test(tc, test_iface_options);
  tcase_add_test(tc, test_batch_next_malformed);
  tcase_add_test(tc, test_kmsg_sensor_control_bytes);
  tcase_add_test(tc, test_kmsg_iface_control_bytes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(proto_suite());
}
