/* The Kafka output: each sensor batch becomes one message (split at
 * packet boundaries past the message size limit) whose value is a whole
 * pcapng section, written by the pcapng format module (ps_fmt_pcapng.c),
 * so that messages read one after another make a file Wireshark opens.
 * librdkafka sends them from its own threads; its delivery reports come
 * back through the main queue, which wakes the receiver's loop through
 * a pipe (rd_kafka_queue_io_event_enable). The receiver acknowledges a
 * batch only once every message handed on before it was reported kept
 * (token/durable in ps_sink.h). Format: docs/KAFKA.md. */
#include "config.h"

#include "ps_fmt.h"
#include "ps_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_KAFKA
#include <librdkafka/rdkafka.h>

#define SESS_BUCKETS 4096
/* Room kept in a message for its section header and interface blocks. */
#define HEADROOM 8192

typedef struct kmsg {
  struct kmsg *next;
  ps__buf value;
  char key[300];
  char sensor[256];
  uint64_t stream, seq;
  unsigned part, parts;
  uint32_t count;
  int64_t first_sec, last_sec;
  uint32_t first_frac, last_frac;
  uint8_t tsres;
} kmsg;

typedef struct ksess {
  struct ksess *next; /* hash chain by session id */
  uint64_t id;
  ps__fmtw *w;
  ps__buf body; /* enhanced packet blocks of the batch so far */
  uint32_t count;
  int64_t first_sec, last_sec;
  uint32_t first_frac, last_frac;
  uint8_t tsres;
  kmsg *parts; /* parts of the batch already cut (too large) */
  unsigned n_parts;
} ksess;

typedef struct kslot {
  ksess *ks;
  void *fslot;
} kslot;

typedef struct kafka_sink {
  ps_sink base;
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  rd_kafka_queue_t *mainq;
  int pipe_fd[2];
  char topic[256];
  size_t max_msg;
  ps__fmt_params params;
  ksess *sess[SESS_BUCKETS];
  kmsg *ready, **ready_tail; /* batches not yet handed to librdkafka */
  /* Delivery accounting by generation: each flush that hands messages
   * on opens a generation; outstanding[g - base] counts its messages
   * without a report. durable_gen: every generation up to it is done. */
  uint64_t gen, gbase, durable_gen;
  uint32_t *outstanding;
  size_t n_out, cap_out;
  int failed; /* a delivery failed for good, or a fatal error */
  char fail_why[PS_ERRMSG_MAX];
  uint64_t delivered, produced_msgs;
} kafka_sink;

static ksess **sess_slot(kafka_sink *ks, uint64_t id) {
  ksess **pp = &ks->sess[id % SESS_BUCKETS];
  while (*pp != NULL && (*pp)->id != id) {
    pp = &(*pp)->next;
  }
  return pp;
}

static void kmsg_free(kmsg *m) {
  if (m != NULL) {
    ps__buf_free(&m->value);
    free(m);
  }
}

/* ---------------- delivery accounting ---------------- */

static void advance_durable(kafka_sink *k) {
  while (k->n_out > 0 && k->outstanding[0] == 0) {
    memmove(k->outstanding, k->outstanding + 1,
            (k->n_out - 1) * sizeof(*k->outstanding));
    k->n_out--;
    k->durable_gen = k->gbase;
    k->gbase++;
  }
  if (k->n_out == 0) {
    k->durable_gen = k->gen;
    k->gbase = k->gen + 1;
  }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
  kafka_sink *k = opaque;
  (void)rk;
  uint64_t g = (uint64_t)(uintptr_t)m->_private;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (!k->failed) {
      k->failed = 1;
      snprintf(k->fail_why, sizeof(k->fail_why),
               "Kafka output: a message to topic %s was not delivered: %s",
               k->topic, rd_kafka_err2str(m->err));
    }
    return;
  }
  k->delivered++;
  k->base.async_kept++;
  if (g >= k->gbase && g - k->gbase < k->n_out &&
      k->outstanding[g - k->gbase] > 0) {
    k->outstanding[g - k->gbase]--;
  }
  advance_durable(k);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  kafka_sink *k = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[200];
    rd_kafka_fatal_error(rk, why, sizeof(why));
    if (!k->failed) {
      k->failed = 1;
      snprintf(k->fail_why, sizeof(k->fail_why),
               "Kafka output: fatal producer error: %s", why);
    }
    return;
  }
  /* Broker down, all brokers down: librdkafka retries; the receiver
   * stops acknowledging meanwhile. */
  ps__sink_log(&k->base, PS_LOG_WARNING, "Kafka: %s (%s)", reason,
               rd_kafka_err2name(err));
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
  kafka_sink *k = rd_kafka_opaque(rk);
  ps__sink_log(&k->base, level <= 3 ? PS_LOG_ERROR : PS_LOG_DEBUG,
               "Kafka %s: %s", fac, buf);
}

