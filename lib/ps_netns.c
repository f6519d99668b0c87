/* Network namespaces on this host and the workloads they belong to (see
 * ps_netns.h). Everything here reads files; nothing enters a namespace. */
#include "config.h"

#include "ps_netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

#define MAX_BUNDLES 4096 /* config.json files read per scan */

/* The default runtime state directories: containerd's v2 task bundles
 * (NAMESPACE/ID/config.json) and CRI-O's (ID/userdata/config.json). */
static const char *const default_roots[] = {
    "/run/containerd/io.containerd.runtime.v2.task",
    "/run/containers/storage/overlay-containers",
};

int ps__netns_check_spec(const char *spec, char *err, size_t errlen) {
  if (spec == NULL || *spec == '\0') {
    snprintf(err, errlen,
             "empty --netns: give all, a name, a path, pid:PID, "
             "pod:NAMESPACE/NAME or container:ID");
    return PS_ERR_INVALID;
  }
  size_t n = strlen(spec);
  if (n > 250 || !ps__valid_name(spec, n)) {
    snprintf(err, errlen,
             "invalid --netns '%.60s': too long or control "
             "characters",
             spec);
    return PS_ERR_INVALID;
  }
  if (strncmp(spec, "pid:", 4) == 0) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(spec + 4, &end, 10);
    if (spec[4] == '\0' || *end != '\0' || errno != 0 || v == 0 ||
        v > 4194304) {
      snprintf(err, errlen,
               "invalid --netns '%s': pid:PID takes a process "
               "id",
               spec);
      return PS_ERR_INVALID;
    }
  } else if (strncmp(spec, "pod:", 4) == 0) {
    const char *sl = strchr(spec + 4, '/');
    if (sl == NULL || sl == spec + 4 || sl[1] == '\0' || strchr(sl + 1, '/')) {
      snprintf(err, errlen, "invalid --netns '%s': give pod:NAMESPACE/NAME",
               spec);
      return PS_ERR_INVALID;
    }
  } else if (strncmp(spec, "container:", 10) == 0) {
    if (spec[10] == '\0') {
      snprintf(err, errlen, "invalid --netns '%s': give container:ID", spec);
      return PS_ERR_INVALID;
    }
  } else if (spec[0] != '/' && (strchr(spec, '/') || strcmp(spec, ".") == 0 ||
                                strcmp(spec, "..") == 0)) {
    snprintf(err, errlen,
             "invalid --netns '%s': a name under /run/netns has "
             "no '/'; give a path from '/'",
             spec);
    return PS_ERR_INVALID;
  }
  return 0;
}

int ps__netns_check_match(const char *kv, char *err, size_t errlen) {
  const char *eq = kv ? strchr(kv, '=') : NULL;
  if (eq == NULL || eq == kv || (size_t)(eq - kv) >= 64 ||
      strlen(eq + 1) >= 256 || !ps__valid_name(kv, strlen(kv))) {
    snprintf(err, errlen,
             "invalid --netns-match '%.60s': give KEY=GLOB "
             "(namespace, pod, container, netns or a label)",
             kv ? kv : "");
    return PS_ERR_INVALID;
  }
  return 0;
}

void ps__workload_name(const ps__workload *w, char *out, size_t len) {
  if (w->pod_name[0] != '\0') {
    snprintf(out, len, "%s/%s", w->pod_ns[0] ? w->pod_ns : "-", w->pod_name);
  } else if (w->container[0] != '\0') {
    snprintf(out, len, "%s", w->container);
  } else if (w->netns[0] != '\0') {
    snprintf(out, len, "%s", w->netns);
  } else {
    snprintf(out, len, "netns-%llu", (unsigned long long)w->ino);
  }
}

