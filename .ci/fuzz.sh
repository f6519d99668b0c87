#!/usr/bin/env bash
# CI: builds the libFuzzer targets (clang, ASan+UBSan) in a temporary
# directory and runs each for FUZZ_SECONDS (default 60) from a copy of its
# seed corpus. Fails on any crash, leak, undefined behaviour, timeout or
# out-of-memory; the reproducer is kept in $FUZZ_ARTIFACTS (default: a
# directory in the build tree, printed at the end).
#
#   FUZZ_SECONDS=300 .ci/fuzz.sh
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
build=$(mktemp -d "${TMPDIR:-/tmp}/ps-fuzz.XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}
keep=0
cleanup() { [ "$keep" -eq 1 ] || rm -rf "$build"; }
trap cleanup EXIT

targets=(fuzz_frame fuzz_session fuzz_codec fuzz_cli fuzz_stream fuzz_pcapfmt fuzz_tail fuzz_config
  fuzz_control fuzz_kmsg)
[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
cd "$build"
"$src/configure" CC="${CC:-clang}" --enable-fuzzers --enable-sanitizers \
  >configure.log 2>&1 || { cat configure.log; exit 1; }
make -j"$jobs" "${targets[@]/#/fuzz/}" >make.log 2>&1 || { cat make.log; exit 1; }

mkdir -p "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  cp "$src/fuzz/seeds/$t/"* "$corpus/"
  echo "== $t: ${secs}s"
  if "fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" \
      >"$t.log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units)' "$t.log" || true
  else
    tail -n 60 "$t.log"
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  keep=1
  echo "FAIL: ${failed[*]}; reproducers in $artifacts:" >&2
  ls -l "$artifacts" >&2
  echo "Replay one with: fuzz/TARGET FILE (either build). Add it under" \
    "fuzz/seeds/TARGET/ with the fix." >&2
  exit 1
fi
echo "ok: ${targets[*]} ran ${secs}s each without a finding"
