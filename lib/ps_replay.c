/* The sensor's replay queue: the open batch, the sealed batches until
 * their acknowledgement, the overflow policy, the packet accounting. */
#include "config.h"

#include "ps_replay.h"

#include <stdlib.h>
#include <string.h>

/* drop-newest, connected, queue full: batches still sent (not kept) as
 * long as this many bytes of them wait for the socket. */
#define NORETAIN_SLACK (1u << 20)

void ps__replay_init(ps__replay *q, size_t max, ps_overflow policy) {
  memset(q, 0, sizeof(*q));
  q->max = max;
  q->policy = policy;
}

ps__rq_ent *ps__replay_at(ps__replay *q, size_t i) {
  return &q->ent[(q->head + i) % q->cap];
}

static void ent_free(ps__rq_ent *e) {
  free(e->frame);
  free(e->ifc);
  e->frame = NULL;
  e->ifc = NULL;
}

void ps__replay_free(ps__replay *q) {
  for (size_t i = 0; i < q->n; i++) {
    ent_free(ps__replay_at(q, i));
  }
  free(q->ent);
  q->ent = NULL;
  q->n = q->cap = q->head = 0;
  ps__buf_free(&q->raw);
}

/* Counts the packets of entry e into the counter at byte offset off of
 * ps_stream_interface_counters, and into the stream counter *total. */
static void count_ent(ps__replay *q, const ps__rq_ent *e, size_t off,
                      uint64_t *total) {
  *total += e->count;
  for (uint16_t i = 0; i < e->n_if; i++) {
    if (e->ifc[i].iface < q->n_ifaces) {
      uint64_t *c = (uint64_t *)((char *)&q->ifc[e->ifc[i].iface] + off);
      *c += e->ifc[i].n;
    }
  }
  q->ctr.packets_queued -= e->count;
}

#define CNT(field) offsetof(ps_stream_interface_counters, field)

/* The frame bytes of e leave the bound they were counted in. */
static void unkeep(ps__replay *q, const ps__rq_ent *e) {
  if (e->flags & PS_RQ_NORETAIN) {
    q->noretain_bytes -= e->len;
  } else {
    q->retained_bytes -= e->len;
  }
}

/* Entry dropped unsent: counted and turned into a placeholder. */
static void ent_drop(ps__replay *q, ps__rq_ent *e) {
  if (e->state == PS_RQ_FULL) {
    unkeep(q, e);
  }
  count_ent(q, e, CNT(packets_dropped_overflow),
            &q->ctr.packets_dropped_overflow);
  q->ctr.batches_dropped_overflow++;
  ent_free(e);
  e->state = PS_RQ_GONE;
}

/* Entry sent but never acknowledged: counted lost. */
static void ent_lose(ps__replay *q, ps__rq_ent *e) {
  if (e->state == PS_RQ_FULL) {
    unkeep(q, e);
  }
  count_ent(q, e, CNT(packets_lost), &q->ctr.packets_lost);
  ent_free(e);
  e->state = PS_RQ_GONE;
}

/* The written bytes of a batch go; its seq and counts stay until the
 * ACK. */
static void ent_stub(ps__replay *q, ps__rq_ent *e) {
  unkeep(q, e);
  free(e->frame);
  e->frame = NULL;
  e->state = PS_RQ_STUB;
}

static void pop(ps__replay *q) {
  ent_free(ps__replay_at(q, 0));
  q->head = (q->head + 1) % q->cap;
  q->n--;
  if (q->fed > 0) {
    q->fed--;
  }
}

/* Placeholders at the head have nothing left to wait for; the copy
 * keeps nothing that left the queue. */
static void trim(ps__replay *q) {
  while (q->n > 0 && ps__replay_at(q, 0)->state == PS_RQ_GONE) {
    pop(q);
  }
  if (q->release != NULL) {
    q->release(q->store_ud, q->n ? ps__replay_at(q, 0)->seq : q->seq + 1);
  }
}

static ps__rq_ent *push(ps__replay *q) {
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 64;
    ps__rq_ent *n = malloc(cap * sizeof(*n));
    if (n == NULL) {
      return NULL;
    }
    for (size_t i = 0; i < q->n; i++) {
      n[i] = *ps__replay_at(q, i);
    }
    free(q->ent);
    q->ent = n;
    q->cap = cap;
    q->head = 0;
  }
  ps__rq_ent *e = &q->ent[(q->head + q->n) % q->cap];
  q->n++;
  memset(e, 0, sizeof(*e));
  return e;
}

int ps__replay_add(ps__replay *q, const ps_packet *pkt, int64_t now_ms) {
  if (ps__batch_put(&q->raw, pkt) != 0) {
    return PS_ERR_NOMEM;
  }
  if (q->batch_count++ == 0) {
    q->batch_start_ms = now_ms;
  }
  if (q->cur_ifc[pkt->iface]++ == 0) {
    q->cur_touched[q->n_touched++] = (uint8_t)pkt->iface;
  }
  q->ctr.packets_sent++;
  q->ctr.packets_queued++;
  q->ctr.bytes_sent += pkt->caplen;
  q->ifc[pkt->iface].packets_sent++;
  return 0;
}