size_t ps__netns_watch_dirs(const ps__netns_cfg *cfg, const char **out,
                            size_t max) {
  size_t n = 0;
  if (n < max) {
    out[n++] = "/run/netns";
  }
  if (cfg->runtime_root != NULL) {
    if (n < max) {
      out[n++] = cfg->runtime_root;
    }
  } else {
    for (size_t i = 0; i < sizeof(default_roots) / sizeof(*default_roots);
         i++) {
      if (n < max) {
        out[n++] = default_roots[i];
      }
    }
  }
  return n;
}

/* A network namespace file: its identity, or -1. */
static int ns_stat(const char *path, uint64_t *dev, uint64_t *ino) {
  struct stat st;
  struct statfs fs;
  if (stat(path, &st) != 0 || statfs(path, &fs) != 0 ||
      (unsigned long)fs.f_type != (unsigned long)NSFS_MAGIC) {
    return -1;
  }
  *dev = (uint64_t)st.st_dev;
  *ino = (uint64_t)st.st_ino;
  return 0;
}

typedef struct wlist {
  ps__workload *w;
  size_t n, cap;
} wlist;

static ps__workload *wl_find(wlist *l, uint64_t dev, uint64_t ino) {
  for (size_t i = 0; i < l->n; i++) {
    if (l->w[i].dev == dev && l->w[i].ino == ino) {
      return &l->w[i];
    }
  }
  return NULL;
}

/* The entry of this identity, added (opened by path) if new. */
static ps__workload *wl_get(wlist *l, uint64_t dev, uint64_t ino,
                            const char *path, int *added) {
  ps__workload *w = wl_find(l, dev, ino);
  *added = 0;
  if (w != NULL) {
    return w;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    ps__workload *nw = realloc(l->w, cap * sizeof(*nw));
    if (nw == NULL) {
      return NULL;
    }
    l->w = nw;
    l->cap = cap;
  }
  w = &l->w[l->n++];
  memset(w, 0, sizeof(*w));
  w->dev = dev;
  w->ino = ino;
  snprintf(w->path, sizeof(w->path), "%s", path);
  *added = 1;
  return w;
}

/* Whether a runtime may name this namespace path: under /proc or /run
 * (where runtimes keep them), without ".." or "." steps, so a bundle
 * cannot point the sensor at an arbitrary file. */
static int allowed_ns_path(const char *p) {
  if (strncmp(p, "/proc/", 6) != 0 && strncmp(p, "/run/", 5) != 0 &&
      strncmp(p, "/var/run/", 9) != 0) {
    return 0;
  }
  if (strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//")) {
    return 0;
  }
  size_t n = strlen(p);
  if (n >= 3 && strcmp(p + n - 3, "/..") == 0) {
    return 0;
  }
  return n < 290;
}

static const char *ann(json_t *a, const char *k1, const char *k2) {
  const char *v = json_string_value(json_object_get(a, k1));
  if (v == NULL && k2 != NULL) {
    v = json_string_value(json_object_get(a, k2));
  }
  return v;
}

static void put(char *dst, size_t len, const char *v) {
  if (v != NULL && ps__valid_name(v, strlen(v))) {
    snprintf(dst, len, "%s", v);
  }
}

