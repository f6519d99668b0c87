#!/usr/bin/env bash
# Captures on demand, in network namespaces made by this test: a hub
# (the receiver, its admin API on the hub's loopback, and the traffic
# source) joined by veth pairs to three standby sensors: web-1 and web-2
# (--label app=web, remote captures allowed within limits and a filter
# guard) and db-1 (app=db, remote captures not allowed). ps-ctl drives
# everything: a 3 s capture of app=web 'udp port 9999' must hold exactly
# the 9999 datagrams sent to the web sensors and nothing from db-1; a
# capture whose filter changes midway holds what each filter selected
# at its time; DELETE ends a capture early; the counts in
# /api/v1/captures/ID equal the file's; policy refusals carry their
# reason, and the guard filter holds.
. "$top_srcdir/tests/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "live capture needs root (network namespaces)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v tshark >/dev/null || skip "tshark is not installed"
CTL="$top_builddir/tools/ps-ctl"
UDPSEND="$top_builddir/tests/udpsend"

HUB="psH-$$"
NS=("psW1-$$" "psW2-$$" "psD-$$")
ip netns add "$HUB" || skip "cannot create network namespaces here"
trap 'for n in "$HUB" "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done; cleanup' EXIT
H() { ip netns exec "$HUB" "$@"; }
H sysctl -qw net.ipv6.conf.all.disable_ipv6=1
H ip link set lo up
for i in 0 1 2; do
  n=${NS[$i]} k=$((i + 1))
  ip netns add "$n" || fail "netns add $n"
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$n" ip link set lo up
  ip link add "h$k" netns "$HUB" type veth peer name s0 netns "$n" || fail "veth"
  H ip addr add "10.78.$k.1/24" dev "h$k"
  H ip link set "h$k" up
  ip netns exec "$n" ip addr add "10.78.$k.2/24" dev s0
  ip netns exec "$n" ip link set s0 up
  H ip neigh add "10.78.$k.2" lladdr "$(ip netns exec "$n" cat /sys/class/net/s0/address)" dev "h$k" nud permanent
  ip netns exec "$n" ip neigh add "10.78.$k.1" lladdr "$(H cat /sys/class/net/h$k/address)" dev s0 nud permanent
done

START_PREFIX=(ip netns exec "$HUB")
start_receiver "$WORK/r.log" --listen :0 -w "$WORK/out.pcap" \
  --admin 127.0.0.1:0 --admin-port-file "$WORK/admin.port"
ADMIN="http://127.0.0.1:$(awk '{print $2}' "$WORK/admin.port")"
ctl() { H "$CTL" --admin "$ADMIN" "$@"; }

web_policy=(--allow-remote-capture --remote-interfaces s0 --remote-max-duration 600
  --remote-max-snaplen 65535 --remote-filter-guard 'not udp port 9996')
sensor() { # NAME NSINDEX ARGS...
  local name=$1 i=$2; shift 2
  ip netns exec "${NS[$i]}" "$SENSOR" --standby --receiver "10.78.$((i + 1)).1:$RPORT" \
    --name "$name" "$@" 2>"$WORK/$name.log" &
  PIDS+=($!)
}
sensor web-1 0 --label app=web --label zone=a "${web_policy[@]}"
sensor web-2 1 --label app=web --label zone=b "${web_policy[@]}"
sensor db-1 2 --label app=db
wait_log "$WORK/r.log" "announced: version" 3 "three sensors announced"

ctl sensors >"$WORK/sensors.txt" || fail "ps-ctl sensors"
cat "$WORK/sensors.txt"
for s in web-1 web-2 db-1; do
  grep -Eq "^$s +connected " "$WORK/sensors.txt" || fail "ps-ctl sensors lacks $s"
done
grep -Eq '^web-2 .* app=web,zone=b ' "$WORK/sensors.txt" || fail "labels of web-2 not shown"
ctl --json sensors db-1 | grep -q '"s0"' || fail "db-1 does not offer its interface s0"
ok "inventory: three standby sensors with their labels and interfaces"