void ps__replay_release(ps__replay *q, uint64_t seq) {
  while (q->n > 0 && ps__replay_at(q, 0)->seq <= seq) {
    ps__rq_ent *e = ps__replay_at(q, 0);
    if (e->state != PS_RQ_GONE) {
      if (e->state == PS_RQ_FULL) {
        unkeep(q, e);
      }
      count_ent(q, e, CNT(packets_acked), &q->ctr.packets_acked);
      q->ctr.batches_acked++;
    }
    pop(q);
  }
  trim(q);
  if (seq > q->acked) {
    q->acked = seq;
  }
}

/* The resume point of a new connection tells which batches written to a
 * broken connection the receiver has (they are covered by it); stubs
 * above it cannot be resent: lost. */
void ps__replay_resolve_limbo(ps__replay *q) {
  q->heard = 1;
  if (!q->limbo) {
    return;
  }
  q->limbo = 0;
  for (size_t i = 0; i < q->n; i++) {
    ps__rq_ent *e = ps__replay_at(q, i);
    if (e->state == PS_RQ_STUB && (e->flags & PS_RQ_LIMBO)) {
      ent_lose(q, e);
    }
  }
  trim(q);
}

void ps__replay_connection_start(ps__replay *q) {
  q->heard = 0;
  q->fed = 0;
}

void ps__replay_connection_lost(ps__replay *q) {
  for (size_t i = 0; i < q->fed; i++) {
    ps__rq_ent *e = ps__replay_at(q, i);
    if (e->state == PS_RQ_STUB) {
      e->flags |= PS_RQ_LIMBO;
      q->limbo = 1;
    }
  }
  q->fed = 0;
  q->heard = 0;
  q->resend_upto = q->max_fed;
}

ps__rq_ent *ps__replay_next_to_feed(ps__replay *q) {
  while (q->fed < q->n && ps__replay_at(q, q->fed)->state != PS_RQ_FULL) {
    q->fed++; /* stubs of an earlier connection and placeholders */
  }
  return q->fed < q->n ? ps__replay_at(q, q->fed) : NULL;
}

void ps__replay_fed(ps__replay *q) {
  ps__rq_ent *e = ps__replay_at(q, q->fed);
  if (e->seq <= q->resend_upto) {
    q->ctr.batches_resent++;
  }
  if (e->seq > q->max_fed) {
    q->max_fed = e->seq;
  }
  if (e->flags & PS_RQ_NORETAIN) {
    ent_stub(q, e);
  }
  q->fed++;
}

void ps__replay_lose_all(ps__replay *q) {
  for (size_t i = 0; i < q->n; i++) {
    ps__rq_ent *e = ps__replay_at(q, i);
    if (e->state != PS_RQ_GONE) {
      ent_lose(q, e);
    }
  }
  trim(q);
  if (q->batch_count > 0) {
    /* Never sealed: also sent by the caller, never acknowledged. */
    q->ctr.packets_lost += q->batch_count;
    q->ctr.packets_queued -= q->batch_count;
    for (unsigned i = 0; i < q->n_touched; i++) {
      uint8_t id = q->cur_touched[i];
      q->ifc[id].packets_lost += q->cur_ifc[id];
      q->cur_ifc[id] = 0;
    }
    q->n_touched = 0;
    q->batch_count = 0;
    ps__buf_reset(&q->raw);
  }
  q->limbo = 0;
}

size_t ps__replay_pending(ps__replay *q) {
  size_t n = 0;
  for (size_t i = 0; i < q->n; i++) {
    n += ps__replay_at(q, i)->state != PS_RQ_GONE;
  }
  return n;
}

uint64_t ps__replay_last_seq(ps__replay *q) {
  for (size_t i = q->n; i > 0; i--) {
    ps__rq_ent *e = ps__replay_at(q, i - 1);
    if (e->state != PS_RQ_GONE) {
      return e->seq > q->acked ? e->seq : q->acked;
    }
  }
  return q->acked;
}

/* Makes room for a frame of len bytes by the overflow policy. Returns 1
 * to keep the batch, 2 to send it without keeping it, 0 to drop it. */
static int make_room(ps__replay *q, size_t len, int connected) {
  if (q->retained_bytes + len <= q->max) {
    return 1;
  }
  if (!q->overflowing) {
    q->overflowing = 1;
    ps__log(q->log, q->log_ud, PS_LOG_WARNING,
            "replay buffer full (%zu bytes unacknowledged): dropping the "
            "%s batches, and counting them",
            q->retained_bytes,
            q->policy == PS_OVERFLOW_DROP_OLDEST ? "oldest" : "newest");
  }
  if (q->policy == PS_OVERFLOW_DROP_OLDEST && len <= q->max) {
    for (size_t i = 0; i < q->n && q->retained_bytes + len > q->max; i++) {
      ps__rq_ent *e = ps__replay_at(q, i);
      if (e->state != PS_RQ_FULL || (e->flags & PS_RQ_NORETAIN)) {
        continue;
      }
      /* Written to this connection: its ACK may still come. Written to
       * a broken one: the next connection's first ACK tells. Else never
       * sent: dropped. */
      if (i < q->fed) {
        ent_stub(q, e);
      } else if (e->seq <= q->resend_upto && !q->heard) {
        ent_stub(q, e);
        e->flags |= PS_RQ_LIMBO;
        q->limbo = 1;
      } else {
        ent_drop(q, e);
      }
    }
    trim(q);
    return 1;
  }
  /* drop-newest, or a batch larger than the whole buffer. */
  if (connected && q->noretain_bytes + len <= NORETAIN_SLACK) {
    return 2;
  }
  return 0;
}

