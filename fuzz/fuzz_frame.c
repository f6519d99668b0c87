/*
 * Fuzz target for the frame layer: splits the input into frames with
 * ps__frame_parse, runs every decoder on every frame, re-encodes what
 * decodes (the bytes must come back identical), and walks batch data
 * with ps__batch_next.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_proto.h"

#include <stdlib.h>
#include <string.h>

/* A failing call must say why, within its buffer. */
static void check_err(int rc, const char *errbuf) {
  CHECK(rc == PS_ERR_PROTOCOL || rc == PS_ERR_LIMIT);
  fuzz_check_reason(errbuf, PS_ERRMSG_MAX);
}

/* p[0..n) lies within the frame's payload. */
static void check_inside(const ps__frame *f, const void *p, size_t n) {
  const uint8_t *b = p;
  CHECK(b >= f->payload && n <= f->len &&
        (size_t)(b - f->payload) <= f->len - n);
}

/* Re-encoding a decoded message must give back the frame's exact
 * payload: a decoder that accepts what the encoder would not write, or
 * reads a field from the wrong place, shows up here. (Every decoder runs
 * on every frame, so the type byte may differ.) */
static void check_same(const ps__frame *f, const ps__buf *b) {
  CHECK(ps__buf_size(b) == PS_FRAME_HDR + (size_t)f->len);
  const uint8_t *p = ps__buf_head(b);
  CHECK(ps__get32(p + 4) == f->len);
  CHECK(memcmp(p + PS_FRAME_HDR, f->payload, f->len) == 0);
}

/* Walks the packet records of raw data; returns how many there were. */
static uint32_t walk_batch(const uint8_t *raw, size_t raw_len) {
  char err[PS_ERRMSG_MAX];
  ps_packet pkt;
  size_t off = 0, prev = 0;
  uint32_t n = 0;
  int rc;
  while ((rc = ps__batch_next(raw, raw_len, &off, &pkt, err)) == 1) {
    CHECK(off > prev && off <= raw_len);
    CHECK(pkt.iface < PS_MAX_IFACES && pkt.caplen <= PS_MAX_CAPLEN);
    CHECK(pkt.data == raw + prev + PS_PKT_HDR);
    CHECK(off - prev == PS_PKT_HDR + (size_t)pkt.caplen);
    prev = off;
    n++;
  }
  if (rc != 0) {
    check_err(rc, err);
  }
  return n;
}

