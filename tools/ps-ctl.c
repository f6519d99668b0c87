/* ps-ctl: a command-line client of ps-receiver's admin API (HTTP, JSON).
 * libcurl talks HTTP, jansson reads and writes the JSON; the tool only
 * maps commands to requests and answers to tables. */
#include "config.h"

#include <packetstreamer/packetstreamer.h>

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1
#define MAX_ANSWER (16u << 20) /* bytes of an answer taken */

static const char *g_admin;
static char g_auth[1100]; /* "Authorization: Bearer TOKEN" */
static int g_json;
static const char *g_cacert, *g_cert, *g_key; /* PEM files, for HTTPS */

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ps-ctl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ps-ctl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (ps-ctl --help)\n", stderr);
  va_end(ap);
  return EXIT_USAGE;
}

/* clang-format off */
static void usage(FILE *f) {
  fputs(
"Usage: ps-ctl --admin URL [--token-file FILE] [--cacert FILE]\n"
"              [--cert FILE --key FILE] [--json] COMMAND\n"
"\n"
"Commands:\n"
"  sensors [NAME]             the receiver's sensors (one in detail)\n"
"  capture start --sensors SEL [--label KEY=VALUE]... [--interface IFACE]...\n"
"          [--duration SECONDS] [--count N] [--snaplen N] [--sample 1/N]\n"
"          [--max-pps N] [--output TEMPLATE] [FILTER...]\n"
"                             start a capture on the matching sensors\n"
"  capture list               every capture the receiver knows\n"
"  capture show ID            one capture, per sensor\n"
"  capture stop ID            stop it (waits for the sensors' answers)\n"
"  capture set-filter ID FILTER...   change its filter while it runs\n"
"  capture set-sample ID 1/N  change its sampling while it runs\n"
"  metrics                    the Prometheus exposition (GET /metrics)\n"
"\n"
"  --admin URL        the receiver's admin API, e.g. http://127.0.0.1:9100\n"
"  --token-file FILE  bearer token (the receiver's --admin-token-file)\n"
"  --cacert FILE      CA certificates (PEM) to verify an https:// receiver\n"
"                     with, instead of the system's\n"
"  --cert FILE, --key FILE  client certificate and key (PEM), for a\n"
"                     receiver with --admin-tls-client-ca\n"
"  --json             print the API's JSON instead of tables\n"
"  --sensors SEL      names or globs, comma-separated ('web-*')\n"
"  -h, --help         this help; -V, --version\n"
"\n"
"Exit status: 0 done, 1 the request failed (HTTP error, unreachable),\n"
"2 usage error.\n", f);
}
/* clang-format on */

typedef struct answer {
  char *p;
  size_t len;
  int too_big;
} answer;

static size_t on_data(char *ptr, size_t size, size_t n, void *ud) {
  answer *a = ud;
  size_t k = size * n;
  if (a->len + k > MAX_ANSWER) {
    a->too_big = 1;
    return 0;
  }
  char *q = realloc(a->p, a->len + k + 1);
  if (q == NULL) {
    return 0;
  }
  memcpy(q + a->len, ptr, k);
  a->p = q;
  a->len += k;
  a->p[a->len] = '\0';
  return k;
}

/* One request; *out gets the body (caller frees). Returns the HTTP
 * status, or -1 when no answer came (said on stderr). */
