#!/usr/bin/env bash
# The receiver killed with SIGKILL at random moments while a sensor
# streams live traffic, and started again on the same output path each
# time. After every kill the file left behind must read in libpcap up to
# its last complete packet (a torn end only where Linux stopped a write
# at a page boundary), and after the restart (the journal cuts it back)
# without any error; at the end the files together must hold every
# packet sent exactly once, in order (the sensor resends what was not
# acknowledged, the journal cuts what was written but not acknowledged
# and remembers what was).
. "$top_srcdir/tests/lib.sh"
netns_pair

COUNT=${PS_CRASH_COUNT:-24000}
PPS=${PS_CRASH_PPS:-2000}
KILLS=${PS_CRASH_KILLS:-8}
PORT=4999
OUT="$WORK/out"
mkdir -p "$OUT"
TORN=0

start_rx() {
  restart_receiver_in "$NSB" "$WORK/r.log" --listen 10.77.0.2:$PORT -w "$OUT/cap.pcap"
}

# Output files in the order they were made: cap.pcap, cap.1.pcap, ...
outputs() {
  local f=("$OUT/cap.pcap") k
  for k in $(seq 1 100); do
    [ -f "$OUT/cap.$k.pcap" ] && f+=("$OUT/cap.$k.pcap")
  done
  echo "${f[@]}"
}

start_rx
ip netns exec "$NSA" "$SENSOR" -i va --receiver "10.77.0.2:$PORT" --name crash \
  udp port 9999 2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
wait_log "$WORK/r.log" "interface 0 va" 1 "sensor did not start"
sleep 0.3

A "$top_builddir/tests/udpsend" 10.77.0.2 9999 "$COUNT" "$PPS" >"$WORK/sent" &
UPID=$!

for k in $(seq 1 "$KILLS"); do
  sleep "0.$((RANDOM % 7 + 3))"
  kill -KILL "$RPID"
  wait "$RPID" 2>/dev/null
  # What a killed receiver leaves must read cleanly up to its end.
  last=$(outputs | awk '{print $NF}')
  "$top_builddir/tests/seqcheck" --allow-page-torn "$last" >"$WORK/check.$k" 2>&1 ||
    { cat "$WORK/check.$k"; fail "after SIGKILL $k, $last does not read up to its last packet"; }
  echo "kill $k: $last: $(tr '\n' ' ' <"$WORK/check.$k")"
  grep -q "torn at a page boundary" "$WORK/check.$k" && TORN=$((TORN + 1))
  sleep "0.$((RANDOM % 5 + 1))"
  start_rx
  # The journal has repaired what the kill left: no error at all now.
  "$top_builddir/tests/seqcheck" "$last" >"$WORK/check2.$k" 2>&1 ||
    { cat "$WORK/check2.$k"; fail "after the restart $k, $last does not read cleanly"; }
done

wait "$UPID" || fail "udpsend"
sleep 1.5
kill -INT "$SPID"
wait "$SPID" || { cat "$WORK/s.log" >&2; fail "sensor exited non-zero"; }
stop_receiver
cat "$WORK/s.log"
grep -E "removed|resuming|journal|listening" "$WORK/r.log" | head -40

files=$(outputs)
echo "output files: $files"
# shellcheck disable=SC2086
got=$("$top_builddir/tests/seqcheck" --count "$COUNT" $files) ||
  fail "not every packet exactly once, in order: $got"
echo "$got"
ok "$KILLS SIGKILLs of the receiver ($TORN left a torn end, repaired at restart): $COUNT packets sent, $COUNT written once, in order, over $(echo $files | wc -w) files"
