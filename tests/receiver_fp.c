/* The test receiver tests/ps-receiver-fp: tools/ps-receiver.c built with
 * PS_TOOL_TEST_HOOKS and linked against the internal library, plus this
 * hook, which arms the receiver's failpoint from PS_RECEIVER_FAILPOINT
 * (before-journal:N or after-journal:N; tests/journal_restart.sh). The
 * installed ps-receiver has neither the hook nor the variable. */
#include "config.h"

#include "ps_testhook.h"

#include <stdio.h>
#include <stdlib.h>

void ps__tool_test_hook(ps_receiver *r);

void ps__tool_test_hook(ps_receiver *r) {
  const char *fp = getenv("PS_RECEIVER_FAILPOINT");
  if (fp != NULL && ps__receiver_set_failpoint(r, fp) != 0) {
    fprintf(stderr, "ps-receiver-fp: bad PS_RECEIVER_FAILPOINT '%s'\n", fp);
    exit(2);
  }
}
