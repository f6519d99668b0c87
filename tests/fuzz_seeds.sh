#!/usr/bin/env bash
# Replays each fuzz target's seed corpus through its standalone build
# (fuzz/replay_main.c), so every input that once found a bug stays a
# regression test. A target that crashes, aborts on a broken invariant or
# cannot read its seeds fails the test.
set -u
: "${top_srcdir:?}" "${top_builddir:?}"
status=0
for t in fuzz_frame fuzz_session fuzz_codec fuzz_cli fuzz_stream fuzz_pcapfmt fuzz_tail fuzz_config \
  fuzz_control fuzz_kmsg; do
  bin="$top_builddir/fuzz/$t"
  seeds="$top_srcdir/fuzz/seeds/$t"
  if [ ! -x "$bin" ]; then
    echo "FAIL: $bin is not built" >&2
    status=1
    continue
  fi
  if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
    echo "FAIL: no seeds in $seeds" >&2
    status=1
    continue
  fi
  if out=$("$bin" "$seeds" 2>&1); then
    echo "ok: $out"
  else
    echo "$out" >&2
    echo "FAIL: $t on $seeds" >&2
    status=1
  fi
done
exit $status
