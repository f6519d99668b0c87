#!/usr/bin/env bash
# A sensor started with a capture on its command line (-i IFACE FILTER)
# announces it to the receiver: it is listed by GET /api/v1/captures
# like one the API started (origin "sensor"). With
# --allow-remote-capture the admin changes its filter live (the guard
# ANDed, the switch point reported, exact counts before and after) and
# stops it: the sensor closes its capture, stays connected as a standby
# sensor and takes a new capture. Without --allow-remote-capture the
# capture is listed read-only and PATCH and DELETE are refused (403)
# with the reason. The file holds exactly what the API counted.
. "$top_srcdir/tests/lib.sh"
command -v tshark >/dev/null || skip "tshark is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
netns_pair
CTL="$top_builddir/tools/ps-ctl"
UDPSEND="$top_builddir/tests/udpsend"

start_receiver_in "$NSA" "$WORK/r.log" --listen :0 -w "$WORK/out.pcap" \
  --admin 127.0.0.1:0 --admin-port-file "$WORK/admin.port"
ADMIN="http://127.0.0.1:$(awk '{print $2}' "$WORK/admin.port")"
ctl() { A "$CTL" --admin "$ADMIN" "$@"; }
send() { A "$UDPSEND" 10.77.0.2 "$1" "$2" 2000 >/dev/null || fail "udpsend"; }
field() { # ID EXPR (python, c = the capture's JSON)
  ctl --json capture show "$1" | python3 -c "import json,sys; c=json.load(sys.stdin); print($2)"
}
wait_packets() { # ID N: the API counts N packets for capture ID
  local i
  for i in $(seq 1 300); do
    [ "$(field "$1" 'c["packets"]')" = "$2" ] && return 0
    sleep 0.1
  done
  ctl capture show "$1"; fail "capture $1: the API counts $(field "$1" 'c["packets"]') packets, expected $2"
}

ip netns exec "$NSB" "$SENSOR" -i vb --receiver "10.77.0.1:$RPORT" --name edge-1 --allow-remote-capture \
  --remote-filter-guard 'not udp port 9996' --remote-max-pps 1000 udp port 9999 2>"$WORK/edge-1.log" &
PIDS+=($!)
wait_log "$WORK/r.log" "capture 1: sensor edge-1 runs its own capture \(command line\), filter 'udp port 9999'" 1 \
  "edge-1's command-line capture not announced"
ip netns exec "$NSB" "$SENSOR" -i vb --receiver "10.77.0.1:$RPORT" --name edge-2 udp port 9994 2>"$WORK/edge-2.log" &
PIDS+=($!)
wait_log "$WORK/r.log" "capture 2: sensor edge-2 runs its own capture \(command line\), filter 'udp port 9994', read-only" 1 \
  "edge-2's command-line capture not announced"

ctl capture list >"$WORK/list.txt" || fail "ps-ctl capture list"
cat "$WORK/list.txt"
expect_line "$WORK/list.txt" "^capture 1: running, filter 'udp port 9999', the sensor's own, 0 packets$" "capture 1 listed"
expect_line "$WORK/list.txt" "^capture 2: running, filter 'udp port 9994', the sensor's own \(read-only\), 0 packets$" "capture 2 listed"
[ "$(field 1 'c["origin"], c["read_only"], c["interfaces"]')" = "sensor False ['vb']" ] || fail "capture 1's JSON: $(field 1 'c')"
[ "$(field 2 'c["origin"], c["read_only"]')" = "sensor True" ] || fail "capture 2's JSON: $(field 2 'c')"
ok "both command-line captures listed (edge-2 read-only)"

# Before the change: 20 on 9999 taken, 10 on 9997 not.
send 9999 20; send 9997 10; send 9994 5
wait_packets 1 20
wait_packets 2 5
# The new filter takes 9996 and 9997; the guard keeps 9996 out.
ctl capture set-filter 1 udp portrange 9996-9997 >"$WORK/set.txt" || { cat "$WORK/set.txt"; fail "set-filter"; }
cat "$WORK/set.txt"
expect_line "$WORK/set.txt" "edge-1 .*change: switched at [0-9T:.-]+Z after 20 packets: filter udp portrange 9996-9997" \
  "the switch point"
expect_line "$WORK/edge-1.log" "the command-line capture switched at [0-9T:.-]+Z after 20 packets: filter udp portrange 9996-9997" \
  "the sensor logs the switch"
send 9999 30; send 9997 15; send 9996 5
wait_packets 1 35
ok "filter changed live: 20 before, 15 after, the guard held"

# Sampling changed live: 1/2 of the next 10 (the first of every 2).
ctl capture set-sample 1 1/2 >"$WORK/smp.txt" || { cat "$WORK/smp.txt"; fail "set-sample"; }
expect_line "$WORK/smp.txt" "edge-1 .*change: switched at [0-9T:.-]+Z after 35 packets\)" "the sampling switch point"
send 9997 10
wait_packets 1 40
[ "$(field 1 'c["sample"]')" = "1/2" ] || { ctl capture show 1; fail "sampling 1/2 not shown"; }
# (the sensor's sampled-out count comes with its next state: the end)
# Beyond the policy: refused by the sensor with its reason, nothing changed.
A python3 - "$ADMIN" >"$WORK/pps.txt" <<'PY' || fail "PATCH max_pps"
import json, sys, urllib.request
r = urllib.request.Request(sys.argv[1] + "/api/v1/captures/1", method="PATCH",
                           data=json.dumps({"max_pps": 5000}).encode(),
                           headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(r))["sensors"][0]["change"])
