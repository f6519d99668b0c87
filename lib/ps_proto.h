/*
 * The wire protocol, sans I/O: frames to bytes and bytes to frames, with
 * every limit checked here. docs/PROTOCOL.md is the specification; keep
 * the two in step.
 */
#ifndef PS_PROTO_H
#define PS_PROTO_H

#include "ps_common.h"

/* Versions this library speaks: 2 is 1 plus interface options in the
 * IFACE frame (PROTOCOL.md §3.4) and the control frames (ANNOUNCE,
 * CAPTURE_*, §3.11..3.13), chosen only when both ends speak it, so
 * version 1 peers keep working. */
#define PS_PROTO_VERSION_MIN 1
#define PS_PROTO_VERSION 2
#define PS_PROTO_MAGIC "PSTR"
#define PS_FRAME_HDR 8

enum ps__frame_type {
  PS_FRAME_HELLO = 1,
  PS_FRAME_WELCOME = 2,
  PS_FRAME_ERROR = 3,
  PS_FRAME_IFACE = 4,
  PS_FRAME_BATCH = 5,
  PS_FRAME_ACK = 6,
  PS_FRAME_STATS = 7,
  PS_FRAME_HEARTBEAT = 8,
  PS_FRAME_CLOSE = 9,
  PS_FRAME_AUTH = 10,    /* sensor's proof of the shared key */
  PS_FRAME_AUTH_OK = 11, /* receiver's proof of the shared key */
  /* Version 2 only (never sent to, and refused from, a version 1 peer): */
  PS_FRAME_ANNOUNCE = 12,       /* sensor: who it is, what it can capture */
  PS_FRAME_CAPTURE_START = 13,  /* receiver: start a capture */
  PS_FRAME_CAPTURE_CHANGE = 14, /* receiver: change a running capture */
  PS_FRAME_CAPTURE_STOP = 15,   /* receiver: stop a capture */
  PS_FRAME_CAPTURE_STATE = 16   /* sensor: a capture's state and counts */
};
#define PS_FRAME_LAST PS_FRAME_CAPTURE_STATE

/* HELLO flags */
#define PS_HELLO_STREAM 0x1u /* an 8-byte stream id follows the name */

/* WELCOME flags */
#define PS_WELCOME_AUTH 0x01u /* the receiver requires shared-key auth */

#define PS_MAC_LEN 32

/* Codec ids on the wire (same values as ps_codec). */
#define PS_WIRE_CODEC_STORED 0
#define PS_WIRE_CODEC_ZLIB 1
#define PS_WIRE_CODEC_LZ4 2
#define PS_WIRE_CODEC_MAX 2

/* Codes of ERROR frames (PROTOCOL.md §3.3): the wire's own registry.
 * They happen to read like the API's ps_error values made positive, as
 * the first receivers sent them, but they are fixed by the protocol
 * while the API's codes belong to the library: an API code is mapped
 * here, never cast. */
#define PS_WIRE_ERR_NOMEM 501    /* the receiver ran out of memory: retry */
#define PS_WIRE_ERR_PROTOCOL 508 /* a protocol violation */
#define PS_WIRE_ERR_LIMIT 509    /* a limit of §5 */
#define PS_WIRE_ERR_CODEC 510    /* a batch does not decompress */
#define PS_WIRE_ERR_REFUSED 512  /* an output refused this sensor */
#define PS_WIRE_ERR_IO 514       /* the receiver cannot write: retry */
#define PS_WIRE_ERR_LINKTYPE 515 /* the output cannot hold the link type */
#define PS_WIRE_ERR_AUTH 519     /* shared-key authentication */
#define PS_WIRE_ERR_BUSY 520     /* the receiver is full: retry */

/* The ERROR code a receiver sends for an API error: its entry above,
 * PS_WIRE_ERR_REFUSED for an API error the protocol has no code for (a
 * sink's own failure is a refusal of this sensor). */
uint16_t ps__wire_error(int api_error);
/* Whether a sensor that got ERROR code tries again: the receiver's
 * state (full, out of memory, cannot write), not a verdict on it.
 * Unknown codes are final. */
int ps__wire_error_retries(uint16_t code);

