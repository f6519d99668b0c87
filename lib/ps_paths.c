/* What the tools decided for themselves and embedders could not reach:
 * the output format a file name implies, the receiver journal's default
 * place, and loading a shared key file safely. */
#include "config.h"

#include "ps_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ps_file_format ps_format_from_path(const char *path) {
  size_t n = path != NULL ? strlen(path) : 0;
  return n >= 7 && strcmp(path + n - 7, ".pcapng") == 0 ? PS_FORMAT_PCAPNG
                                                        : PS_FORMAT_PCAP;
}

int ps_receiver_default_state_path(char *out, size_t outlen,
                                   const char *output) {
  if (out == NULL || outlen == 0 || output == NULL || *output == '\0' ||
      strcmp(output, "-") == 0) {
    return PS_ERR_INVALID;
  }
  const char *slash = strrchr(output, '/');
  size_t dlen = slash ? (size_t)(slash - output) + 1 : 0;
  /* A template directory names no one place to keep the journal. */
  if (memchr(output, '%', dlen) != NULL || memchr(output, '{', dlen) != NULL ||
      output[dlen] == '\0') {
    return PS_ERR_INVALID;
  }
  /* Hidden, so ls and globs of capture files see what they saw before;
   * the template characters of NAME made plain, so one journal serves
   * every file the template gives. */
  int n =
      snprintf(out, outlen, "%.*s.%s.state", (int)dlen, output, output + dlen);
  if (n < 0 || (size_t)n >= outlen) {
    out[0] = '\0';
    return PS_ERR_LIMIT;
  }
  for (char *p = out + dlen; *p != '\0'; p++) {
    if (*p == '%' || *p == '{' || *p == '}') {
      *p = '_';
    }
  }
  return 0;
}

static int key_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int key_err(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

int ps_auth_key_load(uint8_t *out, size_t *outlen, const char *path, char *err,
                     size_t errlen) {
  if (out == NULL || outlen == NULL || path == NULL) {
    return key_err(err, errlen, PS_ERR_INVALID, "no key file");
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return key_err(err, errlen, PS_ERR_IO, "cannot read key file %s: %s", path,
                   strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return key_err(err, errlen, PS_ERR_IO, "key file %s is not a regular file",
                   path);
  }
  /* A shared key others may read is no secret (ssh refuses such
   * private keys too): refused, not merely warned about. */
  if (st.st_mode & 077) {
    close(fd);
    if (err != NULL && errlen > 0) {
      snprintf(err, errlen,
               "key file %s can be read by group or others: chmod 600 %s", path,
               path);
    }
    return PS_ERR_IO;
  }
  uint8_t buf[PS_MAX_AUTH_KEY + 2];
  size_t n = 0;
  ssize_t k = 0;
  while (n < sizeof(buf) && (k = read(fd, buf + n, sizeof(buf) - n)) > 0) {
    n += (size_t)k;
  }
  int e = errno;
  close(fd);
  if (k < 0) {
    return key_err(err, errlen, PS_ERR_IO, "cannot read key file %s: %s", path,
                   strerror(e));
  }
  if (n > 0 && buf[n - 1] == '\n') {
    n--;
    if (n > 0 && buf[n - 1] == '\r') {
      n--;
    }
  }
  if (n == 0 || n > PS_MAX_AUTH_KEY) {
    memset(buf, 0, sizeof(buf));
    return key_err(err, errlen, PS_ERR_INVALID,
                   "key file %s must hold 1 to %u bytes", path,
                   PS_MAX_AUTH_KEY);
  }
  memcpy(out, buf, n);
  memset(buf, 0, sizeof(buf));
  *outlen = n;
  return 0;
}
