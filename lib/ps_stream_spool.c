/* The stream's spool: the replay queue's copy on disk, and adoption of
 * what a previous run left there. */
#include "config.h"

#include "ps_stream_spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_failed(ps__stream_spool *ss, const char *why) {
  ss->failed = 1;
  ps__log(ss->log, ss->log_ud, PS_LOG_WARNING,
          "%s: batches are kept in memory only from now on", why);
}

void ps__stream_spool_meta(ps__stream_spool *ss, const ps__ssession_env *env) {
  if (ss->sp == NULL || ss->failed) {
    return;
  }
  ps__spool_meta *m = calloc(1, sizeof(*m));
  char eb[PS_ERRMSG_MAX];
  if (m == NULL) {
    return;
  }
  m->stream_id = env->stream_id;
  m->codec = env->codec;
  snprintf(m->name, sizeof(m->name), "%s", env->name);
  m->n_ifaces = env->n_ifaces;
  for (uint32_t i = 0; i < env->n_ifaces; i++) {
    m->ifaces[i].linktype = env->ifaces[i].linktype;
    m->ifaces[i].snaplen = env->ifaces[i].snaplen;
    m->ifaces[i].tsres = env->ifaces[i].tsres;
    snprintf(m->ifaces[i].name, sizeof(m->ifaces[i].name), "%s",
             env->ifaces[i].name);
  }
  if (ps__spool_set_meta(ss->sp, m, eb) != 0) {
    write_failed(ss, eb);
  }
  free(m);
}

/* A batch entering the queue goes to the spool too. */
static void keep(void *ud, const ps__rq_ent *e) {
  ps__stream_spool *ss = ud;
  if (ss->sp == NULL || ss->failed) {
    return;
  }
  uint32_t ifc[2 * PS_MAX_IFACES];
  for (uint16_t k = 0; k < e->n_if; k++) {
    ifc[2 * k] = e->ifc[k].iface;
    ifc[2 * k + 1] = e->ifc[k].n;
  }
  ps__spool_rec r = {.seq = e->seq,
                     .count = e->count,
                     .n_if = e->n_if,
                     .ifc = ifc,
                     .frame = e->frame,
                     .len = e->len};
  char eb[PS_ERRMSG_MAX];
  if (ps__spool_append(ss->sp, &r, eb) != 0) {
    write_failed(ss, eb);
  }
}

/* The spool keeps nothing that left the queue. */
static void release(void *ud, uint64_t below) {
  ps__stream_spool *ss = ud;
  if (ss->sp != NULL) {
    ps__spool_release(ss->sp, below);
  }
}

typedef struct adopt_ctx {
  ps__stream_spool *ss;
  const ps__ssession_env *env;
  const ps__spool_meta *meta;
  ps__replay *rq;
  uint64_t batches;
  char *errbuf;
} adopt_ctx;

/* One batch a previous run left in the spool: back into the queue. */
static int adopt_batch(void *ud, const ps__spool_rec *r) {
  adopt_ctx *a = ud;
  if (a->batches == 0 && strcmp(a->meta->name, a->env->name) != 0) {
    return ps__seterr(a->errbuf, PS_ERR_INVALID,
                      "the spool %s holds the stream of sensor %s: give "
                      "--name %s, or another --spool-dir",
                      a->ss->dir, a->meta->name, a->meta->name);
  }
  /* Its packets count per interface of that stream. */
  a->rq->n_ifaces = a->meta->n_ifaces;
  if (ps__replay_adopt(a->rq, r->seq, r->count, r->n_if, r->ifc, r->frame,
                       r->len) != 0) {
    return ps__seterr(a->errbuf, PS_ERR_NOMEM, "out of memory");
  }
  a->batches++;
  return 0;
}

int ps__stream_spool_open(ps__stream_spool *ss, ps__ssession_env *env,
                          ps__ssession_iface *ifaces, ps__replay *rq,
                          char *errbuf) {
  int rc = ps__spool_open(&ss->sp, ss->dir, ss->log, ss->log_ud, errbuf);
  if (rc != 0) {
    return rc;
  }
  rq->keep = keep;
  rq->release = release;
  rq->store_ud = ss;
  ps__spool_meta *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  adopt_ctx a = {.ss = ss, .env = env, .meta = m, .rq = rq, .errbuf = errbuf};
  rc = ps__spool_recover(ss->sp, m, adopt_batch, &a, errbuf);
  if (rc == 1) {
    env->stream_id = m->stream_id;
    env->codec = m->codec;
    env->have_codec = 1;
    if (m->codec != PS_WIRE_CODEC_STORED) {
      env->codec_pref = m->codec;
    }
    for (uint32_t i = 0; i < m->n_ifaces; i++) {
      ps__ssession_iface *f = &ifaces[i];
      f->name = strdup(m->ifaces[i].name);
      if (f->name == NULL) {
        free(m);
        return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
      }
      f->linktype = m->ifaces[i].linktype;
      f->snaplen = m->ifaces[i].snaplen;
      f->tsres = m->ifaces[i].tsres;
      env->n_ifaces = i + 1;
    }
    rq->n_ifaces = env->n_ifaces;
    rq->max_fed = rq->resend_upto = rq->seq;
    ps__log(ss->log, ss->log_ud, PS_LOG_WARNING,
            "spool %s: %llu packets in %llu batches a previous run of "
            "sensor %s did not get acknowledged; sending them first",
            ss->dir, (unsigned long long)rq->ctr.packets_recovered,
            (unsigned long long)a.batches, env->name);
  }
  free(m);
  return rc;
}

void ps__stream_spool_close(ps__stream_spool *ss, int done) {
  ps__spool_close(ss->sp, done);
  ss->sp = NULL;
}