static long request(const char *method, const char *path, const char *body,
                    char **out) {
  char url[2048];
  size_t n = strlen(g_admin);
  snprintf(url, sizeof(url), "%.*s%s",
           (int)(n && g_admin[n - 1] == '/' ? n - 1 : n), g_admin, path);
  CURL *c = curl_easy_init();
  if (c == NULL) {
    err("cannot start libcurl");
    return -1;
  }
  answer a = {0};
  struct curl_slist *h = NULL;
  if (g_auth[0]) {
    h = curl_slist_append(h, g_auth);
  }
  if (body != NULL) {
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (g_cacert != NULL) {
    curl_easy_setopt(c, CURLOPT_CAINFO, g_cacert);
  }
  if (g_cert != NULL) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, g_cert);
    curl_easy_setopt(c, CURLOPT_SSLKEY, g_key);
  }
  CURLcode rc = curl_easy_perform(c);
  long status = -1;
  if (rc != CURLE_OK) {
    err("%s %s: %s", method, url,
        a.too_big ? "answer larger than 16 MiB" : curl_easy_strerror(rc));
    free(a.p);
    a.p = NULL;
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  *out = a.p;
  return status;
}

/* The answer as JSON, or NULL after saying why (HTTP errors print the
 * API's reason). */
static json_t *call(const char *method, const char *path, json_t *body,
                    long *status_out) {
  char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
  char *text = NULL;
  long st = request(method, path, b, &text);
  free(b);
  if (status_out) {
    *status_out = st;
  }
  if (st < 0) {
    return NULL;
  }
  json_error_t je;
  json_t *j = text ? json_loads(text, 0, &je) : NULL;
  if (st >= 300) {
    const char *why = j ? json_string_value(json_object_get(j, "error")) : NULL;
    err("%s %s: HTTP %ld: %s", method, path, st,
        why ? why : (text ? text : "(no body)"));
    json_decref(j);
    free(text);
    return NULL;
  }
  if (j == NULL) {
    err("%s %s: the answer is not JSON", method, path);
  }
  free(text);
  return j;
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static long long jint(json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

static void print_json(json_t *j) {
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
  fputc('\n', stdout);
}

static int cmd_sensors(const char *name) {
  char path[600];
  snprintf(path, sizeof(path), "/api/v1/sensors%s%s", name ? "/" : "",
           name ? name : "");
  json_t *j = call("GET", path, NULL, NULL);
  if (j == NULL) {
    return EXIT_RUNTIME;
  }
  if (g_json) {
    print_json(j);
    json_decref(j);
    return 0;
  }
  json_t *list = name ? NULL : json_object_get(j, "sensors");
  size_t n = name ? 1 : json_array_size(list);
  printf("%-20s %-9s %-22s %-8s %-24s %s\n", "SENSOR", "STATE", "ADDRESS",
         "VERSION", "LABELS", "PACKETS");
  for (size_t i = 0; i < n; i++) {
    json_t *e = name ? j : json_array_get(list, i);
    char labels[512] = "";
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(e, "labels"), k, v) {
      size_t l = strlen(labels);
      snprintf(labels + l, sizeof(labels) - l, "%s%s=%s", l ? "," : "", k,
               json_string_value(v));
    }
    long long pk = 0;
    size_t ci;
    json_t *cv;
    json_array_foreach(json_object_get(e, "counters"), ci, cv) {
      pk += jint(cv, "packets");
    }
    printf("%-20s %-9s %-22s %-8s %-24s %lld\n", jstr(e, "name"),
           json_is_true(json_object_get(e, "connected")) ? "connected" : "gone",
           jstr(e, "address"), jstr(e, "version")[0] ? jstr(e, "version") : "-",
           labels[0] ? labels : "-", pk);
  }
  json_decref(j);
  return 0;
}

static void print_capture(json_t *c) {
  printf("capture %lld: %s, filter '%s'", jint(c, "id"), jstr(c, "state"),
         jstr(c, "filter"));
  if (json_object_get(c, "duration_s")) {
    printf(", %lld s", jint(c, "duration_s"));
  }
  if (json_object_get(c, "sample")) {
    printf(", sample %s", jstr(c, "sample"));
  }
  if (json_object_get(c, "max_pps")) {
    printf(", max %lld pps", jint(c, "max_pps"));
  }
  if (strcmp(jstr(c, "origin"), "sensor") == 0) {
    printf(", the sensor's own%s",
           json_is_true(json_object_get(c, "read_only")) ? " (read-only)" : "");
  }
  printf(", %lld packets\n", jint(c, "packets"));
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(c, "output_files"), i, t) {
    printf("  file %s\n", json_string_value(t) ? json_string_value(t) : "?");
  }
  json_array_foreach(json_object_get(c, "sensors"), i, t) {
    printf("  %-20s %-9s %8lld packets", jstr(t, "sensor"), jstr(t, "state"),
           jint(t, "packets"));
    if (jint(t, "sampled_out") > 0) {
      printf(", %lld sampled out", jint(t, "sampled_out"));
    }
    if (jstr(t, "reason")[0]) {
      printf(": %s", jstr(t, "reason"));
    }
    if (jstr(t, "change")[0]) {
      printf(" (change: %s)", jstr(t, "change"));
    }
    putchar('\n');
  }
}

