/* Unit tests of lib/ps_replay, the sensor's replay queue: pure data, no
 * socket, no clock. Batches are stored (no compression), so their sizes
 * are known: BATCH_PKTS packets of PKT_LEN bytes make one frame of
 * FRAME_LEN bytes. */
#include "config.h"

#include "unit_util.h"

#include "ps_codec.h"
#include "ps_proto.h"
#include "ps_replay.h"

#define PKT_LEN 1000
#define BATCH_PKTS 10
#define FRAME_LEN (PS_FRAME_HDR + PS_BATCH_HDR + BATCH_PKTS * (24 + PKT_LEN))

static char logbuf[4096];

static void log_fn(ps_log_level level, const char *msg, void *ud) {
  size_t n = strlen(logbuf);
  snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

typedef struct fixture {
  ps__replay q;
  ps__codec *cc;
  char err[PS_ERRMSG_MAX];
  /* What the store hooks heard. */
  uint64_t kept[64];
  int n_kept;
  uint64_t released_below;
} fixture;

static void store_keep(void *ud, const ps__rq_ent *e) {
  fixture *f = ud;
  ck_assert_uint_eq(e->state, PS_RQ_FULL);
  if (f->n_kept < 64) {
    f->kept[f->n_kept] = e->seq;
  }
  f->n_kept++;
}

static void store_release(void *ud, uint64_t below) {
  ((fixture *)ud)->released_below = below;
}

static void fx_init(fixture *f, size_t max, ps_overflow policy) {
  memset(f, 0, sizeof(*f));
  ps__replay_init(&f->q, max, policy);
  f->q.n_ifaces = 2;
  f->q.log = log_fn;
  f->q.keep = store_keep;
  f->q.release = store_release;
  f->q.store_ud = f;
  f->cc = ps__codec_new(PS_WIRE_CODEC_STORED, 0);
  ck_assert_ptr_nonnull(f->cc);
  logbuf[0] = '\0';
}

static void fx_free(fixture *f) {
  ps__replay_free(&f->q);
  ps__codec_free(f->cc);
}

/* The accounting the queue keeps, whatever happened. */
static void expect_invariant(const ps__replay *q) {
  const ps_stream_counters *c = &q->ctr;
  ck_assert_msg(c->packets_sent + c->packets_recovered ==
                    c->packets_acked + c->packets_dropped_overflow +
                        c->packets_lost + c->packets_queued,
                "sent %llu + recovered %llu != acked %llu + dropped %llu + "
                "lost %llu + queued %llu",
                (unsigned long long)c->packets_sent,
                (unsigned long long)c->packets_recovered,
                (unsigned long long)c->packets_acked,
                (unsigned long long)c->packets_dropped_overflow,
                (unsigned long long)c->packets_lost,
                (unsigned long long)c->packets_queued);
  for (uint32_t i = 0; i < q->n_ifaces; i++) {
    const ps_stream_interface_counters *k = &q->ifc[i];
    ck_assert_uint_le(k->packets_acked + k->packets_dropped_overflow +
                          k->packets_lost,
                      k->packets_sent + k->packets_recovered);
  }
}

/* One batch of BATCH_PKTS packets (alternating interfaces 0 and 1; the
 * first byte of each is its batch number), sealed. */
static void add_batch(fixture *f, int connected) {
  static uint8_t data[PKT_LEN];
  data[0] = (uint8_t)(f->q.seq + 1);
  for (int i = 0; i < BATCH_PKTS; i++) {
    ps_packet p = {.ts_sec = 1,
                   .ts_frac = (uint32_t)i,
                   .caplen = PKT_LEN,
                   .len = PKT_LEN,
                   .iface = (uint32_t)(i % 2),
                   .data = data};
    ck_assert_int_eq(ps__replay_add(&f->q, &p, 1000 + i), 0);
  }
  ck_assert_int_eq(ps__replay_seal(&f->q, f->cc, connected, f->err), 0);
  expect_invariant(&f->q);
}

/* Writes every entry the connection has not had yet. */
static int feed_all(fixture *f) {
  int n = 0;
  while (ps__replay_next_to_feed(&f->q) != NULL) {
    ps__replay_fed(&f->q);
    n++;
  }
  return n;
}

START_TEST(test_seal_makes_a_valid_batch_frame) {
  fixture f;
  fx_init(&f, 1u << 20, PS_OVERFLOW_DROP_OLDEST);
  static uint8_t data[PKT_LEN];
  unit_fill_random(data, sizeof(data), 3);
  ps_packet p = {.ts_sec = 1700000000,
                 .ts_frac = 17,
                 .caplen = 100,
                 .len = 1500,
                 .iface = 1,
                 .data = data};
  ck_assert_int_eq(ps__replay_add(&f.q, &p, 5000), 0);
  ck_assert_int_eq(f.q.batch_start_ms, 5000);
  p.caplen = PKT_LEN;
  p.iface = 0;
  ck_assert_int_eq(ps__replay_add(&f.q, &p, 5050), 0);
  ck_assert_int_eq(f.q.batch_start_ms, 5000);
  ck_assert_uint_eq(f.q.ctr.packets_queued, 2);
  ck_assert_uint_eq(f.q.ctr.bytes_sent, 100 + PKT_LEN);
  ck_assert_int_eq(ps__replay_seal(&f.q, f.cc, 1, f.err), 0);
  /* An empty batch is not sealed. */
  ck_assert_int_eq(ps__replay_seal(&f.q, f.cc, 1, f.err), 0);
  ck_assert_uint_eq(f.q.n, 1);
  ck_assert_uint_eq(f.q.seq, 1);
  ck_assert_uint_eq(f.q.ctr.batches_sent, 1);
  ck_assert_int_eq(f.n_kept, 1);
  ck_assert_uint_eq(f.kept[0], 1);
  ps__rq_ent *e = ps__replay_at(&f.q, 0);
  ck_assert_uint_eq(e->state, PS_RQ_FULL);
  ck_assert_uint_eq(e->count, 2);
  ck_assert_uint_eq(f.q.retained_bytes, e->len);
  /* The entry is one whole BATCH frame a receiver decodes. */
  ps__limits lim;
  ps__limits_default(&lim);
  ps__frame fr;
  size_t used;
  ck_assert_int_eq(ps__frame_parse(e->frame, e->len, &lim, &fr, &used, f.err),
                   1);
  ck_assert_uint_eq(used, e->len);
  ps__batch b;
  ck_assert_int_eq(ps__dec_batch(&fr, &lim, &b, f.err), 0);
  ck_assert_uint_eq(b.seq, 1);
  ck_assert_uint_eq(b.count, 2);
  size_t off = 0;
  ps_packet got;
  ck_assert_int_eq(ps__batch_next(b.data, b.raw_len, &off, &got, f.err), 1);
  ck_assert_uint_eq(got.caplen, 100);
  ck_assert_uint_eq(got.len, 1500);
  ck_assert_uint_eq(got.iface, 1);
  ck_assert_mem_eq(got.data, data, 100);
  ck_assert_int_eq(ps__batch_next(b.data, b.raw_len, &off, &got, f.err), 1);
  ck_assert_uint_eq(got.caplen, PKT_LEN);
  ck_assert_int_eq(ps__batch_next(b.data, b.raw_len, &off, &got, f.err), 0);
  /* Per interface: one packet each. */
  ck_assert_uint_eq(e->n_if, 2);
  ck_assert_uint_eq(f.q.ifc[0].packets_sent, 1);
  ck_assert_uint_eq(f.q.ifc[1].packets_sent, 1);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_release_counts_acked) {
  fixture f;
  fx_init(&f, 1u << 20, PS_OVERFLOW_DROP_OLDEST);
  for (int i = 0; i < 5; i++) {
    add_batch(&f, 1);
  }
  ck_assert_int_eq(feed_all(&f), 5);
  ck_assert_uint_eq(f.q.max_fed, 5);
  ck_assert_uint_eq(f.q.retained_bytes, 5 * FRAME_LEN);
  ps__replay_release(&f.q, 3);
  ck_assert_uint_eq(f.q.acked, 3);
  ck_assert_uint_eq(f.q.n, 2);
  ck_assert_uint_eq(f.q.fed, 2);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 30);
  ck_assert_uint_eq(f.q.ctr.batches_acked, 3);
  ck_assert_uint_eq(f.q.ifc[0].packets_acked, 15);
  ck_assert_uint_eq(f.q.ifc[1].packets_acked, 15);
  ck_assert_uint_eq(f.q.retained_bytes, 2 * FRAME_LEN);
  ck_assert_uint_eq(f.released_below, 4);
  /* An old acknowledgement changes nothing. */
  ps__replay_release(&f.q, 2);
  ck_assert_uint_eq(f.q.acked, 3);
  ck_assert_uint_eq(f.q.n, 2);
  ps__replay_release(&f.q, 5);
  ck_assert_uint_eq(f.q.n, 0);
  ck_assert_uint_eq(f.released_below, 6);
  ck_assert_uint_eq(f.q.ctr.packets_queued, 0);
  ck_assert_uint_eq(ps__replay_last_seq(&f.q), 5);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_drop_oldest_unsent) {
  /* Room for 6 frames; 9 never sent: the oldest 3 are dropped, counted
   * and logged once. */
  fixture f;
  fx_init(&f, 64 * 1024, PS_OVERFLOW_DROP_OLDEST);
  ck_assert_int_lt(6 * FRAME_LEN, 64 * 1024);
  ck_assert_int_gt(7 * FRAME_LEN, 64 * 1024);
  for (int i = 0; i < 9; i++) {
    add_batch(&f, 0);
  }
  ck_assert_uint_eq(f.q.ctr.packets_dropped_overflow, 30);
  ck_assert_uint_eq(f.q.ctr.batches_dropped_overflow, 3);
  ck_assert_uint_eq(f.q.ifc[1].packets_dropped_overflow, 15);
  ck_assert_uint_eq(f.q.ctr.batches_sent, 9);
  ck_assert_uint_eq(f.q.n, 6);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->seq, 4);
  ck_assert_uint_eq(f.q.retained_bytes, 6 * FRAME_LEN);
  ck_assert_ptr_nonnull(strstr(logbuf, "replay buffer full"));
  ck_assert_ptr_null(
      strstr(strstr(logbuf, "replay buffer full") + 1, "replay buffer full"));
  ck_assert_uint_eq(f.released_below, 4);
  ck_assert_uint_eq(ps__replay_pending(&f.q), 6);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_drop_oldest_written_waits_for_ack) {
  /* Batches written to this connection are not dropped when the queue
   * is full: their bytes go, and their ACK may still come. */
  fixture f;
  fx_init(&f, 64 * 1024, PS_OVERFLOW_DROP_OLDEST);
  for (int i = 0; i < 6; i++) {
    add_batch(&f, 1);
  }
  ck_assert_int_eq(feed_all(&f), 6);
  add_batch(&f, 1);
  ck_assert_uint_eq(f.q.ctr.packets_dropped_overflow, 0);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->state, PS_RQ_STUB);
  ck_assert_ptr_null(ps__replay_at(&f.q, 0)->frame);
  ck_assert_uint_eq(f.q.n, 7);
  ps__replay_release(&f.q, 1);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 10);
  expect_invariant(&f.q);
  /* The connection breaks: the next one's resume point says the
   * receiver has batch 1 only; the stub of batch 2 cannot be resent. */
  add_batch(&f, 1);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->seq, 2);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->state, PS_RQ_STUB);
  ps__replay_connection_lost(&f.q);
  ck_assert_int_eq(f.q.limbo, 1);
  ck_assert_uint_eq(f.q.resend_upto, 6);
  ck_assert_uint_eq(f.q.fed, 0);
  ps__replay_connection_start(&f.q);
  ps__replay_release(&f.q, 1);
  ps__replay_resolve_limbo(&f.q);
  ck_assert_int_eq(f.q.limbo, 0);
  ck_assert_uint_eq(f.q.ctr.packets_lost, 10);
  ck_assert_uint_eq(f.q.ifc[0].packets_lost, 5);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->seq, 3);
  /* What is left is resent, counted as such. */
  ck_assert_int_eq(feed_all(&f), 6);
  ck_assert_uint_eq(f.q.ctr.batches_resent, 4);
  ps__replay_release(&f.q, 8);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 70);
  ck_assert_uint_eq(f.q.ctr.packets_queued, 0);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_drop_oldest_limbo_covered_by_resume) {
  /* A batch written to a broken connection and evicted while
   * disconnected waits as a stub; the next resume point covers it:
   * delivered, not lost. */
  fixture f;
  fx_init(&f, 64 * 1024, PS_OVERFLOW_DROP_OLDEST);
  add_batch(&f, 1);
  feed_all(&f);
  ps__replay_connection_lost(&f.q);
  for (int i = 0; i < 6; i++) {
    add_batch(&f, 0);
  }
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->state, PS_RQ_STUB);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->flags & PS_RQ_LIMBO, PS_RQ_LIMBO);
  ck_assert_int_eq(f.q.limbo, 1);
  ps__replay_connection_start(&f.q);
  ps__replay_release(&f.q, 1);
  ps__replay_resolve_limbo(&f.q);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 10);
  ck_assert_uint_eq(f.q.ctr.packets_lost, 0);
  ck_assert_uint_eq(f.q.ctr.packets_dropped_overflow, 0);
  ck_assert_uint_eq(f.q.n, 6);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_drop_newest) {
  /* Disconnected, a full queue refuses new batches; connected, it sends
   * them once without keeping them. */
  fixture f;
  fx_init(&f, 64 * 1024, PS_OVERFLOW_DROP_NEWEST);
  for (int i = 0; i < 7; i++) {
    add_batch(&f, 0);
  }
  ck_assert_uint_eq(f.q.n, 6);
  ck_assert_uint_eq(f.q.ctr.packets_dropped_overflow, 10);
  ck_assert_uint_eq(f.q.ctr.batches_dropped_overflow, 1);
  ck_assert_uint_eq(f.q.seq, 6); /* the refused batch took no number */
  ck_assert_ptr_nonnull(strstr(logbuf, "dropping the newest batches"));
  ck_assert_int_eq(f.n_kept, 6);
  add_batch(&f, 1);
  ck_assert_uint_eq(f.q.n, 7);
  ps__rq_ent *e = ps__replay_at(&f.q, 6);
  ck_assert_uint_eq(e->flags & PS_RQ_NORETAIN, PS_RQ_NORETAIN);
  ck_assert_uint_eq(f.q.noretain_bytes, FRAME_LEN);
  ck_assert_uint_eq(f.q.retained_bytes, 6 * FRAME_LEN);
  ck_assert_int_eq(f.n_kept, 6); /* not in the spool either */
  ck_assert_int_eq(feed_all(&f), 7);
  ck_assert_uint_eq(ps__replay_at(&f.q, 6)->state, PS_RQ_STUB);
  ck_assert_uint_eq(f.q.noretain_bytes, 0);
  ps__replay_release(&f.q, 7);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 70);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_batch_larger_than_buffer) {
  /* A batch larger than the whole buffer is never kept: sent unkept
   * while connected, else dropped. */
  fixture f;
  fx_init(&f, 64 * 1024, PS_OVERFLOW_DROP_OLDEST);
  static uint8_t data[PS_MAX_CAPLEN];
  ps_packet p = {.caplen = 70000, .len = 70000, .data = data};
  ck_assert_int_eq(ps__replay_has_room(&f.q, 70000, 0), 0);
  ck_assert_int_eq(ps__replay_has_room(&f.q, 70000, 1), 1);
  ck_assert_int_eq(ps__replay_add(&f.q, &p, 0), 0);
  ck_assert_int_eq(ps__replay_seal(&f.q, f.cc, 0, f.err), 0);
  ck_assert_uint_eq(f.q.n, 0);
  ck_assert_uint_eq(f.q.ctr.packets_dropped_overflow, 1);
  ck_assert_int_eq(ps__replay_add(&f.q, &p, 0), 0);
  ck_assert_int_eq(ps__replay_seal(&f.q, f.cc, 1, f.err), 0);
  ck_assert_uint_eq(f.q.n, 1);
  ck_assert_uint_eq(ps__replay_at(&f.q, 0)->flags, PS_RQ_NORETAIN);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_lose_all_counts_open_batch) {
  fixture f;
  fx_init(&f, 1u << 20, PS_OVERFLOW_DROP_OLDEST);
  add_batch(&f, 1);
  add_batch(&f, 1);
  feed_all(&f);
  ps__replay_release(&f.q, 1);
  static uint8_t data[10];
  ps_packet p = {.caplen = 10, .len = 10, .iface = 1, .data = data};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(ps__replay_add(&f.q, &p, 0), 0);
  }
  ck_assert_uint_eq(ps__replay_pending(&f.q), 1);
  ps__replay_lose_all(&f.q);
  ck_assert_uint_eq(f.q.ctr.packets_lost, 13);
  ck_assert_uint_eq(f.q.ifc[1].packets_lost, 8);
  ck_assert_uint_eq(f.q.ifc[0].packets_lost, 5);
  ck_assert_uint_eq(f.q.ctr.packets_queued, 0);
  ck_assert_uint_eq(f.q.batch_count, 0);
  ck_assert_uint_eq(f.q.n, 0);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_has_room) {
  fixture f;
  fx_init(&f, 64 * 1024, PS_OVERFLOW_DROP_OLDEST);
  for (int i = 0; i < 6; i++) {
    add_batch(&f, 0);
  }
  /* 6 frames kept: a 7th does not fit. */
  ck_assert_int_eq(ps__replay_has_room(&f.q, PKT_LEN, 1), 1);
  static uint8_t data[PKT_LEN];
  ps_packet p = {.caplen = PKT_LEN, .len = PKT_LEN, .data = data};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(ps__replay_add(&f.q, &p, 0), 0);
  }
  ck_assert_int_eq(ps__replay_has_room(&f.q, PKT_LEN, 1), 0);
  ps__replay_release(&f.q, 6);
  ck_assert_int_eq(ps__replay_has_room(&f.q, PKT_LEN, 0), 1);
  fx_free(&f);
}
END_TEST