int ps__bundle_read(const char *file, ps__workload *w, int *is_sandbox,
                    char *err, size_t errlen) {
  memset(w, 0, sizeof(*w));
  *is_sandbox = 0;
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open: %s", strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    snprintf(err, errlen, "not a regular file");
    return -1;
  }
  if (st.st_size > PS__BUNDLE_MAX_BYTES) {
    close(fd);
    snprintf(err, errlen, "%lld bytes, above the limit of %d: not read",
             (long long)st.st_size, PS__BUNDLE_MAX_BYTES);
    return -1;
  }
  /* Read at most the limit plus one byte, whatever the size said (a
   * file growing meanwhile). */
  char *buf = malloc(PS__BUNDLE_MAX_BYTES + 1);
  if (buf == NULL) {
    close(fd);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, PS__BUNDLE_MAX_BYTES + 1 - got);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      break;
    }
    got += (size_t)r;
    if (got > PS__BUNDLE_MAX_BYTES) {
      break;
    }
  }
  close(fd);
  if (got > PS__BUNDLE_MAX_BYTES) {
    free(buf);
    snprintf(err, errlen, "above the limit of %d bytes: not read",
             PS__BUNDLE_MAX_BYTES);
    return -1;
  }
  json_error_t je;
  json_t *root = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &je);
  free(buf);
  if (root == NULL) {
    snprintf(err, errlen, "malformed JSON at line %d: %s", je.line, je.text);
    return -1;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    snprintf(err, errlen, "not a JSON object");
    return -1;
  }
  json_t *nss = json_object_get(json_object_get(root, "linux"), "namespaces");
  size_t i;
  json_t *e;
  int bad_path = 0;
  json_array_foreach(nss, i, e) {
    const char *t = json_string_value(json_object_get(e, "type"));
    const char *p = json_string_value(json_object_get(e, "path"));
    if (t != NULL && strcmp(t, "network") == 0 && p != NULL) {
      if (allowed_ns_path(p)) {
        snprintf(w->path, sizeof(w->path), "%s", p);
      } else {
        bad_path = 1;
        snprintf(err, errlen,
                 "network namespace path '%.100s' is outside /proc and /run: "
                 "ignored",
                 p);
      }
    }
  }
  json_t *a = json_object_get(root, "annotations");
  const char *type = ann(a, "io.kubernetes.cri.container-type",
                         "io.kubernetes.cri-o.ContainerType");
  *is_sandbox = type != NULL && strcmp(type, "sandbox") == 0;
  put(w->pod_ns, sizeof(w->pod_ns),
      ann(a, "io.kubernetes.cri.sandbox-namespace",
          "io.kubernetes.pod.namespace"));
  put(w->pod_name, sizeof(w->pod_name),
      ann(a, "io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"));
  put(w->pod_uid, sizeof(w->pod_uid),
      ann(a, "io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"));
  put(w->sandbox_id, sizeof(w->sandbox_id),
      ann(a, "io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID"));
  if (!*is_sandbox) {
    put(w->container, sizeof(w->container),
        ann(a, "io.kubernetes.cri.container-name",
            "io.kubernetes.container.name"));
  }
  /* CRI-O keeps the pod's labels as a JSON object in one annotation. */
  const char *labels = ann(a, "io.kubernetes.cri-o.Labels", NULL);
  if (labels != NULL && strlen(labels) < 65536) {
    json_t *lo = json_loads(labels, 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(lo, k, v) {
      const char *s = json_string_value(v);
      if (s != NULL && w->n_labels < PS__NETNS_MAX_LABELS && strlen(k) < 64 &&
          strlen(s) < 256) {
        snprintf(w->label_key[w->n_labels], 64, "%s", k);
        snprintf(w->label_value[w->n_labels], 256, "%s", s);
        w->n_labels++;
      }
    }
    json_decref(lo);
  }
  json_decref(root);
  return bad_path ? -1 : 0;
}

/* Whether set holds h; with n, puts it in while the set is at most half
 * full (open addressing, 0 free: probes stay short). */
static int seen_in(uint64_t *set, unsigned *n, uint64_t h) {
  size_t i = (size_t)(h ^ h >> 29) & (PS__NETNS_SEEN_SLOTS - 1);
  while (set[i] != 0) {
    if (set[i] == h) {
      return 1;
    }
    i = (i + 1) & (PS__NETNS_SEEN_SLOTS - 1);
  }
  if (n != NULL && *n < PS__NETNS_SEEN_SLOTS / 2) {
    set[i] = h;
    (*n)++;
  }
  return 0;
}

/* Once per file version: the key mixes path, size and mtime. */
static int seen_before(ps__netns_seen *seen, const char *path,
                       const struct stat *st) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = path; *p; p++) {
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  }
  h ^= (uint64_t)st->st_size * 31 + (uint64_t)st->st_mtime;
  h += h == 0;
  unsigned c = seen->cur;
  int before = seen_in(seen->key[c ^ 1], NULL, h);
  return seen_in(seen->key[c], &seen->n[c], h) || before;
}