count() { # FILTER: packets in the output matching a display filter
  tshark -r "$WORK/out.pcap" -Y "$1" 2>/dev/null | wc -l
}
send() { # NSINDEX PORT COUNT
  H "$UDPSEND" "10.78.$(($1 + 1)).2" "$2" "$3" 2000 >/dev/null || fail "udpsend"
}
cap_state() { ctl --json capture show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
wait_ended() {
  local i
  for i in $(seq 1 200); do
    [ "$(cap_state "$1")" = ended ] && return 0
    sleep 0.1
  done
  ctl capture show "$1"; fail "capture $1 did not end"
}
api_packets() { # ID SENSOR
  ctl --json capture show "$1" | python3 -c "import json,sys; print([t['packets'] for t in json.load(sys.stdin)['sensors'] if t['sensor']=='$2'][0])"
}

# 1. app=web, udp port 9999, 3 s.
ctl capture start --label app=web --duration 3 udp port 9999 >"$WORK/c1.txt" || { cat "$WORK/c1.txt"; fail "capture start"; }
cat "$WORK/c1.txt"
grep -q '^capture 1: running' "$WORK/c1.txt" || fail "capture 1 not running"
grep -Eq '^  web-1 +running' "$WORK/c1.txt" && grep -Eq '^  web-2 +running' "$WORK/c1.txt" ||
  fail "both web sensors must have accepted"
grep -q 'db-1' "$WORK/c1.txt" && fail "db-1 was asked for an app=web capture"
send 0 9999 40; send 1 9999 40; send 2 9999 40; send 0 9998 25; send 1 9998 25
wait_ended 1
ctl capture show 1
[ "$(api_packets 1 web-1)" -eq 40 ] || fail "capture 1: web-1 counted $(api_packets 1 web-1), sent 40"
[ "$(api_packets 1 web-2)" -eq 40 ] || fail "capture 1: web-2 counted $(api_packets 1 web-2), sent 40"
ok "capture 1: the API counts 40 + 40"

# 2. A filter change midway, then DELETE long before its 60 s.
ctl capture start --sensors 'web-*' --duration 60 udp port 9999 >"$WORK/c2.txt" || fail "capture 2 start"
grep -q '^capture 2: running' "$WORK/c2.txt" || { cat "$WORK/c2.txt"; fail "capture 2 not running"; }
send 0 9999 20; send 1 9999 20
sleep 0.5
ctl capture set-filter 2 udp port 9997 >"$WORK/c2f.txt" || { cat "$WORK/c2f.txt"; fail "set-filter"; }
cat "$WORK/c2f.txt"
grep -Eq 'web-1 .*change: switched at [0-9T:.-]+Z after 20 packets: filter udp port 9997' "$WORK/c2f.txt" ||
  fail "the switch point is not reported"
send 0 9999 30; send 1 9999 30; send 0 9997 15; send 1 9997 15
sleep 0.5
t0=$(date +%s)
ctl capture stop 2 >"$WORK/c2s.txt" || fail "capture stop"
cat "$WORK/c2s.txt"
[ $(( $(date +%s) - t0 )) -lt 30 ] || fail "DELETE did not end capture 2 early"
grep -q '^capture 2: ended' "$WORK/c2s.txt" || fail "capture 2 not ended by DELETE"
grep -Eq 'web-1 +ended +35 packets: stopped by the receiver' "$WORK/c2s.txt" || fail "web-1's end of capture 2"
expect_line "$WORK/web-1.log" "remote capture 2 switched at .* after 20 packets: filter udp port 9997" "the sensor logs the switch"
ok "capture 2: filter changed live, stopped early"

# 3. Policy: beyond each limit, refused with the reason; db-1 refuses
# everything; the guard holds.
ctl capture start --sensors web-1 --duration 700 udp >"$WORK/p1.txt"
grep -q "duration beyond this sensor's limit of 600 s" "$WORK/p1.txt" || { cat "$WORK/p1.txt"; fail "duration limit"; }
ctl capture start --sensors web-1 udp >"$WORK/p2.txt"
grep -q "no duration given, and this sensor allows at most 600 s" "$WORK/p2.txt" || { cat "$WORK/p2.txt"; fail "no duration"; }
ctl capture start --sensors web-1 --duration 5 --snaplen 65536 udp >"$WORK/p3.txt"
grep -q "snaplen 65536 beyond this sensor's limit of 65535" "$WORK/p3.txt" || { cat "$WORK/p3.txt"; fail "snaplen limit"; }
ctl capture start --sensors web-1 --duration 5 --interface lo udp >"$WORK/p4.txt"
grep -q "interface lo is not one this sensor offers" "$WORK/p4.txt" || { cat "$WORK/p4.txt"; fail "interface list"; }
ctl capture start --label app=db --duration 5 udp >"$WORK/p5.txt"
grep -Eq "db-1 +refused .*this sensor takes no remote captures" "$WORK/p5.txt" || { cat "$WORK/p5.txt"; fail "db-1 must refuse"; }
expect_line "$WORK/db-1.log" "remote capture [0-9]+ refused: this sensor takes no remote captures" "db-1 logs its refusal"
expect_line "$WORK/web-1.log" "refused: duration beyond this sensor's limit of 600 s" "web-1 logs its refusal"
expect_line "$WORK/r.log" "sensor web-1 refused: snaplen 65536 beyond" "the receiver logs the refusal"
ctl capture start --sensors web-1 --duration 2 udp >"$WORK/g.txt" || fail "guard capture"
gid=$(sed -n 's/^capture \([0-9]*\):.*/\1/p' "$WORK/g.txt")
send 0 9995 10; send 0 9996 10
wait_ended "$gid"
[ "$(api_packets "$gid" web-1)" -eq 10 ] || fail "guard capture counted $(api_packets "$gid" web-1), expected the 10 not on port 9996"
ok "policy: limits refused with reasons, guard applied"

# Errors of the API itself.
ctl capture start --sensors web-1 --duration 2 udp port >"$WORK/e1.txt" 2>&1 && fail "a bad filter was taken"
grep -q "HTTP 400: invalid filter 'udp port' for sensor web-1 interface s0 (link type 1): can't parse filter expression: syntax error" "$WORK/e1.txt" ||
  { cat "$WORK/e1.txt"; fail "bad filter message"; }
ctl capture start --sensors nosuch --duration 2 udp >"$WORK/e2.txt" 2>&1 && fail "an unknown sensor was taken"
grep -q "HTTP 404: no sensor matches the selector" "$WORK/e2.txt" || { cat "$WORK/e2.txt"; fail "404 message"; }
ctl capture show 999 >"$WORK/e3.txt" 2>&1 && fail "capture 999 shown"
grep -q "HTTP 404: no capture 999" "$WORK/e3.txt" || fail "no capture 999"
ok "API errors: bad filter 400 with pcap's text, unknown sensor 404"

api=0
for id in 1 2 "$gid"; do
  p=$(ctl --json capture show "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])') ||
    fail "capture $id"
  api=$((api + p))
done
kill -INT "${PIDS[@]:1}" 2>/dev/null
sleep 1
stop_receiver
n9999=$(count 'udp.dstport == 9999')
nweb=$(count 'udp.dstport == 9999 && (ip.dst == 10.78.1.2 || ip.dst == 10.78.2.2)')
[ "$(count 'ip.dst == 10.78.3.2')" -eq 0 ] || fail "the output holds packets of db-1"
[ "$n9999" -eq "$nweb" ] || fail "port 9999 packets not sent to web sensors"
[ "$n9999" -eq 120 ] || fail "the output holds $n9999 port-9999 packets: expected 80 (capture 1) + 40 (capture 2 before its switch)"
[ "$(count 'udp.dstport == 9998')" -eq 0 ] || fail "port 9998 captured"
[ "$(count 'udp.dstport == 9997')" -eq 30 ] || fail "port 9997: $(count 'udp.dstport == 9997') captured, expected 30 after the switch"
[ "$(count 'udp.dstport == 9996')" -eq 0 ] || fail "the guard let port 9996 through"
[ "$(count 'udp.dstport == 9995')" -eq 10 ] || fail "port 9995: expected 10"
total=$(tshark -r "$WORK/out.pcap" 2>/dev/null | wc -l)
[ "$total" -eq 160 ] || fail "the output holds $total packets, expected the 160 the captures selected"
[ "$api" -eq "$total" ] || fail "the API counts $api packets in captures 1, 2 and $gid, the file holds $total"
ok "the output: exactly what the captures selected ($n9999 on 9999, 30 on 9997, 10 on 9995, none from db-1), $api as the API counts"