/* ---------------- sink operations ---------------- */

static int k_session_start(ps_sink *sk, const ps_session_info *s) {
  kafka_sink *k = (kafka_sink *)sk;
  ksess **pp = sess_slot(k, s->id);
  if (*pp != NULL) {
    return 0;
  }
  ksess *x = calloc(1, sizeof(*x));
  if (x == NULL ||
      (x->w = ps__fmt_pcapng.create(&ps__fmt_pcapng, &k->params)) == NULL) {
    free(x);
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  x->id = s->id;
  *pp = x;
  return 0;
}

static int k_iface(ps_sink *sk, const ps_session_info *s,
                   const ps_interface_info *ifc, void **slot) {
  kafka_sink *k = (kafka_sink *)sk;
  ksess *x = *sess_slot(k, s->id);
  char note[256];
  if (x == NULL &&
      (k_session_start(sk, s) != 0 || (x = *sess_slot(k, s->id)) == NULL)) {
    return PS_ERR_NOMEM;
  }
  kslot *sl = calloc(1, sizeof(*sl));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (sl == NULL || ps__fmt_pcapng.join(x->w, s, ifc, &now, NULL, &sl->fslot,
                                        note, sizeof(note)) != 0) {
    free(sl);
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  sl->ks = x;
  *slot = sl;
  return 0;
}

static int k_check(ps_sink *sk, const ps_interface_info *ifc,
                   const ps_packet *pkt) {
  kafka_sink *k = (kafka_sink *)sk;
  return ps__fmt_pcapng.check(&k->params, ifc, pkt, sk->errmsg);
}

/* Closes what the batch holds so far into a message (a part). */
static int cut_part(kafka_sink *k, ksess *x, const ps_session_info *s) {
  kmsg *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return PS_ERR_NOMEM;
  }
  if (ps__fmt_pcapng.header(x->w, &m->value, 1) < 0 ||
      ps__buf_append(&m->value, ps__buf_head(&x->body),
                     ps__buf_size(&x->body)) != 0) {
    kmsg_free(m);
    return PS_ERR_NOMEM;
  }
  (void)k;
  snprintf(m->sensor, sizeof(m->sensor), "%s", s->sensor);
  m->count = x->count;
  m->first_sec = x->first_sec;
  m->first_frac = x->first_frac;
  m->last_sec = x->last_sec;
  m->last_frac = x->last_frac;
  m->tsres = x->tsres;
  ps__buf_reset(&x->body);
  x->count = 0;
  kmsg **pp = &x->parts;
  while (*pp != NULL) {
    pp = &(*pp)->next;
  }
  *pp = m;
  x->n_parts++;
  return 0;
}

static int k_packet(ps_sink *sk, void *slot, const ps_session_info *s,
                    const ps_interface_info *ifc, const ps_packet *pkt) {
  kafka_sink *k = (kafka_sink *)sk;
  kslot *sl = slot;
  ksess *x = sl->ks;
  /* Never a packet split across messages: a batch larger than the limit
   * is cut at a packet boundary. */
  if (x->count > 0 &&
      ps__buf_size(&x->body) + pkt->caplen + 64 + HEADROOM > k->max_msg &&
      cut_part(k, x, s) != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  if (ps__fmt_pcapng.record(x->w, sl->fslot, ifc, pkt, &x->body) != 0) {
    return ps__seterr(sk->errmsg, PS_ERR_NOMEM, "out of memory");
  }
  if (x->count == 0) {
    x->first_sec = pkt->ts_sec;
    x->first_frac = pkt->ts_frac;
    x->tsres = ifc->tsres;
  }
  x->last_sec = pkt->ts_sec;
  x->last_frac = pkt->ts_frac;
  x->count++;
  return 0;
}

static void k_batch(ps_sink *sk, const ps_session_info *s, uint64_t stream,
                    uint64_t seq) {
  kafka_sink *k = (kafka_sink *)sk;
  ksess *x = *sess_slot(k, s->id);
  if (x == NULL) {
    return;
  }
  if ((x->count > 0 || x->n_parts == 0) && cut_part(k, x, s) != 0) {
    /* Out of memory: the batch is not handed on; the receiver sees the
     * flush fail and acknowledges nothing. */
    k->failed = 1;
    snprintf(k->fail_why, sizeof(k->fail_why), "Kafka output: out of memory");
    return;
  }
  unsigned i = 0;
  for (kmsg *m = x->parts; m != NULL; m = m->next) {
    m->stream = stream;
    m->seq = seq;
    m->part = ++i;
    m->parts = x->n_parts;
    snprintf(m->key, sizeof(m->key), "%s/%016llx", m->sensor,
             (unsigned long long)stream);
  }
  *k->ready_tail = x->parts;
  while (*k->ready_tail != NULL) {
    k->ready_tail = &(*k->ready_tail)->next;
  }
  x->parts = NULL;
  x->n_parts = 0;
}

static void k_iface_end(ps_sink *sk, void *slot, const ps_session_info *s,
                        const ps_interface_info *ifc,
                        const ps_capture_stats *st) {
  (void)sk;
  (void)s;
  (void)ifc;
  (void)st;
  kslot *sl = slot;
  if (sl != NULL) {
    ps__fmt_pcapng.leave(sl->ks->w, sl->fslot);
    free(sl);
  }
}

static void k_session_end(ps_sink *sk, const ps_session_info *s) {
  kafka_sink *k = (kafka_sink *)sk;
  ksess **pp = sess_slot(k, s->id);
  ksess *x = *pp;
  if (x == NULL) {
    return;
  }
  *pp = x->next;
  while (x->parts != NULL) {
    kmsg *m = x->parts;
    x->parts = m->next;
    kmsg_free(m);
  }
  ps__buf_free(&x->body);
  ps__fmt_pcapng.destroy(x->w);
  free(x);
}

static void ts_text(char *out, size_t n, int64_t sec, uint32_t frac,
                    uint8_t tsres) {
  if (tsres == PS_TSRES_NSEC) {
    snprintf(out, n, "%lld.%09u", (long long)sec, frac);
  } else {
    snprintf(out, n, "%lld.%06u", (long long)sec, frac);
  }
}

/* Hands one message to librdkafka (which takes the value's memory). */
static rd_kafka_resp_err_t produce(kafka_sink *k, kmsg *m) {
  char stream[20], seq[24], part[24], count[16], first[40], last[40];
  snprintf(stream, sizeof(stream), "%016llx", (unsigned long long)m->stream);
  snprintf(seq, sizeof(seq), "%llu", (unsigned long long)m->seq);
  snprintf(part, sizeof(part), "%u/%u", m->part, m->parts);
  snprintf(count, sizeof(count), "%u", m->count);
  ts_text(first, sizeof(first), m->first_sec, m->first_frac, m->tsres);
  ts_text(last, sizeof(last), m->last_sec, m->last_frac, m->tsres);
  return rd_kafka_producev(
      k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(m->key, strlen(m->key)),
      RD_KAFKA_V_VALUE(ps__buf_head(&m->value), ps__buf_size(&m->value)),
      RD_KAFKA_V_HEADER("ps-sensor", m->sensor, -1),
      RD_KAFKA_V_HEADER("ps-stream", stream, -1),
      RD_KAFKA_V_HEADER("ps-seq", seq, -1),
      RD_KAFKA_V_HEADER("ps-part", part, -1),
      RD_KAFKA_V_HEADER("ps-packets", count, -1),
      RD_KAFKA_V_HEADER("ps-first-ts", first, -1),
      RD_KAFKA_V_HEADER("ps-last-ts", last, -1),
      RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(k->gen)), RD_KAFKA_V_END);
}

static int k_poll(ps_sink *sk) {
  kafka_sink *k = (kafka_sink *)sk;
  char drain[64];
  while (read(k->pipe_fd[0], drain, sizeof(drain)) > 0) {
  }
  rd_kafka_poll(k->rk, 0);
  if (k->failed) {
    ps__seterr(sk->errmsg, PS_ERR_IO, "%s", k->fail_why);
    return PS_ERR_CLOSED;
  }
  return 0;
}

static int k_flush(ps_sink *sk) {
  kafka_sink *k = (kafka_sink *)sk;
  if (k->failed) {
    ps__seterr(sk->errmsg, PS_ERR_IO, "%s", k->fail_why);
    return PS_ERR_CLOSED;
  }
  if (k->ready == NULL) {
    return 0;
  }
  /* A new generation for what this flush hands on. */
  if (k->n_out == k->cap_out) {
    size_t nc = k->cap_out ? 2 * k->cap_out : 64;
    uint32_t *o = realloc(k->outstanding, nc * sizeof(*o));
    if (o == NULL) {
      return ps__seterr(sk->errmsg, PS_ERR_IO, "Kafka output: out of memory");
    }
    k->outstanding = o;
    k->cap_out = nc;
  }
  k->gen++;
  if (k->n_out == 0) {
    k->gbase = k->gen;
  }
  k->outstanding[k->n_out++] = 0;
  while (k->ready != NULL) {
    kmsg *m = k->ready;
    rd_kafka_resp_err_t e = produce(k, m);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      /* librdkafka's queue is full (the broker is away): keep the rest
       * for the next flush; the receiver stops reading meanwhile. */
      rd_kafka_poll(k->rk, 0);
      ps__seterr(sk->errmsg, PS_ERR_IO,
                 "Kafka output: the producer queue is full (is the broker "
                 "reachable?)");
      advance_durable(k);
      return PS_ERR_IO;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      k->failed = 1;
      snprintf(k->fail_why, sizeof(k->fail_why),
               "Kafka output: producing to topic %s failed: %s", k->topic,
               rd_kafka_err2str(e));
      ps__seterr(sk->errmsg, PS_ERR_IO, "%s", k->fail_why);
      return PS_ERR_CLOSED;
    }
    k->outstanding[k->n_out - 1]++;
    k->produced_msgs++;
    sk->async_sent++;
    k->ready = m->next;
    kmsg_free(m);
  }
  k->ready_tail = &k->ready;
  rd_kafka_poll(k->rk, 0);
  advance_durable(k);
  return 0;
}

