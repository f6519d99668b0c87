/* The receiver's Kafka input (--from-kafka): a consumer in a group reads
 * the Kafka output's messages (docs/KAFKA.md) back into the receiver's
 * outputs. Each stream (sensor name and stream id) is one session to
 * the outputs, for as long as the consumer runs. Batches are taken once:
 * a message whose (batch, part) is not past the stream's last one is a
 * duplicate (a batch a sensor resent after a receiver died), skipped and
 * counted; the streams' positions are the receiver's stream table, which
 * the journal keeps with the files. Offsets are committed only once the
 * outputs and the journal hold everything consumed (the receiver's
 * commit), so a consumer killed at any moment and restarted neither
 * loses nor repeats a packet: what it re-reads past the committed offset
 * is known to the journal and skipped. On a rebalance the partitions
 * given up are committed first. librdkafka's consumer queue wakes the
 * receiver's loop through a pipe; nothing here blocks but the commit
 * inside a rebalance. */
#include "config.h"

#include "ps_kafka_in.h"
#include "ps_kmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_KAFKA
#include <librdkafka/rdkafka.h>

#define STREAM_BUCKETS 1024
#define BUDGET_MSGS 2000 /* messages per loop round */
#define BAD_LOG_MAX 20   /* bad messages logged one by one */
/* Lines a topic writer can cause (a stream started or ended, a gap): at
 * most LOG_WINDOW_MAX per LOG_WINDOW_MS of each kind, then one line with
 * the number not shown. */
#define LOG_WINDOW_MS 10000
#define LOG_WINDOW_MAX 20

typedef struct kin_iface {
  ps_interface_info info;
  char name[256];
  void *slot[PS_MAX_SINKS];
} kin_iface;

typedef struct kin_loglim {
  const char *what; /* "stream lines", "gap lines" */
  int64_t since;
  unsigned n;
  uint64_t hidden;
} kin_loglim;

typedef struct kin_stream {
  struct kin_stream *next;
  struct kin_stream *newer, *older; /* by last message, for the limit */
  char sensor[256];
  uint64_t stream;
  ps_session_info info;
  char peer[96];
  kin_iface *ifaces[PS_MAX_IFACES];
  unsigned n_if;
  unsigned started; /* sinks told of the session */
  /* The last message taken (batch, part of parts): a batch left
   * incomplete is a gap even when the next batch follows it. */
  uint64_t last_seq;
  unsigned last_part, last_parts;
  int refused; /* an output refused it: its messages are skipped */
} kin_stream;

struct ps__kin {
  ps__kin_env env;
  rd_kafka_t *rk;
  rd_kafka_queue_t *q;
  int pipe_fd[2];
  char topic[256];
  kin_stream *streams[STREAM_BUCKETS];
  kin_stream *newest, *oldest;
  unsigned n_streams;
  uint64_t next_id;
  uint64_t uncommitted; /* messages consumed since the last commit */
  int failed;
  char errmsg[PS_ERRMSG_MAX];
  ps__kin_counters ctr;
  kin_loglim lim_streams, lim_gaps;
  /* The message being taken. */
  kin_stream *cur;
  unsigned map[PS_KMSG_MAX_IFACES];
  int sink_error;
};

static unsigned bucket(const char *sensor, uint64_t stream) {
  uint64_t h = stream * 0x9E3779B97F4A7C15ull;
  for (const char *p = sensor; *p; p++) {
    h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
  }
  return (unsigned)(h % STREAM_BUCKETS);
}

static void lim_flush(ps__kin *k, kin_loglim *l) {
  if (l->hidden > 0) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_INFO,
            "Kafka input: %llu more %s not logged one by one (at most %d "
            "per %d s)",
            (unsigned long long)l->hidden, l->what, LOG_WINDOW_MAX,
            LOG_WINDOW_MS / 1000);
    l->hidden = 0;
  }
}

/* Whether one more line of l's kind may go now. */
static int lim_ok(ps__kin *k, kin_loglim *l) {
  int64_t now = ps__now_ms();
  if (l->since == 0 || now - l->since >= LOG_WINDOW_MS) {
    lim_flush(k, l);
    l->since = now;
    l->n = 0;
  }
  if (l->n < LOG_WINDOW_MAX) {
    l->n++;
    return 1;
  }
  l->hidden++;
  return 0;
}

