#!/usr/bin/env bash
# Captures on demand with a file of their own ("output"), and kept in the
# receiver's state across a SIGKILL. In network namespaces made by this
# test: a hub (the receiver, its admin API on the hub's loopback, and the
# traffic source) joined by veth pairs to two standby sensors web-1 and
# web-2.
#  1. Templates outside the capture directory, with "..", or with an
#     unknown field are refused 400 with the reason.
#  2. A 3 s capture on web-1 with --output 'cap-{capture}.pcapng' beside
#     a capture on web-2 without one: the capture's file holds exactly
#     its packets (count, indexes and bytes as sent), -w holds both
#     captures' packets, GET shows the file.
#  3. -w with {capture} splits: each capture's packets in its own -w file;
#     an output with {sensor} is one file per sensor.
#  4. A 4 s capture with an output; the receiver is SIGKILLed during it
#     and restarted with the same --state: GET shows the capture, it ends
#     by its duration, its file holds every packet exactly once, and the
#     next capture gets the next id.
#  5. A capture that ends while the receiver is down shows as ended once
#     its sensor reports, with every packet in its file once.
#  6. A damaged captures' state file stops the receiver: exit 2, naming
#     the file.
. "$top_srcdir/tests/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "live capture needs root (network namespaces)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v tshark >/dev/null || skip "tshark is not installed"
CTL="$top_builddir/tools/ps-ctl"
UDPSEND="$top_builddir/tests/udpsend"
SEQCHECK="$top_builddir/tests/seqcheck"

HUB="psH-$$"
NS=("psW1-$$" "psW2-$$")
ip netns add "$HUB" || skip "cannot create network namespaces here"
trap 'for n in "$HUB" "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done; cleanup' EXIT
H() { ip netns exec "$HUB" "$@"; }
H sysctl -qw net.ipv6.conf.all.disable_ipv6=1
H ip link set lo up
for i in 0 1; do
  n=${NS[$i]} k=$((i + 1))
  ip netns add "$n" || fail "netns add $n"
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$n" ip link set lo up
  ip link add "h$k" netns "$HUB" type veth peer name s0 netns "$n" || fail "veth"
  H ip addr add "10.79.$k.1/24" dev "h$k"
  H ip link set "h$k" up
  ip netns exec "$n" ip addr add "10.79.$k.2/24" dev s0
  ip netns exec "$n" ip link set s0 up
  H ip neigh add "10.79.$k.2" lladdr "$(ip netns exec "$n" cat /sys/class/net/s0/address)" dev "h$k" nud permanent
  ip netns exec "$n" ip neigh add "10.79.$k.1" lladdr "$(H cat /sys/class/net/h$k/address)" dev s0 nud permanent
done

policy=(--allow-remote-capture --remote-interfaces s0 --remote-max-duration 600)
sensor() { # NAME NSINDEX PORT
  ip netns exec "${NS[$2]}" "$SENSOR" --standby --receiver "10.79.$(($2 + 1)).1:$3" \
    --name "$1" "${policy[@]}" 2>>"$WORK/$1.log" &
  PIDS+=($!)
}
send() { # NSINDEX PORT COUNT [PPS [FIRST]]: prints the frames' bytes
  H "$UDPSEND" "10.79.$(($1 + 1)).2" "$2" "$3" "${4:-2000}" "${5:-0}" || fail "udpsend"
}
field() { # ID PYTHON-EXPR over the capture c
  ctl --json capture show "$1" | python3 -c "import json,sys; c=json.load(sys.stdin); print($2)"
}
wait_ended() {
  local i
  for i in $(seq 1 300); do
    [ "$(field "$1" 'c["state"]')" = ended ] && return 0
    sleep 0.1
  done
  ctl capture show "$1"; fail "capture $1 did not end"
}
# paycheck FILE FIRST N: FILE holds exactly the datagrams FIRST..FIRST+N-1
# udpsend sent, each once, every byte as sent (udpsend.c's payload).
paycheck() {
  tshark -r "$1" -T fields -e udp.payload 2>/dev/null | python3 -c '
import sys
first, n = int(sys.argv[1]), int(sys.argv[2])
seen = []
for line in sys.stdin:
    p = bytes.fromhex(line.strip().replace(":", ""))
    i = int.from_bytes(p[:4], "big")
    ln = i * 37 % 1400 + 8
    want = p[:4] + b"psq1" + bytes((i * 7 + k * 13) & 255 for k in range(8, ln))
    if p != want:
        sys.exit("datagram %d: bytes differ from what was sent" % i)
    seen.append(i)
if sorted(seen) != list(range(first, first + n)):
    sys.exit("%d datagrams, %d unique, expected %d..%d" %
             (len(seen), len(set(seen)), first, first + n - 1))
' "$2" "$3" || fail "$1: not exactly datagrams $2..$(($2 + $3 - 1)) as sent"
}
npk() { tshark -r "$1" 2>/dev/null | wc -l; }

