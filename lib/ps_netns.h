/*
 * Network namespaces on this host, and the workloads they belong to: the
 * discovery half of ps-sensor --netns. It reads /run/netns, /proc/PID/
 * ns/net and the container runtime's OCI bundles (config.json, read-only,
 * with jansson); it never enters a namespace or touches libpcap (the
 * sensor does, ps_sensor.c).
 */
#ifndef PS_NETNS_H
#define PS_NETNS_H

#include "ps_common.h"

#include <sys/types.h>

#define PS__NETNS_MAX_SPECS 64
#define PS__NETNS_MAX_MATCH 16
#define PS__NETNS_MAX_LABELS 16
/* A config.json larger than this is refused unread (a runtime's are a
 * few KiB; a huge one is a hostile or broken bundle). */
#define PS__BUNDLE_MAX_BYTES (1024 * 1024)

typedef struct ps__workload {
  uint64_t dev, ino; /* the namespace's identity */
  char path[300];    /* a file to open it by */
  char netns[256];   /* its /run/netns name, or "" */
  char pod_ns[256];  /* from the runtime: pod namespace, name, uid */
  char pod_name[256];
  char pod_uid[128];
  char container[256];   /* a container's name (no pod) */
  char containers[1024]; /* container ids, comma-separated */
  char sandbox_id[128];
  char label_key[PS__NETNS_MAX_LABELS][64];
  char label_value[PS__NETNS_MAX_LABELS][256];
  unsigned n_labels;
  int own;       /* the sensor's own namespace */
  int pids_only; /* found only through /proc (no file that names it) */
  int selected;
} ps__workload;

/* What the user asked for. */
typedef struct ps__netns_cfg {
  char
      *spec[PS__NETNS_MAX_SPECS]; /* all, NAME, PATH, pid:N, pod:, container: */
  unsigned n_spec;
  char *match_key[PS__NETNS_MAX_MATCH];
  char *match_glob[PS__NETNS_MAX_MATCH];
  unsigned n_match;
  char *runtime_root; /* NULL: containerd's and CRI-O's */
  const char *proc;   /* "/proc" (tests may not change it) */
} ps__netns_cfg;

/* Checks one --netns SPEC; 0 or PS_ERR_INVALID with the reason. */
int ps__netns_check_spec(const char *spec, char *err, size_t errlen);
/* Checks one --netns-match KEY=GLOB. */
int ps__netns_check_match(const char *kv, char *err, size_t errlen);

/* Bad bundles are logged once per file version, not every rescan: the
 * versions met in this scan and in the one before (hash sets; a version
 * not met again is forgotten, so no number of bundles over a long run
 * fills it). A set is filled to half at most (beyond, a file is said
 * again at each scan), twice the bundles one scan reads. */
#define PS__NETNS_SEEN_SLOTS 8192
typedef struct ps__netns_seen {
  uint64_t key[2][PS__NETNS_SEEN_SLOTS];
  unsigned n[2];
  unsigned cur; /* the set of this scan */
} ps__netns_seen;

/* Lists the namespaces the configuration selects, deduplicated by
 * identity: *out (malloc'd, caller frees) gets *n entries, each with the
 * runtime's identity where a bundle names it. Problems with single
 * entries (a bundle too large, malformed, naming a path outside /proc
 * and /run; a namespace gone meanwhile) are logged and skipped. Returns 0
 * or PS_ERR_NOMEM. */
int ps__netns_scan(const ps__netns_cfg *cfg, ps__netns_seen *seen,
                   ps__workload **out, size_t *n, ps_log_fn log, void *ud);

/* The workload's name in interface names: "NAMESPACE/NAME" of a pod,
 * the container name, the /run/netns name, or "netns-INODE". */
void ps__workload_name(const ps__workload *w, char *out, size_t len);

/* The directories inotify watches for new and gone namespaces. */
size_t ps__netns_watch_dirs(const ps__netns_cfg *cfg, const char **out,
                            size_t max);

/* Reads one OCI bundle config.json (exported for the unit test): the
 * network namespace path and the pod/container annotations into w
 * (path empty if none). Returns 0, or -1 with the reason in err. */
int ps__bundle_read(const char *file, ps__workload *w, int *is_sandbox,
                    char *err, size_t errlen);

#endif