static int show(json_t *j) {
  if (j == NULL) {
    return EXIT_RUNTIME;
  }
  if (g_json) {
    print_json(j);
  } else {
    print_capture(j);
  }
  json_decref(j);
  return 0;
}

static char *join(int argc, char **argv) {
  size_t n = 1;
  for (int i = 0; i < argc; i++) {
    n += strlen(argv[i]) + 1;
  }
  char *s = calloc(1, n);
  for (int i = 0; s && i < argc; i++) {
    if (i) {
      strcat(s, " ");
    }
    strcat(s, argv[i]);
  }
  return s;
}

static int parse_u64(const char *s, const char *opt, unsigned long long max,
                     json_int_t *out) {
  char *end;
  if (s[0] < '0' || s[0] > '9') {
    return usage_error("invalid %s '%s': give a number", opt, s);
  }
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0' || v == 0 || v > max) {
    return usage_error("invalid %s '%s': give a number 1..%llu", opt, s, max);
  }
  *out = (json_int_t)v;
  return 0;
}

static int cmd_start(int argc, char **argv) {
  static const struct option opts[] = {
      {"sensors", required_argument, NULL, 's'},
      {"label", required_argument, NULL, 'l'},
      {"interface", required_argument, NULL, 'i'},
      {"duration", required_argument, NULL, 'd'},
      {"count", required_argument, NULL, 'c'},
      {"snaplen", required_argument, NULL, 'S'},
      {"sample", required_argument, NULL, 'm'},
      {"max-pps", required_argument, NULL, 'p'},
      {"output", required_argument, NULL, 'o'},
      {NULL, 0, NULL, 0}};
  json_t *req = json_object(), *names = json_array(), *labels = json_object(),
         *ifs = json_array();
  int c, rc = 0;
  json_int_t v;
  optind = 1;
  while (rc == 0 && (c = getopt_long(argc, argv, "+s:l:i:d:c:S:m:p:o:", opts,
                                     NULL)) != -1) {
    switch (c) {
    case 's': {
      char *list = strdup(optarg), *save = NULL;
      for (char *t = strtok_r(list, ",", &save); t;
           t = strtok_r(NULL, ",", &save)) {
        json_array_append_new(names, json_string(t));
      }
      free(list);
      break;
    }
    case 'l': {
      const char *eq = strchr(optarg, '=');
      if (eq == NULL || eq == optarg) {
        rc = usage_error("invalid --label '%s': give KEY=VALUE", optarg);
        break;
      }
      char key[256];
      snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
      json_object_set_new(labels, key, json_string(eq + 1));
      break;
    }
    case 'i':
      json_array_append_new(ifs, json_string(optarg));
      break;
    case 'd':
      if ((rc = parse_u64(optarg, "--duration", 31536000, &v)) == 0) {
        json_object_set_new(req, "duration_s", json_integer(v));
      }
      break;
    case 'c':
      if ((rc = parse_u64(optarg, "--count", 1ull << 62, &v)) == 0) {
        json_object_set_new(req, "count", json_integer(v));
      }
      break;
    case 'S':
      if ((rc = parse_u64(optarg, "--snaplen", 262144, &v)) == 0) {
        json_object_set_new(req, "snaplen", json_integer(v));
      }
      break;
    case 'm':
      json_object_set_new(req, "sample", json_string(optarg));
      break;
    case 'p':
      if ((rc = parse_u64(optarg, "--max-pps", 4294967295ull, &v)) == 0) {
        json_object_set_new(req, "max_pps", json_integer(v));
      }
      break;
    case 'o':
      if (*optarg == '\0') {
        rc = usage_error("empty --output: give a path template, e.g. "
                         "'cap-{capture}.pcapng'");
        break;
      }
      json_object_set_new(req, "output", json_string(optarg));
      break;
    default:
      rc = usage_error("capture start: unknown option");
    }
  }
  if (rc == 0 && json_array_size(names) == 0 && json_object_size(labels) == 0) {
    rc = usage_error("capture start needs --sensors SEL or --label KEY=VALUE");
  }
  if (rc != 0) {
    json_decref(req);
    json_decref(names);
    json_decref(labels);
    json_decref(ifs);
    return rc;
  }
  json_t *sel = json_object();
  if (json_array_size(names) > 0) {
    json_object_set(sel, "names", names);
  }
  if (json_object_size(labels) > 0) {
    json_object_set(sel, "labels", labels);
  }
  json_decref(names);
  json_decref(labels);
  json_object_set_new(req, "sensors", sel);
  if (json_array_size(ifs) > 0) {
    json_object_set(req, "interfaces", ifs);
  }
  json_decref(ifs);
  if (optind < argc) {
    char *f = join(argc - optind, argv + optind);
    json_object_set_new(req, "filter", json_string(f ? f : ""));
    free(f);
  }
  json_t *j = call("POST", "/api/v1/captures", req, NULL);
  json_decref(req);
  return show(j);
}

