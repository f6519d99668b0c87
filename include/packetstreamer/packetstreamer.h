/*
 * libpacketstreamer - remote packet capture and collection.
 *
 * This is the only header a user includes. It pulls in no libpcap,
 * GnuTLS or zlib header: the library's own plain types carry packets.
 *
 * Conventions (apply to every function below unless its comment says
 * otherwise):
 *  - Fallible functions return 0 on success or a negative ps_error value.
 *    ps_strerror() turns the value into a static string; the handle's
 *    *_errmsg() function gives the detail of the last failure.
 *  - Arguments go: the handle, then out-parameters (named out, each
 *    followed by its size where it has one), then inputs; user_data
 *    comes last.
 *  - A handle is configured with one setter per value
 *    (ps_stream_set_batch_size(), ...), so options can be added without
 *    changing a call. Settings that go together cross the API as a
 *    struct with its size, size_t size = sizeof(*opts) as the caller
 *    was compiled: ps_tls_options, ps_file_sink_options,
 *    ps_pcap_over_ip_options, ps_sink_callbacks in, the counters out.
 *    The structs only grow; the library reads (or writes) only the
 *    bytes the caller knows, treats the fields it did not get as zero
 *    (their default), and refuses with
 *    PS_ERR_INVALID a struct with a field set that this library does not
 *    know (a caller built against a newer header asking for something
 *    this library cannot do). Start every struct zeroed (the _INIT
 *    macros, or = {0}).
 *  - Every duration is in milliseconds, and named so (_ms).
 *  - A capture interface, or a file read in its place, is an
 *    "interface" in every name (iface in fields and arguments).
 *  - The library copies every string it keeps.
 *  - *_free(NULL) is a no-op.
 *  - Threading: one handle is used by one thread at a time. The *_stop()
 *    functions are the exception: they are async-signal-safe and may be
 *    called from another thread or a signal handler.
 */
#ifndef PACKETSTREAMER_H
#define PACKETSTREAMER_H

#include <stddef.h>
#include <stdint.h>

#include <packetstreamer/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BUILDING_PACKETSTREAMER) && defined(__GNUC__)
#define PS_API __attribute__((visibility("default")))
#else
#define PS_API
#endif

/*
 * Error codes. The values are ABI: they are only ever appended to, never
 * renumbered. They live in [-599, -500] so they never look like -errno or
 * a byte count.
 */
typedef enum ps_error {
  PS_ERR_INVALID = -500,   /* invalid argument or option value */
  PS_ERR_NOMEM = -501,     /* out of memory */
  PS_ERR_STATE = -502,     /* call not allowed in the handle's state */
  PS_ERR_SYSTEM = -503,    /* a system call failed (see errmsg) */
  PS_ERR_CAPTURE = -504,   /* libpcap could not open or read a source */
  PS_ERR_FILTER = -505,    /* the filter expression does not compile */
  PS_ERR_RESOLVE = -506,   /* a host name does not resolve */
  PS_ERR_CONNECT = -507,   /* the receiver cannot be reached */
  PS_ERR_PROTOCOL = -508,  /* the peer broke the wire protocol */
  PS_ERR_LIMIT = -509,     /* a configured limit was exceeded */
  PS_ERR_CODEC = -510,     /* compressed data is corrupt */
  PS_ERR_CLOSED = -511,    /* the peer closed the connection */
  PS_ERR_REFUSED = -512,   /* the peer refused us, with a reason */
  PS_ERR_TIMEOUT = -513,   /* a deadline passed */
  PS_ERR_IO = -514,        /* writing an output failed */
  PS_ERR_LINKTYPE = -515,  /* an output cannot hold this link type */
  PS_ERR_STOPPED = -516,   /* *_stop() was called */
  PS_ERR_ADDRINUSE = -517, /* the listen address is already in use */
  PS_ERR_TLS = -518,       /* TLS setup, handshake or verification */
  PS_ERR_AUTH = -519,      /* shared-key authentication failed */
  /* The receiver is at its limit of sensors (or cannot take one now):
   * not final, a sensor retries with back-off. Since 0.1. */
  PS_ERR_BUSY = -520
} ps_error;

/* Returns a static, human-readable string for a ps_error value. Never
 * returns NULL. Thread-safe. Since 0.1. */
PS_API const char *ps_strerror(int code);

/* Returns 1 if an error of this code ends a stream for good, so that
 * trying again (reconnecting, resending) cannot help: the receiver
 * refused the sensor (PS_ERR_REFUSED), authentication or TLS
 * verification failed (PS_ERR_AUTH, PS_ERR_TLS), memory ran out
 * (PS_ERR_NOMEM), the handle was stopped (PS_ERR_STOPPED), or the call
 * itself was wrong (PS_ERR_INVALID, PS_ERR_STATE). Returns 0 for the
 * passing ones a stream retries with back-off (PS_ERR_CONNECT,
 * PS_ERR_TIMEOUT, PS_ERR_CLOSED, PS_ERR_BUSY, ...), for 0, and for
 * unknown codes. A stream also gives up on PS_ERR_RESOLVE and
 * PS_ERR_PROTOCOL before its first connection (a name or a peer that
 * never worked); that rule depends on the stream's history, not on the
 * code, and is documented at ps_stream_connect(). Thread-safe. Since
 * 0.1. */
PS_API int ps_error_is_final(int code);

/* Returns the run-time library version, e.g. "0.1.0". Since 0.1. */
PS_API const char *ps_version_string(void);

/* Returns PS_VERSION_NUM of the run-time library. Since 0.1. */
PS_API unsigned ps_version_num(void);

/* Log levels passed to a ps_log_fn. */
typedef enum ps_log_level {
  PS_LOG_ERROR = 0,
  PS_LOG_WARNING = 1,
  PS_LOG_INFO = 2,
  PS_LOG_DEBUG = 3
} ps_log_level;

/* A log sink. msg is one line without a trailing newline, valid only
 * during the call. Called on the thread that drives the handle. */
typedef void (*ps_log_fn)(ps_log_level level, const char *msg, void *user_data);

/* A number a log line carries (a counter of a session's account). Since
 * 0.1. */
typedef struct ps_log_field {
  const char *name; /* lower case with '_', e.g. "packets" */
  uint64_t value;
} ps_log_field;

/* A log line with what it is about, for structured logs (JSON lines).
 * Every pointer is valid only during the call. Fields are only ever
 * appended: read a field only when size covers it. Since 0.1. */
typedef struct ps_log_record {
  size_t size; /* sizeof(ps_log_record) as the library was built */
  ps_log_level level;
  /* What happened, a short name ("connected", "disconnected"); "log"
   * for a line the library gives no name. Never NULL. */
  const char *event;
  /* The sensor (its name as it said in its hello) the line is about,
   * or NULL. */
  const char *sensor;
  /* The same line a ps_log_fn gets. */
  const char *msg;
  /* The line's numbers (counters), n_fields of them; msg holds them
   * too. */
  const ps_log_field *fields;
  size_t n_fields;
} ps_log_record;

/* A structured log sink: instead of a ps_log_fn, never with one (the
 * last one set wins). Since 0.1. */
typedef void (*ps_log_ex_fn)(const ps_log_record *rec, void *user_data);

/* Timestamp resolutions of an interface: the number of decimal digits of
 * the fractional part of a second (microseconds or nanoseconds). */
#define PS_TSRES_USEC 6
#define PS_TSRES_NSEC 9

/* The largest caplen the protocol and the sinks accept (libpcap's own
 * MAXIMUM_SNAPLEN). */
#define PS_MAX_CAPLEN 262144u

/* Fixed limits of the handles, for callers that size their own tables:
 * receivers of one stream (ps_stream_add_receiver(), failover order),
 * capture sources of one sensor (ps_sensor_add_interface()), listening
 * sockets of one receiver (ps_receiver_listen(), all addresses of all
 * calls). A call beyond them fails with PS_ERR_LIMIT. Since 0.1. */
#define PS_MAX_RECEIVERS 8
#define PS_MAX_INTERFACES 64
#define PS_MAX_LISTENERS 8

/*
 * One packet. ts_frac is in the resolution of the interface it belongs to
 * (PS_TSRES_USEC or PS_TSRES_NSEC) and is carried verbatim, even when it is
 * out of range (>= 10^6 or >= 10^9), as some capture files have it.
 * data points to caplen bytes owned by whoever handed the packet over and
 * valid only for the duration of the call.
 */
typedef struct ps_packet {
  int64_t ts_sec;
  uint32_t ts_frac;
  uint32_t caplen;
  uint32_t len;
  uint32_t iface;
  const uint8_t *data;
} ps_packet;

/*
 * A capture interface of a sensor, as announced on the wire. linktype is
 * the pcap LINKTYPE_ value; its upper 16 bits may carry the FCS-length
 * bits of the pcap file header and are preserved. snaplen is the source's
 * snapshot length as it was declared (it may be 0 or above
 * PS_MAX_CAPLEN in old files).
 */
typedef struct ps_interface_option {
  const char *key;   /* 1..64 bytes of a-z, 0-9, '.', '_', '-' */
  const char *value; /* 1..1024 bytes, no control byte */
} ps_interface_option;

