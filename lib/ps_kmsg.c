/* Reading back the Kafka output's messages; see ps_kmsg.h. */
#include "config.h"

#include "ps_kmsg.h"
#include "ps_pcapfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint16_t get16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* A header value as a decimal or hex number within max. */
static int num(const ps__kmsg_hdr *h, int base, uint64_t max, uint64_t *out) {
  char buf[32];
  if (h->len == 0 || h->len >= sizeof(buf) || h->value == NULL) {
    return -1;
  }
  memcpy(buf, h->value, h->len);
  buf[h->len] = '\0';
  uint64_t v = 0;
  for (size_t i = 0; i < h->len; i++) {
    int d = buf[i] >= '0' && buf[i] <= '9'                 ? buf[i] - '0'
            : base == 16 && buf[i] >= 'a' && buf[i] <= 'f' ? buf[i] - 'a' + 10
                                                           : -1;
    if (d < 0 || v > (max - (uint64_t)d) / (uint64_t)base) {
      return -1;
    }
    v = v * (uint64_t)base + (uint64_t)d;
  }
  *out = v;
  return 0;
}

int ps__kmsg_meta_parse(ps__kmsg_meta *m, const ps__kmsg_hdr *h, size_t n,
                        char *errmsg) {
  memset(m, 0, sizeof(*m));
  int have = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t v, w;
    const char *nm = h[i].name;
    if (nm == NULL) {
      continue;
    }
    if (strcmp(nm, "ps-sensor") == 0) {
      /* The network's rule for names (ps__valid_name): no control
       * bytes, so a topic writer cannot forge log lines with one. */
      if (h[i].value == NULL || !ps__valid_name(h[i].value, h[i].len)) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                          "bad ps-sensor header (empty, above 255 bytes or "
                          "with control bytes)");
      }
      memcpy(m->sensor, h[i].value, h[i].len);
      m->sensor[h[i].len] = '\0';
      have |= 1;
    } else if (strcmp(nm, "ps-stream") == 0) {
      if (h[i].len != 16 || num(&h[i], 16, UINT64_MAX, &m->stream) != 0) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "bad ps-stream header");
      }
      have |= 2;
    } else if (strcmp(nm, "ps-seq") == 0) {
      /* Batch numbers count from 1; one past 2^53 is no sensor's. */
      if (num(&h[i], 10, (uint64_t)1 << 53, &m->seq) != 0 || m->seq == 0) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                          "absurd batch sequence in the ps-seq header");
      }
      have |= 4;
    } else if (strcmp(nm, "ps-part") == 0) {
      const char *s = h[i].value;
      const char *sl = s ? memchr(s, '/', h[i].len) : NULL;
      ps__kmsg_hdr a = {nm, s, sl ? (size_t)(sl - s) : 0};
      ps__kmsg_hdr b = {nm, sl ? sl + 1 : NULL,
                        sl ? h[i].len - (size_t)(sl - s) - 1 : 0};
      if (sl == NULL || num(&a, 10, 65535, &v) != 0 ||
          num(&b, 10, 65535, &w) != 0 || v == 0 || v > w) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "bad ps-part header");
      }
      m->part = (unsigned)v;
      m->parts = (unsigned)w;
      have |= 8;
    } else if (strcmp(nm, "ps-packets") == 0) {
      if (num(&h[i], 10, 1000000, &v) != 0) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "bad ps-packets header");
      }
      m->packets = (uint32_t)v;
      have |= 16;
    }
  }
  if (have != 31) {
    return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                      "not a packetstreamer message (ps-sensor, ps-stream, "
                      "ps-seq, ps-part or ps-packets header missing)");
  }
  return 0;
}