static void bad(ps__kin *k, const rd_kafka_message_t *m, const char *why) {
  k->ctr.bad++;
  if (k->ctr.bad <= BAD_LOG_MAX) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_WARNING,
            "Kafka input: message at %s/%d offset %lld skipped: %s%s",
            rd_kafka_topic_name(m->rkt), (int)m->partition,
            (long long)m->offset, why,
            k->ctr.bad == BAD_LOG_MAX ? " (further ones only counted)" : "");
  }
}

static void lru_unlink(ps__kin *k, kin_stream *s) {
  if (s->newer != NULL) {
    s->newer->older = s->older;
  } else {
    k->newest = s->older;
  }
  if (s->older != NULL) {
    s->older->newer = s->newer;
  } else {
    k->oldest = s->newer;
  }
  s->newer = s->older = NULL;
}

static void lru_front(ps__kin *k, kin_stream *s) {
  s->older = k->newest;
  s->newer = NULL;
  if (k->newest != NULL) {
    k->newest->newer = s;
  } else {
    k->oldest = s;
  }
  k->newest = s;
}

static void stream_end(ps__kin *k, kin_stream *s);

/* At the limit (--max-sensors): the stream whose last message is the
 * oldest ends (its outputs close it, as when a network sensor leaves);
 * its position stays in the stream table, so a later message of it
 * starts a new session that skips what was taken. Without this, every
 * sensor name and stream id anyone may write into the topic would keep
 * a session (memory, and with --split-by-sensor an open file) for as
 * long as the consumer runs. */
static void stream_evict(ps__kin *k) {
  kin_stream *s = k->oldest;
  if (s == NULL) {
    return;
  }
  for (kin_stream **pp = &k->streams[bucket(s->sensor, s->stream)]; *pp != NULL;
       pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  lru_unlink(k, s);
  k->n_streams--;
  k->ctr.ended++;
  if (lim_ok(k, &k->lim_streams)) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_INFO,
            "Kafka input: stream %016llx of sensor %s ended, the one "
            "longest without a message: %u streams open is the limit "
            "(--max-sensors); a later message starts it again",
            (unsigned long long)s->stream, s->sensor, k->n_streams + 1);
  }
  stream_end(k, s);
}

static unsigned max_streams(const ps__kin *k) {
  unsigned m = k->env.max_streams ? *k->env.max_streams : 0;
  return m ? m : 1024;
}

static kin_stream *stream_get(ps__kin *k, const char *sensor, uint64_t stream) {
  kin_stream **pp = &k->streams[bucket(sensor, stream)];
  for (; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->stream == stream && strcmp((*pp)->sensor, sensor) == 0) {
      kin_stream *s = *pp;
      lru_unlink(k, s);
      lru_front(k, s);
      return s;
    }
  }
  while (k->n_streams >= max_streams(k) && k->oldest != NULL) {
    stream_evict(k);
  }
  pp = &k->streams[bucket(sensor, stream)];
  kin_stream *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return NULL;
  }
  snprintf(s->sensor, sizeof(s->sensor), "%s", sensor);
  s->stream = stream;
  snprintf(s->peer, sizeof(s->peer), "kafka:%.80s", k->topic);
  s->info.id = k->next_id++;
  s->info.sensor = s->sensor;
  s->info.peer = s->peer;
  for (unsigned i = 0; i < k->env.n_sinks; i++) {
    if (ps__sink_session_start(k->env.sinks[i], &s->info) != 0) {
      if (lim_ok(k, &k->lim_streams)) {
        ps__log(k->env.log, k->env.log_ud, PS_LOG_ERROR,
                "Kafka input: sensor %s: output refused it: %s", sensor,
                k->env.sinks[i]->errmsg);
      }
      s->refused = 1;
      break;
    }
    s->started = i + 1;
  }
  s->next = *pp;
  *pp = s;
  lru_front(k, s);
  k->n_streams++;
  k->ctr.streams++;
  if (lim_ok(k, &k->lim_streams)) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_INFO,
            "Kafka input: stream %016llx of sensor %s",
            (unsigned long long)stream, sensor);
  }
  return s;
}

static void stream_end(ps__kin *k, kin_stream *s) {
  for (unsigned i = 0; i < s->n_if; i++) {
    kin_iface *f = s->ifaces[i];
    for (unsigned j = 0; j < s->started; j++) {
      ps__sink_iface_end(k->env.sinks[j], f->slot[j], &s->info, &f->info, NULL);
    }
    free(f);
  }
  for (unsigned j = 0; j < s->started; j++) {
    ps__sink_session_end(k->env.sinks[j], &s->info);
  }
  free(s);
}