# ---- 1..3: one receiver, -w in $WORK (the capture directory) ----
START_PREFIX=(ip netns exec "$HUB")
mkdir -p "$WORK/a"
start_receiver "$WORK/r.log" --listen :0 -w "$WORK/a/out.pcap" \
  --admin 127.0.0.1:0 --admin-port-file "$WORK/admin.port"
ADMIN="http://127.0.0.1:$(awk '{print $2}' "$WORK/admin.port")"
ctl() { H "$CTL" --admin "$ADMIN" "$@"; }
sensor web-1 0 "$RPORT"
sensor web-2 1 "$RPORT"
wait_log "$WORK/r.log" "announced: version" 2 "two sensors announced"

bad() { # TEMPLATE REASON
  ctl capture start --sensors web-1 --duration 2 --output "$1" udp >"$WORK/bad.txt" 2>&1 &&
    fail "output '$1' was taken"
  grep -qF "HTTP 400: $2" "$WORK/bad.txt" || { cat "$WORK/bad.txt"; fail "output '$1': wrong reason"; }
}
bad '../x.pcap' "'output' ../x.pcap: '..' is not allowed"
bad 'd/../../x.pcap' "'output' d/../../x.pcap: '..' is not allowed"
bad '/etc/x.pcap' "'output' /etc/x.pcap is outside the receiver's capture directory $WORK/a"
bad 'c-{id}.pcap' "'output' c-{id}.pcap: unknown field {id} (known: {sensor}, {capture})"
bad 'sub/' "'output' sub/ names a directory"
[ -z "$(ls "$WORK/a" | grep -v out.pcap)" ] || { ls -la "$WORK/a"; fail "a refused template left a file"; }
[ "$(ctl --json capture list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["captures"]))')" -eq 0 ] ||
  fail "a refused request made a capture"
ok "bad templates: 400 with the reason, nothing made"

ctl capture start --sensors web-1 --duration 3 --output 'cap-{capture}.pcapng' udp port 9999 >"$WORK/c1.txt" ||
  { cat "$WORK/c1.txt"; fail "capture 1 start"; }
cat "$WORK/c1.txt"
grep -q '^capture 1: running' "$WORK/c1.txt" || fail "capture 1 not running"
grep -qF "file $WORK/a/cap-1.pcapng" "$WORK/c1.txt" || fail "capture 1 does not show its file"
ctl capture start --sensors web-2 --duration 3 udp port 9999 >"$WORK/c2.txt" || fail "capture 2 start"
grep -q '^capture 2: running' "$WORK/c2.txt" || { cat "$WORK/c2.txt"; fail "capture 2 not running"; }
b1=$(send 0 9999 60)
send 0 9998 20 >/dev/null
send 1 9999 40 2000 1000 >/dev/null
wait_ended 1
wait_ended 2
[ "$(field 1 'c["output"]')" = 'cap-{capture}.pcapng' ] || fail "GET: output"
[ "$(field 1 'c["output_files"]')" = "['$WORK/a/cap-1.pcapng']" ] || fail "GET: output_files $(field 1 'c["output_files"]')"
[ "$(field 1 'c["packets"]')" -eq 60 ] || fail "capture 1 counted $(field 1 'c["packets"]')"
stop_receiver
head -c 4 "$WORK/a/cap-1.pcapng" | od -An -tx1 | grep -q '0a 0d 0d 0a' || fail "cap-1.pcapng is not pcapng"
paycheck "$WORK/a/cap-1.pcapng" 0 60
fb=$(tshark -r "$WORK/a/cap-1.pcapng" -T fields -e frame.len 2>/dev/null | awk '{s+=$1} END {print s}')
[ "$fb" -eq "$b1" ] || fail "cap-1.pcapng holds $fb frame bytes, udpsend sent $b1"
[ "$(npk "$WORK/a/out.pcap")" -eq 100 ] || fail "-w holds $(npk "$WORK/a/out.pcap") packets: expected 60 (capture 1) + 40 (capture 2)"
[ "$(tshark -r "$WORK/a/out.pcap" -Y 'ip.dst == 10.79.1.2' 2>/dev/null | wc -l)" -eq 60 ] || fail "-w lacks capture 1's packets"
ok "capture 1: its own file holds exactly its 60 datagrams ($b1 bytes as sent); -w holds both captures"

