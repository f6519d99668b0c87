/* Version and error strings. */
#include "config.h"

#include "ps_common.h"

const char *ps_version_string(void) {
  return PS_VERSION;
}

unsigned ps_version_num(void) {
  return PS_VERSION_NUM;
}

const char *ps_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
  case PS_ERR_INVALID:
    return "invalid argument";
  case PS_ERR_NOMEM:
    return "out of memory";
  case PS_ERR_STATE:
    return "not allowed in this state";
  case PS_ERR_SYSTEM:
    return "system call failed";
  case PS_ERR_CAPTURE:
    return "capture source failed";
  case PS_ERR_FILTER:
    return "bad filter expression";
  case PS_ERR_RESOLVE:
    return "host name does not resolve";
  case PS_ERR_CONNECT:
    return "receiver unreachable";
  case PS_ERR_PROTOCOL:
    return "protocol violation";
  case PS_ERR_LIMIT:
    return "limit exceeded";
  case PS_ERR_CODEC:
    return "corrupt compressed data";
  case PS_ERR_CLOSED:
    return "connection closed";
  case PS_ERR_REFUSED:
    return "refused by the peer";
  case PS_ERR_TIMEOUT:
    return "timed out";
  case PS_ERR_IO:
    return "output write failed";
  case PS_ERR_LINKTYPE:
    return "link type not supported by this output";
  case PS_ERR_STOPPED:
    return "stopped";
  case PS_ERR_ADDRINUSE:
    return "address already in use";
  case PS_ERR_TLS:
    return "TLS failure";
  case PS_ERR_AUTH:
    return "authentication failed";
  case PS_ERR_BUSY:
    return "the peer is busy (at its limit); try again later";
  default:
    return "unknown error";
  }
}

int ps_error_is_final(int code) {
  switch (code) {
  case PS_ERR_REFUSED:
  case PS_ERR_AUTH:
  case PS_ERR_TLS:
  case PS_ERR_NOMEM:
  case PS_ERR_STOPPED:
  case PS_ERR_INVALID:
  case PS_ERR_STATE:
    return 1;
  default:
    return 0;
  }
}