/* Hard limits of version 1 (a receiver may set lower ones). */
#define PS_MAX_FRAME_PAYLOAD (16u * 1024 * 1024)
#define PS_MAX_BATCH_RAW (16u * 1024 * 1024)
#define PS_MAX_BATCH_PACKETS 1048576u
#define PS_MAX_IFACES 256u
#define PS_MAX_ERROR_TEXT 1024u
#define PS_NONCE_LEN 16
#define PS_PKT_HDR 24 /* per-packet record header inside a batch */
#define PS_BATCH_HDR 20
#define PS_STATS_LEN 60
#define PS_STATS_LEN_V2 68 /* version 2: sampled_out follows */

/* Limits one decoder enforces. */
typedef struct ps__limits {
  uint32_t max_frame;         /* payload bytes of any frame */
  uint32_t max_batch_raw;     /* decompressed bytes of a batch */
  uint32_t max_batch_packets; /* packets in a batch */
} ps__limits;

void ps__limits_default(ps__limits *l);

typedef struct ps__frame {
  uint8_t type;
  uint8_t flags;
  uint32_t len;
  const uint8_t *payload; /* points into the caller's buffer */
} ps__frame;

/*
 * Parses one frame from the front of buf. Returns 1 and fills *f and
 * *consumed when a whole frame is there, 0 when more bytes are needed,
 * PS_ERR_PROTOCOL or PS_ERR_LIMIT (with text in errbuf) when the bytes
 * can never become a valid frame.
 */
int ps__frame_parse(const uint8_t *buf, size_t len, const ps__limits *lim,
                    ps__frame *f, size_t *consumed, char *errbuf);

/* Messages. Strings point into the frame payload and are NOT
 * NUL-terminated: use the *_len fields. */
typedef struct ps__hello {
  uint16_t min_version;
  uint16_t max_version;
  uint32_t codecs; /* bit n set: codec n supported */
  uint32_t flags;
  uint8_t nonce[PS_NONCE_LEN];
  const char *name;
  size_t name_len;
  uint64_t stream_id; /* with PS_HELLO_STREAM: the sensor's stream */
} ps__hello;

typedef struct ps__welcome {
  uint16_t version;
  uint8_t codec;
  uint8_t flags;
  uint32_t max_frame;
  uint32_t max_batch_raw;
  uint32_t max_batch_packets;
  uint64_t session_id;
  uint8_t nonce[PS_NONCE_LEN];
} ps__welcome;

typedef struct ps__error_msg {
  uint16_t code;
  const char *text;
  size_t text_len;
} ps__error_msg;

/* Interface options (version 2): key/value texts after the name. */
#define PS_MAX_IFACE_OPTS 16u
#define PS_MAX_IFACE_OPT_KEY 64u
#define PS_MAX_IFACE_OPT_VALUE 1024u

typedef struct ps__iface_opt {
  const char *key;
  size_t key_len;
  const char *value;
  size_t value_len;
} ps__iface_opt;

typedef struct ps__iface {
  uint32_t id;
  uint32_t linktype;
  uint32_t snaplen;
  uint8_t tsres;
  const char *name;
  size_t name_len;
  ps__iface_opt opt[PS_MAX_IFACE_OPTS]; /* version 2 only */
  unsigned n_opts;
} ps__iface;

/* A valid option key: 1..64 bytes of a-z, 0-9, '.', '_', '-'. */
int ps__valid_opt_key(const char *k, size_t len);
/* A valid option value: 1..1024 bytes, no control byte (as names). */
int ps__valid_opt_value(const char *v, size_t len);

typedef struct ps__batch {
  uint64_t seq;
  uint8_t codec;
  uint32_t count;
  uint32_t raw_len;
  const uint8_t *data;
  size_t data_len;
} ps__batch;

typedef struct ps__stats {
  uint32_t iface;
  ps_capture_stats c;
  /* The version 2 layout (PS_STATS_LEN_V2, with c.sampled_out): the
   * encoder writes it when set, the decoder says which it read. */
  int v2;
} ps__stats;

/* Encoders append one whole frame to out. They return 0, PS_ERR_INVALID
 * for values outside the protocol's limits, or PS_ERR_NOMEM. */
