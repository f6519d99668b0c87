/* Wire protocol codec: no sockets, no clocks; every length checked before
 * it is used. */
#include "config.h"

#include "ps_proto.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>

void ps__limits_default(ps__limits *l) {
  /* A sensor batches 256 KiB by default and at most 4 MiB; these bound
   * what one session can make the receiver hold (one frame being read
   * plus one batch inflated: about 8 MiB). */
  l->max_batch_raw = 4u * 1024 * 1024 + PS_PKT_HDR + PS_MAX_CAPLEN;
  l->max_frame = PS_BATCH_HDR + l->max_batch_raw;
  l->max_batch_packets = 262144;
}

const char *ps__frame_name(uint8_t type) {
  static const char *const names[] = {"?",
                                      "HELLO",
                                      "WELCOME",
                                      "ERROR",
                                      "IFACE",
                                      "BATCH",
                                      "ACK",
                                      "STATS",
                                      "HEARTBEAT",
                                      "CLOSE",
                                      "AUTH",
                                      "AUTH_OK",
                                      "ANNOUNCE",
                                      "CAPTURE_START",
                                      "CAPTURE_CHANGE",
                                      "CAPTURE_STOP",
                                      "CAPTURE_STATE"};
  return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

int ps__frame_parse(const uint8_t *buf, size_t len, const ps__limits *lim,
                    ps__frame *f, size_t *consumed, char *errbuf) {
  if (len < 1) {
    return 0;
  }
  /* Judge the type as soon as its byte is there: garbage is refused
   * before we wait for a length that will never make sense. */
  if (buf[0] < PS_FRAME_HELLO || buf[0] > PS_FRAME_LAST) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "unknown frame type %u", buf[0]);
  }
  if (len < PS_FRAME_HDR) {
    return 0;
  }
  uint8_t flags = buf[1];
  uint16_t reserved = ps__get16(buf + 2);
  uint32_t plen = ps__get32(buf + 4);
  if (flags != 0 || reserved != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "%s frame with non-zero flags or reserved bits",
                      ps__frame_name(buf[0]));
  }
  if (plen > lim->max_frame) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "%s frame of %u bytes exceeds the frame limit of %u",
                      ps__frame_name(buf[0]), plen, lim->max_frame);
  }
  if (len - PS_FRAME_HDR < plen) {
    return 0;
  }
  f->type = buf[0];
  f->flags = flags;
  f->len = plen;
  f->payload = buf + PS_FRAME_HDR;
  *consumed = PS_FRAME_HDR + (size_t)plen;
  return 1;
}

/* Starts a frame of type with payload length plen; returns a pointer to
 * the payload area (plen bytes, already counted in out->len). */
static uint8_t *frame_begin(ps__buf *out, uint8_t type, uint32_t plen) {
  uint8_t *p = ps__buf_reserve(out, PS_FRAME_HDR + (size_t)plen);
  if (p == NULL) {
    return NULL;
  }
  p[0] = type;
  p[1] = 0;
  ps__put16(p + 2, 0);
  ps__put32(p + 4, plen);
  out->len += PS_FRAME_HDR + (size_t)plen;
  return p + PS_FRAME_HDR;
}

int ps__enc_hello(ps__buf *out, const ps__hello *m) {
  if (!ps__valid_name(m->name, m->name_len)) {
    return PS_ERR_INVALID;
  }
  if ((m->flags & ~PS_HELLO_STREAM) != 0) {
    return PS_ERR_INVALID;
  }
  uint32_t plen = 4 + 2 + 2 + 4 + 4 + PS_NONCE_LEN + 2 + (uint32_t)m->name_len +
                  ((m->flags & PS_HELLO_STREAM) ? 8 : 0);
  uint8_t *p = frame_begin(out, PS_FRAME_HELLO, plen);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  memcpy(p, PS_PROTO_MAGIC, 4);
  ps__put16(p + 4, m->min_version);
  ps__put16(p + 6, m->max_version);
  ps__put32(p + 8, m->codecs);
  ps__put32(p + 12, m->flags);
  memcpy(p + 16, m->nonce, PS_NONCE_LEN);
  ps__put16(p + 32, (uint16_t)m->name_len);
  memcpy(p + 34, m->name, m->name_len);
  if (m->flags & PS_HELLO_STREAM) {
    ps__put64(p + 34 + m->name_len, m->stream_id);
  }
  return 0;
}

int ps__dec_hello(const ps__frame *f, ps__hello *m, char *errbuf) {
  const uint8_t *p = f->payload;
  if (f->len < 34 || memcmp(p, PS_PROTO_MAGIC, 4) != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "not a libpacketstreamer hello (bad magic or size)");
  }
  m->min_version = ps__get16(p + 4);
  m->max_version = ps__get16(p + 6);
  m->codecs = ps__get32(p + 8);
  m->flags = ps__get32(p + 12);
  memcpy(m->nonce, p + 16, PS_NONCE_LEN);
  m->name_len = ps__get16(p + 32);
  m->name = (const char *)p + 34;
  if (m->min_version == 0 || m->min_version > m->max_version) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "hello with invalid version range %u..%u", m->min_version,
                      m->max_version);
  }
  if ((m->flags & ~PS_HELLO_STREAM) != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "hello with unknown flags 0x%x",
                      m->flags);
  }
  size_t extra = (m->flags & PS_HELLO_STREAM) ? 8 : 0;
  if ((size_t)f->len != 34 + m->name_len + extra) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "hello length %u does not match its name length %zu",
                      f->len, m->name_len);
  }
  m->stream_id = extra ? ps__get64(p + 34 + m->name_len) : 0;
  if (!ps__valid_name(m->name, m->name_len)) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "hello with an empty, too long or unprintable sensor "
                      "name");
  }
  if ((m->codecs & 1u) == 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "hello without the stored codec");
  }
  return 0;
}