typedef struct ps_interface_info {
  uint32_t id;
  const char *name;
  uint32_t linktype;
  uint32_t snaplen;
  uint8_t tsres;
  /* What a sensor speaking protocol version 2 says about the interface
   * (ps_stream_add_interface_options()): a description (NULL if none)
   * and other options, such as the identity of the workload a network
   * namespace belongs to ("netns.inode", "pod.namespace", "pod.name",
   * "pod.uid", "container.id", "node"). Owned by the receiver, valid
   * while the interface is. Since 0.1. */
  const char *description;
  const ps_interface_option *options;
  size_t n_options;
} ps_interface_info;

/*
 * Counters of one capture interface, as the sensor reports them.
 * received/dropped/ifdropped are libpcap's pcap_stats() counters;
 * captured and bytes count what the sensor handed to the stream.
 */
typedef struct ps_capture_stats {
  uint64_t captured;
  uint64_t bytes;
  uint64_t received;
  uint64_t dropped;
  uint64_t ifdropped;
  uint64_t truncated; /* packets a file reader shortened (see ps-sensor(1)) */
  uint64_t overflow;  /* packets the sensor's replay buffer dropped (full
                         during an outage) or lost unacknowledged */
  /* Packets the filter took that sampling (ps_sensor_set_sample()) or the
   * rate cap (ps_sensor_set_max_pps()) left out: not loss, and not in
   * captured. Carried from protocol version 2 on (0 from a version 1
   * sensor). Since 0.2. */
  uint64_t sampled_out;
} ps_capture_stats;

/*
 * TLS settings, for ps_stream_set_tls() (sensor) and
 * ps_receiver_set_tls(), passed with their size (see the conventions at
 * the top). Start from PS_TLS_OPTIONS_INIT. Strings are copied (files
 * are read at once).
 * A string is either NULL (its default) or not empty: an empty string
 * is refused with PS_ERR_INVALID, never taken as "not given" (an empty
 * server_name would otherwise mean no host-name check). Only TLS 1.2
 * and 1.3 are offered.
 */
typedef struct ps_tls_options {
  /* Sensor: CA certificates (PEM) to verify the receiver with; NULL uses
   * the system trust store. */
  const char *ca_file;
  /* Receiver: its certificate chain and key (PEM, RSA or ECDSA).
   * Sensor: a client certificate and key, for mutual TLS. */
  const char *cert_file;
  const char *key_file;
  /* Receiver: require client certificates issued by these CAs. */
  const char *client_ca_file;
  /* Sensor: the name the receiver's certificate must carry; NULL means
   * the host name given to ps_stream_connect(). Never "" (see above):
   * without a name to check there is no verified connection. */
  const char *server_name;
  /* Sensor: accept only this receiver public key, "sha256:BASE64" of its
   * DER SubjectPublicKeyInfo (as curl's --pinnedpubkey). */
  const char *pin;
  /* Sensor: do not verify the receiver at all (labs only; logged as a
   * warning at every connect). */
  int insecure;
} ps_tls_options;

#define PS_TLS_OPTIONS_INIT                                                    \
  { 0, 0, 0, 0, 0, 0, 0 }

/* ---------------------------------------------------------------- */
/* Stream: the sensor end of one connection to a receiver.           */
/* ---------------------------------------------------------------- */

typedef struct ps_stream ps_stream;

/* Compression codecs. */
typedef enum ps_codec {
  PS_CODEC_NONE = 0,
  PS_CODEC_ZLIB = 1,
  PS_CODEC_LZ4 = 2 /* when the library was built with LZ4 */
} ps_codec;

/* Whether this build of the library has codec c. Since 0.1. */
PS_API int ps_codec_available(ps_codec c);

/*
 * Creates an unconnected stream that will introduce itself as
 * sensor_name (1..255 bytes, copied; NULL means the host name).
 * Returns 0, PS_ERR_INVALID or PS_ERR_NOMEM. Since 0.1.
 */
PS_API int ps_stream_create(ps_stream **out, const char *sensor_name);

/* Frees the stream, closing its connection abruptly if still open (use
 * ps_stream_close() for a clean end). */
PS_API void ps_stream_free(ps_stream *s);

/* Sets the log callback (default: none). Before or after connect. */
PS_API void ps_stream_set_log(ps_stream *s, ps_log_fn fn, void *user_data);
/* Sets a structured log callback instead (see ps_log_record), with the
 * stream's sensor name and event names, among them "connected",
 * "connect_failed", "connection_lost" and "reconnecting". NULL fn: no
 * log. Since 0.1. */
PS_API void ps_stream_set_log_ex(ps_stream *s, ps_log_ex_fn fn,
                                 void *user_data);

/* Sets the codec offered to the receiver (default PS_CODEC_LZ4 where the
 * library has it, else PS_CODEC_ZLIB). The receiver may settle for
 * uncompressed. Batches that do not shrink are sent stored, and after
 * such a batch compression pauses for a growing number of batches.
 * Before connect; returns 0, PS_ERR_INVALID (also for a codec this build
 * lacks) or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_codec(ps_stream *s, ps_codec codec);

/* Sets the compression level: zlib 1..9; 0 (the default) means the
 * codec's default; LZ4 has none and ignores it. Before connect; returns
 * 0, PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_codec_level(ps_stream *s, int level);

/* A batch is sent when it holds this many bytes of packet data
 * (4096..4194304, default 262144)... Before connect; returns 0,
 * PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_batch_size(ps_stream *s, size_t bytes);

/* ...or when its oldest packet is this old (1..10000 ms, default 100).
 * Before connect; returns 0, PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_batch_delay_ms(ps_stream *s, unsigned ms);

/* ...except that, while a stream keeps sending (its batch began less
 * than this long after the previous one was sealed), a batch of fewer
 * than 64 packets (a quiet stream) is sent only when its oldest packet
 * is this old (0..60000 ms; 0, the default, or a value not above the
 * batch delay: no difference); the first batch after a longer silence
 * keeps the batch delay, so a burst on an idle link is not held. One
 * batch then carries more of a quiet stream's packets: the receiver
 * reads and acknowledges once per batch, so with many quiet sensors
 * this is what its CPU per packet depends on (docs/PERFORMANCE.md). It
 * is also the latency such a stream's packets may have. Before
 * connect; returns 0, PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_batch_max_delay_ms(ps_stream *s, unsigned ms);

/*
 * Connects with TLS, verifying the receiver as opts says (by default:
 * system trust store and the host name connected to). Reads the files
 * now. Before connect. Returns 0, PS_ERR_INVALID (also for an empty
 * string in opts), PS_ERR_STATE or PS_ERR_TLS (a file cannot be read or
 * parsed; see errmsg).
 */
PS_API int ps_stream_set_tls(ps_stream *s, const ps_tls_options *opts,
                             size_t size);

/*
 * Authenticates with a shared key (1..1024 bytes, copied): the key never
 * crosses the wire; both ends prove they hold it by HMAC-SHA256 over
 * fresh nonces from both and the sensor name. A receiver that does not
 * ask for it is refused. Before connect.
 */
PS_API int ps_stream_set_auth_key(ps_stream *s, const uint8_t *key, size_t len);

/* Sets how long the receiver may stay silent (it acknowledges every batch
 * and answers heartbeats, which the stream sends at least every third of
 * this time when idle) before the connection counts as broken
 * (PS_ERR_TIMEOUT in the log; the stream reconnects): a vanished
 * receiver is noticed, not waited on forever. 0 keeps the default of
 * 30000 ms; at most 86400000 (a day). Before connect; returns 0,
 * PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_peer_timeout_ms(ps_stream *s, unsigned ms);

/* Sets how long ps_stream_connect() keeps retrying unreachable
 * receivers; 0 (the default) means forever, at most 86400000 ms.
 * Retries go through the receivers in order, then back off
 * exponentially from 1 s to 30 s; each is logged. Before connect;
 * returns 0, PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_connect_timeout_ms(ps_stream *s, unsigned ms);

/* What the replay queue does when it is full. Since 0.1. */
typedef enum ps_overflow {
  /* Evict the oldest unacknowledged batches (the default). */
  PS_OVERFLOW_DROP_OLDEST = 0,
  /* Refuse the new batch while disconnected; while connected, send it
   * without keeping it (lost if that connection breaks before its
   * acknowledgement). */
  PS_OVERFLOW_DROP_NEWEST = 1
} ps_overflow;

/*
 * Bounds the replay queue: every sealed batch (compressed, as sent) is
 * kept until the receiver acknowledges it, to be sent again after a
 * reconnect. bytes (at least 65536; default 8 MiB) bounds the bytes
 * kept; when a new batch does not fit, the overflow policy
 * (ps_stream_set_overflow()) decides what is dropped. Every packet
 * dropped is counted (ps_stream_counters,
 * ps_stream_get_interface_counters(), and the overflow field of the
 * STATS sent). A batch larger than the bound is never kept (sent unkept
 * while connected, else dropped). Before connect. Returns 0,
 * PS_ERR_INVALID or PS_ERR_STATE. Since 0.1.
 */
PS_API int ps_stream_set_replay_size(ps_stream *s, size_t bytes);

/* What a full replay queue drops (default PS_OVERFLOW_DROP_OLDEST).
 * Before connect. Returns 0, PS_ERR_INVALID or PS_ERR_STATE. Since 0.1. */
PS_API int ps_stream_set_overflow(ps_stream *s, ps_overflow policy);

/*
 * Adds a receiver (host copied) to fail over to, up to 8 in all
 * (including the one given to ps_stream_connect(), which goes first).
 * Connection attempts take the receivers in order, round robin; a round
 * in which none answered backs off. Before connect. Returns 0,
 * PS_ERR_INVALID, PS_ERR_LIMIT or PS_ERR_STATE. Since 0.1.
 */
