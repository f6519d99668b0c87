/*
 * Fuzz target for the Kafka input's message decoder (lib/ps_kmsg.c):
 * what --from-kafka reads comes from a topic anyone with access may
 * write to. The input:
 *
 *   headers   "NAME=VALUE\n" lines (the message's Kafka headers), up to
 *             the first NUL byte
 *   value     the rest: the message value (a pcapng section, or not)
 *
 * Checks: the headers parse or are refused with a reason; the section is
 * refused with a reason or walked, the callbacks seeing interfaces
 * before their packets, every packet inside the value and at most
 * PS_MAX_CAPLEN bytes, and the count returned equal to the packets
 * seen; nothing is called for a refused section.
 */
#include "config.h"

#include "ps_kmsg.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

typedef struct seen {
  const uint8_t *lo, *hi;
  unsigned ifaces, packets;
} seen;

static int on_iface(void *ud, unsigned idx, const ps__kmsg_iface *ifc) {
  seen *s = ud;
  CHECK(idx == s->ifaces);
  CHECK(ifc->tsres == PS_TSRES_USEC || ifc->tsres == PS_TSRES_NSEC);
  CHECK(strlen(ifc->name) < sizeof(ifc->name));
  s->ifaces++;
  return 0;
}

static int on_packet(void *ud, unsigned idx, const ps_packet *p) {
  seen *s = ud;
  CHECK(idx < s->ifaces);
  CHECK(p->caplen <= PS_MAX_CAPLEN && p->caplen <= p->len);
  CHECK(p->data >= s->lo && p->data + p->caplen <= s->hi);
  CHECK(p->ts_frac < 1000000000u);
  s->packets++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t hl = nul ? (size_t)(nul - data) : size;
  char *text = malloc(hl + 1);
  CHECK(text != NULL);
  memcpy(text, data, hl);
  text[hl] = '\0';
  ps__kmsg_hdr h[16];
  size_t n = 0;
  for (char *line = text; line != NULL && n < 16;) {
    char *next = strchr(line, '\n');
    if (next != NULL) {
      *next++ = '\0';
    }
    char *eq = strchr(line, '=');
    if (eq != NULL) {
      *eq = '\0';
      h[n].name = line;
      h[n].value = eq + 1;
      h[n].len = strlen(eq + 1);
      n++;
    }
    line = next;
  }
  ps__kmsg_meta m;
  char err[PS_ERRMSG_MAX];
  err[0] = '\0';
  const char *sensor = "s";
  if (ps__kmsg_meta_parse(&m, h, n, err) == 0) {
    CHECK(m.seq > 0 && m.part >= 1 && m.part <= m.parts);
    sensor = m.sensor;
  } else {
    CHECK(err[0] != '\0');
  }
  const uint8_t *v = nul ? nul + 1 : data + size;
  size_t vn = nul ? size - hl - 1 : 0;
  /* A copy of its own size, so reads past the value are caught. */
  uint8_t *val = malloc(vn ? vn : 1);
  CHECK(val != NULL);
  memcpy(val, v, vn);
  seen s = {val, val + vn, 0, 0};
  ps__kmsg_cb cb = {on_iface, on_packet, &s};
  err[0] = '\0';
  int rc = ps__kmsg_section(val, vn, sensor, &cb, err);
  if (rc < 0) {
    CHECK(err[0] != '\0' && s.ifaces == 0 && s.packets == 0);
  } else {
    CHECK((unsigned)rc == s.packets);
  }
  free(val);
  free(text);
  return 0;
}