int ps__enc_welcome(ps__buf *out, const ps__welcome *m) {
  uint8_t *p = frame_begin(out, PS_FRAME_WELCOME, 40);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__put16(p, m->version);
  p[2] = m->codec;
  p[3] = m->flags;
  ps__put32(p + 4, m->max_frame);
  ps__put32(p + 8, m->max_batch_raw);
  ps__put32(p + 12, m->max_batch_packets);
  ps__put64(p + 16, m->session_id);
  memcpy(p + 24, m->nonce, PS_NONCE_LEN);
  return 0;
}

int ps__dec_welcome(const ps__frame *f, ps__welcome *m, char *errbuf) {
  const uint8_t *p = f->payload;
  if (f->len != 40) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "welcome of %u bytes", f->len);
  }
  m->version = ps__get16(p);
  m->codec = p[2];
  m->flags = p[3];
  m->max_frame = ps__get32(p + 4);
  m->max_batch_raw = ps__get32(p + 8);
  m->max_batch_packets = ps__get32(p + 12);
  m->session_id = ps__get64(p + 16);
  memcpy(m->nonce, p + 24, PS_NONCE_LEN);
  if (m->codec > PS_WIRE_CODEC_MAX) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "welcome with unknown codec %u",
                      m->codec);
  }
  if ((m->flags & ~PS_WELCOME_AUTH) != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "welcome with unknown flags 0x%x", m->flags);
  }
  /* A receiver that would not take one full-size packet is unusable.
   * The sum is 64-bit: a batch limit near 2^32 must not wrap. */
  if (m->max_batch_raw < PS_PKT_HDR + PS_MAX_CAPLEN ||
      m->max_frame < (uint64_t)PS_BATCH_HDR + m->max_batch_raw ||
      m->max_batch_packets < 1) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "welcome with unusable limits (frame %u, batch %u "
                      "bytes, %u packets)",
                      m->max_frame, m->max_batch_raw, m->max_batch_packets);
  }
  /* Nor one that asks for more than the protocol allows. */
  if (m->max_frame > PS_MAX_FRAME_PAYLOAD + PS_BATCH_HDR ||
      m->max_batch_raw > PS_MAX_BATCH_RAW ||
      m->max_batch_packets > PS_MAX_BATCH_PACKETS) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "welcome with limits above the protocol's (frame %u, "
                      "batch %u bytes, %u packets)",
                      m->max_frame, m->max_batch_raw, m->max_batch_packets);
  }
  return 0;
}

uint16_t ps__wire_error(int api_error) {
  switch (api_error) {
  case PS_ERR_NOMEM:
    return PS_WIRE_ERR_NOMEM;
  case PS_ERR_PROTOCOL:
    return PS_WIRE_ERR_PROTOCOL;
  case PS_ERR_LIMIT:
    return PS_WIRE_ERR_LIMIT;
  case PS_ERR_CODEC:
    return PS_WIRE_ERR_CODEC;
  case PS_ERR_IO:
    return PS_WIRE_ERR_IO;
  case PS_ERR_LINKTYPE:
    return PS_WIRE_ERR_LINKTYPE;
  case PS_ERR_AUTH:
    return PS_WIRE_ERR_AUTH;
  case PS_ERR_BUSY:
    return PS_WIRE_ERR_BUSY;
  default:
    return PS_WIRE_ERR_REFUSED;
  }
}

int ps__wire_error_retries(uint16_t code) {
  return code == PS_WIRE_ERR_BUSY || code == PS_WIRE_ERR_NOMEM ||
         code == PS_WIRE_ERR_IO;
}

int ps__enc_error(ps__buf *out, uint16_t code, const char *text) {
  size_t n = strlen(text);
  if (n > PS_MAX_ERROR_TEXT) {
    n = PS_MAX_ERROR_TEXT;
  }
  uint8_t *p = frame_begin(out, PS_FRAME_ERROR, (uint32_t)(4 + n));
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__put16(p, code);
  ps__put16(p + 2, (uint16_t)n);
  memcpy(p + 4, text, n);
  return 0;
}

int ps__dec_error(const ps__frame *f, ps__error_msg *m, char *errbuf) {
  if (f->len < 4) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "error frame of %u bytes",
                      f->len);
  }
  m->code = ps__get16(f->payload);
  m->text_len = ps__get16(f->payload + 2);
  m->text = (const char *)f->payload + 4;
  if (m->text_len > PS_MAX_ERROR_TEXT || f->len != 4 + m->text_len) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "error frame text length %zu does not fit", m->text_len);
  }
  return 0;
}

