/* Hooks for the fault tests, internal (ps__, never exported). Only code
 * linked against lib/libps_internal.la can call them: the test receiver
 * tests/ps-receiver-fp does; the installed tools and the shared library
 * read no environment variable for them. */
#ifndef PS_TESTHOOK_H
#define PS_TESTHOOK_H

#include <packetstreamer/packetstreamer.h>

/* spec "before-journal:N" or "after-journal:N": the receiver raises
 * SIGKILL in its Nth round of writes, right before or right after the
 * journal record (tests/journal_restart.sh). Returns 0, or
 * PS_ERR_INVALID for another spec. */
int ps__receiver_set_failpoint(ps_receiver *r, const char *spec);

#endif
