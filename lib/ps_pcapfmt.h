/* pcap and pcapng byte layouts, sans I/O: records into buffers. Files are
 * written in the host's byte order, as libpcap writes them. The time
 * stamp rules are in ps_pcapfmt.c, each format's blocks
 * in its module (ps_fmt_pcap.c, ps_fmt_pcapng.c), which ps_fmt.h puts
 * behind one table. */
#ifndef PS_PCAPFMT_H
#define PS_PCAPFMT_H

#include "ps_common.h"

#define PS_PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PS_PCAP_MAGIC_NSEC 0xa1b23c4du
#define PS_PCAP_FILE_HDR 24
#define PS_PCAP_REC_HDR 16

/* Time stamps a file can hold. The wire carries ts_sec as any signed
 * 64-bit value and ts_frac as any 32-bit value; the formats hold less.
 * Every function below is exact or refuses, on every input:
 *  - ts_sec from -2^31 to -1 is a classic pcap time that a reader
 *    sign-extended (libpcap does for times after 2038): files take it as
 *    ts_sec + 2^32. Below -2^31 no file format holds it.
 *  - Between resolutions the fraction is normalised (its whole seconds
 *    carried into the seconds); in the same resolution it is kept
 *    verbatim, even out of range.
 *  - Classic pcap holds seconds 0..2^32-1 (to 2106-02-07), pcapng
 *    seconds * 10^tsres + fraction up to 2^64-1.
 * A resolution is the number of decimal digits of the fraction, 0..9. */

/* Converts sec.frac from resolution from_res to to_res in place: a
 * fraction already in to_res is kept verbatim, otherwise it is
 * normalised first. Returns 0, or -1 (sec and frac unchanged) when the
 * seconds would pass INT64_MAX or a resolution is above 9. */
int ps__ts_convert(int64_t *sec, uint32_t *frac, uint8_t from_res,
                   uint8_t to_res);

/* A classic pcap record's time fields for sec.frac (resolution tsres) in
 * a microsecond (nano 0) or nanosecond file. Returns 0, or -1 when the
 * file cannot hold it (*out_sec and *out_frac then untouched). */
int ps__pcap_ts(uint32_t *out_sec, uint32_t *out_frac, int64_t sec,
                uint32_t frac, uint8_t tsres, int nano);

/* A pcapng timestamp (units of 10^-tsres s) for sec.frac, whose fraction
 * is in resolution tsres. Returns 0, or -1 when 64 bits cannot hold it. */
int ps__pcapng_ts(uint64_t *out, int64_t sec, uint32_t frac, uint8_t tsres);

/* The last second classic pcap holds, and the last pcapng holds with
 * this fraction: for messages that say why a time was refused. */
#define PS_PCAP_MAX_SEC 4294967295u
uint64_t ps__pcapng_max_sec(uint32_t frac, uint8_t tsres);

int ps__pcap_file_header(ps__buf *out, uint32_t linktype, uint32_t snaplen,
                         int nano);
/* Appends one record; pkt's ts_frac is in resolution tsres. Returns 0,
 * PS_ERR_NOMEM, or PS_ERR_INVALID (nothing appended) for a time stamp
 * the file cannot hold (ps__pcap_ts()) or a caplen above PS_MAX_CAPLEN.
 * Either way a record is at most PS_PCAP_REC_HDR + PS_MAX_CAPLEN bytes. */
int ps__pcap_record(ps__buf *out, const ps_packet *pkt, uint8_t tsres,
                    int nano);

/* pcapng */
typedef struct ps__pcapng_idb {
  uint32_t linktype; /* as on the wire; FCS bits become if_fcslen */
  uint32_t snaplen;
  uint8_t tsres;
  const char *name;        /* if_name */
  const char *description; /* if_description, may be NULL */
  /* opt_comment options, one per text (the workload's identity as
   * "key=value"): readers show comments, and unknown custom options
   * would need a Private Enterprise Number to mean anything. */
  char *const *comments;
  size_t n_comments;
} ps__pcapng_idb_info;

typedef struct ps__pcapng_isb {
  uint32_t iface;
  uint64_t ts;        /* in the interface's resolution */
  uint64_t starttime; /* 0: not written */
  uint64_t endtime;
  const ps_capture_stats *stats;
} ps__pcapng_isb_info;

int ps__pcapng_shb(ps__buf *out, const char *userappl, const char *os,
                   const char *comment);
int ps__pcapng_idb(ps__buf *out, const ps__pcapng_idb_info *idb);
/* An Enhanced Packet Block; pkt's ts_frac is in resolution tsres, the
 * interface's. Returns 0, PS_ERR_NOMEM, or PS_ERR_INVALID (nothing
 * appended) for a time stamp pcapng cannot hold (ps__pcapng_ts()) or a
 * caplen above PS_MAX_CAPLEN. */
int ps__pcapng_epb(ps__buf *out, uint32_t iface, const ps_packet *pkt,
                   uint8_t tsres);
int ps__pcapng_isb(ps__buf *out, const ps__pcapng_isb_info *isb);

/* --- reading back our own files (append and repair), sans I/O --- */

/* Checks a classic pcap file header (PS_PCAP_FILE_HDR bytes) against the
 * output's link type and precision. Returns 0, or -1 with the reason in
 * why ("has link type 101, this output 1", ...). */
int ps__pcap_check_header(const uint8_t *hdr, uint32_t linktype, int nano,
                          char *why, size_t whylen);
/* The size of the record whose PS_PCAP_REC_HDR-byte header is rh, or 0
 * if the header cannot be one of ours (caplen above PS_MAX_CAPLEN). */
uint64_t ps__pcap_record_size(const uint8_t *rh);

/* pcapng block framing: from the first 12 bytes of a block (type,
 * length, and for a Section Header Block its byte-order magic) gives the
 * block's total length, 0 if it cannot be a block. *swapped is the byte
 * order of the section: set by a Section Header Block, used by others. */
uint32_t ps__pcapng_block_len(const uint8_t *b, int *swapped);
/* The trailing length of a block (its last 4 bytes) in the section's
 * byte order. */
uint32_t ps__pcapng_trailer_len(const uint8_t *t, int swapped);
#define PS_PCAPNG_SHB_TYPE 0x0A0D0D0Au

#endif