int ps__valid_opt_key(const char *k, size_t len) {
  if (len < 1 || len > PS_MAX_IFACE_OPT_KEY) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      return 0;
    }
  }
  return 1;
}

int ps__valid_opt_value(const char *v, size_t len) {
  if (len < 1 || len > PS_MAX_IFACE_OPT_VALUE) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    uint8_t c = (uint8_t)v[i];
    if (c < 0x20 || c == 0x7f) {
      return 0;
    }
  }
  return 1;
}

int ps__enc_iface(ps__buf *out, const ps__iface *m) {
  if (!ps__valid_name(m->name, m->name_len) || m->id >= PS_MAX_IFACES ||
      (m->tsres != PS_TSRES_USEC && m->tsres != PS_TSRES_NSEC) ||
      m->n_opts > PS_MAX_IFACE_OPTS) {
    return PS_ERR_INVALID;
  }
  size_t olen = 0;
  for (unsigned i = 0; i < m->n_opts; i++) {
    const ps__iface_opt *o = &m->opt[i];
    if (!ps__valid_opt_key(o->key, o->key_len) ||
        !ps__valid_opt_value(o->value, o->value_len)) {
      return PS_ERR_INVALID;
    }
    olen += 3 + o->key_len + o->value_len;
  }
  uint8_t *p = frame_begin(out, PS_FRAME_IFACE,
                           16 + (uint32_t)m->name_len + (uint32_t)olen);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__put32(p, m->id);
  ps__put32(p + 4, m->linktype);
  ps__put32(p + 8, m->snaplen);
  p[12] = m->tsres;
  p[13] = 0;
  ps__put16(p + 14, (uint16_t)m->name_len);
  memcpy(p + 16, m->name, m->name_len);
  p += 16 + m->name_len;
  for (unsigned i = 0; i < m->n_opts; i++) {
    const ps__iface_opt *o = &m->opt[i];
    p[0] = (uint8_t)o->key_len;
    memcpy(p + 1, o->key, o->key_len);
    p += 1 + o->key_len;
    ps__put16(p, (uint16_t)o->value_len);
    memcpy(p + 2, o->value, o->value_len);
    p += 2 + o->value_len;
  }
  return 0;
}

int ps__dec_iface(const ps__frame *f, ps__iface *m, char *errbuf) {
  return ps__dec_iface_v(f, 1, m, errbuf);
}

int ps__dec_iface_v(const ps__frame *f, unsigned version, ps__iface *m,
                    char *errbuf) {
  const uint8_t *p = f->payload;
  if (f->len < 16) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "interface frame of %u bytes",
                      f->len);
  }
  m->id = ps__get32(p);
  m->linktype = ps__get32(p + 4);
  m->snaplen = ps__get32(p + 8);
  m->tsres = p[12];
  m->name_len = ps__get16(p + 14);
  m->name = (const char *)p + 16;
  m->n_opts = 0;
  if (m->id >= PS_MAX_IFACES) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "interface id %u exceeds the limit of %u interfaces",
                      m->id, PS_MAX_IFACES);
  }
  if (m->tsres != PS_TSRES_USEC && m->tsres != PS_TSRES_NSEC) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "interface %u with unsupported timestamp resolution %u",
                      m->id, m->tsres);
  }
  size_t end = 16 + m->name_len;
  if (p[13] != 0 || (size_t)f->len < end ||
      (version < 2 && (size_t)f->len != end) ||
      !ps__valid_name(m->name, m->name_len)) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "interface %u with a malformed name", m->id);
  }
  /* Version 2: options to the end of the payload, each checked before
   * it is kept (the receiver copies them, the sinks write them). */
  size_t at = end;
  while (at < f->len) {
    if (m->n_opts == PS_MAX_IFACE_OPTS) {
      return ps__seterr(errbuf, PS_ERR_LIMIT,
                        "interface %u has more than %u options", m->id,
                        PS_MAX_IFACE_OPTS);
    }
    ps__iface_opt *o = &m->opt[m->n_opts];
    o->key_len = p[at];
    o->key = (const char *)p + at + 1;
    if (f->len - at < 3 + o->key_len) {
      return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                        "interface %u option %u cut short", m->id, m->n_opts);
    }
    o->value_len = ps__get16(p + at + 1 + o->key_len);
    o->value = (const char *)p + at + 3 + o->key_len;
    if (f->len - at - 3 - o->key_len < o->value_len) {
      return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                        "interface %u option %u cut short", m->id, m->n_opts);
    }
    if (!ps__valid_opt_key(o->key, o->key_len) ||
        !ps__valid_opt_value(o->value, o->value_len)) {
      return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                        "interface %u option %u is malformed", m->id,
                        m->n_opts);
    }
    for (unsigned k = 0; k < m->n_opts; k++) {
      if (m->opt[k].key_len == o->key_len &&
          memcmp(m->opt[k].key, o->key, o->key_len) == 0) {
        return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                          "interface %u option %.*s given twice", m->id,
                          (int)o->key_len, o->key);
      }
    }
    at += 3 + o->key_len + o->value_len;
    m->n_opts++;
  }
  return 0;
}

