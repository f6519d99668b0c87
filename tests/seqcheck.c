/* seqcheck [--count N] [--allow-torn|--allow-page-torn] FILE...: reads capture
 * files in the order given (libpcap) and checks the UDP datagrams udpsend
 * stamped (index, "psq1"): across all files each index must appear exactly once
 * and in increasing order; with --count, indexes 0..N-1 must all be
 * there. Every file must read to its end without an error (a record cut
 * short is an error) unless --allow-torn, or --allow-page-torn and the
 * file ends at a multiple of 4096 bytes (Linux stops a buffered write at
 * a page boundary when the writer gets SIGKILL). Prints one summary line:
 *   packets P stamped S unique U duplicates D reordered R missing M
 * and exits 0 only if all holds. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The stamp of an Ethernet/IPv4/UDP packet, or -1. */
static long stamp(const uint8_t *p, uint32_t caplen, int linktype) {
  if (linktype != DLT_EN10MB || caplen < 14 + 20 + 8 + 8 || p[12] != 0x08 ||
      p[13] != 0x00) {
    return -1;
  }
  const uint8_t *ip = p + 14;
  size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
  if ((ip[0] >> 4) != 4 || ip[9] != 17 || 14 + ihl + 16 > caplen) {
    return -1;
  }
  const uint8_t *pl = ip + ihl + 8;
  if (memcmp(pl + 4, "psq1", 4) != 0) {
    return -1;
  }
  return (long)((uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 |
                (uint32_t)pl[2] << 8 | pl[3]);
}

int main(int argc, char **argv) {
  long count = -1;
  int allow_torn = 0, allow_page_torn = 0, i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      count = atol(argv[++i]);
    } else if (strcmp(argv[i], "--allow-torn") == 0) {
      allow_torn = 1;
    } else if (strcmp(argv[i], "--allow-page-torn") == 0) {
      allow_page_torn = 1;
    } else {
      fprintf(stderr, "usage: seqcheck [--count N] [--allow-torn] FILE...\n");
      return 2;
    }
  }
  size_t cap = 1 << 20;
  uint8_t *seen = calloc(cap, 1);
  long packets = 0, stamped = 0, unique = 0, dups = 0, reordered = 0;
  long last = -1;
  int bad = 0;
  for (; i < argc; i++) {
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(
        argv[i], PCAP_TSTAMP_PRECISION_NANO, eb);
    if (pc == NULL) {
      fprintf(stderr, "seqcheck: %s: %s\n", argv[i], eb);
      bad = 1;
      continue;
    }
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc;
    long in_file = 0;
    while ((rc = pcap_next_ex(pc, &h, &d)) == 1) {
      packets++;
      in_file++;
      long s = stamp(d, h->caplen, pcap_datalink(pc));
      if (s < 0) {
        continue;
      }
      stamped++;
      if ((size_t)s >= cap) {
        fprintf(stderr, "seqcheck: index %ld out of range\n", s);
        bad = 1;
        continue;
      }
      if (seen[s]) {
        dups++;
        if (dups <= 5) {
          fprintf(stderr, "seqcheck: %s: index %ld again\n", argv[i], s);
        }
      } else {
        seen[s] = 1;
        unique++;
      }
      if (s <= last) {
        reordered++;
      }
      last = s;
    }
    if (rc == PCAP_ERROR) {
      fprintf(stderr, "seqcheck: %s: after %ld packets: %s\n", argv[i], in_file,
              pcap_geterr(pc));
      struct stat st;
      int page = stat(argv[i], &st) == 0 && st.st_size % 4096 == 0;
      if (page) {
        fprintf(stderr, "seqcheck: %s: torn at a page boundary (%lld bytes)\n",
                argv[i], (long long)st.st_size);
      }
      if (!allow_torn && !(allow_page_torn && page)) {
        bad = 1;
      }
    }
    pcap_close(pc);
  }
  long missing = 0;
  if (count >= 0) {
    for (long k = 0; k < count && (size_t)k < cap; k++) {
      if (!seen[k] && ++missing <= 10) {
        fprintf(stderr, "seqcheck: index %ld missing\n", k);
      }
    }
  }
  printf("packets %ld stamped %ld unique %ld duplicates %ld reordered %ld "
         "missing %ld\n",
         packets, stamped, unique, dups, reordered, missing);
  free(seen);
  return (bad || dups || reordered || missing) ? 1 : 0;
}