START_TEST(test_adopt) {
  /* Batches a previous run left come back first, counted recovered. */
  fixture f;
  fx_init(&f, 1u << 20, PS_OVERFLOW_DROP_OLDEST);
  uint8_t frame[64] = {1, 2, 3};
  uint32_t ifc[4] = {0, 3, 1, 4};
  ck_assert_int_eq(ps__replay_adopt(&f.q, 41, 7, 2, ifc, frame, 64), 0);
  ck_assert_int_eq(ps__replay_adopt(&f.q, 42, 1, 1, ifc, frame, 64), 0);
  ck_assert_uint_eq(f.q.seq, 42);
  ck_assert_uint_eq(f.q.ctr.packets_recovered, 8);
  ck_assert_uint_eq(f.q.ctr.packets_queued, 8);
  ck_assert_uint_eq(f.q.retained_bytes, 128);
  ck_assert_int_eq(f.n_kept, 0); /* the spool has them already */
  ps__rq_ent *e = ps__replay_at(&f.q, 0);
  ck_assert_mem_eq(e->frame, frame, 64);
  ck_assert_uint_eq(e->ifc[1].iface, 1);
  ck_assert_uint_eq(e->ifc[1].n, 4);
  add_batch(&f, 1);
  ck_assert_uint_eq(f.q.seq, 43);
  ps__replay_release(&f.q, 43);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 18);
  ck_assert_uint_eq(f.q.ifc[1].packets_acked, 5 + 4);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