int ps__enc_hello(ps__buf *out, const ps__hello *m);
int ps__enc_welcome(ps__buf *out, const ps__welcome *m);
int ps__enc_error(ps__buf *out, uint16_t code, const char *text);
int ps__enc_iface(ps__buf *out, const ps__iface *m);
int ps__enc_stats(ps__buf *out, const ps__stats *m);
int ps__enc_ack(ps__buf *out, uint64_t seq);
int ps__enc_close(ps__buf *out, uint64_t seq);
int ps__enc_heartbeat(ps__buf *out);
/* AUTH or AUTH_OK with a PS_MAC_LEN-byte proof. */
int ps__enc_mac(ps__buf *out, uint8_t type, const uint8_t *mac);
/* Appends the batch frame header; the caller appends data_len bytes of
 * data right after (so compressed data need not be copied twice). */
int ps__enc_batch_hdr(ps__buf *out, const ps__batch *m, size_t data_len);
/* Writes the PS_FRAME_HDR + PS_BATCH_HDR bytes of a batch frame header
 * at p: for a header reserved before the data's size was known. */
void ps__put_batch_hdr(uint8_t *p, const ps__batch *m, size_t data_len);

/* Decoders validate the payload of a frame of their type. They return 0,
 * or PS_ERR_PROTOCOL / PS_ERR_LIMIT with the reason in errbuf. */
int ps__dec_hello(const ps__frame *f, ps__hello *m, char *errbuf);
int ps__dec_welcome(const ps__frame *f, ps__welcome *m, char *errbuf);
int ps__dec_error(const ps__frame *f, ps__error_msg *m, char *errbuf);
int ps__dec_iface(const ps__frame *f, ps__iface *m, char *errbuf);
/* The IFACE frame of a session of this version: from version 2 its
 * options follow the name. */
int ps__dec_iface_v(const ps__frame *f, unsigned version, ps__iface *m,
                    char *errbuf);
int ps__dec_batch(const ps__frame *f, const ps__limits *lim, ps__batch *m,
                  char *errbuf);
int ps__dec_stats(const ps__frame *f, ps__stats *m, char *errbuf);
int ps__dec_seq(const ps__frame *f, uint64_t *seq, char *errbuf);
int ps__dec_empty(const ps__frame *f, char *errbuf);
int ps__dec_mac(const ps__frame *f, uint8_t *mac, char *errbuf);

/*
 * The shared-key proof: HMAC-SHA256(key, label || rnonce || snonce ||
 * name), the label saying who proves ("sensor" or "receiver"), so one
 * side's proof never serves as the other's. Fresh nonces from both sides
 * make a recorded exchange useless. Returns 0 or PS_ERR_AUTH.
 */
int ps__auth_mac(const uint8_t *key, size_t keylen, int receiver,
                 const uint8_t *rnonce, const uint8_t *snonce, const char *name,
                 size_t name_len, uint8_t *mac);

/* Appends one packet record to a raw (uncompressed) batch. */
int ps__batch_put(ps__buf *raw, const ps_packet *pkt);

/*
 * Walks the packet records of a decompressed batch. Call with *off = 0;
 * returns 1 with *pkt filled (data points into raw), 0 at the end,
 * PS_ERR_PROTOCOL on a malformed record. The end must coincide with the
 * last record and the record count must match count.
 */
int ps__batch_next(const uint8_t *raw, size_t raw_len, size_t *off,
                   ps_packet *pkt, char *errbuf);

/* ---- Version 2: the control frames (PROTOCOL.md §3.12..3.16) ---- */

/* ANNOUNCE flags */
#define PS_ANNOUNCE_STANDBY 0x1u /* captures nothing until asked */
#define PS_ANNOUNCE_REMOTE 0x2u  /* takes captures from the receiver */

#define PS_MAX_ANNOUNCE_IFACES 256u
#define PS_MAX_LABELS 16u
#define PS_MAX_LABEL_KEY 63u
#define PS_MAX_LABEL_VALUE 255u
#define PS_MAX_VERSION_TEXT 63u
#define PS_MAX_FILTER 8192u          /* bytes of a filter expression */
#define PS_MAX_CAPTURE_IFACES 64u    /* interfaces one capture names */
#define PS_MAX_CONTROL_FRAME 131072u /* any control frame's payload */

typedef struct ps__text {
  const char *p; /* into the frame; not NUL-terminated */
  size_t len;
} ps__text;

