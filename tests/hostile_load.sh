#!/usr/bin/env bash
# Load from hostile peers: 1000 idle connections, a flood of connect /
# disconnect (half of them reset), slowloris senders dripping a byte a
# second, and a receiver short of file descriptors. A real sensor
# streaming a capture meanwhile must get every packet through, and the
# receiver must stay up and exit cleanly.
. "$top_srcdir/tests/lib.sh"
HOSTILE="$top_builddir/tests/hostile"
mix IN 4000 # about 3 MB

# run_sensor NAME: streams IN, must succeed and arrive whole.
check_sensor() {
  wait "$1" || { cat "$WORK/s.log" >&2; fail "the sensor failed under load"; }
}

# 1. 1000 idle connections + a connect/disconnect flood + slowloris.
# (--max-pending 256: the default, 2 x --max-sensors, would hold them all)
start_receiver "$WORK/r.log" -w "$WORK/out.pcap" --max-pending 256
HOSTILE_COUNT=1000 HOSTILE_HOLD=6 "$HOSTILE" many 127.0.0.1 "$RPORT" >"$WORK/many.out" 2>&1 &
many=$!; PIDS+=("$many")
slow=()
for i in 1 2 3 4 5; do
  HOSTILE_HOLD=5 "$HOSTILE" slowloris 127.0.0.1 "$RPORT" >"$WORK/slow$i.out" 2>&1 &
  slow+=($!); PIDS+=($!)
done
HOSTILE_COUNT=2000 "$HOSTILE" flood 127.0.0.1 "$RPORT" >"$WORK/flood.out" 2>&1 &
flood=$!; PIDS+=("$flood")
sleep 1 # the idle connections are in place
start=$(date +%s%N)
"$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --connect-timeout 20 --name real 2>"$WORK/s.log" &
spid=$!; PIDS+=("$spid")
check_sensor "$spid"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$many" || { cat "$WORK/many.out"; fail "hostile many"; }
wait "$flood" || { cat "$WORK/flood.out"; fail "hostile flood"; }
# Each slowloris peer dripped its bytes, or the receiver cut it off
# (before or after its welcome); none gave up by itself.
for i in 1 2 3 4 5; do
  wait "${slow[$((i - 1))]}" || { cat "$WORK/slow$i.out"; fail "hostile slowloris $i"; }
  grep -Eq "dripped 5 bytes|receiver closed after [0-9]+ bytes|receiver ended the connection before" "$WORK/slow$i.out" ||
    { cat "$WORK/slow$i.out"; fail "slowloris $i: no outcome"; }
done
cat "$WORK"/slow*.out
cat "$WORK/many.out" "$WORK/flood.out"
grep -q "1000 of 1000 connections open" "$WORK/many.out" || fail "could not open 1000 connections"
kill -0 "$RPID" 2>/dev/null || fail "ps-receiver died"
stop_receiver
res=$("$PCAPCMP" "$IN" "$WORK/out.pcap") || fail "output: $res"
expect_line "$WORK/r.log" "sensor real \(.*\) disconnected: ${res%% *} packets" "real sensor"
# Evictions are seen by the idle peer (its connections closed); the log
# names them only within its budget of 100 lines per 10 s, which the
# flood may use up first, so the log is not where to count them.
evicted=$(sed -n 's/.*the receiver closed \([0-9]*\) of them.*/\1/p' "$WORK/many.out")
[ "${evicted:-0}" -gt 0 ] || fail "no idle connection was evicted"
expect_line "$WORK/r.log" "more connections ended in their handshake in the last" "the log flood was cut short"
lines=$(wc -l <"$WORK/r.log")
[ "$lines" -lt 500 ] || fail "$lines log lines for 3000 hostile connections"
ok "1000 idle + 2000 flood + 5 slowloris: the real sensor got through in ${ms} ms: $res ($evicted idle connections evicted, limit 256; $lines log lines)"

# 2. A receiver short of descriptors (64): idle connections are closed to
# make room, and accepting pauses rather than spins.
bash -c "ulimit -n 64; exec \"$RECEIVER\" --listen 127.0.0.1:0 -w \"$WORK/out2.pcap\"" 2>"$WORK/r2.log" &
RPID=$!; PIDS+=("$RPID")
for _ in $(seq 1 100); do
  RPORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), writing.*/\1/p' "$WORK/r2.log")
  [ -n "$RPORT" ] && break; sleep 0.05
done
HOSTILE_COUNT=200 HOSTILE_HOLD=4 "$HOSTILE" many 127.0.0.1 "$RPORT" >"$WORK/many2.out" 2>&1 &
many=$!; PIDS+=("$many")
sleep 1
"$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --connect-timeout 20 --name tight 2>"$WORK/s.log" &
spid=$!; PIDS+=("$spid")
check_sensor "$spid"
wait "$many"
cpu=$(awk '{print $14 + $15}' "/proc/$RPID/stat")
stop_receiver
res=$("$PCAPCMP" "$IN" "$WORK/out2.pcap") || fail "output (64 fds): $res"
expect_line "$WORK/r2.log" "closed to free a descriptor|too many in their handshake" "descriptor shortage handled"
# 4 s of hostile load must not cost seconds of CPU (a spinning accept would).
[ "$cpu" -lt 300 ] || fail "receiver used $cpu ticks of CPU: spinning?"
ok "64 descriptors, 200 idle connections: the sensor got through ($res), receiver CPU $cpu ticks"