typedef struct bundle {
  ps__workload w;
  int sandbox;
  char id[128];
  char file[4096];
  struct stat st;
} bundle;

/* Collects the config.json files under root, at most 3 levels down. */
static void walk(const char *dir, int depth, bundle **out, size_t *n,
                 size_t *cap, ps__netns_seen *seen, ps_log_fn log, void *ud) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL && *n < MAX_BUNDLES) {
    if (de->d_name[0] == '.') {
      continue;
    }
    char p[4096];
    if (snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= (int)sizeof(p)) {
      continue;
    }
    struct stat st;
    if (lstat(p, &st) != 0) {
      continue;
    }
    if (S_ISDIR(st.st_mode) && depth < 3) {
      walk(p, depth + 1, out, n, cap, seen, log, ud);
      continue;
    }
    if (strcmp(de->d_name, "config.json") != 0 || depth == 0) {
      continue;
    }
    if (*n == *cap) {
      size_t nc = *cap ? *cap * 2 : 16;
      bundle *nb = realloc(*out, nc * sizeof(*nb));
      if (nb == NULL) {
        break;
      }
      *out = nb;
      *cap = nc;
    }
    bundle *b = &(*out)[*n];
    char err[300] = "";
    snprintf(b->file, sizeof(b->file), "%s", p);
    b->st = st;
    if (ps__bundle_read(p, &b->w, &b->sandbox, err, sizeof(err)) != 0) {
      if (!seen_before(seen, p, &st)) {
        ps__log(log, ud, PS_LOG_WARNING, "runtime bundle %s: %s", p, err);
      }
      if (b->w.path[0] == '\0' && b->w.pod_name[0] == '\0') {
        continue;
      }
    }
    /* The bundle's directory is the container id (CRI-O: its parent). */
    const char *id = dir + strlen(dir);
    while (id > dir && id[-1] != '/') {
      id--;
    }
    if (strcmp(id, "userdata") == 0 && id - 1 > dir) {
      const char *e = id - 1;
      const char *s = e;
      while (s > dir && s[-1] != '/') {
        s--;
      }
      snprintf(b->id, sizeof(b->id), "%.*s", (int)(e - s), s);
    } else {
      snprintf(b->id, sizeof(b->id), "%s", id);
    }
    (*n)++;
  }
  closedir(d);
}

static void add_id(ps__workload *w, const char *id) {
  if (id[0] == '\0' || strstr(w->containers, id) != NULL) {
    return;
  }
  size_t n = strlen(w->containers);
  if (n + strlen(id) + 2 < sizeof(w->containers)) {
    snprintf(w->containers + n, sizeof(w->containers) - n, "%s%s", n ? "," : "",
             id);
  }
}

static void attach(ps__workload *w, const bundle *b) {
  if (b->w.pod_name[0] != '\0' && w->pod_name[0] == '\0') {
    memcpy(w->pod_ns, b->w.pod_ns, sizeof(w->pod_ns));
    memcpy(w->pod_name, b->w.pod_name, sizeof(w->pod_name));
    memcpy(w->pod_uid, b->w.pod_uid, sizeof(w->pod_uid));
  }
  if (b->sandbox) {
    snprintf(w->sandbox_id, sizeof(w->sandbox_id), "%s", b->id);
  }
  if (b->w.container[0] != '\0' && w->container[0] == '\0') {
    memcpy(w->container, b->w.container, sizeof(w->container));
  }
  for (unsigned i = 0; i < b->w.n_labels && w->n_labels < PS__NETNS_MAX_LABELS;
       i++) {
    memcpy(w->label_key[w->n_labels], b->w.label_key[i], 64);
    memcpy(w->label_value[w->n_labels], b->w.label_value[i], 256);
    w->n_labels++;
  }
  add_id(w, b->id);
}

