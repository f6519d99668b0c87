/*
 * Fuzz target for --append repair: the tail scanners of the capture
 * formats (ps__fmt.tail_scan in lib/ps_fmt_pcap.c and
 * lib/ps_fmt_pcapng.c), which read a file someone else may have written
 * and decide how much of it to keep. The input:
 *
 *   0       bit 0: pcapng (else classic pcap); bit 1: nanosecond pcap;
 *           bits 2-3: the output's link type (1, 101, 113, 0x24000001);
 *           bit 4: an I/O error at the offset in bytes 1-2 (reads stop
 *           short before it and fail from it)
 *   1..2    that offset, big-endian
 *   3..     the file
 *
 * Checks: the scan accepts or refuses with a reason, never keeps more
 * than the file; without read errors what it keeps is exactly the header
 * and the whole records an independent walk finds (classic pcap: records
 * of at most PS_MAX_CAPLEN bytes after a header of this precision and
 * link type; pcapng: blocks from a Section Header Block, whose lengths
 * agree at both ends, in the section's byte order), scanning the kept
 * part again keeps all of it, and the kept part followed by what the
 * format's own writer appends (a header where it needs one, a record)
 * is kept whole.
 */
#include "config.h"

#include "fuzz_util.h"
#include "ps_fmt.h"
#include "ps_pcapfmt.h"

#include <stdlib.h>
#include <string.h>

typedef struct file {
  const uint8_t *p;
  size_t len;
  int fail; /* reads reaching fail_at fail */
  uint64_t fail_at;
} file;

static ssize_t rd(void *ud, uint64_t off, void *buf, size_t n) {
  const file *f = ud;
  size_t end = f->len;
  if (f->fail) {
    /* An I/O error there: reads stop short before it and fail at it. */
    if (off >= f->fail_at) {
      return -1;
    }
    end = f->fail_at < end ? (size_t)f->fail_at : end;
  }
  if (off >= end) {
    return 0;
  }
  size_t k = end - off < n ? end - (size_t)off : n;
  memcpy(buf, f->p + off, k);
  return (ssize_t)k;
}