START_TEST(test_ring_grows) {
  /* More entries than the first ring holds, released from the middle of
   * a wrapped ring. */
  fixture f;
  fx_init(&f, 64u << 20, PS_OVERFLOW_DROP_OLDEST);
  for (int i = 0; i < 50; i++) {
    add_batch(&f, 1);
  }
  feed_all(&f);
  ps__replay_release(&f.q, 40);
  for (int i = 0; i < 100; i++) {
    add_batch(&f, 1);
  }
  ck_assert_uint_eq(f.q.n, 110);
  for (size_t i = 0; i < f.q.n; i++) {
    ck_assert_uint_eq(ps__replay_at(&f.q, i)->seq, 41 + i);
  }
  ck_assert_int_eq(feed_all(&f), 100);
  ps__replay_release(&f.q, 150);
  ck_assert_uint_eq(f.q.ctr.packets_acked, 1500);
  expect_invariant(&f.q);
  fx_free(&f);
}
END_TEST

static Suite *replay_suite(void) {
  Suite *s = suite_create("replay");
  TCase *tc = tcase_create("queue");
  tcase_add_test(tc, test_seal_makes_a_valid_batch_frame);
  tcase_add_test(tc, test_release_counts_acked);
  tcase_add_test(tc, test_drop_oldest_unsent);
  tcase_add_test(tc, test_drop_oldest_written_waits_for_ack);
  tcase_add_test(tc, test_drop_oldest_limbo_covered_by_resume);
  tcase_add_test(tc, test_drop_newest);
  tcase_add_test(tc, test_batch_larger_than_buffer);
  tcase_add_test(tc, test_lose_all_counts_open_batch);
  tcase_add_test(tc, test_has_room);
  tcase_add_test(tc, test_adopt);
  tcase_add_test(tc, test_ring_grows);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return unit_run(replay_suite());
}