static const char *field(const ps__workload *w, const char *key, char *tmp,
                         size_t len) {
  if (strcmp(key, "namespace") == 0) {
    return w->pod_ns[0] ? w->pod_ns : NULL;
  }
  if (strcmp(key, "pod") == 0) {
    return w->pod_name[0] ? w->pod_name : NULL;
  }
  if (strcmp(key, "container") == 0) {
    return w->container[0] ? w->container : NULL;
  }
  if (strcmp(key, "netns") == 0) {
    ps__workload_name(w, tmp, len);
    return w->netns[0] ? w->netns : tmp;
  }
  for (unsigned i = 0; i < w->n_labels; i++) {
    if (strcmp(w->label_key[i], key) == 0) {
      return w->label_value[i];
    }
  }
  return NULL;
}

static int spec_selects(const char *spec, const ps__workload *w, uint64_t sdev,
                        uint64_t sino) {
  if (strcmp(spec, "all") == 0) {
    return !w->own;
  }
  if (strncmp(spec, "pod:", 4) == 0) {
    const char *sl = strchr(spec + 4, '/');
    return sl && w->pod_name[0] &&
           strncmp(w->pod_ns, spec + 4, (size_t)(sl - spec - 4)) == 0 &&
           w->pod_ns[sl - spec - 4] == '\0' && strcmp(w->pod_name, sl + 1) == 0;
  }
  if (strncmp(spec, "container:", 10) == 0) {
    const char *id = spec + 10;
    for (const char *c = w->containers; *c;) {
      if (strncmp(c, id, strlen(id)) == 0) {
        return 1;
      }
      c = strchr(c, ',');
      if (c == NULL) {
        break;
      }
      c++;
    }
    return w->container[0] && strcmp(w->container, id) == 0;
  }
  return sdev == w->dev && sino == w->ino;
}

/* The file a name, path or pid: spec names. */
static int spec_path(const char *spec, char *p, size_t len) {
  if (strncmp(spec, "pid:", 4) == 0) {
    snprintf(p, len, "/proc/%s/ns/net", spec + 4);
  } else if (spec[0] == '/') {
    snprintf(p, len, "%s", spec);
  } else if (strcmp(spec, "all") != 0 && strchr(spec, ':') == NULL) {
    snprintf(p, len, "/run/netns/%s", spec);
  } else {
    return 0;
  }
  return 1;
}