static int on_iface(void *ud, unsigned idx, const ps__kmsg_iface *mi) {
  ps__kin *k = ud;
  kin_stream *s = k->cur;
  for (unsigned i = 0; i < s->n_if; i++) {
    kin_iface *f = s->ifaces[i];
    if (strcmp(f->name, mi->name) == 0 && f->info.linktype == mi->linktype &&
        f->info.tsres == mi->tsres) {
      k->map[idx] = i;
      return 0;
    }
  }
  if (s->n_if >= PS_MAX_IFACES) {
    return PS_ERR_LIMIT;
  }
  kin_iface *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    return PS_ERR_NOMEM;
  }
  snprintf(f->name, sizeof(f->name), "%s", mi->name);
  f->info.id = s->n_if;
  f->info.name = f->name;
  f->info.linktype = mi->linktype;
  f->info.snaplen = mi->snaplen;
  f->info.tsres = mi->tsres;
  for (unsigned j = 0; j < s->started; j++) {
    if (ps__sink_iface(k->env.sinks[j], &s->info, &f->info, &f->slot[j]) != 0) {
      ps__log(k->env.log, k->env.log_ud, PS_LOG_ERROR,
              "Kafka input: sensor %s interface %s: %s", s->sensor, f->name,
              k->env.sinks[j]->errmsg);
      for (unsigned i = 0; i < j; i++) {
        ps__sink_iface_end(k->env.sinks[i], f->slot[i], &s->info, &f->info,
                           NULL);
      }
      free(f);
      return PS_ERR_REFUSED;
    }
  }
  k->map[idx] = s->n_if;
  s->ifaces[s->n_if++] = f;
  return 0;
}

/* First pass: every output can hold every packet, or the message is
 * skipped whole. */
static int on_check(void *ud, unsigned idx, const ps_packet *pkt) {
  ps__kin *k = ud;
  kin_iface *f = k->cur->ifaces[k->map[idx]];
  for (unsigned j = 0; j < k->cur->started; j++) {
    if (ps__sink_check(k->env.sinks[j], &f->info, pkt) != 0) {
      return PS_ERR_PROTOCOL;
    }
  }
  return 0;
}

static int on_packet(void *ud, unsigned idx, const ps_packet *pkt) {
  ps__kin *k = ud;
  kin_iface *f = k->cur->ifaces[k->map[idx]];
  ps_packet p = *pkt;
  p.iface = f->info.id;
  for (unsigned j = 0; j < k->cur->started; j++) {
    if (ps__sink_packet(k->env.sinks[j], f->slot[j], &k->cur->info, &f->info,
                        &p) != 0) {
      k->sink_error = 1;
      return PS_ERR_IO;
    }
  }
  k->ctr.packets++;
  k->ctr.bytes += p.caplen;
  return 0;
}