# 3. -w with {capture}: each capture on demand its own -w file.
mkdir -p "$WORK/b"
start_receiver "$WORK/r3.log" --listen :0 -w "$WORK/b/w-{capture}.pcap" --state "$WORK/b/st" \
  --admin 127.0.0.1:0 --admin-port-file "$WORK/admin.port"
ADMIN="http://127.0.0.1:$(awk '{print $2}' "$WORK/admin.port")"
: >"$WORK/web-1.log"; : >"$WORK/web-2.log"
sensor web-1 0 "$RPORT"
sensor web-2 1 "$RPORT"
wait_log "$WORK/r3.log" "announced: version" 2 "two sensors announced (3)"
ctl capture start --sensors web-1 --duration 2 udp port 9999 >/dev/null || fail "capture 3a"
ctl capture start --sensors web-2 --duration 2 udp port 9999 >/dev/null || fail "capture 3b"
send 0 9999 25 >/dev/null
send 1 9999 35 2000 500 >/dev/null
wait_ended 1
wait_ended 2
# A capture of both with its own file per sensor ({sensor}).
ctl capture start --sensors 'web-*' --duration 2 --output 'p-{capture}-{sensor}.pcap' udp port 9999 >"$WORK/c3.txt" ||
  { cat "$WORK/c3.txt"; fail "capture 3 ({sensor})"; }
grep -q '^capture 3: running' "$WORK/c3.txt" || { cat "$WORK/c3.txt"; fail "capture 3 not running"; }
send 0 9999 15 2000 2000 >/dev/null
send 1 9999 18 2000 3000 >/dev/null
wait_ended 3
[ "$(field 3 'sorted(c["output_files"])')" = "['$WORK/b/p-3-web-1.pcap', '$WORK/b/p-3-web-2.pcap']" ] ||
  fail "capture 3 files: $(field 3 'c["output_files"]')"
stop_receiver
paycheck "$WORK/b/w-1.pcap" 0 25
paycheck "$WORK/b/w-2.pcap" 500 35
# (both sensors' datagrams in one file, in no set order: 15 + 18, each once)
"$SEQCHECK" "$WORK/b/w-3.pcap" >"$WORK/seq3.txt" 2>&1
grep -q '^packets 33 stamped 33 unique 33 duplicates 0 ' "$WORK/seq3.txt" ||
  { cat "$WORK/seq3.txt"; fail "-w w-3.pcap lacks capture 3's 33 packets"; }
paycheck "$WORK/b/p-3-web-1.pcap" 2000 15
paycheck "$WORK/b/p-3-web-2.pcap" 3000 18
ok "-w {capture}: each capture's packets in its own file (25, 35, 33); output with {sensor}: one file per sensor (15, 18)"
kill -INT "${PIDS[@]:1}" 2>/dev/null
wait "${PIDS[@]:1}" 2>/dev/null
PIDS=()

# ---- 4, 5: SIGKILL and restart with the same --state ----
mkdir -p "$WORK/c"
RL="$WORK/rk.log"
ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
set -- $ports
LPORT=$1 APORT=$2
rargs=(--listen ":$LPORT" -w "$WORK/c/out.pcap" --admin "127.0.0.1:$APORT")
ADMIN="http://127.0.0.1:$APORT"
restart_receiver_in "$HUB" "$RL" "${rargs[@]}"
: >"$WORK/web-1.log"
sensor web-1 0 "$LPORT"
wait_log "$RL" "sensor web-1 announced: version" 1 "web-1 announced (4)"
ctl capture start --sensors web-1 --duration 4 --output 'k-{capture}.pcap' udp port 9999 >"$WORK/k1.txt" ||
  { cat "$WORK/k1.txt"; fail "capture 1 (kill) start"; }
