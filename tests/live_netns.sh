#!/usr/bin/env bash
# Live capture in a network namespace made by this test: a veth pair
# between namespaces psA (10.77.0.1) and psB (10.77.0.2). The receiver
# runs in psB, the sensor captures psA's end, and its own stream crosses
# the very interface it captures: it must capture exactly the UDP
# traffic sent (count and bytes) and none of its own stream, although
# the filter "udp or tcp" would match it.
. "$top_srcdir/tests/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "live capture needs root (network namespaces)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"

NSA="psA-$$" NSB="psB-$$"
ip netns add "$NSA" || skip "cannot create network namespaces here"
ip netns add "$NSB" || { ip netns del "$NSA"; skip "cannot create network namespaces"; }
netns_cleanup() {
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
  cleanup
}
trap netns_cleanup EXIT
A() { ip netns exec "$NSA" "$@"; }
B() { ip netns exec "$NSB" "$@"; }
ip link add va netns "$NSA" type veth peer name vb netns "$NSB" || fail "veth"
for ns in "$NSA" "$NSB"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$ns" ip link set lo up
done
A ip addr add 10.77.0.1/24 dev va && A ip link set va up
B ip addr add 10.77.0.2/24 dev vb && B ip link set vb up
# Static neighbours: no ARP in the capture, so the counts are exact.
macb=$(B cat /sys/class/net/vb/address)
maca=$(A cat /sys/class/net/va/address)
A ip neigh add 10.77.0.2 lladdr "$macb" dev va nud permanent
B ip neigh add 10.77.0.1 lladdr "$maca" dev vb nud permanent

# Started through ip netns exec directly (not a function) so that the PID
# is the tool's own and signals reach it.
ip netns exec "$NSB" "$RECEIVER" --listen 10.77.0.2:0 -w "$WORK/live.pcap" 2>"$WORK/r.log" &
RPID=$!; PIDS+=("$RPID")
for _ in $(seq 1 100); do
  RPORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), writing.*/\1/p' "$WORK/r.log")
  [ -n "$RPORT" ] && break; sleep 0.05
done
[ -n "$RPORT" ] || { cat "$WORK/r.log"; fail "receiver did not start"; }

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
