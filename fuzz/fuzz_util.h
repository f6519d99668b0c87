/* What the fuzz targets share: the entry point's declaration, CHECK (a
 * broken invariant aborts, which libFuzzer reports), the checks on error
 * text, host-order reads of output bytes, and for the two state machines
 * the session's shared key and the chunked feeding of the input. */
#ifndef PS_FUZZ_UTIL_H
#define PS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ps_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* err must be a NUL-terminated, non-empty reason within errlen. */
static inline void fuzz_check_reason(const char *err, size_t errlen) {
  size_t n = strnlen(err, errlen);
  CHECK(n > 0 && n < errlen);
}

/* Host-order fields of what the library wrote (pcap, pcapng). */
static inline uint32_t fuzz_h32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint16_t fuzz_h16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* The key a keyed session wants and proves (make_seeds.py signs with
 * it). */
static const uint8_t fuzz_key[] = "fuzz-shared-key";
#define FUZZ_KEY_LEN (sizeof(fuzz_key) - 1)

/* The input of fuzz_session and fuzz_stream: its first byte holds the
 * chunk size in bits 0-4 (0: everything at once) and three flags in bits
 * 5-7; the rest is what the peer says, fed chunk bytes at a time. */
typedef struct fuzz_input {
  const uint8_t *data;
  size_t size;
  size_t chunk;
  int flag5, flag6, flag7;
} fuzz_input;

/* Splits off the first byte; 0 when there is none. */
static inline int fuzz_input_init(fuzz_input *in, const uint8_t *data,
                                  size_t size) {
  if (size < 1) {
    return 0;
  }
  in->chunk = data[0] & 0x1f;
  in->flag5 = (data[0] & 0x20) != 0;
  in->flag6 = (data[0] & 0x40) != 0;
  in->flag7 = (data[0] & 0x80) != 0;
  in->data = data + 1;
  in->size = size - 1;
  if (in->chunk == 0) {
    in->chunk = in->size > 0 ? in->size : 1;
  }
  return 1;
}

/* The length of the chunk at off. */
static inline size_t fuzz_chunk_at(const fuzz_input *in, size_t off) {
  return in->size - off < in->chunk ? in->size - off : in->chunk;
}

/* The next frame a session queued in out: it must be whole and valid
 * under the default limits. Returns 0 when out is empty; otherwise f
 * points into out, and the caller consumes *used after looking. */
static inline int fuzz_next_frame(const ps__buf *out, ps__frame *f,
                                  size_t *used) {
  if (ps__buf_size(out) == 0) {
    return 0;
  }
  ps__limits lim;
  ps__limits_default(&lim);
  char err[PS_ERRMSG_MAX];
  CHECK(ps__frame_parse(ps__buf_head(out), ps__buf_size(out), &lim, f, used,
                        err) == 1);
  return 1;
}

#endif