static uint32_t bswap(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

/* How far the bytes hold a pcap header of this output and whole records
 * (0 without such a header). */
static uint64_t walk_pcap(const uint8_t *p, size_t len, uint32_t linktype,
                          int nano) {
  if (len < 24 || fuzz_h32(p) != (nano ? 0xa1b23c4du : 0xa1b2c3d4u) ||
      fuzz_h16(p + 4) != 2 || fuzz_h16(p + 6) != 4 ||
      fuzz_h32(p + 20) != linktype) {
    return 0;
  }
  size_t off = 24;
  while (len - off >= 16) {
    uint32_t caplen = fuzz_h32(p + off + 8);
    if (caplen > PS_MAX_CAPLEN || len - off - 16 < caplen) {
      break;
    }
    off += 16 + caplen;
  }
  return off;
}

/* How far the bytes hold whole pcapng blocks, the first a Section Header
 * Block. */
static uint64_t walk_pcapng(const uint8_t *p, size_t len) {
  size_t off = 0;
  int swapped = 0;
  while (len - off >= 12) {
    uint32_t type = fuzz_h32(p + off);
    if (type == 0x0A0D0D0Au) {
      uint32_t bom = fuzz_h32(p + off + 8);
      if (bom != 0x1A2B3C4Du && bom != 0x4D3C2B1Au) {
        break;
      }
      swapped = bom == 0x4D3C2B1Au;
    } else if (off == 0) {
      break;
    }
    uint32_t n = fuzz_h32(p + off + 4);
    if (swapped) {
      n = bswap(n);
    }
    if (n < 12 || n % 4 != 0 || (type == 0x0A0D0D0Au && n < 28) ||
        n > len - off) {
      break;
    }
    uint32_t t = fuzz_h32(p + off + n - 4);
    if ((swapped ? bswap(t) : t) != n) {
      break;
    }
    off += n;
  }
  return off;
}

static const uint32_t linktypes[4] = {1, 101, 113, 0x24000001u};
static const ps_session_info sess = {
    .id = 1, .sensor = "fuzz", .peer = "127.0.0.1:1"};

/* The kept part, then what the writer adds to continue it: it must all
 * be kept by a second scan. */
static void check_append(const ps__fmt *fmt, ps__fmtw *w, const uint8_t *p,
                         const ps__fmt_tail *t, uint32_t linktype) {
  ps__buf b = {0};
  CHECK(ps__buf_append(&b, p, (size_t)t->good) == 0);
  ps_interface_info ifc = {.id = 0,
                           .name = "eth0",
                           .linktype = linktype,
                           .snaplen = 65535,
                           .tsres = PS_TSRES_USEC};
  struct timespec now = {1700000000, 5};
  void *slot = NULL;
  char note[300];
  CHECK(fmt->join(w, &sess, &ifc, &now, NULL, &slot, note, sizeof(note)) == 0);
  if (!(t->has_header && fmt->header_once)) {
    CHECK(fmt->header(w, &b, 0) == 1);
  }
  static const uint8_t payload[61] = {1, 2, 3};
  ps_packet pkt = {.ts_sec = 1700000000,
                   .ts_frac = 7,
                   .caplen = 61,
                   .len = 64,
                   .data = payload};
  CHECK(fmt->record(w, slot, &ifc, &pkt, &b) == 0);
  file f = {ps__buf_head(&b), ps__buf_size(&b), 0, 0};
  ps__fmt_tail t2;
  char why[200] = "";
  CHECK(fmt->tail_scan(w, rd, &f, f.len, &t2, why, sizeof(why)) == 1);
  CHECK(t2.good == f.len && t2.has_header == 1);
  fmt->leave(w, slot);
  ps__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) {
    return 0;
  }
  const ps__fmt *fmt = (data[0] & 1) ? &ps__fmt_pcapng : &ps__fmt_pcap;
  int nano = (data[0] & 2) != 0;
  uint32_t linktype = linktypes[(data[0] >> 2) & 3];
  file f = {data + 3, size - 3, (data[0] & 0x10) != 0,
            ((uint64_t)data[1] << 8) | data[2]};
  ps__fmt_params params;
  ps__fmt_params_init(&params, nano);
  ps__fmtw *w = fmt->create(fmt, &params);
  CHECK(w != NULL);
  /* The output's link type, as its first interface sets it before a
   * file is opened. */
  ps_interface_info first = {.id = 0,
                             .name = "eth0",
                             .linktype = linktype,
                             .snaplen = 65535,
                             .tsres = PS_TSRES_USEC};
  struct timespec now = {1700000000, 0};
  void *slot = NULL;
  char note[300];
  CHECK(fmt->join(w, &sess, &first, &now, NULL, &slot, note, sizeof(note)) ==
        0);

  ps__fmt_tail t = {12345, 7};
  char why[200];
  memset(why, 'x', sizeof(why));
  why[0] = '\0';
  int rc = fmt->tail_scan(w, rd, &f, f.len, &t, why, sizeof(why));
  CHECK(rc == 0 || rc == 1);
  if (rc == 0) {
    size_t n = strnlen(why, sizeof(why));
    CHECK(n > 0 && n < sizeof(why));
  } else {
    CHECK(t.good <= f.len);
    CHECK(t.has_header == 0 || t.has_header == 1);
    if (!f.fail) {
      uint64_t want = fmt == &ps__fmt_pcap
                          ? walk_pcap(f.p, f.len, linktype, nano)
                          : walk_pcapng(f.p, f.len);
      CHECK(t.good == want);
      CHECK(t.has_header == (want > 0));
      /* Cut as --append cuts: the rest is kept whole. */
      file cut = {f.p, (size_t)t.good, 0, 0};
      ps__fmt_tail t2;
      CHECK(fmt->tail_scan(w, rd, &cut, cut.len, &t2, why, sizeof(why)) == 1);
      CHECK(t2.good == t.good && t2.has_header == t.has_header);
      check_append(fmt, w, f.p, &t, linktype);
    }
  }
  fmt->leave(w, slot);
  fmt->destroy(w);
  return 0;
}