int ps__netns_scan(const ps__netns_cfg *cfg, ps__netns_seen *seen,
                   ps__workload **out, size_t *nout, ps_log_fn log, void *ud) {
  wlist l = {0};
  int added;
  uint64_t odev = 0, oino = 0;
  ns_stat("/proc/self/ns/net", &odev, &oino);
  *out = NULL;
  *nout = 0;
  /* A new set for this scan; the last scan's is kept to compare. */
  seen->cur ^= 1;
  memset(seen->key[seen->cur], 0, sizeof(seen->key[0]));
  seen->n[seen->cur] = 0;

  DIR *d = opendir("/run/netns");
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    char p[300];
    uint64_t dev, ino;
    if (de->d_name[0] == '.' ||
        snprintf(p, sizeof(p), "/run/netns/%s", de->d_name) >= (int)sizeof(p) ||
        ns_stat(p, &dev, &ino) != 0) {
      continue; /* not (yet) a namespace: ip netns add mounts it after */
    }
    ps__workload *w = wl_get(&l, dev, ino, p, &added);
    if (w == NULL) {
      goto nomem;
    }
    if (added && ps__valid_name(de->d_name, strlen(de->d_name))) {
      snprintf(w->netns, sizeof(w->netns), "%s", de->d_name);
    }
  }
  if (d != NULL) {
    closedir(d);
    d = NULL;
  }
  /* Namespaces without a file: only processes hold them. */
  d = opendir(cfg->proc);
  while (d != NULL && (de = readdir(d)) != NULL) {
    if (de->d_name[0] < '1' || de->d_name[0] > '9') {
      continue;
    }
    char p[300];
    uint64_t dev, ino;
    snprintf(p, sizeof(p), "%s/%.20s/ns/net", cfg->proc, de->d_name);
    if (ns_stat(p, &dev, &ino) != 0) {
      continue;
    }
    ps__workload *w = wl_get(&l, dev, ino, p, &added);
    if (w == NULL) {
      goto nomem;
    }
    if (added) {
      w->pids_only = 1;
    }
  }
  if (d != NULL) {
    closedir(d);
    d = NULL;
  }
  /* Paths given explicitly (a bind mount elsewhere). */
  for (unsigned i = 0; i < cfg->n_spec; i++) {
    char p[300];
    uint64_t dev, ino;
    if (spec_path(cfg->spec[i], p, sizeof(p)) && ns_stat(p, &dev, &ino) == 0 &&
        wl_get(&l, dev, ino, p, &added) == NULL) {
      goto nomem;
    }
  }
  /* The runtime's bundles: sandboxes first name the pod; containers add
   * their ids (by the namespace path, or by their sandbox's id). */
  bundle *b = NULL;
  size_t nb = 0, cb = 0;
  const char *roots[4];
  size_t nr = ps__netns_watch_dirs(cfg, roots, 4);
  for (size_t r = 1; r < nr; r++) {
    walk(roots[r], 0, &b, &nb, &cb, seen, log, ud);
  }
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < nb; i++) {
      if (b[i].sandbox != (pass == 0)) {
        continue;
      }
      uint64_t dev, ino;
      ps__workload *w = NULL;
      if (b[i].w.path[0] != '\0') {
        if (ns_stat(b[i].w.path, &dev, &ino) != 0) {
          /* Gone, or not there yet: said once per bundle version. */
          if (!seen_before(seen, b[i].file, &b[i].st)) {
            ps__log(log, ud, PS_LOG_INFO,
                    "runtime bundle %s: network namespace %s is not there "
                    "(yet): its workload is not captured now",
                    b[i].file, b[i].w.path);
          }
          continue;
        }
        w = wl_get(&l, dev, ino, b[i].w.path, &added);
        if (w == NULL) {
          free(b);
          goto nomem;
        }
      } else if (b[i].w.sandbox_id[0] != '\0') {
        for (size_t k = 0; k < l.n && w == NULL; k++) {
          if (strcmp(l.w[k].sandbox_id, b[i].w.sandbox_id) == 0) {
            w = &l.w[k];
          }
        }
      }
      if (w != NULL) {
        attach(w, &b[i]);
      }
    }
  }
  free(b);

  /* Selection: any spec, then every match. */
  size_t keep = 0;
  for (size_t i = 0; i < l.n; i++) {
    ps__workload *w = &l.w[i];
    w->own = w->dev == odev && w->ino == oino;
    int sel = 0;
    for (unsigned k = 0; k < cfg->n_spec && !sel; k++) {
      char p[300];
      uint64_t sdev = 0, sino = 0;
      if (spec_path(cfg->spec[k], p, sizeof(p)) &&
          ns_stat(p, &sdev, &sino) != 0) {
        continue;
      }
      sel = spec_selects(cfg->spec[k], w, sdev, sino);
    }
    for (unsigned k = 0; k < cfg->n_match && sel; k++) {
      char tmp[300];
      const char *v = field(w, cfg->match_key[k], tmp, sizeof(tmp));
      sel = v != NULL && fnmatch(cfg->match_glob[k], v, 0) == 0;
    }
    if (sel) {
      l.w[keep++] = *w;
    }
  }
  *out = l.w;
  *nout = keep;
  return 0;
nomem:
  if (d != NULL) {
    closedir(d);
  }
  free(l.w);
  return PS_ERR_NOMEM;
}