typedef struct ps__announce {
  uint32_t flags;
  ps__text version; /* the sensor's library version, 1..63 bytes */
  ps__text host;    /* its host name, 1..255 */
  unsigned n_ifaces;
  struct {
    uint32_t linktype; /* 0: not known */
    ps__text name;
  } ifaces[PS_MAX_ANNOUNCE_IFACES];
  unsigned n_labels;
  struct {
    ps__text key;   /* 1..63 bytes of [A-Za-z0-9_], not starting with a digit */
    ps__text value; /* 0..255 bytes, no control byte */
  } labels[PS_MAX_LABELS];
} ps__announce;

typedef struct ps__capture_start {
  uint64_t id;          /* != 0, chosen by the receiver */
  uint64_t duration_ms; /* 0: until stopped */
  uint64_t count;       /* 0: no packet limit */
  uint32_t snaplen;     /* 0: the sensor's; else 1..PS_MAX_CAPLEN */
  uint32_t max_pps;     /* 0: no rate cap */
  uint32_t sample_n;    /* 0 or 1: every packet; N: one in N */
  unsigned n_ifaces;    /* 0: the sensor's choice */
  ps__text ifaces[PS_MAX_CAPTURE_IFACES];
  ps__text filter; /* may be empty: everything */
} ps__capture_start;

#define PS_CHANGE_FILTER 0x1u
#define PS_CHANGE_SAMPLE 0x2u
#define PS_CHANGE_MAX_PPS 0x4u

typedef struct ps__capture_change {
  uint64_t id;
  uint32_t what; /* PS_CHANGE_* bits, at least one */
  uint32_t sample_n;
  uint32_t max_pps;
  ps__text filter;
} ps__capture_change;

/* CAPTURE_STATE states */
enum ps__capture_state {
  PS_CAP_RUNNING = 1,        /* accepted: it captures */
  PS_CAP_REFUSED = 2,        /* refused: text says why */
  PS_CAP_ENDED = 3,          /* over (duration, count, stop): final counts */
  PS_CAP_CHANGED = 4,        /* a change took effect (text: when) */
  PS_CAP_CHANGE_REFUSED = 5, /* a change was refused: text says why */
  PS_CAP_OWN = 6, /* running, the sensor's own (its command line): text is
                     its filter; sample_n and max_pps follow */
  PS_CAP_STATE_LAST = 6
};

/* Capture ids with this bit are the sensor's own (a capture its command
 * line started), chosen by the sensor; a receiver's are below it. */
#define PS_CAPTURE_ID_OWN (1ull << 63)

typedef struct ps__capture_state_msg {
  uint64_t id;
  uint8_t state;
  unsigned n_ifaces; /* the stream interfaces its packets come on */
  uint32_t ifaces[PS_MAX_CAPTURE_IFACES];
  uint64_t packets;           /* sent for the capture so far */
  uint64_t sampled_out;       /* left out by sampling or the rate cap */
  ps__text text;              /* 0..1024 bytes */
  uint32_t sample_n, max_pps; /* PS_CAP_OWN only */
} ps__capture_state_msg;

int ps__enc_announce(ps__buf *out, const ps__announce *m);
int ps__dec_announce(const ps__frame *f, ps__announce *m, char *errbuf);
int ps__enc_capture_start(ps__buf *out, const ps__capture_start *m);
int ps__dec_capture_start(const ps__frame *f, ps__capture_start *m,
                          char *errbuf);
int ps__enc_capture_change(ps__buf *out, const ps__capture_change *m);
int ps__dec_capture_change(const ps__frame *f, ps__capture_change *m,
                           char *errbuf);
int ps__enc_capture_stop(ps__buf *out, uint64_t id);
int ps__dec_capture_stop(const ps__frame *f, uint64_t *id, char *errbuf);
int ps__enc_capture_state(ps__buf *out, const ps__capture_state_msg *m);
int ps__dec_capture_state(const ps__frame *f, ps__capture_state_msg *m,
                          char *errbuf);
/* Whether len bytes at p are a valid filter text: 0..PS_MAX_FILTER bytes,
 * no control byte but tab and newline. */
int ps__valid_filter(const char *p, size_t len);
/* Whether a label key is valid on the wire ([A-Za-z_][A-Za-z0-9_]*,
 * 1..PS_MAX_LABEL_KEY bytes). */
int ps__valid_label_key(const char *p, size_t len);

/* Name of a frame type for log lines ("BATCH"); "?" if unknown. */
const char *ps__frame_name(uint8_t type);

#endif