PS_API int ps_stream_add_receiver(ps_stream *s, const char *host,
                                  uint16_t port);

/*
 * Connects to the receiver at host (a name, an IPv4 or an IPv6 address)
 * and port, and performs the hello exchange. host may be NULL to use
 * only the receivers of ps_stream_add_receiver(); otherwise it is tried
 * first. Blocks; retries as set by
 * ps_stream_set_connect_timeout(). Returns 0, PS_ERR_INVALID,
 * PS_ERR_LIMIT, PS_ERR_RESOLVE, PS_ERR_CONNECT, PS_ERR_TIMEOUT,
 * PS_ERR_PROTOCOL, PS_ERR_REFUSED, PS_ERR_AUTH, PS_ERR_TLS,
 * PS_ERR_STOPPED or PS_ERR_STATE. Since 0.1.
 *
 * Once connected, the stream survives its connection: a read or write
 * error, the receiver closing, or its silence beyond the peer
 * timeout is logged as a warning, and the stream reconnects (backoff
 * from 0.5 s doubling to 30 s, +-25% jitter, logged "reconnecting to H
 * port P in N ms"), trying the receivers in order. The backoff starts
 * again at 0.5 s only after a connection that worked: one on which the
 * receiver acknowledged a new batch or answered a heartbeat (a receiver
 * that welcomes the sensor and then breaks the protocol is retried ever
 * more slowly). Reconnect attempts
 * are made step by step by ps_stream_send(), ps_stream_flush(),
 * ps_stream_process(), ps_stream_poll() and ps_stream_close(), and do
 * not block them: a receiver's name resolves in the background (where
 * the C library has getaddrinfo_a), the TCP connect is non-blocking, and
 * TLS and the hello advance as the receiver's answers arrive. Each
 * attempt gets 2 s to resolve and connect and 5 s for TLS and hello. A new
 * connection announces every interface again, resends the
 * unacknowledged batches with their sequence numbers, then the latest
 * counters. Meanwhile packets queue in the replay queue
 * (ps_stream_set_replay()). Only a refusal by the receiver
 * (PS_ERR_REFUSED), an authentication or TLS verification failure
 * (PS_ERR_AUTH, PS_ERR_TLS) or ps_stream_stop() end the stream. A
 * receiver that is full (ERROR 520, PS_ERR_BUSY), out of memory (501)
 * or cannot write its output (514) does not: the sensor logs its reason
 * and retries, here and while reconnecting.
 */
PS_API int ps_stream_connect(ps_stream *s, const char *host, uint16_t port);

/* Interface options for ps_stream_add_interface_options(): a
 * description (NULL: none) and up to 15 key/value texts (keys 1..64
 * bytes of a-z, 0-9, '.', '_', '-'; values 1..1024 bytes without control
 * bytes; no key twice, "description" not among them). They reach
 * receivers that speak protocol version 2 (PROTOCOL.md §3.4); older
 * receivers get the interface without them. Passed with their size (see
 * the conventions at the top). Since 0.1. */
typedef struct ps_stream_interface_options {
  const char *description;
  const ps_interface_option *options;
  size_t n_options;
} ps_stream_interface_options;

/*
 * Announces a capture interface; *out receives its id for
 * ps_stream_send(). name is copied (1..255 bytes). tsres is PS_TSRES_USEC
 * or PS_TSRES_NSEC. At most 256 interfaces per stream. After connect
 * (also while reconnecting). Returns 0, PS_ERR_INVALID, PS_ERR_LIMIT,
 * PS_ERR_STATE or a final error of the stream.
 */
PS_API int ps_stream_add_interface(ps_stream *s, uint32_t *out,
                                   const char *name, uint32_t linktype,
                                   uint32_t snaplen, uint8_t tsres);

/* ps_stream_add_interface() with options (opts may be NULL); size is
 * sizeof(*opts). The options are copied. Since 0.1. */
PS_API int ps_stream_add_interface_options(
    ps_stream *s, uint32_t *out, const char *name, uint32_t linktype,
    uint32_t snaplen, uint8_t tsres, const ps_stream_interface_options *opts,
    size_t size);

/*
 * Queues one packet. pkt->iface must be an id from
 * ps_stream_add_interface(); pkt->caplen at most PS_MAX_CAPLEN. The bytes
 * are copied before the call returns. Never waits for the receiver: a
 * full batch goes to the replay queue and the socket takes what it can
 * now, also while a reconnect is on its way (see ps_stream_connect()).
 * Returns 0, PS_ERR_INVALID, PS_ERR_STATE, PS_ERR_NOMEM or a final error
 * (PS_ERR_REFUSED, PS_ERR_AUTH, PS_ERR_TLS, PS_ERR_STOPPED; PS_ERR_CLOSED
 * once the stream has failed).
 */
PS_API int ps_stream_send(ps_stream *s, const ps_packet *pkt);

/* Seals the current batch into the replay queue now, whatever its size,
 * and writes what the socket takes. Same returns as ps_stream_send(). */
PS_API int ps_stream_flush(ps_stream *s);

/*
 * Gives the stream a chance to send a batch whose delay has passed, to
 * read the receiver's messages, and to reconnect when due; waits at most
 * timeout_ms. Capture loops call it when idle. Returns 0 (also while
 * disconnected) or a final error.
 */
PS_API int ps_stream_poll(ps_stream *s, int timeout_ms);

/* Milliseconds until the stream wants ps_stream_poll() or
 * ps_stream_process() again: the current batch is due, a heartbeat, a
 * connect or handshake timeout, or a reconnect attempt (-1: nothing
 * pending, only before connect). Capture loops use it as their poll
 * timeout. */
PS_API int ps_stream_next_deadline_ms(ps_stream *s);

/*
 * The stream's step API, for programs that run their own poll loop
 * (ps_sensor_run() does): watch ps_stream_get_fd() for reading, and for
 * writing while ps_stream_want_write() says so, at most
 * ps_stream_next_deadline_ms() long; then call ps_stream_process().
 *
 * ps_stream_get_fd() is the socket of the connection being made or used
 * (while a receiver's name resolves, a descriptor that becomes readable
 * when it is done), -1 while there is none (waiting to reconnect: the
 * deadline says when); it changes on every attempt. ps_stream_want_write() is 1
 * when bytes wait for the socket (or a connect is on its way), else 0.
 * ps_stream_process() does what is due without waiting: reads the
 * receiver's messages, writes what the socket takes, sends a batch whose
 * delay passed, and makes progress with a reconnect (TCP, TLS, hello),
 * which never blocks the caller. Returns 0 (also while disconnected),
 * PS_ERR_STATE before connect, PS_ERR_STOPPED after ps_stream_stop(), or a
 * final error of the stream (see ps_stream_send()). Same thread as the
 * stream's other calls. Since 0.1.
 */
PS_API int ps_stream_get_fd(ps_stream *s);
PS_API int ps_stream_want_write(ps_stream *s);
PS_API int ps_stream_process(ps_stream *s);

/* Whether a packet of caplen bytes can be queued now without the replay
 * queue dropping anything (ps_stream_set_replay()). Programs that read
 * files, and can wait, call ps_stream_poll() until it says 1; live
 * captures cannot wait and let the overflow policy drop. Since 0.1. */
PS_API int ps_stream_has_room(ps_stream *s, uint32_t caplen);

/* Numeric address (no port, no IPv6 scope; NUL-terminated in rlen and
 * llen bytes) and port of the receiver the stream is connected or
 * connecting to, and of its own end (for capture filters that keep the
 * stream out). Returns 0, or PS_ERR_STATE while there is no connection.
 * Since 0.1. */
PS_API int ps_stream_get_endpoints(ps_stream *s, char *raddr, size_t rlen,
                                   uint16_t *rport, char *laddr, size_t llen,
                                   uint16_t *lport);

/* Sends interface counters to the receiver (it logs them and writes them
 * into pcapng statistics blocks); size is sizeof(*stats). The stream
 * fills in the overflow field itself (packets of the interface dropped
 * by the replay queue or lost) and keeps the latest counters, to send
 * again after a reconnect. Returns 0, PS_ERR_INVALID or the errors of
 * ps_stream_send(). */
PS_API int ps_stream_send_stats(ps_stream *s, uint32_t iface,
                                const ps_capture_stats *stats, size_t size);

/*
 * Ends the stream cleanly: seals the last batch, sends everything
 * unacknowledged and CLOSE, and waits (at most timeout_ms; -1 forever)
 * until the receiver confirms it has written everything, reconnecting
 * meanwhile if needed. Returns 0 only when that confirmation arrived.
 * Otherwise (PS_ERR_TIMEOUT, PS_ERR_STOPPED or a final error) every
 * packet not acknowledged is counted in packets_lost and errmsg says how
 * many. The stream can only be freed afterwards.
 */
PS_API int ps_stream_close(ps_stream *s, int timeout_ms);

/* Makes a blocking call on the stream return PS_ERR_STOPPED soon.
 * Async-signal-safe. */
PS_API void ps_stream_stop(ps_stream *s);

/*
 * Counters of a stream. Fields are only ever appended. At any time:
 *   packets_sent + packets_recovered == packets_acked +
 *                   packets_dropped_overflow + packets_lost +
 *                   packets_queued
 * so every packet handed to ps_stream_send() is accounted for: written
 * by the receiver, dropped by the full replay queue, lost (sent but not
 * acknowledged when the stream ended, or evicted from the queue after it
 * was written to a connection that then broke before acknowledging it),
 * or still queued.
 */
