#!/usr/bin/env bash
# Live capture in a network namespace made by this test: a veth pair
# between namespaces psA (10.77.0.1) and psB (10.77.0.2). The receiver
# runs in psB, the sensor captures psA's end, and its own stream crosses
# the very interface it captures: it must capture exactly the UDP
# traffic sent (count and bytes) and none of its own stream, although
# the filter "udp or tcp" would match it.
. "$top_srcdir/tests/lib.sh"
netns_pair

start_receiver_in "$NSB" "$WORK/r.log" --listen 10.77.0.2:0 -w "$WORK/live.pcap"
[ "$(cat "$WORK/r.log.port")" = "10.77.0.2 $RPORT" ] ||
  { cat "$WORK/r.log.port"; fail "port file: expected '10.77.0.2 $RPORT'"; }

ip netns exec "$NSA" "$SENSOR" -i va --receiver "10.77.0.2:$RPORT" --name live udp or tcp \
  2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
for _ in $(seq 1 100); do
  grep -q "interface 0 va" "$WORK/r.log" && break; sleep 0.05
done
grep -q "interface 0 va" "$WORK/r.log" || { cat "$WORK/s.log"; fail "sensor did not start"; }
sleep 0.3 # the capture is active before the interface is announced

COUNT=500
bytes=$(A "$top_builddir/tests/udpsend" 10.77.0.2 9999 $COUNT) || fail "udpsend"
sleep 1.5 # more than the sensor's batching delay
kill -INT "$SPID"
wait "$SPID" || { cat "$WORK/s.log" >&2; fail "sensor exited non-zero"; }
stop_receiver
cat "$WORK/s.log" "$WORK/r.log"

got=$("$top_builddir/tests/pcapcmp" --summary "$WORK/live.pcap") || fail "read output"
echo "output: $got"
read -r n udp tcp total <<<"$got"
[ "$udp" -eq "$COUNT" ] || fail "captured $udp UDP packets, sent $COUNT"
[ "$n" -eq "$COUNT" ] || fail "captured $n packets, expected exactly the $COUNT sent"
[ "$tcp" -eq 0 ] || fail "the sensor captured $tcp TCP packets (its own stream?)"
[ "$total" -eq "$bytes" ] || fail "captured $total bytes, sent $bytes"
expect_line "$WORK/r.log" "sensor live \(10.77.0.1:[0-9]+\) disconnected: $COUNT packets, $bytes bytes, 0 dropped" "receiver log"
ok "live capture: $COUNT packets, $bytes bytes, none of the sensor's own stream"
