/* pcap and pcapng serialisation, sans I/O: records into buffers. Files are
 * written in the host's byte order, as libpcap writes them. */
#ifndef PS_PCAPFMT_H
#define PS_PCAPFMT_H

#include "ps_common.h"

#define PS_PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PS_PCAP_MAGIC_NSEC 0xa1b23c4du
#define PS_PCAP_FILE_HDR 24
#define PS_PCAP_REC_HDR 16

/* Converts a timestamp fraction from resolution from_res to to_res
 * (PS_TSRES_*), adjusting *sec. A fraction already in to_res is kept
 * verbatim, even out of range; otherwise it is normalised first. */
void ps__ts_convert(int64_t *sec, uint32_t *frac, uint8_t from_res,
                    uint8_t to_res);

int ps__pcap_file_header(ps__buf *out, uint32_t linktype, uint32_t snaplen,
                         int nano);
/* Appends one record; pkt's ts_frac is in resolution tsres. */
int ps__pcap_record(ps__buf *out, const ps_packet *pkt, uint8_t tsres,
                    int nano);

/* pcapng */
typedef struct ps__pcapng_idb {
  uint32_t linktype; /* as on the wire; FCS bits become if_fcslen */
  uint32_t snaplen;
  uint8_t tsres;
  const char *name;        /* if_name */
  const char *description; /* if_description, may be NULL */
} ps__pcapng_idb_info;

typedef struct ps__pcapng_isb {
  uint32_t iface;
  uint64_t ts;         /* in the interface's resolution */
  uint64_t starttime;  /* 0: not written */
  uint64_t endtime;
  const ps_capture_stats *stats;
} ps__pcapng_isb_info;

int ps__pcapng_shb(ps__buf *out, const char *userappl, const char *os,
                   const char *comment);
int ps__pcapng_idb(ps__buf *out, const ps__pcapng_idb_info *idb);
int ps__pcapng_epb(ps__buf *out, uint32_t iface, const ps_packet *pkt,
                   uint8_t tsres);
int ps__pcapng_isb(ps__buf *out, const ps__pcapng_isb_info *isb);

/* A pcapng timestamp (units of 10^-tsres s) from sec and frac. */
uint64_t ps__pcapng_ts(int64_t sec, uint32_t frac, uint8_t tsres);

#endif