typedef struct ps_stream_counters {
  uint64_t packets_sent;  /* handed to ps_stream_send() */
  uint64_t bytes_sent;    /* captured bytes (caplen), not wire bytes */
  uint64_t wire_bytes;    /* bytes written to the connections */
  uint64_t batches_sent;  /* batches sealed into the replay queue */
  uint64_t batches_acked; /* batches the receiver confirmed written */
  /* Since 0.1: */
  uint64_t packets_acked;            /* in acknowledged batches */
  uint64_t packets_dropped_overflow; /* dropped by the full replay queue */
  uint64_t packets_lost;             /* sent, never acknowledged */
  uint64_t packets_queued;           /* now in the queue or open batch */
  uint64_t batches_dropped_overflow; /* (not in batches_sent if refused) */
  uint64_t batches_resent;           /* sent again on a new connection */
  uint64_t reconnects;               /* connections after the first */
  uint64_t packets_recovered;        /* taken up from the spool of a previous
                                        run (ps_stream_set_spool()) */
} ps_stream_counters;

/*
 * Keeps a copy of the replay queue in the directory dir (created, mode
 * 0700; locked: one stream per directory), so batches not acknowledged
 * when the process is killed or restarted are sent by the next run with
 * the same dir: ps_stream_connect() then takes up the old stream (same
 * stream id and sensor name, its interfaces announced first, its batches
 * sent first; the receiver skips what it already wrote) and counts their
 * packets in packets_recovered. The spool is bounded by the replay
 * buffer (ps_stream_set_replay()); a batch leaves it when it leaves the
 * queue. A write error (disk full) is logged and the stream goes on in
 * memory. Call before ps_stream_connect(). A spool holding another
 * sensor name's stream makes ps_stream_connect() fail (PS_ERR_INVALID);
 * so does (PS_ERR_IO) a directory owned by another user (root excepted)
 * or writable by anyone without the sticky bit, or a lock file that is
 * not the process's own. Files in it are never opened through a
 * symbolic link and are created O_EXCL, mode 0600; one that is a link,
 * another user's, writable by group or others, or hard-linked is
 * ignored (logged), never read, cut or removed.
 * Since 0.1.
 */
PS_API int ps_stream_set_spool(ps_stream *s, const char *dir);

/* Copies the stream's counters into *out; size is sizeof(*out) as the
 * caller was compiled (the struct only grows: a caller built against an
 * older header gets the fields it knows, one built against a newer
 * header gets zero in the fields this library does not have). Any time
 * after create, also after ps_stream_close(). Since 0.1. */
PS_API void ps_stream_get_counters(ps_stream *s, ps_stream_counters *out,
                                   size_t size);

/* Interfaces the stream carries: those added, after those of a spooled
 * earlier run it took up (ps_stream_set_spool()), which come first.
 * Since 0.1. */
PS_API unsigned ps_stream_interface_count(ps_stream *s);

/* The packet counters of one interface (fields only appended). */
typedef struct ps_stream_interface_counters {
  uint64_t packets_sent;
  uint64_t packets_acked;
  uint64_t packets_dropped_overflow;
  uint64_t packets_lost;
  uint64_t packets_recovered; /* from a previous run's spool */
} ps_stream_interface_counters;

/* Copies the counters of interface iface (an id from
 * ps_stream_add_interface()) into *out, size bytes as for
 * ps_stream_get_counters(); also after ps_stream_close(). Returns 0 or
 * PS_ERR_INVALID. Since 0.1. */
PS_API int ps_stream_get_interface_counters(ps_stream *s,
                                            ps_stream_interface_counters *out,
                                            size_t size, uint32_t iface);

/* Detail of the last failure on this stream; never NULL. */
PS_API const char *ps_stream_errmsg(ps_stream *s);

/* ---------------------------------------------------------------- */
/* Sensor: capture with libpcap and pump into a stream.               */
/* ---------------------------------------------------------------- */

typedef struct ps_sensor ps_sensor;

/* Creates an unconfigured sensor. Since 0.1. */
PS_API int ps_sensor_create(ps_sensor **out);
PS_API void ps_sensor_free(ps_sensor *s);
PS_API void ps_sensor_set_log(ps_sensor *s, ps_log_fn fn, void *user_data);

/* Adds a live interface to capture ("any" included). Up to 64. Exclusive
 * with ps_sensor_set_file(). Before open. */
PS_API int ps_sensor_add_interface(ps_sensor *s, const char *ifname);

/* Reads packets from a pcap or pcapng file instead. Before open. */
PS_API int ps_sensor_set_file(ps_sensor *s, const char *path);

/*
 * Workloads' network namespaces (before open; not with a file). spec is
 * "all" (every network namespace of the host but the sensor's own), a
 * name under /run/netns, a path ("/proc/PID/ns/net", a bind-mounted
 * namespace file), "pid:PID", "pod:NAMESPACE/NAME" or "container:ID"
 * (from the container runtime's bundles, read-only). Repeatable (at most
 * 64). In each namespace the sensor captures the interfaces given with
 * ps_sensor_add_interface() there, or else every interface that is up
 * (loopback only with ps_sensor_set_netns_loopback()). It follows them
 * while it runs: new namespaces (inotify on /run/netns and the runtime's
 * directory, and a rescan of /proc every ps_sensor_set_netns_rescan_ms())
 * are opened, gone ones closed with their final counters. One namespace
 * reached by several paths is captured once (its device and inode).
 * Each interface is announced as "WORKLOAD/IFACE" with the workload's
 * identity as interface options (ps_stream_add_interface_options()).
 * Entering a namespace needs CAP_SYS_ADMIN (setns), capturing
 * CAP_NET_RAW, and the host's /proc (CAP_SYS_PTRACE for other users'
 * processes) for the whole run. An explicit name, path or pid that does
 * not open makes ps_sensor_open() fail. Since 0.1.
 */
PS_API int ps_sensor_add_netns(ps_sensor *s, const char *spec);
/* Only namespaces whose workload matches KEY=GLOB (fnmatch(3)); KEY is
 * namespace, pod, container, netns (the /run/netns name or the workload
 * name) or a pod label the runtime records. Every match must hold.
 * Repeatable (at most 16). Since 0.1. */
PS_API int ps_sensor_add_netns_match(ps_sensor *s, const char *key_glob);
/* How often /proc and the runtime's state are scanned for namespaces
 * (100..3600000 ms, default 2000). Since 0.1. */
PS_API int ps_sensor_set_netns_rescan_ms(ps_sensor *s, uint64_t ms);
/* Non-zero: capture the namespaces' loopback too (default off). Since
 * 0.1. */
PS_API int ps_sensor_set_netns_loopback(ps_sensor *s, int on);
/* The container runtime's state directory to read bundles (config.json)
 * from, instead of containerd's and CRI-O's defaults. Since 0.1. */
PS_API int ps_sensor_set_runtime_root(ps_sensor *s, const char *dir);
/* The node name in the workloads' interface options (default: the host
 * name). Since 0.1. */
PS_API int ps_sensor_set_node_name(ps_sensor *s, const char *name);

/* Snapshot length, 1..262144 (default 262144). Before open. */
PS_API int ps_sensor_set_snaplen(ps_sensor *s, int snaplen);

/* Kernel buffer size in bytes (default: libpcap's). Before open. */
PS_API int ps_sensor_set_buffer_size(ps_sensor *s, int bytes);

/* Promiscuous mode (default on). Before open. */
PS_API int ps_sensor_set_promisc(ps_sensor *s, int on);

/* BPF filter expression (copied; NULL or "" for none). Before open. */
PS_API int ps_sensor_set_filter(ps_sensor *s, const char *expr);

/* A filter of one interface (added before), and-ed with the sensor's:
 * "(sensor's) and (this)" (copied; NULL or "" for none). PS_ERR_INVALID
 * for an interface not added. Before open. Since 0.1. */
PS_API int ps_sensor_set_interface_filter(ps_sensor *s, const char *ifname,
                                          const char *expr);

/* Stop after this many packets in total (0, the default: no limit). */
PS_API int ps_sensor_set_count(ps_sensor *s, uint64_t count);

/* Stop after this many milliseconds of capture (0, the default: no
 * limit). Before open. Since 0.1. */
PS_API int ps_sensor_set_duration_ms(ps_sensor *s, uint64_t ms);

/*
 * Opens every source and compiles the filter against each: after this
 * call the capture privileges may be dropped. Returns 0, PS_ERR_CAPTURE
 * (no such interface or file, not a capture file, permission),
 * PS_ERR_FILTER or PS_ERR_INVALID (nothing to capture). Since 0.1.
 */
PS_API int ps_sensor_open(ps_sensor *s);

/*
 * Captures and sends every packet into stream (connected), announcing
 * the sources as interfaces first. When capturing live, traffic between
 * this host and the stream's receiver port is excluded whatever the
 * filter says. Returns 0 at the end of the file, when the count or
 * duration is reached, or after ps_sensor_stop(); an error otherwise.
 * Sends the final interface counters before returning. Does not close
 * the stream.
 */
PS_API int ps_sensor_run(ps_sensor *s, ps_stream *stream);