void ps__put_batch_hdr(uint8_t *p, const ps__batch *m, size_t data_len) {
  p[0] = PS_FRAME_BATCH;
  p[1] = 0;
  ps__put16(p + 2, 0);
  ps__put32(p + 4, PS_BATCH_HDR + (uint32_t)data_len);
  p += PS_FRAME_HDR;
  ps__put64(p, m->seq);
  p[8] = m->codec;
  p[9] = p[10] = p[11] = 0;
  ps__put32(p + 12, m->count);
  ps__put32(p + 16, m->raw_len);
}

int ps__enc_batch_hdr(ps__buf *out, const ps__batch *m, size_t data_len) {
  if (data_len > PS_MAX_BATCH_RAW) {
    return PS_ERR_INVALID;
  }
  uint8_t *p = ps__buf_reserve(out, PS_FRAME_HDR + PS_BATCH_HDR);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  /* The data follows; the caller appends it. */
  ps__put_batch_hdr(p, m, data_len);
  out->len += PS_FRAME_HDR + PS_BATCH_HDR;
  return 0;
}

int ps__dec_batch(const ps__frame *f, const ps__limits *lim, ps__batch *m,
                  char *errbuf) {
  const uint8_t *p = f->payload;
  if (f->len < PS_BATCH_HDR) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "batch frame of %u bytes",
                      f->len);
  }
  m->seq = ps__get64(p);
  m->codec = p[8];
  m->count = ps__get32(p + 12);
  m->raw_len = ps__get32(p + 16);
  m->data = p + PS_BATCH_HDR;
  m->data_len = f->len - PS_BATCH_HDR;
  if (p[9] != 0 || p[10] != 0 || p[11] != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "batch %llu with non-zero reserved bytes",
                      (unsigned long long)m->seq);
  }
  if (m->codec > PS_WIRE_CODEC_MAX) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "batch %llu with unknown codec %u",
                      (unsigned long long)m->seq, m->codec);
  }
  if (m->raw_len > lim->max_batch_raw) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "batch %llu of %u bytes exceeds the decompressed batch "
                      "limit of %u",
                      (unsigned long long)m->seq, m->raw_len,
                      lim->max_batch_raw);
  }
  if (m->count > lim->max_batch_packets) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "batch %llu of %u packets exceeds the limit of %u "
                      "packets per batch",
                      (unsigned long long)m->seq, m->count,
                      lim->max_batch_packets);
  }
  if ((uint64_t)m->count * PS_PKT_HDR > m->raw_len) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "batch %llu claims %u packets in %u bytes",
                      (unsigned long long)m->seq, m->count, m->raw_len);
  }
  if (m->codec == PS_WIRE_CODEC_STORED ? m->data_len != m->raw_len
                                       : m->data_len > m->raw_len) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "batch %llu carries %zu bytes for %u raw bytes",
                      (unsigned long long)m->seq, m->data_len, m->raw_len);
  }
  return 0;
}

int ps__enc_stats(ps__buf *out, const ps__stats *m) {
  uint8_t *p =
      frame_begin(out, PS_FRAME_STATS, m->v2 ? PS_STATS_LEN_V2 : PS_STATS_LEN);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  if (m->v2) {
    ps__put64(p + 60, m->c.sampled_out);
  }
  ps__put32(p, m->iface);
  ps__put64(p + 4, m->c.captured);
  ps__put64(p + 12, m->c.bytes);
  ps__put64(p + 20, m->c.received);
  ps__put64(p + 28, m->c.dropped);
  ps__put64(p + 36, m->c.ifdropped);
  ps__put64(p + 44, m->c.truncated);
  ps__put64(p + 52, m->c.overflow);
  return 0;
}

int ps__dec_stats(const ps__frame *f, ps__stats *m, char *errbuf) {
  const uint8_t *p = f->payload;
  if (f->len != PS_STATS_LEN && f->len != PS_STATS_LEN_V2) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "stats frame of %u bytes",
                      f->len);
  }
  m->v2 = f->len == PS_STATS_LEN_V2;
  m->c.sampled_out = m->v2 ? ps__get64(p + 60) : 0;
  m->iface = ps__get32(p);
  m->c.captured = ps__get64(p + 4);
  m->c.bytes = ps__get64(p + 12);
  m->c.received = ps__get64(p + 20);
  m->c.dropped = ps__get64(p + 28);
  m->c.ifdropped = ps__get64(p + 36);
  m->c.truncated = ps__get64(p + 44);
  m->c.overflow = ps__get64(p + 52);
  if (m->iface >= PS_MAX_IFACES) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "stats for interface id %u",
                      m->iface);
  }
  return 0;
}

static int enc_seq(ps__buf *out, uint8_t type, uint64_t seq) {
  uint8_t *p = frame_begin(out, type, 8);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__put64(p, seq);
  return 0;
}

int ps__enc_ack(ps__buf *out, uint64_t seq) {
  return enc_seq(out, PS_FRAME_ACK, seq);
}

int ps__enc_close(ps__buf *out, uint64_t seq) {
  return enc_seq(out, PS_FRAME_CLOSE, seq);
}

int ps__enc_heartbeat(ps__buf *out) {
  return frame_begin(out, PS_FRAME_HEARTBEAT, 0) ? 0 : PS_ERR_NOMEM;
}