int ps__replay_seal(ps__replay *q, ps__codec *cc, int connected, char *errbuf) {
  if (q->batch_count == 0) {
    return 0;
  }
  /* Header room first, the (compressed or stored) data after it, then
   * the header is filled in: the queue entry takes the buffer as it is. */
  const size_t hdr = PS_FRAME_HDR + PS_BATCH_HDR;
  ps__buf fb = {0};
  if (ps__buf_reserve(&fb, hdr) == NULL) {
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  fb.len = hdr;
  uint8_t used;
  int rc = ps__codec_compress(cc, ps__buf_head(&q->raw), ps__buf_size(&q->raw),
                              &fb, &used);
  ps__rq_ifc *ifc = malloc(q->n_touched * sizeof(*ifc));
  if (rc != 0 || ifc == NULL) {
    ps__buf_free(&fb);
    free(ifc);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory compressing");
  }
  for (unsigned i = 0; i < q->n_touched; i++) {
    uint8_t id = q->cur_touched[i];
    ifc[i] = (ps__rq_ifc){id, q->cur_ifc[id]};
    q->cur_ifc[id] = 0;
  }
  ps__rq_ent tmp = {.len = ps__buf_size(&fb),
                    .count = q->batch_count,
                    .n_if = (uint16_t)q->n_touched,
                    .ifc = ifc};
  q->n_touched = 0;
  q->batch_count = 0;
  size_t raw_len = ps__buf_size(&q->raw);
  ps__buf_reset(&q->raw);
  int keep = make_room(q, tmp.len, connected);
  if (keep == 0) {
    ps__buf_free(&fb);
    count_ent(q, &tmp, CNT(packets_dropped_overflow),
              &q->ctr.packets_dropped_overflow);
    q->ctr.batches_dropped_overflow++;
    free(ifc);
    return 0;
  }
  ps__rq_ent *e = push(q);
  if (e == NULL) {
    ps__buf_free(&fb);
    free(ifc);
    return ps__seterr(errbuf, PS_ERR_NOMEM, "out of memory");
  }
  *e = tmp;
  e->seq = ++q->seq;
  e->frame = fb.data; /* off is 0: nothing was consumed */
  e->state = PS_RQ_FULL;
  ps__batch b = {.seq = e->seq,
                 .codec = used,
                 .count = e->count,
                 .raw_len = (uint32_t)raw_len};
  ps__put_batch_hdr(e->frame, &b, e->len - hdr);
  if (keep == 2) {
    e->flags |= PS_RQ_NORETAIN;
    q->noretain_bytes += e->len;
  } else {
    q->retained_bytes += e->len;
    if (q->retained_bytes + e->len <= q->max / 2) {
      q->overflowing = 0;
    }
    if (q->keep != NULL) {
      q->keep(q->store_ud, e);
    }
  }
  q->ctr.batches_sent++;
  return 0;
}

int ps__replay_has_room(const ps__replay *q, uint32_t caplen, int connected) {
  size_t next =
      ps__buf_size(&q->raw) + PS_PKT_HDR + caplen + PS_FRAME_HDR + PS_BATCH_HDR;
  return q->retained_bytes + next <= q->max ||
         (q->retained_bytes == 0 && connected);
}

int ps__replay_adopt(ps__replay *q, uint64_t seq, uint32_t count, uint16_t n_if,
                     const uint32_t *ifc, const uint8_t *frame, size_t len) {
  ps__rq_ent *e = push(q);
  if (e == NULL) {
    return PS_ERR_NOMEM;
  }
  e->frame = malloc(len);
  e->ifc = malloc((n_if ? n_if : 1) * sizeof(*e->ifc));
  if (e->frame == NULL || e->ifc == NULL) {
    /* A placeholder counted nowhere: nothing was taken up. */
    ent_free(e);
    q->n--;
    return PS_ERR_NOMEM;
  }
  memcpy(e->frame, frame, len);
  e->len = len;
  e->seq = seq;
  e->count = count;
  e->n_if = n_if;
  for (uint16_t k = 0; k < n_if; k++) {
    e->ifc[k] = (ps__rq_ifc){ifc[2 * k], ifc[2 * k + 1]};
    if (ifc[2 * k] < q->n_ifaces) {
      q->ifc[ifc[2 * k]].packets_recovered += ifc[2 * k + 1];
    }
  }
  e->state = PS_RQ_FULL;
  q->retained_bytes += len;
  q->seq = seq;
  q->ctr.packets_queued += count;
  q->ctr.packets_recovered += count;
  return 0;
}