/* Makes ps_sensor_run() return soon. Async-signal-safe. */
PS_API void ps_sensor_stop(ps_sensor *s);

/* Number of interfaces after open (those added, or 1 for a file). */
PS_API unsigned ps_sensor_interface_count(ps_sensor *s);

/* Name (owned by the sensor; NULL for no such i), and counters, of
 * interface i (0-based, in the order added) after open. The counters
 * are copied as for ps_stream_get_counters(), size = sizeof(*out).
 * Returns 0 or PS_ERR_INVALID. Since 0.1. */
PS_API const char *ps_sensor_interface_name(ps_sensor *s, unsigned i);
PS_API int ps_sensor_get_interface_stats(ps_sensor *s, ps_capture_stats *out,
                                         size_t size, unsigned i);

/* The stream's id of interface i (for ps_stream_get_interface_counters()),
 * once ps_sensor_run() announced it: a stream that took up a spooled
 * earlier run numbers that run's interfaces first, so the ids need not
 * be 0..n-1. Returns 0, PS_ERR_INVALID (no interface i) or PS_ERR_STATE
 * (not announced yet). Since 0.1. */
PS_API int ps_sensor_get_interface_id(ps_sensor *s, uint32_t *out, unsigned i);

PS_API const char *ps_sensor_errmsg(ps_sensor *s);

/*
 * Sampling, locally or for remote captures: keep one packet in n (the
 * first of every n; 0 or 1: all), and at most pps packets per second of
 * their time stamps (0: no cap). Packets left out are counted as
 * sampled out, apart from loss. Before ps_sensor_open(). Since 0.2.
 */
PS_API int ps_sensor_set_sample(ps_sensor *s, uint32_t n);
PS_API int ps_sensor_set_max_pps(ps_sensor *s, uint32_t pps);

/*
 * The fleet (protocol version 2; a version 1 receiver sees none of it).
 * Every connection of the sensor's stream begins with an announcement:
 * the library version, the host name, the interfaces it offers (the
 * remote interfaces if given, else every interface libpcap lists) with
 * their link types, and its labels (ps_sensor_add_label(): key
 * [A-Za-z_][A-Za-z0-9_]*, 1..63 bytes; value 0..255 bytes without
 * control characters; at most 16). A standby sensor
 * (ps_sensor_set_standby(), no interface or file given) opens nothing
 * and captures only what a receiver asks for; ps_sensor_run() then runs
 * until ps_sensor_stop() or the stream fails.
 *
 * Remote captures are refused unless ps_sensor_set_remote_capture(s, 1);
 * the policy bounds what a receiver may ask: a request beyond it is
 * refused with the reason (logged here, and given to the receiver),
 * never widened or cut silently:
 *  - max duration (ms; 0: no limit; with a limit a request must give a
 *    duration within it), max snaplen (0: none; a request without one
 *    gets the smaller of the sensor's snaplen and the limit), max
 *    packets per second (0: none; with one, a request must set a rate
 *    within it);
 *  - the interfaces a receiver may name (none given: any; with a list,
 *    a request naming none captures on the whole list);
 *  - a filter guard, ANDed with every remote filter ("not port 22").
 * One remote capture runs at a time. All before ps_sensor_open().
 * Since 0.2.
 */
PS_API int ps_sensor_set_standby(ps_sensor *s, int on);
PS_API int ps_sensor_add_label(ps_sensor *s, const char *key,
                               const char *value);
PS_API int ps_sensor_set_remote_capture(ps_sensor *s, int allow);
PS_API int ps_sensor_set_remote_max_duration_ms(ps_sensor *s, uint64_t ms);
PS_API int ps_sensor_set_remote_max_snaplen(ps_sensor *s, int snaplen);
PS_API int ps_sensor_set_remote_max_pps(ps_sensor *s, uint32_t pps);
PS_API int ps_sensor_add_remote_interface(ps_sensor *s, const char *ifname);
/* PS_ERR_FILTER (with the pcap error in ps_sensor_errmsg()) when expr
 * does not compile (on Ethernet). */
PS_API int ps_sensor_set_remote_filter_guard(ps_sensor *s, const char *expr);

/* ---------------------------------------------------------------- */
/* Sinks: where a receiver writes what it gets.                       */
/* ---------------------------------------------------------------- */

typedef struct ps_sink ps_sink;

/* Flags for the file sinks. */
#define PS_SINK_NANO 0x1u /* pcap: nanosecond timestamps (default micro) */
/* ps_file_sink(): continue an existing file instead of starting a new
 * one. Since 0.1. */
#define PS_SINK_APPEND 0x2u

/*
 * Classic pcap output to path ("-" is standard output). Classic pcap holds
 * one link type per file: packets of a second link type go to a sibling
 * file named PATH-BASE.LINKTYPE_NAME.EXT (logged); on standard output a
 * session with a second link type is refused. The file is created when
 * the first interface arrives. Returns 0, PS_ERR_INVALID, PS_ERR_NOMEM or
 * PS_ERR_IO (the directory is not writable); on every error *out is set
 * to NULL (when out is not NULL). Since 0.1.
 */
PS_API int ps_pcap_sink(ps_sink **out, const char *path, unsigned flags);

/*
 * pcapng output to path ("-" is standard output): one section naming this
 * application and host, an Interface Description Block per sensor
 * interface (if_name "SENSOR/IFACE"), Enhanced Packet Blocks, and
 * Interface Statistics Blocks when a session ends. Since 0.1.
 */
PS_API int ps_pcapng_sink(ps_sink **out, const char *path, unsigned flags);

/* Capture file formats, for ps_file_sink(). */
typedef enum ps_file_format {
  PS_FORMAT_PCAP = 0,
  PS_FORMAT_PCAPNG = 1
} ps_file_format;

/* The format a file name implies, as ps-receiver picks it without
 * --format: PS_FORMAT_PCAPNG if path ends in ".pcapng", else
 * PS_FORMAT_PCAP ("-" and NULL included). Since 0.1. */
PS_API ps_file_format ps_format_from_path(const char *path);

/*
 * Options of ps_file_sink(), passed with their size (see the conventions
 * at the top); start from PS_FILE_SINK_OPTIONS_INIT (all off). Strings
 * are copied. Since 0.1.
 */
typedef struct ps_file_sink_options {
  /* PS_SINK_NANO (pcap only), PS_SINK_APPEND: an existing file is
   * checked (pcap: same precision and link type; pcapng: any valid
   * section, then a new section is added), a torn record at its end is
   * cut (logged with the byte count) and writing continues after its
   * last whole record; a file that does not fit gets the next free name
   * (logged). A missing file is created. With rotation, the last
   * existing file of the sequence (BASE, BASE.1, ...) is continued. Only
   * a regular file with one link, owned by the effective user (any
   * owner for root), reached without a symbolic link, is continued. */
  unsigned flags;
  /* Start a new file once one holds at least this many bytes (checked
   * after each flush, so a file may exceed it by one flush); 0: never. */
  uint64_t rotate_bytes;
  /* Start a new file at the first flush in a new period of this many
   * seconds (periods counted from the epoch, like tcpdump -G), if the
   * file holds packets; 0: never. */
  unsigned rotate_seconds;
  /* Keep at most this many files per output, deleting the oldest one a
   * new file replaces (a ring); 0: keep all. Needs rotation. Only files
   * of this run are counted and deleted. */
  unsigned max_files;
  /* Non-zero: one output (a set of files) per sensor name. The path's
   * "{sensor}" is replaced by the name; without it, ".NAME" goes before
   * the extension. Files are closed when their sensor's last session
   * ends and taken up again if it comes back. */
  int split_by_sensor;
  /* A command run as /bin/sh -c 'COMMAND "$1"' with $1 the file, on
   * each file the sink closes (rotation, reopen, sensor gone, end); it
   * is not waited for, and a failure (exit status) is logged. */
  const char *post_rotate;
} ps_file_sink_options;

#define PS_FILE_SINK_OPTIONS_INIT                                              \
  { 0, 0, 0, 0, 0, 0 }

/*
 * A pcap or pcapng output (formats as ps_pcap_sink() and
 * ps_pcapng_sink()) to files named by path_template: strftime(3)
 * conversions in local time ("%Y%m%d-%H%M%S"; write "%%" for a '%'),
 * "{sensor}" with split_by_sensor. "-" is standard output, which cannot
 * be rotated, split or appended to. opts NULL (size ignored) means all
 * options off.
 *
 * A file is never overwritten: if the name exists (and PS_SINK_APPEND is
 * not given) the next free BASE.N.EXT is used, with a warning naming
 * both; numbers also tell apart rotated files whose names expand alike.
 * Every file is complete alone: its own pcap header, or section header
 * and interface blocks of every interface still active (renumbered from
 * 0). Records are written whole: a write error (disk full) leaves no
 * partial record, keeps the data and is retried at the next flush. A
 * file that can never be created or written under its name (too long,
 * no permission, a missing directory) fails that output alone (one
 * sensor's files, one link type's, or all): its sessions are refused
 * with the reason and the others go on. Names the sink makes are always
 * created new (O_EXCL, never through a symbolic link); a named pipe or
 * device is written as it is only when path_template names it.
 *
 * A SIGKILL while the kernel copies a multi-page write can still leave a
 * partial record at the end of a file (Linux stops such a write at a page
 * boundary on a fatal signal): PS_SINK_APPEND cuts it off.
 *
 * Returns 0, PS_ERR_INVALID (an option; see errmsg), PS_ERR_NOMEM or
 * PS_ERR_IO (no file can be created there: the first file is created,
 * or with classic pcap and split_by_sensor its name is created and
 * removed, or a probe file beside it). On PS_ERR_INVALID
 * and PS_ERR_IO *out is set so ps_sink_errmsg() gives the detail; free it
 * with ps_sink_free(). Since 0.1.
 */
