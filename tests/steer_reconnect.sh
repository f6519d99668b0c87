#!/usr/bin/env bash
# A sensor's own (command-line) capture across a cut connection: every
# session says it again right after its interfaces, before the batches
# it resends, so the receiver finds its record again (no second record)
# and attributes every packet, resent ones included: the API's count
# equals the file's. The stream runs through tests/cutproxy, which cuts
# the first connection inside the first batch.
. "$top_srcdir/tests/lib.sh"
command -v tshark >/dev/null || skip "tshark is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
netns_pair
CTL="$top_builddir/tools/ps-ctl"
UDPSEND="$top_builddir/tests/udpsend"
CUTPROXY="$top_builddir/tests/cutproxy"

START_PREFIX=(ip netns exec "$NSB")
start_receiver "$WORK/r.log" -w "$WORK/out.pcap" \
  --admin 127.0.0.1:0 --admin-port-file "$WORK/admin.port"
ADMIN="http://127.0.0.1:$(awk '{print $2}' "$WORK/admin.port")"
ctl() { B "$CTL" --admin "$ADMIN" "$@"; }
ip netns exec "$NSB" "$CUTPROXY" "$WORK/proxy.port" "$RPORT" 1 3000 6000 7 2>"$WORK/proxy.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
PPORT=$(cat "$WORK/proxy.port")

ip netns exec "$NSB" "$SENSOR" -i vb --receiver "127.0.0.1:$PPORT" --compress none \
  --name edge udp port 9999 2>"$WORK/edge.log" &
PIDS+=($!)
wait_log "$WORK/r.log" "capture 1: sensor edge runs its own capture" 1 "the own capture not announced"
A "$UDPSEND" 10.77.0.2 9999 40 2000 >/dev/null || fail "udpsend"
wait_log "$WORK/proxy.log" "cut" 1 "the connection was not cut"
wait_log "$WORK/r.log" "capture 1: sensor edge runs its own capture" 2 "the reconnected session did not say its capture"
A "$UDPSEND" 10.77.0.2 9999 10 2000 40 >/dev/null || fail "udpsend"
api() { ctl --json capture show 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])'; }
for _ in $(seq 1 300); do [ "$(api)" = 50 ] && break; sleep 0.1; done
[ "$(api)" = 50 ] || { ctl capture list; cat "$WORK/edge.log"; fail "the API counts $(api) packets for capture 1, sent 50"; }
ctl capture list >"$WORK/list.txt"
cat "$WORK/list.txt"
[ "$(grep -c '^capture ' "$WORK/list.txt")" -eq 1 ] || fail "the reconnection made a second record"
expect_line "$WORK/edge.log" "reconnect" "the sensor reconnected"
kill -INT "${PIDS[2]}"
wait_log "$WORK/r.log" "capture 1: sensor edge ended: the sensor is stopping \(50 packets taken here" 1 "the capture's end"
stop_receiver
n=$(tshark -r "$WORK/out.pcap" -Y 'udp.dstport == 9999' 2>/dev/null | wc -l)
[ "$n" -eq 50 ] || fail "the file holds $n packets, sent 50"
ok "the own capture across a cut connection: one record, 50 packets in the API and the file"