/* One pass over the blocks; with cb NULL it only checks. */
static int walk(const uint8_t *p, size_t n, const char *sensor,
                const ps__kmsg_cb *cb, char *errmsg) {
  size_t off = 0;
  unsigned n_if = 0, n_pkt = 0;
  uint8_t tsres[PS_KMSG_MAX_IFACES];
  size_t slen = strlen(sensor);
  while (off < n) {
    if (n - off < 12) {
      return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                        "truncated pcapng section at byte %zu", off);
    }
    uint32_t type = get32(p + off), len = get32(p + off + 4);
    if (len < 12 || len % 4 != 0 || len > n - off ||
        get32(p + off + len - 4) != len) {
      return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                        "truncated or damaged pcapng block at byte %zu", off);
    }
    const uint8_t *b = p + off + 8;
    size_t blen = len - 12;
    if (off == 0) {
      /* Our own byte order only: the output writes host order. */
      if (type != PS_PCAPNG_SHB_TYPE || blen < 16 || get32(b) != 0x1A2B3C4Du ||
          get16(b + 4) != 1) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                          "the value is not a pcapng section of this "
                          "byte order");
      }
    } else if (type == PS_PCAPNG_SHB_TYPE) {
      return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                        "more than one section in a message");
    } else if (type == 1) {
      if (blen < 8 || n_pkt > 0 || n_if >= PS_KMSG_MAX_IFACES) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "bad interface block");
      }
      ps__kmsg_iface ifc;
      memset(&ifc, 0, sizeof(ifc));
      ifc.linktype = get16(b);
      ifc.snaplen = get32(b + 4);
      ifc.tsres = PS_TSRES_USEC;
      int named = 0;
      size_t o = 8;
      while (o + 4 <= blen) {
        uint16_t code = get16(b + o), ol = get16(b + o + 2);
        if (code == 0) {
          break;
        }
        if (ol > blen - o - 4) {
          return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                            "bad interface block option");
        }
        const uint8_t *v = b + o + 4;
        if (code == 2) {
          /* (The interface name too, as ps_proto checks it.) */
          if (ol <= slen + 1 || ol - slen - 1 > 255 ||
              memcmp(v, sensor, slen) != 0 || v[slen] != '/' ||
              !ps__valid_name((const char *)v + slen + 1, ol - slen - 1)) {
            return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                              "interface name not of sensor %s", sensor);
          }
          memcpy(ifc.name, v + slen + 1, ol - slen - 1);
          ifc.name[ol - slen - 1] = '\0';
          named = 1;
        } else if (code == 3) {
          /* "..., snaplen N": the sensor's own snapshot length. */
          const char *k = "snaplen ";
          for (size_t i = 0; i + 8 < ol; i++) {
            if (memcmp(v + i, k, 8) == 0) {
              uint32_t sn = 0;
              size_t j = i + 8;
              while (j < ol && v[j] >= '0' && v[j] <= '9' && sn < 100000000) {
                sn = sn * 10 + (uint32_t)(v[j++] - '0');
              }
              ifc.snaplen = sn;
            }
          }
        } else if (code == 9 && ol == 1) {
          if (v[0] != PS_TSRES_USEC && v[0] != PS_TSRES_NSEC) {
            return ps__seterr(errmsg, PS_ERR_PROTOCOL,
                              "time stamp resolution %u not ours", v[0]);
          }
          ifc.tsres = v[0];
        } else if (code == 13 && ol == 1) {
          ifc.linktype |= 0x04000000u | (((uint32_t)v[0] / 16u) & 0xf) << 28;
        }
        o += 4 + (((size_t)ol + 3) & ~(size_t)3);
      }
      if (!named) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "interface without a name");
      }
      tsres[n_if] = ifc.tsres;
      if (cb != NULL && cb->iface != NULL) {
        int rc = cb->iface(cb->ud, n_if, &ifc);
        if (rc < 0) {
          return rc;
        }
      }
      n_if++;
    } else if (type == 6) {
      if (blen < 20) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "bad packet block");
      }
      uint32_t idx = get32(b), caplen = get32(b + 12), plen = get32(b + 16);
      if (idx >= n_if || caplen > PS_MAX_CAPLEN || caplen > blen - 20 ||
          plen < caplen) {
        return ps__seterr(errmsg, PS_ERR_PROTOCOL, "bad packet block");
      }
      uint64_t ts = (uint64_t)get32(b + 4) << 32 | get32(b + 8);
      uint64_t unit = tsres[idx] == PS_TSRES_NSEC ? 1000000000u : 1000000u;
      ps_packet pkt = {.ts_sec = (int64_t)(ts / unit),
                       .ts_frac = (uint32_t)(ts % unit),
                       .caplen = caplen,
                       .len = plen,
                       .iface = idx,
                       .data = b + 20};
      if (cb != NULL && cb->packet != NULL) {
        int rc = cb->packet(cb->ud, idx, &pkt);
        if (rc < 0) {
          return rc;
        }
      }
      n_pkt++;
    }
    /* (Other blocks, statistics say, are skipped.) */
    off += len;
  }
  if (n == 0) {
    return ps__seterr(errmsg, PS_ERR_PROTOCOL, "empty message");
  }
  return (int)n_pkt;
}

int ps__kmsg_section(const uint8_t *p, size_t n, const char *sensor,
                     const ps__kmsg_cb *cb, char *errmsg) {
  int rc = walk(p, n, sensor, NULL, errmsg);
  if (rc < 0) {
    return rc;
  }
  return walk(p, n, sensor, cb, errmsg);
}