int ps__dec_seq(const ps__frame *f, uint64_t *seq, char *errbuf) {
  if (f->len != 8) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "%s frame of %u bytes",
                      ps__frame_name(f->type), f->len);
  }
  *seq = ps__get64(f->payload);
  return 0;
}

int ps__enc_mac(ps__buf *out, uint8_t type, const uint8_t *mac) {
  uint8_t *p = frame_begin(out, type, PS_MAC_LEN);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  memcpy(p, mac, PS_MAC_LEN);
  return 0;
}

int ps__dec_mac(const ps__frame *f, uint8_t *mac, char *errbuf) {
  if (f->len != PS_MAC_LEN) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "%s frame of %u bytes",
                      ps__frame_name(f->type), f->len);
  }
  memcpy(mac, f->payload, PS_MAC_LEN);
  return 0;
}

int ps__auth_mac(const uint8_t *key, size_t keylen, int receiver,
                 const uint8_t *rnonce, const uint8_t *snonce, const char *name,
                 size_t name_len, uint8_t *mac) {
  static const char sensor_label[16] = "PSTR auth sensor";
  static const char receiver_label[16] = "PSTR auth rcvr  ";
  uint8_t msg[16 + 2 * PS_NONCE_LEN + 255];
  if (name_len > 255) {
    return PS_ERR_AUTH;
  }
  memcpy(msg, receiver ? receiver_label : sensor_label, 16);
  memcpy(msg + 16, rnonce, PS_NONCE_LEN);
  memcpy(msg + 16 + PS_NONCE_LEN, snonce, PS_NONCE_LEN);
  memcpy(msg + 16 + 2 * PS_NONCE_LEN, name, name_len);
  return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, msg,
                          16 + 2 * PS_NONCE_LEN + name_len, mac) == 0
             ? 0
             : PS_ERR_AUTH;
}

int ps__dec_empty(const ps__frame *f, char *errbuf) {
  if (f->len != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "%s frame of %u bytes",
                      ps__frame_name(f->type), f->len);
  }
  return 0;
}

int ps__batch_put(ps__buf *raw, const ps_packet *pkt) {
  uint8_t *p = ps__buf_reserve(raw, PS_PKT_HDR + (size_t)pkt->caplen);
  if (p == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__put32(p, pkt->iface);
  ps__put64(p + 4, (uint64_t)pkt->ts_sec);
  ps__put32(p + 12, pkt->ts_frac);
  ps__put32(p + 16, pkt->caplen);
  ps__put32(p + 20, pkt->len);
  if (pkt->caplen > 0) {
    memcpy(p + PS_PKT_HDR, pkt->data, pkt->caplen);
  }
  raw->len += PS_PKT_HDR + (size_t)pkt->caplen;
  return 0;
}

int ps__batch_next(const uint8_t *raw, size_t raw_len, size_t *off,
                   ps_packet *pkt, char *errbuf) {
  size_t o = *off;
  if (o == raw_len) {
    return 0;
  }
  if (raw_len - o < PS_PKT_HDR) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "packet record cut short at offset %zu", o);
  }
  const uint8_t *p = raw + o;
  pkt->iface = ps__get32(p);
  pkt->ts_sec = (int64_t)ps__get64(p + 4);
  pkt->ts_frac = ps__get32(p + 12);
  pkt->caplen = ps__get32(p + 16);
  pkt->len = ps__get32(p + 20);
  if (pkt->iface >= PS_MAX_IFACES) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "packet for interface id %u",
                      pkt->iface);
  }
  if (pkt->caplen > PS_MAX_CAPLEN) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "packet caplen %u exceeds the limit of %u", pkt->caplen,
                      PS_MAX_CAPLEN);
  }
  if (raw_len - o - PS_PKT_HDR < pkt->caplen) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "packet of caplen %u runs past the batch end",
                      pkt->caplen);
  }
  pkt->data = p + PS_PKT_HDR;
  *off = o + PS_PKT_HDR + pkt->caplen;
  return 1;
}

/* ---------------------------------------------------------------------
 * Version 2: the control frames. Variable parts are read through a
 * cursor that never passes the payload's end.
 */

typedef struct cur {
  const uint8_t *p;
  size_t left;
  int bad;
} cur;

static uint64_t take(cur *c, size_t n) {
  if (c->bad || c->left < n) {
    c->bad = 1;
    return 0;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    v = (v << 8) | c->p[i];
  }
  c->p += n;
  c->left -= n;
  return v;
}

static ps__text take_text(cur *c, size_t len) {
  ps__text t = {NULL, 0};
  if (c->bad || c->left < len) {
    c->bad = 1;
    return t;
  }
  t.p = (const char *)c->p;
  t.len = len;
  c->p += len;
  c->left -= len;
  return t;
}

int ps__valid_filter(const char *p, size_t len) {
  if (len > PS_MAX_FILTER) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)p[i];
    if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f) {
      return 0;
    }
  }
  return 1;
}

int ps__valid_label_key(const char *p, size_t len) {
  if (len == 0 || len > PS_MAX_LABEL_KEY) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    char ch = p[i];
    int alpha =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    if (!alpha && !(i > 0 && ch >= '0' && ch <= '9')) {
      return 0;
    }
  }
  return 1;
}

static int valid_value(const char *p, size_t len) {
  return len == 0 || ps__valid_name(p, len);
}

