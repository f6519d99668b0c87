/*
 * Fuzz target for the parsers of protocol version 2 and the admin API:
 * the first byte picks the parser, the rest is its input.
 *  0..4: one frame payload for the ANNOUNCE, CAPTURE_START,
 *        CAPTURE_CHANGE, CAPTURE_STOP or CAPTURE_STATE decoder; what
 *        decodes must encode back to the same bytes, and every text it
 *        points to lies inside the payload.
 *  5:    a POST /api/v1/captures body (JSON, selector, limits).
 *  6:    a PATCH /api/v1/captures/ID body.
 *  7:    the receiver's captures' state file (STATE.captures): what
 *        loads dumps to a text that loads again to the same dump.
 * Failures must come with a reason that fits its buffer.
 */
#include "config.h"

#include "ps_admin.h"
#include "ps_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void check_reason(const char *eb) {
  size_t n = strnlen(eb, PS_ERRMSG_MAX);
  CHECK(n > 0 && n < PS_ERRMSG_MAX);
}

static void inside(const ps__frame *f, const ps__text *t) {
  if (t->len == 0) {
    return;
  }
  const uint8_t *p = (const uint8_t *)t->p;
  CHECK(p >= f->payload && t->len <= f->len &&
        (size_t)(p - f->payload) <= f->len - t->len);
}

/* The encoder gives back the payload exactly. */
static void same(ps__buf *b, const ps__frame *f) {
  CHECK(ps__buf_size(b) == PS_FRAME_HDR + f->len);
  CHECK(memcmp(ps__buf_head(b) + PS_FRAME_HDR, f->payload, f->len) == 0);
  ps__buf_free(b);
}

static void frames(uint8_t which, const uint8_t *p, size_t n) {
  static const uint8_t types[] = {
      PS_FRAME_ANNOUNCE, PS_FRAME_CAPTURE_START, PS_FRAME_CAPTURE_CHANGE,
      PS_FRAME_CAPTURE_STOP, PS_FRAME_CAPTURE_STATE};
  ps__frame f = {.type = types[which], .len = (uint32_t)n, .payload = p};
  char eb[PS_ERRMSG_MAX] = "";
  ps__buf b = {0};
  int rc;
  switch (which) {
  case 0: {
    ps__announce *m = malloc(sizeof(*m));
    CHECK(m != NULL);
    if ((rc = ps__dec_announce(&f, m, eb)) == 0) {
      inside(&f, &m->version);
      inside(&f, &m->host);
      for (unsigned i = 0; i < m->n_ifaces; i++) {
        inside(&f, &m->ifaces[i].name);
      }
      for (unsigned i = 0; i < m->n_labels; i++) {
        inside(&f, &m->labels[i].key);
        inside(&f, &m->labels[i].value);
      }
      CHECK(ps__enc_announce(&b, m) == 0);
      same(&b, &f);
    } else {
      check_reason(eb);
    }
    free(m);
    break;
  }
  case 1: {
    ps__capture_start m;
    if ((rc = ps__dec_capture_start(&f, &m, eb)) == 0) {
      inside(&f, &m.filter);
      for (unsigned i = 0; i < m.n_ifaces; i++) {
        inside(&f, &m.ifaces[i]);
      }
      CHECK(ps__enc_capture_start(&b, &m) == 0);
      same(&b, &f);
    } else {
      check_reason(eb);
    }
    break;
  }
  case 2: {
    ps__capture_change m;
    if ((rc = ps__dec_capture_change(&f, &m, eb)) == 0) {
      inside(&f, &m.filter);
      CHECK(ps__enc_capture_change(&b, &m) == 0);
      same(&b, &f);
    } else {
      check_reason(eb);
    }
    break;
  }
  case 3: {
    uint64_t id;
    if ((rc = ps__dec_capture_stop(&f, &id, eb)) == 0) {
      CHECK(ps__enc_capture_stop(&b, id) == 0);
      same(&b, &f);
    } else {
      check_reason(eb);
    }
    break;
  }
  default: {
    ps__capture_state_msg m;
    if ((rc = ps__dec_capture_state(&f, &m, eb)) == 0) {
      inside(&f, &m.text);
      CHECK(ps__enc_capture_state(&b, &m) == 0);
      same(&b, &f);
    } else {
      check_reason(eb);
    }
    break;
  }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  uint8_t which = data[0] % 8;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  char eb[PS_ERRMSG_MAX] = "";
  if (which < 5) {
    frames(which, p, n);
  } else if (which == 5) {
    ps__capreq *r = malloc(sizeof(*r));
    CHECK(r != NULL);
    if (ps__admin_parse_capture((const char *)p, n, r, eb) == 0) {
      CHECK(r->sel.n_names > 0 || r->sel.n_labels > 0);
      CHECK(r->n_ifaces <= PS_MAX_CAPTURE_IFACES);
      CHECK(strlen(r->filter) <= PS_MAX_FILTER);
      CHECK(r->snaplen <= PS_MAX_CAPLEN && r->sample_n <= 1000000);
    } else {
      check_reason(eb);
    }
    free(r);
  } else if (which == 7) {
    ps__captures cs = {0};
    if (ps__captures_load(&cs, (const char *)p, n, eb) == 0) {
      char *a = ps__captures_dump(&cs);
      CHECK(a != NULL);
      ps__captures cs2 = {0};
      CHECK(ps__captures_load(&cs2, a, strlen(a), eb) == 0);
      char *b = ps__captures_dump(&cs2);
      CHECK(b != NULL && strcmp(a, b) == 0);
      free(a);
      free(b);
      ps__captures_free(&cs2);
    } else {
      check_reason(eb);
      CHECK(cs.head == NULL && cs.n == 0); /* nothing partly taken */
    }
    ps__captures_free(&cs);
  } else {
    char *filter = malloc(PS_MAX_FILTER + 1);
    uint32_t what, sn, pps;
    CHECK(filter != NULL);
    if (ps__admin_parse_change((const char *)p, n, &what, filter, &sn, &pps,
                               eb) == 0) {
      CHECK(what != 0 && strlen(filter) <= PS_MAX_FILTER);
    } else {
      check_reason(eb);
    }
    free(filter);
  }
  return 0;
}