static int cmd_capture(int argc, char **argv) {
  if (argc < 1) {
    return usage_error("capture: give start, list, show, stop, set-filter or "
                       "set-sample");
  }
  const char *sub = argv[0];
  if (strcmp(sub, "start") == 0) {
    return cmd_start(argc, argv);
  }
  if (strcmp(sub, "list") == 0) {
    json_t *j = call("GET", "/api/v1/captures", NULL, NULL);
    if (j == NULL) {
      return EXIT_RUNTIME;
    }
    if (g_json) {
      print_json(j);
    } else {
      size_t i;
      json_t *c;
      json_array_foreach(json_object_get(j, "captures"), i, c) {
        print_capture(c);
      }
    }
    json_decref(j);
    return 0;
  }
  if (argc < 2) {
    return usage_error("capture %s: give the capture ID", sub);
  }
  char path[256];
  json_int_t id;
  if (parse_u64(argv[1], "capture ID", 1ull << 62, &id) != 0) {
    return EXIT_USAGE;
  }
  snprintf(path, sizeof(path), "/api/v1/captures/%lld", (long long)id);
  if (strcmp(sub, "show") == 0) {
    return show(call("GET", path, NULL, NULL));
  }
  if (strcmp(sub, "stop") == 0) {
    return show(call("DELETE", path, NULL, NULL));
  }
  if (strcmp(sub, "set-filter") == 0 || strcmp(sub, "set-sample") == 0) {
    if (argc < 3) {
      return usage_error("capture %s ID: give the new %s", sub,
                         sub[4] == 'f' ? "filter" : "sampling 1/N");
    }
    json_t *body = json_object();
    if (sub[4] == 'f') {
      char *f = join(argc - 2, argv + 2);
      json_object_set_new(body, "filter", json_string(f ? f : ""));
      free(f);
    } else {
      json_object_set_new(body, "sample", json_string(argv[2]));
    }
    json_t *j = call("PATCH", path, body, NULL);
    json_decref(body);
    return show(j);
  }
  return usage_error("unknown capture command '%s'", sub);
}

