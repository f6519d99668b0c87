/* What pcap and pcapng share: time stamps as files hold them. The
 * formats' own byte layouts are in ps_fmt_pcap.c and ps_fmt_pcapng.c. */
#include "config.h"

#include "ps_pcapfmt.h"

#include <string.h>

static const uint32_t pow10u[] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};

/* The fraction of a time stamp in resolution from_res, in to_res: the
 * whole seconds it holds (*carry) and the rest, scaled. Both resolutions
 * are at most 9, so the scaled rest is below 10^9 and nothing wraps. */
static uint32_t frac_to(uint32_t frac, uint8_t from_res, uint8_t to_res,
                        uint32_t *carry) {
  uint32_t unit = pow10u[from_res];
  uint32_t f = frac % unit;
  *carry = frac / unit;
  return to_res > from_res ? f * pow10u[to_res - from_res]
                           : f / pow10u[from_res - to_res];
}

int ps__ts_convert(int64_t *sec, uint32_t *frac, uint8_t from_res,
                   uint8_t to_res) {
  if (from_res > 9 || to_res > 9) {
    return -1;
  }
  if (from_res == to_res) {
    return 0;
  }
  uint32_t carry;
  uint32_t f = frac_to(*frac, from_res, to_res, &carry);
  /* A hostile sensor sends seconds near INT64_MAX: signed overflow here
   * is undefined behaviour, so test before adding. */
  if (*sec > INT64_MAX - (int64_t)carry) {
    return -1;
  }
  *sec += carry;
  *frac = f;
  return 0;
}

/* sec.frac as files read it: unsigned seconds and the fraction in to_res
 * (see the header). -1 if no file holds it. */
static int file_ts(uint64_t *out_sec, uint32_t *out_frac, int64_t sec,
                   uint32_t frac, uint8_t from_res, uint8_t to_res) {
  if (from_res > 9 || to_res > 9 || sec < INT32_MIN) {
    return -1;
  }
  /* A sign-extended 32-bit value means its unsigned self. */
  uint64_t s = sec < 0 ? (uint64_t)(sec + INT64_C(4294967296)) : (uint64_t)sec;
  if (from_res != to_res) {
    uint32_t carry;
    frac = frac_to(frac, from_res, to_res, &carry);
    s += carry; /* s < 2^63 and carry < 2^32: no wrap */
  }
  *out_sec = s;
  *out_frac = frac;
  return 0;
}

int ps__pcap_ts(uint32_t *out_sec, uint32_t *out_frac, int64_t sec,
                uint32_t frac, uint8_t tsres, int nano) {
  uint64_t s;
  uint32_t f;
  uint8_t to_res = nano ? PS_TSRES_NSEC : PS_TSRES_USEC;
  if (file_ts(&s, &f, sec, frac, tsres, to_res) != 0 || s > PS_PCAP_MAX_SEC) {
    return -1;
  }
  *out_sec = (uint32_t)s;
  *out_frac = f;
  return 0;
}

uint64_t ps__pcapng_max_sec(uint32_t frac, uint8_t tsres) {
  return tsres > 9 ? 0 : (UINT64_MAX - frac) / pow10u[tsres];
}

int ps__pcapng_ts(uint64_t *out, int64_t sec, uint32_t frac, uint8_t tsres) {
  uint64_t s;
  uint32_t f;
  if (file_ts(&s, &f, sec, frac, tsres, tsres) != 0 ||
      s > ps__pcapng_max_sec(f, tsres)) {
    return -1;
  }
  *out = s * pow10u[tsres] + f;
  return 0;
}