static void decode_all(const ps__frame *f, const ps__limits *lim) {
  char err[PS_ERRMSG_MAX];
  ps__buf re = {0};
  int rc;

  ps__hello h;
  if ((rc = ps__dec_hello(f, &h, err)) == 0) {
    check_inside(f, h.name, h.name_len);
    CHECK(h.name_len > 0 && h.min_version >= 1 &&
          h.min_version <= h.max_version && (h.codecs & 1u));
    CHECK(ps__enc_hello(&re, &h) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }

  ps__welcome w;
  if ((rc = ps__dec_welcome(f, &w, err)) == 0) {
    CHECK(w.codec <= PS_WIRE_CODEC_MAX);
    CHECK(ps__enc_welcome(&re, &w) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }

  ps__error_msg em;
  if ((rc = ps__dec_error(f, &em, err)) == 0) {
    check_inside(f, em.text, em.text_len);
    CHECK(em.text_len <= PS_MAX_ERROR_TEXT);
  } else {
    check_err(rc, err);
  }

  ps__iface ifc;
  if ((rc = ps__dec_iface(f, &ifc, err)) == 0) {
    check_inside(f, ifc.name, ifc.name_len);
    CHECK(ifc.id < PS_MAX_IFACES);
    CHECK(ps__enc_iface(&re, &ifc) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }
  /* Version 2: options after the name, each inside the frame. */
  if ((rc = ps__dec_iface_v(f, 2, &ifc, err)) == 0) {
    CHECK(ifc.n_opts <= PS_MAX_IFACE_OPTS);
    for (unsigned i = 0; i < ifc.n_opts; i++) {
      check_inside(f, ifc.opt[i].key, ifc.opt[i].key_len);
      check_inside(f, ifc.opt[i].value, ifc.opt[i].value_len);
      CHECK(ps__valid_opt_key(ifc.opt[i].key, ifc.opt[i].key_len));
      CHECK(ps__valid_opt_value(ifc.opt[i].value, ifc.opt[i].value_len));
    }
    CHECK(ps__enc_iface(&re, &ifc) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }

  ps__batch b;
  if ((rc = ps__dec_batch(f, lim, &b, err)) == 0) {
    check_inside(f, b.data, b.data_len);
    CHECK(b.raw_len <= lim->max_batch_raw);
    CHECK(b.count <= lim->max_batch_packets);
    CHECK(b.data_len <= b.raw_len);
    CHECK(ps__enc_batch_hdr(&re, &b, b.data_len) == 0);
    CHECK(ps__buf_append(&re, b.data, b.data_len) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
    if (b.codec == PS_WIRE_CODEC_STORED) {
      walk_batch(b.data, b.data_len);
    }
  } else {
    check_err(rc, err);
  }
  /* Whatever the header says, the records walker must stay inside any
   * bytes it is given. */
  if (f->len >= PS_BATCH_HDR) {
    walk_batch(f->payload + PS_BATCH_HDR, f->len - PS_BATCH_HDR);
  }
  walk_batch(f->payload, f->len);

  ps__stats st;
  if ((rc = ps__dec_stats(f, &st, err)) == 0) {
    CHECK(st.iface < PS_MAX_IFACES);
    CHECK(ps__enc_stats(&re, &st) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }

  uint64_t seq;
  if ((rc = ps__dec_seq(f, &seq, err)) == 0) {
    CHECK(f->len == 8);
    CHECK(ps__enc_ack(&re, seq) == 0);
    CHECK(ps__buf_size(&re) == PS_FRAME_HDR + 8);
    CHECK(memcmp(ps__buf_head(&re) + PS_FRAME_HDR, f->payload, 8) == 0);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }

  if ((rc = ps__dec_empty(f, err)) == 0) {
    CHECK(f->len == 0);
  } else {
    check_err(rc, err);
  }

  uint8_t mac[PS_MAC_LEN];
  if ((rc = ps__dec_mac(f, mac, err)) == 0) {
    CHECK(f->len == PS_MAC_LEN);
    CHECK(ps__enc_mac(&re, f->type, mac) == 0);
    check_same(f, &re);
    ps__buf_reset(&re);
  } else {
    check_err(rc, err);
  }

  CHECK(ps__frame_name(f->type)[0] != '?');
  ps__buf_free(&re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ps__limits lim;
  ps__limits_default(&lim);
  /* The first byte picks tight limits sometimes, so the limit checks are
   * reached with small inputs too. */
  if (size > 0 && (data[0] & 0x80) != 0) {
    lim.max_frame = 1024;
    lim.max_batch_raw = 512;
    lim.max_batch_packets = 4;
  }
  size_t off = 0;
  while (off < size) {
    ps__frame f;
    size_t used = 0;
    char err[PS_ERRMSG_MAX];
    int rc = ps__frame_parse(data + off, size - off, &lim, &f, &used, err);
    if (rc == 0) {
      break;
    }
    if (rc < 0) {
      check_err(rc, err);
      /* Resynchronise one byte on, so frames behind garbage still get
       * parsed in this run. */
      off++;
      continue;
    }
    CHECK(rc == 1);
    CHECK(used == PS_FRAME_HDR + (size_t)f.len && used <= size - off);
    CHECK(f.len <= lim.max_frame);
    CHECK(f.type >= PS_FRAME_HELLO && f.type <= PS_FRAME_LAST);
    CHECK(f.payload == data + off + PS_FRAME_HDR);
    decode_all(&f, &lim);
    off += used;
  }
  /* The whole input as raw batch data, too. */
  walk_batch(data, size);
  return 0;
}