PS_API int ps_file_sink(ps_sink **out, ps_file_format format,
                        const char *path_template,
                        const ps_file_sink_options *opts, size_t size);

/*
 * Makes a file sink close its files and start new ones (next free names,
 * so after logrotate moved a file away its name is used again) at its
 * next flush, i.e. when the next packets are written; the closed files
 * get the post-rotate command. Async-signal-safe: call it from a SIGHUP
 * handler. Returns 0, or PS_ERR_INVALID for NULL or a sink without files
 * (standard output is kept as it is). Since 0.1.
 */
PS_API int ps_sink_reopen(ps_sink *sink);

/* What the receiver tells sinks about a sensor session. */
typedef struct ps_session_info {
  uint64_t id;        /* unique within a receiver */
  const char *sensor; /* the name the sensor gave */
  const char *peer;   /* "ADDR:PORT" of the sensor */
  /* The subject of the sensor's verified TLS client certificate, or
   * NULL. Since 0.1. */
  const char *tls_subject;
} ps_session_info;

/* Callbacks of a callback sink, passed with their size (see the
 * conventions at the top): a program built against an older header
 * keeps working, the callbacks it does not know are NULL. Start from
 * PS_SINK_CALLBACKS_INIT. Any callback may be NULL. A callback returning
 * non-zero refuses the session (it is closed with a log line). */
typedef struct ps_sink_callbacks {
  int (*session_start)(const ps_session_info *session, void *user_data);
  int (*interface)(const ps_session_info *session,
                   const ps_interface_info *iface, void *user_data);
  int (*packet)(const ps_session_info *session, const ps_interface_info *iface,
                const ps_packet *pkt, void *user_data);
  void (*stats)(const ps_session_info *session, const ps_interface_info *iface,
                const ps_capture_stats *stats, void *user_data);
  void (*session_end)(const ps_session_info *session, void *user_data);
  /* An interface ended (its session is ending): last is the
   * last counters the sensor sent for it, or NULL if it sent none.
   * Called before session_end for each interface that interface()
   * accepted (or every one announced, when interface is NULL). Since
   * 0.1. */
  void (*interface_end)(const ps_session_info *session,
                        const ps_interface_info *iface,
                        const ps_capture_stats *last, void *user_data);
} ps_sink_callbacks;

#define PS_SINK_CALLBACKS_INIT                                                 \
  { 0, 0, 0, 0, 0, 0 }

/* A sink that calls cb (copied: the size bytes the caller knows) with
 * user_data. Returns 0, PS_ERR_INVALID (out or cb NULL, size below this
 * struct's first version, or a callback set that this library does not
 * know) or PS_ERR_NOMEM; on every error *out is set to NULL (when out is
 * not NULL). Since 0.1. */
PS_API int ps_callback_sink(ps_sink **out, const ps_sink_callbacks *cb,
                            size_t size, void *user_data);

/*
 * Options of ps_kafka_sink(), passed with their size (see the
 * conventions at the top). properties: librdkafka configuration
 * ("KEY=VALUE" strings, NULL-terminated, or NULL), applied after the
 * library's own: enable.idempotence=true, acks=all,
 * message.timeout.ms=0 (retry until the broker is back: an outage stops
 * acknowledgements instead of losing data). Since 0.1.
 */
typedef struct ps_kafka_sink_options {
  const char *brokers; /* bootstrap.servers: HOST:PORT[,HOST:PORT...] */
  const char *topic;
  const char *const *properties;
} ps_kafka_sink_options;

#define PS_KAFKA_SINK_OPTIONS_INIT                                             \
  { 0, 0, 0 }

/*
 * A sink that writes each sensor batch to Kafka as one message (or a
 * few, split at packet boundaries, when it exceeds the message size
 * limit): the value is a complete pcapng section, the key the sensor's
 * stream, headers name the sensor, stream, batch and its packets
 * (docs/KAFKA.md). A receiver acknowledges a batch to its sensor only
 * once Kafka's delivery reports say every message of it is kept.
 * Returns 0, PS_ERR_INVALID (a property librdkafka refuses, no brokers
 * or topic: the detail in ps_sink_errmsg(*out)), PS_ERR_NOMEM, or
 * PS_ERR_STATE when the library was built without Kafka (librdkafka).
 * On an error *out is NULL or, as for ps_file_sink(), a sink holding the
 * detail. Since 0.1.
 */
PS_API int ps_kafka_sink(ps_sink **out, const ps_kafka_sink_options *opts,
                         size_t size);

/* 1 if this library was built with Kafka (librdkafka), else 0. Since
 * 0.2. */
PS_API int ps_kafka_available(void);

/*
 * PCAP-over-IP: a TCP stream that carries an ordinary capture file, as
 * Wireshark/tshark/dumpcap read it (-i TCP@HOST:PORT), Arkime's
 * pcap-over-ip-client and -server, NetworkMiner and Zeek's plugin. A
 * live output: every consumer gets a capture-file header when its
 * stream starts, then every packet from that moment on. It never holds
 * back acknowledgement to the sensors or the receiver's loop: its
 * sockets are non-blocking and watched by the receiver's own loop (no
 * thread; the step API drives it through ps_receiver_get_fd() and
 * ps_receiver_process()), each consumer has a bounded queue, and a
 * packet that does not fit in a consumer's queue is dropped whole for
 * that consumer alone (counted, and logged when dropping starts and
 * stops), so its stream stays a valid capture. The files the receiver
 * writes (durable outputs) alone decide what is acknowledged.
 *
 * The stream carries raw traffic to whoever connects: listeners bind
 * loopback unless given an address, and allow limits the clients.
 */
typedef enum ps_pcap_over_ip_format {
  /* Classic pcap, microsecond time stamps: what Arkime and older tools
   * read. One link type per stream, that of the first interface the
   * consumer's stream takes (active when it connected, or the next to
   * come: the header waits for it). Packets of another link type are
   * not sent to that consumer and are counted as skipped (logged once
   * per sensor/interface). Use pcapng for mixed sources. */
  PS_PCAP_OVER_IP_PCAP = 0,
  PS_PCAP_OVER_IP_PCAP_NS = 1, /* classic pcap, nanoseconds */
  /* pcapng: every link type and sensor, interface blocks named
   * "SENSOR/IFACE", statistics blocks when an interface ends. */
  PS_PCAP_OVER_IP_PCAPNG = 2
} ps_pcap_over_ip_format;

/* Options of the PCAP-over-IP sinks, passed with their size (see the
 * conventions at the top); start from PS_PCAP_OVER_IP_OPTIONS_INIT.
 * Strings are copied. Since 0.1. */
typedef struct ps_pcap_over_ip_options {
  ps_pcap_over_ip_format format;
  /* Only sensors whose name matches this fnmatch(3) pattern; NULL: all. */
  const char *sensor;
  /* Only packets this BPF expression (pcap-filter(7)) matches, compiled
   * for each link type; an interface whose link type the expression
   * cannot be compiled for sends nothing (logged). NULL: all. */
  const char *filter;
  /* Listener: consumers at once, 1..100000 (0: 64); one more is closed
   * at once, with a log line. */
  unsigned max_clients;
  /* Bytes queued per consumer, 64 KiB..4 GiB (0: 4 MiB). */
  uint64_t queue_bytes;
  /* Listener: the clients allowed, "CIDR,CIDR,..." (IPv4 or IPv6, a bare
   * address for one host); others are closed at once. NULL: any. */
  const char *allow;
  /* Listener: serve TLS with this certificate chain and key (PEM). */
  const char *tls_cert_file;
  const char *tls_key_file;
  /* Connection out: TLS, verifying the consumer with these CAs (PEM),
   * and the name its certificate must carry (NULL: host). */
  const char *tls_ca_file;
  const char *tls_server_name;
  /* Connection out: the longest wait between attempts, 1000..3600000 ms
   * (0: 30000); the back-off starts at 500 ms and doubles. */
  unsigned reconnect_max_ms;
} ps_pcap_over_ip_options;