grep -q '^capture 1: running' "$WORK/k1.txt" || { cat "$WORK/k1.txt"; fail "capture 1 (kill) not running"; }
created1=$(field 1 'c["created"]')
deadline1=$(field 1 'c["deadline"]')
t0=$(date +%s%N)
send 0 9999 100 200 >/dev/null &
SP=$!
sleep 0.25
kill -KILL "$RPID"; wait "$RPID" 2>/dev/null
sleep 0.5
restart_receiver_in "$HUB" "$RL" "${rargs[@]}"
[ "$(field 1 'c["id"]')" -eq 1 ] || fail "capture 1 unknown after the restart"
[ "$(field 1 'c["output"]')" = 'k-{capture}.pcap' ] || fail "the restarted receiver lost capture 1's output"
[ "$(field 1 'c["duration_s"]')" -eq 4 ] || fail "the restarted receiver lost capture 1's duration"
[ "$(field 1 'c["created"]')" = "$created1" ] || fail "the restarted receiver lost capture 1's start"
[ "$(field 1 'c["deadline"]')" = "$deadline1" ] || fail "the restarted receiver lost capture 1's deadline"
wait $SP || fail "udpsend (kill)"
wait_ended 1
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -ge 3000 ] || fail "capture 1 ended after $el ms, before its 4 s"
expect_line "$WORK/web-1.log" "remote capture 1 duration reached: 100 packets sent" "web-1 sent 100 for capture 1"
[ "$(field 1 'c["sensors"][0]["reason"]')" = "duration reached" ] || fail "capture 1 did not end by its duration"
[ "$(field 1 'c["packets"]')" -eq 100 ] || fail "capture 1 counts $(field 1 'c["packets"]') packets across the restart, its sensor sent 100"
"$SEQCHECK" --count 100 "$WORK/c/k-1.pcap" || fail "k-1.pcap: not every packet exactly once"
paycheck "$WORK/c/k-1.pcap" 0 100
ok "capture 1 across SIGKILL + restart: known again, ended by its duration, its file holds 100 packets once"

# 5. Ends while the receiver is down.
ctl capture start --sensors web-1 --duration 2 --output 'k-{capture}.pcap' udp port 9999 >"$WORK/k2.txt" ||
  { cat "$WORK/k2.txt"; fail "capture 2 (kill) start"; }
grep -q '^capture 2: running' "$WORK/k2.txt" || { cat "$WORK/k2.txt"; fail "the next capture is not 2"; }
send 0 9999 30 100 1000 >/dev/null &
SP=$!
sleep 0.1
kill -KILL "$RPID"; wait "$RPID" 2>/dev/null
wait $SP || fail "udpsend (down)"
wait_log "$WORK/web-1.log" "remote capture 2 duration reached: 30 packets sent" 1 "web-1 ends capture 2 alone"
restart_receiver_in "$HUB" "$RL" "${rargs[@]}"
wait_ended 2
[ "$(field 2 'c["sensors"][0]["reason"]')" = "duration reached" ] || fail "capture 2's end is not the sensor's"
[ "$(field 2 'c["packets"]')" -eq 30 ] || fail "capture 2 counts $(field 2 'c["packets"]') packets across the restart, its sensor sent 30"
ctl capture start --sensors web-1 --duration 1 udp port 9999 >"$WORK/k3.txt" || fail "capture 3 (kill)"
grep -q '^capture 3: ' "$WORK/k3.txt" || { cat "$WORK/k3.txt"; fail "ids are reused after restarts"; }
wait_ended 3
stop_receiver
paycheck "$WORK/c/k-2.pcap" 1000 30
# (-w without --append: each run its own file, out.pcap, out.1.pcap, ...)
wfiles=("$WORK/c/out.pcap")
for k in 1 2 3; do [ -e "$WORK/c/out.$k.pcap" ] && wfiles+=("$WORK/c/out.$k.pcap"); done
"$SEQCHECK" "${wfiles[@]}" >"$WORK/seq.txt" || { cat "$WORK/seq.txt"; fail "-w: a packet twice across the restarts"; }
grep -q '^packets 130 ' "$WORK/seq.txt" || { cat "$WORK/seq.txt"; fail "-w holds not the 130 packets of captures 1 and 2"; }
ok "capture 2 ended while the receiver was down: ended when web-1 reported, 30 packets once; ids continue (3)"

# 6. A damaged captures' state file.
st="$WORK/c/.out.pcap.state.captures"
[ -s "$st" ] || fail "no captures' state file $st"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$st" || fail "the state file is not whole JSON"
cp "$st" "$WORK/st.good"
sed -i 's/"next_id": 3/"next_id": 1/' "$st"
H "$RECEIVER" "${rargs[@]}" 2>"$WORK/bad.log" && fail "a damaged state was taken"
rc=$?
[ "$rc" -eq 2 ] || fail "exit $rc on a damaged state, expected 2"
grep -qF "captures' state $st is damaged: capture 3 beyond next_id 1" "$WORK/bad.log" ||
  { cat "$WORK/bad.log"; fail "the damage is not named"; }
printf '{"version": 1, "next_id": ' >"$st"
H "$RECEIVER" "${rargs[@]}" 2>"$WORK/bad.log" && fail "a torn state was taken"
grep -qF "captures' state $st is damaged: not JSON" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "torn state"; }
ok "a damaged captures' state: exit 2, naming the file and the fault"
