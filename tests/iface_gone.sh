#!/usr/bin/env bash
# The captured interface disappears mid-capture (its veth pair is
# deleted): the sensor must report the failure, still deliver what it had
# captured, and account for every packet (captured = acknowledged +
# dropped + lost, nothing left "queued").
. "$top_srcdir/tests/lib.sh"
netns_pair

# The receiver listens on psA's loopback, so the stream does not cross
# the interface that goes away.
start_receiver_in "$NSA" "$WORK/r.log" --listen 127.0.0.1:0 -w "$WORK/gone.pcap"
ip netns exec "$NSA" "$SENSOR" -i va --receiver "127.0.0.1:$RPORT" --name gone \
  udp port 9999 2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
wait_log "$WORK/r.log" "interface 0 va" 1 "sensor did not start"
sleep 0.3
# The interface goes away while packets are arriving (so some are in a
# batch not yet sent or acknowledged).
B "$top_builddir/tests/udpsend" 10.77.0.1 9999 6000 3000 >/dev/null 2>&1 &
UPID=$!
sleep 1
A ip link del va
wait "$UPID" # fails once its interface is gone
wait "$SPID"
rc=$?
cat "$WORK/s.log"
[ "$rc" -eq 1 ] || fail "sensor exited $rc after its interface went away, expected 1"
expect_line "$WORK/s.log" "^ps-sensor: va: The interface disappeared" "the sensor did not name the failed interface"
line=$(grep -E "va: [0-9]+ captured" "$WORK/s.log") || fail "no per-interface account"
read -r cap ack < <(echo "$line" | sed -E 's/.*va: ([0-9]+) captured, ([0-9]+) acknowledged.*/\1 \2/')
drops=$(echo "$line" | sed -E 's/.*dropped: ([0-9]+) by the kernel, ([0-9]+) by the interface, ([0-9]+) by the sensor.s buffer \(overflow\), ([0-9]+) lost.*/\1 \2 \3 \4/')
read -r dk di dov dl <<<"$drops"
[ "$cap" -eq $((ack + dov + dl)) ] || fail "captured $cap != acknowledged $ack + overflow $dov + lost $dl"
stop_receiver
got=$("$top_builddir/tests/seqcheck" "$WORK/gone.pcap") || fail "output: $got"
n=$(echo "$got" | cut -d' ' -f2)
[ "$n" -eq "$ack" ] || fail "the receiver wrote $n packets, the sensor counted $ack acknowledged"
[ "$cap" -gt 1000 ] || fail "captured only $cap packets before the interface went away"
ok "interface gone: sensor exit 1, $cap captured = $ack written + $dov overflow + $dl lost (kernel $dk)"