static int ctl_size(ps__buf *out, uint8_t type, size_t plen, uint8_t **p) {
  if (plen > PS_MAX_CONTROL_FRAME) {
    return PS_ERR_INVALID;
  }
  *p = frame_begin(out, type, (uint32_t)plen);
  return *p ? 0 : PS_ERR_NOMEM;
}

static uint8_t *put_text(uint8_t *p, const ps__text *t, int lenbytes) {
  if (lenbytes == 1) {
    *p++ = (uint8_t)t->len;
  } else {
    ps__put16(p, (uint16_t)t->len);
    p += 2;
  }
  if (t->len) {
    memcpy(p, t->p, t->len);
  }
  return p + t->len;
}

int ps__enc_announce(ps__buf *out, const ps__announce *m) {
  if ((m->flags & ~(PS_ANNOUNCE_STANDBY | PS_ANNOUNCE_REMOTE)) ||
      m->version.len == 0 || m->version.len > PS_MAX_VERSION_TEXT ||
      !ps__valid_name(m->version.p, m->version.len) ||
      !ps__valid_name(m->host.p, m->host.len) ||
      m->n_ifaces > PS_MAX_ANNOUNCE_IFACES || m->n_labels > PS_MAX_LABELS) {
    return PS_ERR_INVALID;
  }
  size_t n = 4 + 1 + m->version.len + 1 + m->host.len + 2 + 1;
  for (unsigned i = 0; i < m->n_ifaces; i++) {
    if (!ps__valid_name(m->ifaces[i].name.p, m->ifaces[i].name.len)) {
      return PS_ERR_INVALID;
    }
    n += 5 + m->ifaces[i].name.len;
  }
  for (unsigned i = 0; i < m->n_labels; i++) {
    if (!ps__valid_label_key(m->labels[i].key.p, m->labels[i].key.len) ||
        m->labels[i].value.len > PS_MAX_LABEL_VALUE ||
        !valid_value(m->labels[i].value.p, m->labels[i].value.len)) {
      return PS_ERR_INVALID;
    }
    n += 2 + m->labels[i].key.len + m->labels[i].value.len;
  }
  uint8_t *p;
  int rc = ctl_size(out, PS_FRAME_ANNOUNCE, n, &p);
  if (rc != 0) {
    return rc;
  }
  ps__put32(p, m->flags);
  p = put_text(p + 4, &m->version, 1);
  p = put_text(p, &m->host, 1);
  ps__put16(p, (uint16_t)m->n_ifaces);
  p += 2;
  for (unsigned i = 0; i < m->n_ifaces; i++) {
    ps__put32(p, m->ifaces[i].linktype);
    p = put_text(p + 4, &m->ifaces[i].name, 1);
  }
  *p++ = (uint8_t)m->n_labels;
  for (unsigned i = 0; i < m->n_labels; i++) {
    p = put_text(p, &m->labels[i].key, 1);
    p = put_text(p, &m->labels[i].value, 1);
  }
  return 0;
}

#define CTL_BAD(what)                                                          \
  ps__seterr(errbuf, PS_ERR_PROTOCOL, "%s frame of %u bytes: %s",              \
             ps__frame_name(f->type), f->len, what)

int ps__dec_announce(const ps__frame *f, ps__announce *m, char *errbuf) {
  cur c = {f->payload, f->len, 0};
  memset(m, 0, sizeof(*m));
  m->flags = (uint32_t)take(&c, 4);
  if (!c.bad && (m->flags & ~(PS_ANNOUNCE_STANDBY | PS_ANNOUNCE_REMOTE))) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "announce with unknown flags 0x%x", m->flags);
  }
  m->version = take_text(&c, (size_t)take(&c, 1));
  m->host = take_text(&c, (size_t)take(&c, 1));
  if (c.bad) {
    return CTL_BAD("too short");
  }
  if (m->version.len == 0 || m->version.len > PS_MAX_VERSION_TEXT ||
      !ps__valid_name(m->version.p, m->version.len)) {
    return CTL_BAD("invalid version text");
  }
  if (!ps__valid_name(m->host.p, m->host.len)) {
    return CTL_BAD("invalid host name");
  }
  size_t ni = (size_t)take(&c, 2);
  if (ni > PS_MAX_ANNOUNCE_IFACES) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "announce of %zu interfaces (at most %u)", ni,
                      PS_MAX_ANNOUNCE_IFACES);
  }
  for (size_t i = 0; i < ni && !c.bad; i++) {
    m->ifaces[i].linktype = (uint32_t)take(&c, 4);
    m->ifaces[i].name = take_text(&c, (size_t)take(&c, 1));
    if (!c.bad && !ps__valid_name(m->ifaces[i].name.p, m->ifaces[i].name.len)) {
      return CTL_BAD("invalid interface name");
    }
  }
  m->n_ifaces = (unsigned)ni;
  size_t nl = (size_t)take(&c, 1);
  if (!c.bad && nl > PS_MAX_LABELS) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "announce of %zu labels (at most %u)", nl, PS_MAX_LABELS);
  }
  for (size_t i = 0; i < nl && !c.bad; i++) {
    m->labels[i].key = take_text(&c, (size_t)take(&c, 1));
    m->labels[i].value = take_text(&c, (size_t)take(&c, 1));
    if (c.bad) {
      break;
    }
    if (!ps__valid_label_key(m->labels[i].key.p, m->labels[i].key.len)) {
      return CTL_BAD("invalid label key");
    }
    if (!valid_value(m->labels[i].value.p, m->labels[i].value.len)) {
      return CTL_BAD("invalid label value");
    }
  }
  m->n_labels = (unsigned)nl;
  if (c.bad) {
    return CTL_BAD("too short");
  }
  if (c.left != 0) {
    return CTL_BAD("bytes after the last field");
  }
  return 0;
}

