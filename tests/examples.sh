#!/usr/bin/env bash
# The examples build against the installed library through pkg-config
# (installed here into a staging directory) and work: a receiver counting
# per sensor through the callback sink, an agent sending packets it made,
# and an embedded sensor streaming a file.
. "$top_srcdir/tests/lib.sh"

STAGE="$WORK/stage"
"${MAKE:-make}" -s -C "$top_builddir" install DESTDIR="$STAGE" >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log" >&2; fail "staged install"; }
pcdir=$(dirname "$(find "$STAGE" -name libpacketstreamer.pc | head -n1)")
[ -f "$pcdir/libpacketstreamer.pc" ] || fail "no libpacketstreamer.pc installed"
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$STAGE"
pkg-config --exists libpacketstreamer || fail "pkg-config does not find libpacketstreamer"
libdir=$(dirname "$(find "$STAGE" -name 'libpacketstreamer.so' | head -n1)")
export LD_LIBRARY_PATH="$libdir"

mkdir -p "$WORK/ex"
cp "$top_srcdir"/examples/*.c "$top_srcdir/examples/Makefile" "$WORK/ex/"
"${MAKE:-make}" -s -C "$WORK/ex" CC="${CC:-cc}" CFLAGS="-O2 -Wall -Wextra -Werror ${SAN_CFLAGS:-}" \
  >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "examples do not build"; }
# They must link the installed library, not the build tree's.
ldd "$WORK/ex/count_receiver" | grep -q "$libdir/libpacketstreamer" \
  || fail "examples are not linked to the installed library"
ok "examples built with $(pkg-config --cflags --libs libpacketstreamer)"

"$WORK/ex/count_receiver" 0 2 >"$WORK/counts" 2>"$WORK/cr.err" &
CR=$!; PIDS+=("$CR")
for _ in $(seq 1 100); do
  port=$(sed -n 's/^listening on port \([0-9]*\)$/\1/p' "$WORK/counts")
  [ -n "$port" ] && break; sleep 0.05
done
[ -n "$port" ] || fail "count_receiver did not start"
"$WORK/ex/send_packets" 127.0.0.1 "$port" 1000 >"$WORK/sp.out" || fail "send_packets"
grep -qx "sent 1000 packets" "$WORK/sp.out" || fail "send_packets output"
mix IN 601
bytes=$("$PCAPCMP" --summary "$IN" | cut -d' ' -f4)
"$WORK/ex/sensor_capture" 127.0.0.1 "$port" -r "$IN" >"$WORK/sc.out" 2>"$WORK/sc.err" \
  || { cat "$WORK/sc.err" >&2; fail "sensor_capture"; }
grep -qx "sent 601 packets, $bytes bytes" "$WORK/sc.out" || fail "sensor_capture output"
wait "$CR" || { cat "$WORK/cr.err" >&2; fail "count_receiver exited non-zero"; }
cat "$WORK/counts"
# 1000 packets of 44 + n % 200 bytes: 44000 + 5 * (0+...+199) = 143500.
grep -qx "sensor send-demo: 1000 packets, 143500 bytes" "$WORK/counts" || fail "per-sensor count (send-demo)"
grep -qx "sensor example-sensor: 601 packets, $bytes bytes" "$WORK/counts" || fail "per-sensor count (file)"
ok "examples run: per-sensor counts exact"