static void take(ps__kin *k, const rd_kafka_message_t *m) {
  char why[PS_ERRMSG_MAX];
  rd_kafka_headers_t *hs = NULL;
  ps__kmsg_hdr h[16];
  size_t n = 0;
  k->ctr.messages++;
  if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0;
         n < 16 && rd_kafka_header_get_all(hs, i, &name, &val, &len) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
      h[n].name = name;
      h[n].value = val;
      h[n].len = len;
      n++;
    }
  }
  ps__kmsg_meta meta;
  if (ps__kmsg_meta_parse(&meta, h, n, why) != 0) {
    bad(k, m, why);
    return;
  }
  if (meta.seq >= ((uint64_t)1 << 47)) {
    bad(k, m, "absurd batch sequence in the ps-seq header");
    return;
  }
  /* Checked whole before anything of it is taken; a section cut at a
   * block boundary is whole blocks, but not the packets the header
   * counts. */
  int np = ps__kmsg_section(m->payload, m->len, meta.sensor, NULL, why);
  if (np < 0) {
    bad(k, m, why);
    return;
  }
  if ((uint32_t)np != meta.packets) {
    snprintf(why, sizeof(why),
             "its section holds %d packets, its ps-packets header says %u", np,
             (unsigned)meta.packets);
    bad(k, m, why);
    return;
  }
  ps__stream_ent *e = ps__streamtab_get(k->env.streams, meta.sensor,
                                        strlen(meta.sensor), meta.stream);
  if (e == NULL) {
    bad(k, m, "out of memory");
    return;
  }
  e->used_ms = ps__now_ms(); /* (the table forgets idle streams first) */
  uint64_t pos = meta.seq << 16 | meta.part;
  if (pos <= e->seq) {
    k->ctr.duplicates++;
    return;
  }
  kin_stream *s = stream_get(k, meta.sensor, meta.stream);
  if (s == NULL) {
    bad(k, m, "out of memory");
    return;
  }
  if (s->refused) {
    k->ctr.refused++;
    return;
  }
  uint64_t last_seq = e->seq >> 16;
  unsigned last_part = (unsigned)(e->seq & 0xffff);
  int gap = e->seq == 0 ? 0
            : meta.part == 1
                ? meta.seq != last_seq + 1 && meta.seq != last_seq
                : meta.seq != last_seq || meta.part != last_part + 1;
  if (!gap && e->seq != 0 && s->last_parts > 0 &&
      (s->last_seq << 16 | s->last_part) == e->seq &&
      s->last_part < s->last_parts &&
      !(meta.seq == s->last_seq && meta.part == s->last_part + 1)) {
    gap = 1; /* parts of the last batch are not in the topic */
  }
  if (gap) {
    k->ctr.gaps++;
  }
  if (gap && lim_ok(k, &k->lim_gaps)) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_WARNING,
            "Kafka input: sensor %s stream %016llx: batch %llu part %u "
            "follows batch %llu part %u (a gap: not in the topic)",
            meta.sensor, (unsigned long long)meta.stream,
            (unsigned long long)meta.seq, meta.part,
            (unsigned long long)last_seq, last_part);
  }
  k->cur = s;
  ps__kmsg_cb cb = {on_iface, on_check, k};
  int rc = ps__kmsg_section(m->payload, m->len, meta.sensor, &cb, why);
  if (rc < 0) {
    bad(k, m,
        rc == PS_ERR_PROTOCOL ? "an output cannot hold its packets"
                              : "its interfaces are refused");
    return;
  }
  cb.packet = on_packet;
  k->sink_error = 0;
  rc = ps__kmsg_section(m->payload, m->len, meta.sensor, &cb, why);
  if (rc < 0 || k->sink_error) {
    /* (An output's write error shows at its flush.) */
    return;
  }
  ps__streamtab_advance(k->env.streams, e, pos);
  s->last_seq = meta.seq;
  s->last_part = meta.part;
  s->last_parts = meta.parts;
  if (meta.part == meta.parts) {
    k->ctr.batches++;
  }
}

/* The outputs (and journal) hold everything consumed: offsets may go. */
static int commit(ps__kin *k, int async) {
  if (k->uncommitted == 0) {
    return 0;
  }
  if (k->env.commit(k->env.ud) != 0) {
    return -1;
  }
  rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, NULL, async);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_WARNING,
            "Kafka input: committing offsets: %s (they are committed with "
            "the next ones)",
            rd_kafka_err2str(e));
    return 0;
  }
  k->uncommitted = 0;
  k->ctr.commits++;
  return 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  ps__kin *k = opaque;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_INFO,
            "Kafka input: %d partitions of %s assigned", parts->cnt, k->topic);
    rd_kafka_assign(rk, parts);
    k->ctr.rebalances++;
    return;
  }
  /* Partitions go to another consumer: what was taken of them is
   * written and its offsets committed first, so nothing is repeated. */
  if (commit(k, 0) != 0) {
    ps__log(k->env.log, k->env.log_ud, PS_LOG_ERROR,
            "Kafka input: the outputs cannot write while partitions are "
            "revoked: their messages since the last commit will be read "
            "again (by the next owner)");
  }
  ps__log(k->env.log, k->env.log_ud, PS_LOG_INFO,
          "Kafka input: %d partitions revoked", parts ? parts->cnt : 0);
  rd_kafka_assign(rk, NULL);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  ps__kin *k = opaque;
  (void)rk;
  ps__log(k->env.log, k->env.log_ud, PS_LOG_WARNING, "Kafka input: %s (%s)",
          reason, rd_kafka_err2name(err));
}