int ps__enc_capture_start(ps__buf *out, const ps__capture_start *m) {
  if (m->id == 0 || m->snaplen > PS_MAX_CAPLEN ||
      m->n_ifaces > PS_MAX_CAPTURE_IFACES ||
      !ps__valid_filter(m->filter.p, m->filter.len)) {
    return PS_ERR_INVALID;
  }
  size_t n = 41 + 2 + m->filter.len;
  for (unsigned i = 0; i < m->n_ifaces; i++) {
    if (!ps__valid_name(m->ifaces[i].p, m->ifaces[i].len)) {
      return PS_ERR_INVALID;
    }
    n += 1 + m->ifaces[i].len;
  }
  uint8_t *p;
  int rc = ctl_size(out, PS_FRAME_CAPTURE_START, n, &p);
  if (rc != 0) {
    return rc;
  }
  ps__put64(p, m->id);
  ps__put64(p + 8, m->duration_ms);
  ps__put64(p + 16, m->count);
  ps__put32(p + 24, m->snaplen);
  ps__put32(p + 28, m->max_pps);
  ps__put32(p + 32, m->sample_n);
  ps__put32(p + 36, 0);
  p[40] = (uint8_t)m->n_ifaces;
  p += 41;
  for (unsigned i = 0; i < m->n_ifaces; i++) {
    p = put_text(p, &m->ifaces[i], 1);
  }
  put_text(p, &m->filter, 2);
  return 0;
}

int ps__dec_capture_start(const ps__frame *f, ps__capture_start *m,
                          char *errbuf) {
  cur c = {f->payload, f->len, 0};
  memset(m, 0, sizeof(*m));
  m->id = take(&c, 8);
  m->duration_ms = take(&c, 8);
  m->count = take(&c, 8);
  m->snaplen = (uint32_t)take(&c, 4);
  m->max_pps = (uint32_t)take(&c, 4);
  m->sample_n = (uint32_t)take(&c, 4);
  uint32_t flags = (uint32_t)take(&c, 4);
  size_t ni = (size_t)take(&c, 1);
  if (c.bad) {
    return CTL_BAD("too short");
  }
  if (m->id == 0) {
    return CTL_BAD("capture id 0");
  }
  if (flags != 0) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "capture start with unknown flags 0x%x", flags);
  }
  if (m->snaplen > PS_MAX_CAPLEN) {
    return CTL_BAD("snaplen beyond 262144");
  }
  if (ni > PS_MAX_CAPTURE_IFACES) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "capture start naming %zu interfaces (at most %u)", ni,
                      PS_MAX_CAPTURE_IFACES);
  }
  for (size_t i = 0; i < ni && !c.bad; i++) {
    m->ifaces[i] = take_text(&c, (size_t)take(&c, 1));
    if (!c.bad && !ps__valid_name(m->ifaces[i].p, m->ifaces[i].len)) {
      return CTL_BAD("invalid interface name");
    }
  }
  m->n_ifaces = (unsigned)ni;
  m->filter = take_text(&c, (size_t)take(&c, 2));
  if (c.bad) {
    return CTL_BAD("too short");
  }
  if (!ps__valid_filter(m->filter.p, m->filter.len)) {
    return CTL_BAD("invalid filter text");
  }
  if (c.left != 0) {
    return CTL_BAD("bytes after the last field");
  }
  return 0;
}

int ps__enc_capture_change(ps__buf *out, const ps__capture_change *m) {
  uint32_t all = PS_CHANGE_FILTER | PS_CHANGE_SAMPLE | PS_CHANGE_MAX_PPS;
  if (m->id == 0 || m->what == 0 || (m->what & ~all) ||
      !ps__valid_filter(m->filter.p, m->filter.len)) {
    return PS_ERR_INVALID;
  }
  uint8_t *p;
  int rc = ctl_size(out, PS_FRAME_CAPTURE_CHANGE, 22 + m->filter.len, &p);
  if (rc != 0) {
    return rc;
  }
  ps__put64(p, m->id);
  ps__put32(p + 8, m->what);
  ps__put32(p + 12, m->sample_n);
  ps__put32(p + 16, m->max_pps);
  put_text(p + 20, &m->filter, 2);
  return 0;
}