#define PS_PCAP_OVER_IP_OPTIONS_INIT                                           \
  { PS_PCAP_OVER_IP_PCAP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/*
 * A PCAP-over-IP listener on addr and port: NULL or "" listens on
 * loopback only (127.0.0.1); "0.0.0.0" or "::" on every address. Port 0 picks a
 * free port (see ps_pcap_over_ip_get_port()). The sockets are opened now; the
 * sink accepts once it is added to a receiver, which owns it then. Returns 0,
 * PS_ERR_INVALID (an option; see errmsg), PS_ERR_FILTER, PS_ERR_TLS,
 * PS_ERR_ADDRINUSE, PS_ERR_RESOLVE, PS_ERR_SYSTEM or PS_ERR_NOMEM; on
 * every error but PS_ERR_NOMEM *out is a sink holding the detail for
 * ps_sink_errmsg() (free it with ps_sink_free()). Since 0.1.
 */
PS_API int ps_pcap_over_ip_sink(ps_sink **out, const char *addr, uint16_t port,
                                const ps_pcap_over_ip_options *opts,
                                size_t size);

/*
 * A PCAP-over-IP connection out to a consumer that listens (Arkime's
 * pcap-over-ip-server, NetworkMiner) at host and port: connects once
 * added to a receiver, and again after every failure or disconnection
 * with back-off (logged); each connection starts a new stream with its
 * own header. max_clients, allow and the listener's TLS files do not
 * apply. Returns as ps_pcap_over_ip_sink(). Since 0.1.
 */
PS_API int ps_pcap_over_ip_connect_sink(ps_sink **out, const char *host,
                                        uint16_t port,
                                        const ps_pcap_over_ip_options *opts,
                                        size_t size);

/* The port of a PCAP-over-IP listener's first socket (for port 0), into
 * *out. Returns 0, or PS_ERR_INVALID for another sink. Since 0.1. */
PS_API int ps_pcap_over_ip_get_port(ps_sink *sink, uint16_t *out);

/* Counters of one PCAP-over-IP consumer, connected now. Fields are only
 * ever appended. Since 0.1. */
typedef struct ps_pcap_over_ip_client_counters {
  uint64_t id;             /* unique within the sink */
  char peer[64];           /* "ADDR:PORT" */
  int64_t connected_since; /* Unix time, seconds */
  uint64_t packets;        /* queued for it (sent, unless it leaves) */
  uint64_t bytes;          /* bytes written to its socket */
  uint64_t dropped;        /* packets its full queue could not take */
  uint64_t skipped;        /* packets its stream cannot hold (link
                              type of a classic pcap stream, time) */
} ps_pcap_over_ip_client_counters;

/* Copies the counters of consumer i (from 0, in the order they came)
 * into *out, size bytes as for ps_receiver_get_counters(). Returns 0, or
 * PS_ERR_INVALID when there is no consumer i (a loop from 0 finds them
 * all) or sink is no PCAP-over-IP sink. Since 0.1. */
PS_API int
ps_pcap_over_ip_get_client_counters(ps_sink *sink,
                                    ps_pcap_over_ip_client_counters *out,
                                    size_t size, unsigned i);

/* Frees a sink not handed to a receiver; NULL is a no-op. After a failed
 * constructor *out is NULL, or (ps_file_sink() only) a sink that holds
 * the detail for ps_sink_errmsg(): ps_sink_free(*out) is right in both
 * cases. */
PS_API void ps_sink_free(ps_sink *sink);

/* Detail of the sink's last failure; never NULL. */
PS_API const char *ps_sink_errmsg(ps_sink *sink);

/* ---------------------------------------------------------------- */
/* Receiver: accepts sensor sessions and feeds sinks.                 */
/* ---------------------------------------------------------------- */

typedef struct ps_receiver ps_receiver;

PS_API int ps_receiver_create(ps_receiver **out);

/* Frees the receiver, its sessions and its sinks. */
PS_API void ps_receiver_free(ps_receiver *r);
PS_API void ps_receiver_set_log(ps_receiver *r, ps_log_fn fn, void *user_data);
/* Sets a structured log callback instead (see ps_log_record): the same
 * lines, with the sensor a line is about and event names, among them
 * "connected" and "disconnected"/"dropped" (with the session's packets,
 * bytes, dropped, kernel_dropped, interface_dropped and
 * overflow_dropped as fields). NULL fn: no log. Since 0.1. */
PS_API void ps_receiver_set_log_ex(ps_receiver *r, ps_log_ex_fn fn,
                                   void *user_data);

/*
 * Listens on addr (NULL or "" for every address, IPv6 and IPv4) and port
 * (0 picks a free port; see ps_receiver_port()). May be called more than
 * once. Returns 0, PS_ERR_RESOLVE, PS_ERR_ADDRINUSE, PS_ERR_SYSTEM, or
 * PS_ERR_LIMIT when the receiver already has PS_MAX_LISTENERS sockets.
 */
PS_API int ps_receiver_listen(ps_receiver *r, const char *addr, uint16_t port);

/* The port of the first listener. */
PS_API uint16_t ps_receiver_port(ps_receiver *r);

/* The local address (numeric, IPv6 without brackets or scope) and port
 * of listening socket i, counted from 0 in the order they were opened
 * (one ps_receiver_listen() may open several: every address of a name,
 * or IPv6 and IPv4 for ""). addr gets at most addrlen-1 bytes (64 are
 * enough) and may be NULL. Returns 0, or PS_ERR_INVALID when there is
 * no socket i (so a loop from 0 finds them all), PS_ERR_SYSTEM if the
 * system cannot tell. Since 0.1.
 */
PS_API int ps_receiver_listener(ps_receiver *r, char *addr, size_t addrlen,
                                uint16_t *port, unsigned i);

/* Serves TLS only (cert_file and key_file required; client_ca_file
 * requires verified client certificates). Reads the files now. Before
 * the first session. Returns 0, PS_ERR_INVALID (also for an empty
 * string in opts), PS_ERR_STATE or PS_ERR_TLS. */
PS_API int ps_receiver_set_tls(ps_receiver *r, const ps_tls_options *opts,
                               size_t size);

/*
 * Keeps a journal at path (created if absent) so that a receiver killed
 * at any moment and started again writes every acknowledged packet
 * exactly once: after each round's writes, and before acknowledging them,
 * one record gives each output file's size and each sensor stream's last
 * batch. On start the journal is read back: every file it lists is cut
 * back to its recorded size (what follows was never acknowledged, so the
 * sensors resend it), and resent batches already written are skipped.
 * Call before adding sinks (a sink opening with PS_SINK_APPEND must see
 * the repaired file). Only files in the journal's directory or below it
 * are recorded and cut back (by their name relative to it and their
 * inode when opened; never through a symbolic link, never another
 * user's): keep the journal beside the outputs. The journal and its
 * temporary path.new are opened without following links and created
 * with O_EXCL, mode 0600. Returns 0, PS_ERR_STATE, PS_ERR_INVALID (path
 * names a directory), or PS_ERR_IO (unreadable; not a journal; a
 * symbolic link, not a regular file, hard-linked, writable by group or
 * others, or owned by another user than the process's or the owner of
 * its directory; a temporary that is a link or another user's): such a
 * file is never overwritten. No fsync: it protects against the process
 * dying, not the machine. Since 0.1.
 */
PS_API int ps_receiver_set_state_file(ps_receiver *r, const char *path);

/*
 * Options of ps_receiver_consume_kafka(), passed with their size (see
 * the conventions at the top). properties as for ps_kafka_sink(),
 * applied after the library's own (enable.auto.commit=false,
 * auto.offset.reset=earliest). Since 0.1.
 */
typedef struct ps_kafka_input_options {
  const char *brokers;
  const char *topic;
  const char *group; /* group.id: consumers of one group split the
                        partitions */
  const char *const *properties;
} ps_kafka_input_options;

#define PS_KAFKA_INPUT_OPTIONS_INIT                                            \
  { 0, 0, 0, 0 }

/*
 * Makes the receiver read a topic the Kafka output wrote (ps_kafka_sink())
 * instead of, or besides, listening for sensors: each packet goes to the
 * outputs once, in order per stream; a message already taken (same
 * stream, batch and part) is skipped and counted, a jump in a stream's
 * sequence logged and counted, a message not ours or damaged skipped,
 * counted and logged. Offsets are committed only once the outputs (and
 * the journal, ps_receiver_set_state_file(), which also keeps the
 * streams' positions) hold what was read, so a receiver killed and
 * restarted neither loses nor repeats a packet. Call after the outputs
 * are added. Returns 0, PS_ERR_INVALID (a missing value, a property
 * librdkafka refuses), PS_ERR_STATE (called twice, with no outputs, or
 * the library built without Kafka), with the detail in
 * ps_receiver_errmsg(). Since 0.1.
 */
PS_API int ps_receiver_consume_kafka(ps_receiver *r,
                                     const ps_kafka_input_options *opts,
                                     size_t size);

/*
 * The journal's default place for an output path, as ps-receiver uses
 * it: ".NAME.state" in the directory of output (hidden, so listings and
 * globs of the capture files do not change), where NAME is the file
 * name with its template characters '%', '{' and '}' made '_' (one
 * journal for every file a template gives), e.g. "/cap/.x-_Y.pcap.state"
 * for "/cap/x-%Y.pcap". Writes at most outlen bytes with the NUL to out.
 * Returns 0, PS_ERR_INVALID (output is empty, "-", ends in '/', or its
 * directory part is a template: give a journal path yourself) or
 * PS_ERR_LIMIT (out is too small). Since 0.1.
 */
PS_API int ps_receiver_default_state_path(char *out, size_t outlen,
                                          const char *output);

/*
 * Loads a shared key file for ps_stream_set_auth_key() and
 * ps_receiver_set_auth_key(): 1..1024 bytes, one trailing newline (LF or
 * CR LF) not part of the key. out must hold 1024 bytes; *outlen gets the
 * length. Refuses a file group or others may read (the key would be no
 * secret), a missing, empty, too long or non-regular file. Returns 0,
 * PS_ERR_IO (cannot be read, not a regular file, readable by group or
 * others) or PS_ERR_INVALID (empty or too long); err (errlen bytes, may
 * be NULL) gets a line naming the file and the fix. Since 0.1.
 */
PS_API int ps_auth_key_load(uint8_t *out, size_t *outlen, const char *path,
                            char *err, size_t errlen);

/* Requires sensors to prove they hold this shared key (1..1024 bytes,
 * copied); see ps_stream_set_auth_key(). */
PS_API int ps_receiver_set_auth_key(ps_receiver *r, const uint8_t *key,
                                    size_t len);

/* Adds a sink; the receiver takes ownership on success. Up to 8. */
PS_API int ps_receiver_add_sink(ps_receiver *r, ps_sink *sink);

/* Concurrent sensor sessions, 1..1000000 (0: the default, 1024).
 * Returns 0 or PS_ERR_INVALID. Since 0.1. */
PS_API int ps_receiver_set_max_sessions(ps_receiver *r, unsigned n);

/* Time a connection gets to finish TLS, the hello and the shared-key
 * proof, at most 3600000 ms (0: the default, 10000). Returns 0 or
 * PS_ERR_INVALID. Since 0.1. */
PS_API int ps_receiver_set_handshake_timeout_ms(ps_receiver *r, unsigned ms);

/* Silence after which a session is dropped, at most 86400000 ms (0: the
 * default, 60000). Returns 0 or PS_ERR_INVALID. Since 0.1. */
PS_API int ps_receiver_set_idle_timeout_ms(ps_receiver *r, unsigned ms);

/* Connections still in their handshake (TLS, hello, shared-key proof):
 * they do not count against max_sessions, but at most max_pending of
 * them are held; when one more arrives, the one that has waited longest
 * is closed. 0 restores the default, max(64, 2 * max_sessions). A
 * connection counts as a sensor once it has proved the shared key (or
 * sent its hello, without a key); a sensor beyond max_sessions is then
 * refused with PS_ERR_BUSY, which the sensor retries. Returns 0 or
 * PS_ERR_INVALID (above 1000000). Since 0.1. */
PS_API int ps_receiver_set_max_pending(ps_receiver *r, unsigned max_pending);

/* Runs until ps_receiver_stop(); then finishes and acknowledges what was
 * received, closes the sinks cleanly and returns 0 (or PS_ERR_IO if an
 * output could still not be written at the end). An output that fails
 * meanwhile (disk full) does not end the run: the receiver stops reading
 * and acknowledging, and retries every second. An output that can never
 * be written (a file name too long) refuses only the sessions written to
 * it. Standard output whose reader left ends the run: PS_ERR_IO, with
 * the reason in ps_receiver_errmsg(). */
PS_API int ps_receiver_run(ps_receiver *r);

/* Makes ps_receiver_run() return soon. Async-signal-safe. */
PS_API void ps_receiver_stop(ps_receiver *r);

/* Step API for programs with their own loop: a file descriptor that
 * becomes readable when the receiver has work, the longest the caller may
 * wait before calling ps_receiver_process() (ms, -1 for no limit), and
 * one non-blocking step. process() returns 0, PS_ERR_STOPPED after
 * stop, or PS_ERR_IO when standard output's reader left (then call
 * ps_receiver_shutdown(); other failing outputs stall the receiver or
 * refuse their sessions, see ps_receiver_run()). */
PS_API int ps_receiver_get_fd(ps_receiver *r);
PS_API int ps_receiver_get_timeout_ms(ps_receiver *r);
PS_API int ps_receiver_process(ps_receiver *r);

/* Accepts the sensor connections pending on the listeners (non-blocking);
 * returns how many were accepted (>= 0) or an error. process() calls it;
 * programs that watch the listeners themselves may too. */
PS_API int ps_receiver_accept(ps_receiver *r);

/* Closes every session, flushes and closes the sinks. run() does it on
 * stop; step-API users call it before free. */
PS_API int ps_receiver_shutdown(ps_receiver *r);

/* Counters of a receiver: now, and totals since creation. Fields are
 * only ever appended. */
typedef struct ps_receiver_counters {
  /* Connections now open: sensor sessions, and connections still in
   * their handshake (TLS, hello). */
  uint64_t sessions_active;
  /* Sensor sessions: connections that said hello (a sensor name). */
  uint64_t sessions_total;
  /* Sensor sessions that ended with an error (see the log). */
  uint64_t sessions_failed;
  /* Packets and captured bytes written to the outputs: counted once the
   * outputs took them for good (the write succeeded, the journal says
   * so), when the sensors' batches are acknowledged. Packets held while
   * an output cannot write are not counted until it can. */
  uint64_t packets;
  uint64_t bytes;
  uint64_t dropped; /* drops the sensors reported (kernel + interface) */
  /* Since 0.1: */
  uint64_t overflow;          /* packets the sensors' buffers dropped */
  uint64_t duplicate_batches; /* resent batches already written: skipped */
  uint64_t write_stalls;      /* times an output could not write (disk
                                 full...): acknowledgements stopped */
  /* Since 0.1: connections accepted, and those of them
   * closed before a sensor said hello (TLS handshake failures, port
   * scans, refused at --max-sensors, no hello in time); these are not
   * sensor sessions. */
  uint64_t connections;
  uint64_t connections_no_hello;
  /* Since 0.2: bytes the output files took (write(2) done): file
   * headers, records and statistics blocks; a file cut back after a
   * failed write counts only what stayed. */
  uint64_t output_bytes;
  /* Since 0.1, the Kafka input (ps_receiver_consume_kafka()): messages
   * read, those skipped as duplicates (a batch already taken, e.g. one a
   * sensor resent after a receiver died), places where a stream's
   * batch sequence jumps (batches not in the topic), and messages
   * skipped as not ours, damaged or absurd. */
  uint64_t kafka_messages;
  uint64_t kafka_duplicates;
  uint64_t kafka_gaps;
  uint64_t kafka_bad;
  /* Since 0.2, the Kafka output (ps_kafka_sink()): messages handed to
   * the producer, and those the broker's delivery reports confirmed
   * kept. Batches are acknowledged to the sensors only as far as the
   * second has come. */
  uint64_t kafka_sent;
  uint64_t kafka_delivered;
} ps_receiver_counters;

/* Copies the receiver's counters into *out, size bytes as for
 * ps_stream_get_counters(). Since 0.1. */
PS_API void ps_receiver_get_counters(ps_receiver *r, ps_receiver_counters *out,
                                     size_t size);

PS_API const char *ps_receiver_errmsg(ps_receiver *r);

/*
 * The admin API: HTTP/1.1 with JSON (docs/man/ps-receiver.1 lists the
 * resources): GET /metrics (Prometheus text format), GET
 * /api/v1/sensors[/NAME] (the sensors this receiver knows), and the
 * captures started on demand. It is served from the receiver's own loop
 * (ps_receiver_run() or the step API): no thread is started, every
 * request is answered inside ps_receiver_process().
 *
 * ps_receiver_set_admin_token() makes every request carry
 * "Authorization: Bearer TOKEN" (compared in constant time; others are
 * answered 401). token is 1..1024 bytes, copied. Set it before
 * ps_receiver_admin_listen(): without a token the admin API listens
 * only on a loopback address, and ps_receiver_admin_listen() refuses
 * any other with PS_ERR_INVALID. Since 0.2.
 */
PS_API int ps_receiver_set_admin_token(ps_receiver *r, const uint8_t *token,
                                       size_t len);
/* Serves the admin API over HTTPS: opts->cert_file and key_file (PEM)
 * are the API's certificate and key; with opts->client_ca_file every
 * request must come with a client certificate issued by those CAs
 * (others are answered 403 with the reason), and that counts as
 * authentication: the API may then listen beyond loopback without a
 * token. With a token too, a request needs both. The other fields of
 * ps_tls_options are the sensor's and refused here (PS_ERR_INVALID).
 * The files are read now. Before ps_receiver_admin_listen(), else
 * PS_ERR_STATE. Returns 0, PS_ERR_INVALID, PS_ERR_TLS (a file does not
 * load, with GnuTLS's reason) or PS_ERR_NOMEM. Since 0.2. */
PS_API int ps_receiver_set_admin_tls(ps_receiver *r, const ps_tls_options *opts,
                                     size_t size);
/* Serves the admin API on addr (a numeric address or a name; NULL or ""
 * is every address, which needs a token) and port (0: any free port, see
 * ps_receiver_admin_port()). Once per receiver: PS_ERR_STATE after that.
 * Returns 0, PS_ERR_INVALID (not loopback without a token or a client
 * CA),
 * PS_ERR_ADDRINUSE, PS_ERR_RESOLVE, PS_ERR_SYSTEM. Since 0.2. */
PS_API int ps_receiver_admin_listen(ps_receiver *r, const char *addr,
                                    uint16_t port);
/* Where captures on demand may have their own file ("output" in POST
 * /api/v1/captures, ps-receiver(1)): relative templates resolve under
 * dir, absolute ones must be under it, ".." is refused. A capture's file
 * is written like an output of ps_file_sink() (acknowledged only once
 * written, in the journal of ps_receiver_set_state_file()), in the
 * format its name ends in (".pcapng", ".pcap"), else format; flags:
 * PS_SINK_NANO. Without a directory "output" is refused. dir is copied.
 * Returns 0 or PS_ERR_INVALID. Since 0.2. */
PS_API int ps_receiver_set_capture_dir(ps_receiver *r, const char *dir,
                                       ps_file_format format, unsigned flags);
/* The admin API's port, 0 when it does not listen. Since 0.2. */
PS_API uint16_t ps_receiver_admin_port(ps_receiver *r);

#ifdef __cplusplus
}
#endif

#endif /* PACKETSTREAMER_H */