static int cmd_metrics(void) {
  char *text = NULL;
  long st = request("GET", "/metrics", NULL, &text);
  if (st < 0) {
    return EXIT_RUNTIME;
  }
  if (st != 200) {
    err("GET /metrics: HTTP %ld: %s", st, text ? text : "");
    free(text);
    return EXIT_RUNTIME;
  }
  fputs(text ? text : "", stdout);
  free(text);
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"admin", required_argument, NULL, 'a'},
      {"token-file", required_argument, NULL, 't'},
      {"cacert", required_argument, NULL, 'C'},
      {"cert", required_argument, NULL, 'E'},
      {"key", required_argument, NULL, 'K'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *token_file = NULL;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
    switch (c) {
    case 'a':
      if (optarg[0] == '\0') {
        return usage_error("empty --admin: give a URL, e.g. "
                           "http://127.0.0.1:9100");
      }
      g_admin = optarg;
      break;
    case 't':
      token_file = optarg;
      break;
    case 'C':
    case 'E':
    case 'K':
      if (optarg[0] == '\0') {
        return usage_error("empty %s: give a PEM file, or leave the option "
                           "out",
                           c == 'C'   ? "--cacert"
                           : c == 'E' ? "--cert"
                                      : "--key");
      }
      *(c == 'C' ? &g_cacert : c == 'E' ? &g_cert : &g_key) = optarg;
      break;
    case 'j':
      g_json = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("ps-ctl %s (libpacketstreamer %s)\n", PACKAGE_VERSION,
             ps_version_string());
      return 0;
    default:
      return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc) {
    return usage_error("give a command: sensors, capture or metrics");
  }
  if (g_admin == NULL) {
    return usage_error("--admin URL is required (e.g. http://127.0.0.1:9100)");
  }
  if (strncmp(g_admin, "http://", 7) != 0 &&
      strncmp(g_admin, "https://", 8) != 0) {
    return usage_error("invalid --admin '%s': give an http:// or https:// URL",
                       g_admin);
  }
  if ((g_cert == NULL) != (g_key == NULL)) {
    return usage_error("%s needs %s: a client certificate goes with its key",
                       g_cert ? "--cert" : "--key",
                       g_cert ? "--key" : "--cert");
  }
  if ((g_cacert != NULL || g_cert != NULL) &&
      strncmp(g_admin, "https://", 8) != 0) {
    return usage_error("%s is for HTTPS: give an https:// --admin URL",
                       g_cacert ? "--cacert" : "--cert");
  }
  if (token_file != NULL) {
    uint8_t tok[1024];
    size_t n;
    char why[512];
    if (ps_auth_key_load(tok, &n, token_file, why, sizeof(why)) != 0) {
      err("--token-file: %s", why);
      return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < n; i++) {
      if (tok[i] < 0x21 || tok[i] > 0x7e) {
        err("--token-file %s: a token is printable characters without "
            "spaces",
            token_file);
        return EXIT_RUNTIME;
      }
    }
    snprintf(g_auth, sizeof(g_auth), "Authorization: Bearer %.*s", (int)n,
             (const char *)tok);
    memset(tok, 0, sizeof(tok));
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *cmd = argv[optind];
  int rc;
  if (strcmp(cmd, "sensors") == 0) {
    rc = argc - optind > 2
             ? usage_error("sensors takes at most one name")
             : cmd_sensors(argc - optind == 2 ? argv[optind + 1] : NULL);
  } else if (strcmp(cmd, "capture") == 0) {
    rc = cmd_capture(argc - optind - 1, argv + optind + 1);
  } else if (strcmp(cmd, "metrics") == 0) {
    rc = cmd_metrics();
  } else {
    rc = usage_error("unknown command '%s': sensors, capture or metrics", cmd);
  }
  memset(g_auth, 0, sizeof(g_auth));
  curl_global_cleanup();
  return rc;
}