int ps__dec_capture_change(const ps__frame *f, ps__capture_change *m,
                           char *errbuf) {
  cur c = {f->payload, f->len, 0};
  memset(m, 0, sizeof(*m));
  m->id = take(&c, 8);
  m->what = (uint32_t)take(&c, 4);
  m->sample_n = (uint32_t)take(&c, 4);
  m->max_pps = (uint32_t)take(&c, 4);
  m->filter = take_text(&c, (size_t)take(&c, 2));
  uint32_t all = PS_CHANGE_FILTER | PS_CHANGE_SAMPLE | PS_CHANGE_MAX_PPS;
  if (c.bad) {
    return CTL_BAD("too short");
  }
  if (m->id == 0) {
    return CTL_BAD("capture id 0");
  }
  if (m->what == 0 || (m->what & ~all)) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "capture change of unknown kind 0x%x", m->what);
  }
  if (!ps__valid_filter(m->filter.p, m->filter.len)) {
    return CTL_BAD("invalid filter text");
  }
  if (c.left != 0) {
    return CTL_BAD("bytes after the last field");
  }
  return 0;
}

int ps__enc_capture_stop(ps__buf *out, uint64_t id) {
  if (id == 0) {
    return PS_ERR_INVALID;
  }
  return enc_seq(out, PS_FRAME_CAPTURE_STOP, id);
}

int ps__dec_capture_stop(const ps__frame *f, uint64_t *id, char *errbuf) {
  int rc = ps__dec_seq(f, id, errbuf);
  if (rc == 0 && *id == 0) {
    return CTL_BAD("capture id 0");
  }
  return rc;
}

int ps__enc_capture_state(ps__buf *out, const ps__capture_state_msg *m) {
  if (m->id == 0 || m->state == 0 || m->state > PS_CAP_STATE_LAST ||
      m->n_ifaces > PS_MAX_CAPTURE_IFACES) {
    return PS_ERR_INVALID;
  }
  size_t tl = m->text.len > PS_MAX_ERROR_TEXT ? PS_MAX_ERROR_TEXT : m->text.len;
  uint8_t *p;
  int own = m->state == PS_CAP_OWN;
  int rc =
      ctl_size(out, PS_FRAME_CAPTURE_STATE,
               12 + 4 * (size_t)m->n_ifaces + 16 + 2 + tl + (own ? 8 : 0), &p);
  if (rc != 0) {
    return rc;
  }
  ps__put64(p, m->id);
  p[8] = m->state;
  p[9] = 0;
  ps__put16(p + 10, (uint16_t)m->n_ifaces);
  p += 12;
  for (unsigned i = 0; i < m->n_ifaces; i++, p += 4) {
    ps__put32(p, m->ifaces[i]);
  }
  ps__put64(p, m->packets);
  ps__put64(p + 8, m->sampled_out);
  ps__text t = {m->text.p, tl};
  put_text(p + 16, &t, 2);
  if (own) {
    ps__put32(p + 18 + tl, m->sample_n);
    ps__put32(p + 22 + tl, m->max_pps);
  }
  return 0;
}

int ps__dec_capture_state(const ps__frame *f, ps__capture_state_msg *m,
                          char *errbuf) {
  cur c = {f->payload, f->len, 0};
  memset(m, 0, sizeof(*m));
  m->id = take(&c, 8);
  m->state = (uint8_t)take(&c, 1);
  uint8_t reserved = (uint8_t)take(&c, 1);
  size_t ni = (size_t)take(&c, 2);
  if (c.bad) {
    return CTL_BAD("too short");
  }
  if (m->id == 0) {
    return CTL_BAD("capture id 0");
  }
  if (m->state == 0 || m->state > PS_CAP_STATE_LAST) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL, "unknown capture state %u",
                      m->state);
  }
  if (reserved != 0) {
    return CTL_BAD("reserved byte not 0");
  }
  if (ni > PS_MAX_CAPTURE_IFACES) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "capture state naming %zu interfaces (at most %u)", ni,
                      PS_MAX_CAPTURE_IFACES);
  }
  for (size_t i = 0; i < ni; i++) {
    m->ifaces[i] = (uint32_t)take(&c, 4);
    if (!c.bad && m->ifaces[i] >= PS_MAX_IFACES) {
      return ps__seterr(errbuf, PS_ERR_LIMIT, "capture state: interface %u",
                        m->ifaces[i]);
    }
  }
  m->n_ifaces = (unsigned)ni;
  m->packets = take(&c, 8);
  m->sampled_out = take(&c, 8);
  m->text = take_text(&c, (size_t)take(&c, 2));
  if (m->state == PS_CAP_OWN) {
    m->sample_n = (uint32_t)take(&c, 4);
    m->max_pps = (uint32_t)take(&c, 4);
  }
  if (c.bad) {
    return CTL_BAD("too short");
  }
  /* Only the sensor's own captures run without a receiver's request. */
  int own_id = (m->id & PS_CAPTURE_ID_OWN) != 0;
  if ((m->state == PS_CAP_OWN && !own_id) ||
      (m->state == PS_CAP_RUNNING && own_id)) {
    return ps__seterr(errbuf, PS_ERR_PROTOCOL,
                      "capture state %u for capture %llu", m->state,
                      (unsigned long long)m->id);
  }
  if (m->text.len > PS_MAX_ERROR_TEXT) {
    return ps__seterr(errbuf, PS_ERR_LIMIT,
                      "capture state text of %zu bytes (at most %u)",
                      m->text.len, PS_MAX_ERROR_TEXT);
  }
  if (c.left != 0) {
    return CTL_BAD("bytes after the last field");
  }
  return 0;
}