static uint64_t k_token(ps_sink *sk) {
  return ((kafka_sink *)sk)->gen;
}

static uint64_t k_durable(ps_sink *sk) {
  return ((kafka_sink *)sk)->durable_gen;
}

static int k_fd(ps_sink *sk) {
  return ((kafka_sink *)sk)->pipe_fd[0];
}

static int k_close(ps_sink *sk) {
  kafka_sink *k = (kafka_sink *)sk;
  if (k->rk == NULL) {
    return 0;
  }
  /* What was handed on goes out if the broker takes it within 10 s;
   * what does not was never acknowledged, so the sensors still have it. */
  rd_kafka_resp_err_t e = rd_kafka_flush(k->rk, 10000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR || k->failed) {
    return ps__seterr(sk->errmsg, PS_ERR_IO,
                      "Kafka output: %llu messages not delivered at exit%s%s",
                      (unsigned long long)rd_kafka_outq_len(k->rk),
                      k->failed ? ": " : "", k->failed ? k->fail_why : "");
  }
  return 0;
}

static void k_destroy(ps_sink *sk) {
  kafka_sink *k = (kafka_sink *)sk;
  for (unsigned i = 0; i < SESS_BUCKETS; i++) {
    while (k->sess[i] != NULL) {
      ps_session_info s = {.id = k->sess[i]->id};
      k_session_end(sk, &s);
    }
  }
  while (k->ready != NULL) {
    kmsg *m = k->ready;
    k->ready = m->next;
    kmsg_free(m);
  }
  if (k->mainq != NULL) {
    rd_kafka_queue_destroy(k->mainq);
  }
  if (k->rkt != NULL) {
    rd_kafka_topic_destroy(k->rkt);
  }
  if (k->rk != NULL) {
    rd_kafka_destroy(k->rk);
  }
  for (int i = 0; i < 2; i++) {
    if (k->pipe_fd[i] >= 0) {
      close(k->pipe_fd[i]);
    }
  }
  free(k->outstanding);
  ps__sink_fini(sk);
  free(k);
}

