/* What the capture formats share: section header strings, the tail
 * scanners' read-ahead, link type names. */
#include "config.h"

#include "ps_fmt.h"
#include "ps_pcapfmt.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

void ps__fmt_params_init(ps__fmt_params *p, int nano) {
  memset(p, 0, sizeof(*p));
  p->nano = nano;
  char host[256] = "unknown";
  gethostname(host, sizeof(host) - 1);
  struct utsname u;
  if (uname(&u) == 0) {
    snprintf(p->os, sizeof(p->os), "%s %s %s", u.sysname, u.release, u.machine);
  }
  snprintf(p->appl, sizeof(p->appl), "libpacketstreamer %s", PS_VERSION);
  snprintf(p->comment, sizeof(p->comment),
           "collected by the receiver on host %s", host);
}

ps__fmt_reader *ps__fmt_reader_new(ps__fmt_read_fn read, void *ud,
                                   uint64_t size) {
  ps__fmt_reader *r = malloc(sizeof(*r));
  if (r != NULL) {
    r->read = read;
    r->ud = ud;
    r->size = size;
    r->base = 0;
    r->len = 0;
  }
  return r;
}

int ps__fmt_reader_get(ps__fmt_reader *r, uint64_t off, size_t n,
                       const uint8_t **p) {
  if (off > r->size || n > r->size - off) {
    return -1;
  }
  if (off < r->base || off + n > r->base + r->len) {
    ssize_t k = r->read(r->ud, off, r->buf, sizeof(r->buf));
    if (k < (ssize_t)n) {
      return -1;
    }
    r->base = off;
    r->len = (size_t)k;
  }
  *p = r->buf + (off - r->base);
  return 0;
}

/* libpcap names DLT_ values, and the wire carries LINKTYPE_ values (they
 * differ for a few types, e.g. RAW). Its mapping is internal, so let it
 * read a file header with this link type. */
const char *ps__linktype_name(uint32_t linktype) {
  uint8_t hdr[PS_PCAP_FILE_HDR];
  uint32_t v[6] = {PS_PCAP_MAGIC_USEC,    0x00040002u, 0, 0, 65535,
                   linktype & 0x03ffffffu};
  memcpy(hdr, v, sizeof(hdr));
  const char *name = NULL;
  FILE *f = fmemopen(hdr, sizeof(hdr), "rb");
  if (f != NULL) {
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_fopen_offline(f, eb); /* owns f from here */
    if (p != NULL) {
      name = pcap_datalink_val_to_name(pcap_datalink(p));
      pcap_close(p);
    } else {
      fclose(f);
    }
  }
  return name;
}