int ps__kin_new(ps__kin **out, const ps__kin_env *env, const char *brokers,
                const char *topic, const char *group, const char *const *props,
                char *errmsg) {
  *out = NULL;
  ps__kin *k = calloc(1, sizeof(*k));
  if (k == NULL) {
    return ps__seterr(errmsg, PS_ERR_NOMEM, "out of memory");
  }
  k->env = *env;
  k->next_id = 1;
  k->lim_streams.what = "stream lines";
  k->lim_gaps.what = "gap lines";
  k->pipe_fd[0] = k->pipe_fd[1] = -1;
  snprintf(k->topic, sizeof(k->topic), "%s", topic);
  char err[512];
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) ||
      rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
      rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
      rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err)) ||
      rd_kafka_conf_set(c, "enable.partition.eof", "false", err, sizeof(err))) {
    rd_kafka_conf_destroy(c);
    free(k);
    return ps__seterr(errmsg, PS_ERR_INVALID, "Kafka: %s", err);
  }
  for (const char *const *p = props; p != NULL && *p != NULL; p++) {
    char kv[1024];
    snprintf(kv, sizeof(kv), "%s", *p);
    char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
      rd_kafka_conf_destroy(c);
      free(k);
      return ps__seterr(errmsg, PS_ERR_INVALID,
                        "Kafka property '%s': give KEY=VALUE", *p);
    }
    *eq = '\0';
    if (rd_kafka_conf_set(c, kv, eq + 1, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(c);
      free(k);
      return ps__seterr(errmsg, PS_ERR_INVALID, "Kafka property %s: %s", kv,
                        err);
    }
  }
  rd_kafka_conf_set_opaque(c, k);
  rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
  rd_kafka_conf_set_error_cb(c, on_error);
  k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
  if (k->rk == NULL) {
    rd_kafka_conf_destroy(c); /* (rd_kafka_new takes it only on success) */
    free(k);
    return ps__seterr(errmsg, PS_ERR_INVALID, "Kafka: %s", err);
  }
  rd_kafka_poll_set_consumer(k->rk);
  if (pipe2(k->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
    ps__kin_free(k);
    return ps__seterr(errmsg, PS_ERR_SYSTEM, "pipe: %s", strerror(errno));
  }
  k->q = rd_kafka_queue_get_consumer(k->rk);
  rd_kafka_queue_io_event_enable(k->q, k->pipe_fd[1], "1", 1);
  rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ps__kin_free(k);
    return ps__seterr(errmsg, PS_ERR_INVALID, "Kafka: subscribing to %s: %s",
                      topic, rd_kafka_err2str(e));
  }
  *out = k;
  return 0;
}

int ps__kin_fd(ps__kin *k) {
  return k->pipe_fd[0];
}

int ps__kin_step(ps__kin *k, int blocked) {
  char drain[64];
  while (read(k->pipe_fd[0], drain, sizeof(drain)) > 0) {
  }
  if (blocked) {
    /* The outputs cannot write: take nothing more, but keep the group
     * membership (rebalances, heartbeats) alive. */
    return commit(k, 1);
  }
  for (unsigned i = 0; i < BUDGET_MSGS; i++) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 0);
    if (m == NULL) {
      break;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      take(k, m);
      k->uncommitted++;
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ps__log(k->env.log, k->env.log_ud, PS_LOG_WARNING, "Kafka input: %s",
              rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
  }
  return commit(k, 1);
}

void ps__kin_get_counters(ps__kin *k, ps__kin_counters *out) {
  *out = k->ctr;
}

static void streams_end_all(ps__kin *k) {
  for (unsigned i = 0; i < STREAM_BUCKETS; i++) {
    while (k->streams[i] != NULL) {
      kin_stream *s = k->streams[i];
      k->streams[i] = s->next;
      stream_end(k, s);
    }
  }
  k->newest = k->oldest = NULL;
  k->n_streams = 0;
}

int ps__kin_close(ps__kin *k) {
  if (k == NULL || k->rk == NULL) {
    return 0;
  }
  int rc = commit(k, 0);
  streams_end_all(k);
  lim_flush(k, &k->lim_streams);
  lim_flush(k, &k->lim_gaps);
  rd_kafka_consumer_close(k->rk);
  return rc;
}

void ps__kin_free(ps__kin *k) {
  if (k == NULL) {
    return;
  }
  streams_end_all(k);
  if (k->q != NULL) {
    rd_kafka_queue_destroy(k->q);
  }
  if (k->rk != NULL) {
    rd_kafka_destroy(k->rk);
  }
  for (int i = 0; i < 2; i++) {
    if (k->pipe_fd[i] >= 0) {
      close(k->pipe_fd[i]);
    }
  }
  free(k);
}

#endif