static const ps__sink_ops kafka_ops = {
    .kind = "kafka",
    .session_start = k_session_start,
    .iface = k_iface,
    .check = k_check,
    .packet = k_packet,
    .iface_end = k_iface_end,
    .session_end = k_session_end,
    .batch = k_batch,
    .flush = k_flush,
    .token = k_token,
    .durable = k_durable,
    .fd = k_fd,
    .poll = k_poll,
    .close = k_close,
    .destroy = k_destroy,
};

static int set_prop(rd_kafka_conf_t *c, const char *key, const char *val,
                    char *err, size_t errlen) {
  return rd_kafka_conf_set(c, key, val, err, errlen) == RD_KAFKA_CONF_OK ? 0
                                                                         : -1;
}

int ps_kafka_sink(ps_sink **out, const ps_kafka_sink_options *opts,
                  size_t size) {
  ps_kafka_sink_options o;
  if (out == NULL) {
    return PS_ERR_INVALID;
  }
  *out = NULL;
  if (ps__copy_in(&o, sizeof(o), opts, size, sizeof(o)) != 0) {
    return PS_ERR_INVALID;
  }
  kafka_sink *k = calloc(1, sizeof(*k));
  if (k == NULL) {
    return PS_ERR_NOMEM;
  }
  ps__sink_init(&k->base, &kafka_ops);
  k->pipe_fd[0] = k->pipe_fd[1] = -1;
  k->ready_tail = &k->ready;
  *out = &k->base;
  char err[512];
  if (o.brokers == NULL || *o.brokers == '\0' || o.topic == NULL ||
      *o.topic == '\0') {
    return ps__seterr(k->base.errmsg, PS_ERR_INVALID,
                      "the Kafka output needs brokers and a topic");
  }
  snprintf(k->topic, sizeof(k->topic), "%s", o.topic);
  ps__fmt_params_init(&k->params, 0);
  if (pipe2(k->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
    return ps__seterr(k->base.errmsg, PS_ERR_SYSTEM, "pipe: %s",
                      strerror(errno));
  }
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  if (set_prop(c, "bootstrap.servers", o.brokers, err, sizeof(err)) != 0 ||
      set_prop(c, "enable.idempotence", "true", err, sizeof(err)) != 0 ||
      set_prop(c, "acks", "all", err, sizeof(err)) != 0 ||
      set_prop(c, "message.timeout.ms", "0", err, sizeof(err)) != 0 ||
      set_prop(c, "linger.ms", "5", err, sizeof(err)) != 0 ||
      /* Log lines come through the main queue, served by poll() in the
       * receiver's thread, not from librdkafka's own threads. */
      set_prop(c, "log.queue", "true", err, sizeof(err)) != 0) {
    rd_kafka_conf_destroy(c);
    return ps__seterr(k->base.errmsg, PS_ERR_INVALID, "Kafka: %s", err);
  }
  for (const char *const *p = o.properties; p != NULL && *p != NULL; p++) {
    char kv[1024];
    snprintf(kv, sizeof(kv), "%s", *p);
    char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
      rd_kafka_conf_destroy(c);
      return ps__seterr(k->base.errmsg, PS_ERR_INVALID,
                        "Kafka property '%s': give KEY=VALUE", *p);
    }
    *eq = '\0';
    if (set_prop(c, kv, eq + 1, err, sizeof(err)) != 0) {
      rd_kafka_conf_destroy(c);
      return ps__seterr(k->base.errmsg, PS_ERR_INVALID, "Kafka property %s: %s",
                        kv, err);
    }
  }
  char mm[32];
  size_t mml = sizeof(mm);
  k->max_msg = 1000000;
  if (rd_kafka_conf_get(c, "message.max.bytes", mm, &mml) == RD_KAFKA_CONF_OK) {
    k->max_msg = strtoul(mm, NULL, 10);
  }
  /* (A packet larger than the limit still goes, alone in its message:
   * the broker's own limit, which may be larger, decides.) */
  if (k->max_msg < 4 * HEADROOM) {
    k->max_msg = 4 * HEADROOM;
  }
  rd_kafka_conf_set_opaque(c, k);
  rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
  rd_kafka_conf_set_error_cb(c, on_error);
  rd_kafka_conf_set_log_cb(c, on_log);
  k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
  if (k->rk == NULL) {
    rd_kafka_conf_destroy(c); /* (rd_kafka_new takes it only on success) */
    return ps__seterr(k->base.errmsg, PS_ERR_INVALID, "Kafka: %s", err);
  }
  k->rkt = rd_kafka_topic_new(k->rk, o.topic, NULL);
  if (k->rkt == NULL) {
    return ps__seterr(k->base.errmsg, PS_ERR_INVALID, "Kafka topic %s: %s",
                      o.topic, rd_kafka_err2str(rd_kafka_last_error()));
  }
  rd_kafka_set_log_queue(k->rk, NULL);
  k->mainq = rd_kafka_queue_get_main(k->rk);
  rd_kafka_queue_io_event_enable(k->mainq, k->pipe_fd[1], "1", 1);
  return 0;
}

int ps_kafka_available(void) {
  return 1;
}

#else /* !HAVE_KAFKA */

int ps_kafka_sink(ps_sink **out, const ps_kafka_sink_options *opts,
                  size_t size) {
  (void)opts;
  (void)size;
  if (out != NULL) {
    *out = NULL;
  }
  return PS_ERR_STATE;
}

int ps_kafka_available(void) {
  return 0;
}

#endif