PY
expect_line "$WORK/pps.txt" "^refused: max_pps beyond this sensor's limit of 1000 \(--remote-max-pps\)$" "max_pps beyond the policy"
expect_line "$WORK/edge-1.log" "the command-line capture: request refused: max_pps beyond this sensor's limit of 1000" "the sensor logs the refusal"
ok "sampling changed live (5 of the next 10 kept); a max_pps beyond --remote-max-pps refused with the reason"

# Read-only: refused with the reason, and the capture runs on.
ctl capture set-filter 2 udp >"$WORK/ro1.txt" 2>&1 && fail "PATCH of a read-only capture accepted"
expect_line "$WORK/ro1.txt" "HTTP 403: capture 2 is sensor edge-2's own \(its command line\), and that sensor takes no remote control \(it was not started with --allow-remote-capture\): it can be listed, not changed" \
  "PATCH refused by message"
ctl capture stop 2 >"$WORK/ro2.txt" 2>&1 && fail "DELETE of a read-only capture accepted"
expect_line "$WORK/ro2.txt" "HTTP 403: capture 2 is sensor edge-2's own .*: it can be listed, not stopped" "DELETE refused by message"
[ "$(field 2 'c["state"]')" = running ] || fail "capture 2 is no longer running"
send 9994 4
wait_packets 2 9
ok "read-only capture: PATCH and DELETE refused (403) with the reason; it runs on"

# DELETE: the sensor stops capturing and stands by.
ctl capture stop 1 >"$WORK/stop.txt" || { cat "$WORK/stop.txt"; fail "capture stop"; }
cat "$WORK/stop.txt"
expect_line "$WORK/stop.txt" "^capture 1: ended" "capture 1 ended by DELETE"
expect_line "$WORK/stop.txt" "edge-1 +ended +40 packets, 5 sampled out: stopped by the receiver" "edge-1's end"
wait_log "$WORK/edge-1.log" "the command-line capture was stopped by the receiver: standing by" 1 "the sensor stands by"
send 9999 10; send 9997 10
sleep 1
[ "$(field 1 'c["packets"]')" = 40 ] || fail "capture 1 took packets after its end"
kill -0 "${PIDS[1]}" 2>/dev/null || fail "edge-1 exited after DELETE"
ctl --json sensors edge-1 | grep -q '"standby": true' || { ctl --json sensors edge-1; fail "edge-1 does not announce standby"; }
# and takes a new capture.
ctl capture start --sensors edge-1 --interface vb --duration 2 --max-pps 1000 udp port 9995 >"$WORK/c3.txt" ||
  { cat "$WORK/c3.txt"; fail "capture 3 start"; }
expect_line "$WORK/c3.txt" "^capture 3: running" "capture 3 running on the standby edge-1"
send 9995 7
for i in $(seq 1 100); do
  [ "$(field 3 'c["state"]')" = ended ] && break
  sleep 0.1
done
[ "$(field 3 'c["state"], c["packets"]')" = "ended 7" ] || { ctl capture show 3; fail "capture 3"; }
ok "DELETE stopped it: no packet after, edge-1 stayed connected as standby and took capture 3"

api=$(( $(field 1 'c["packets"]') + $(field 2 'c["packets"]') + $(field 3 'c["packets"]') ))
kill -INT "${PIDS[@]:1}" 2>/dev/null
wait_log "$WORK/r.log" "capture 2: sensor edge-2 ended: the sensor is stopping" 1 "edge-2's capture did not end with the sensor"
sleep 0.5
stop_receiver
count() { tshark -r "$WORK/out.pcap" -Y "$1" 2>/dev/null | wc -l; }
[ "$(count 'udp.dstport == 9999')" -eq 20 ] || fail "port 9999: $(count 'udp.dstport == 9999') in the file, expected 20"
[ "$(count 'udp.dstport == 9997')" -eq 20 ] || fail "port 9997: $(count 'udp.dstport == 9997'), expected 15 + 5"
[ "$(count 'udp.dstport == 9996')" -eq 0 ] || fail "the guard let port 9996 through"
[ "$(count 'udp.dstport == 9995')" -eq 7 ] || fail "port 9995: $(count 'udp.dstport == 9995'), expected 7"
[ "$(count 'udp.dstport == 9994')" -eq 9 ] || fail "port 9994: $(count 'udp.dstport == 9994'), expected 9"
total=$(tshark -r "$WORK/out.pcap" 2>/dev/null | wc -l)
[ "$total" -eq 56 ] || fail "the file holds $total packets, expected 56"
[ "$api" -eq "$total" ] || fail "the API counts $api, the file holds $total"
ok "the file: exactly 20 + 15 + 5 + 7 + 9 = $total packets, as the API counts"
