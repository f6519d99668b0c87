#!/usr/bin/env bash
# Many sensors on one receiver (issue 15): 2000 authenticated sessions from
# bench/loadgen (one process, the public stream API) are all admitted,
# the receiver's /metrics counts exactly 2000, they send a little traffic
# that arrives packet for packet, and all close cleanly. Then a receiver
# short of descriptors (ulimit -n 64): the sessions beyond what fits are
# refused and retried, never hang it; it logs why (rate-limited), stays
# up and serves the sessions it holds and a real sensor after them.
. "$top_srcdir/tests/lib.sh"
LOADGEN="$top_builddir/bench/loadgen"
command -v curl >/dev/null || skip "curl is not installed"
# loadgen needs two descriptors per stream (socket, eventfd)
[ "$(ulimit -Hn)" -ge 4200 ] || [ "$(id -u)" -eq 0 ] ||
  skip "the hard open files limit $(ulimit -Hn) is below 4200"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/key"
chmod 600 "$WORK/key"

metric() { # PORT NAME: the value of an unlabelled metric
  curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}
wait_line() { # FILE REGEX PID
  for _ in $(seq 1 1200); do
    grep -Eq -- "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  grep -Eq -- "$2" "$1"
}

# 1. 2000 idle sessions, then 2 s of 2000 packets/s over all of them.
N=2000
start_receiver "$WORK/r.log" -w "$WORK/out.pcap" --max-sensors 4000 \
  --auth-key-file "$WORK/key" --admin 127.0.0.1:0 --admin-port-file "$WORK/aport"
for _ in $(seq 1 100); do [ -s "$WORK/aport" ] && break; sleep 0.05; done
APORT=$(awk '{print $NF}' "$WORK/aport")
expect_line "$WORK/r.log" "open files limit [0-9]+ \(was [0-9]+, hard [0-9]+\)" "the limit is logged"
"$LOADGEN" -n "$N" -i 8 -d 2 -p 2000 -k "$WORK/key" 127.0.0.1 "$RPORT" \
  >"$WORK/lg.out" 2>"$WORK/lg.err" &
LPID=$!; PIDS+=("$LPID")
wait_line "$WORK/lg.err" "loadgen: connected $N streams" "$LPID" ||
  { cat "$WORK/lg.err" >&2; fail "loadgen did not connect $N streams"; }
seen=
for _ in $(seq 1 50); do
  seen=$(metric "$APORT" ps_receiver_sessions)
  [ "$seen" = "$N" ] && break
  sleep 0.1
done
[ "$seen" = "$N" ] || fail "/metrics shows ps_receiver_sessions $seen, not $N"
up=$(curl -s "http://127.0.0.1:$APORT/metrics" | grep -c '^ps_sensor_up{.*} 1$')
[ "$up" = "$N" ] || fail "/metrics shows $up sensors up, not $N"
wait "$LPID" || { cat "$WORK/lg.err" "$WORK/lg.out" >&2; fail "loadgen failed"; }
sent=$(sed -n 's/.* packets \([0-9]*\) (per stream.*/\1/p' "$WORK/lg.out")
confirmed=$(sed -n 's/.* confirmed \([0-9]*\) .*/\1/p' "$WORK/lg.out")
grep -q "connected $N failed 0 " "$WORK/lg.out" || fail "loadgen: $(cat "$WORK/lg.out")"
[ "$sent" -gt 0 ] && [ "$sent" = "$confirmed" ] ||
  fail "loadgen sent $sent packets, the receiver confirmed $confirmed"
for _ in $(seq 1 50); do
  [ "$(metric "$APORT" ps_receiver_sessions)" = 0 ] && break
  sleep 0.1
done
[ "$(metric "$APORT" ps_receiver_sessions)" = 0 ] || fail "sessions left open"
stop_receiver
expect_line "$WORK/r.log" "$N sensor sessions \(0 failed\), $sent packets" "receiver summary"
disc=$(grep -c "sensor loadgen-[0-9]* (.*) disconnected: " "$WORK/r.log")
[ "$disc" = "$N" ] || fail "$disc clean disconnects in the log, not $N"
! grep -q ") dropped: " "$WORK/r.log" || fail "a session was dropped: $(grep -m1 ") dropped: " "$WORK/r.log")"
ok "$N sessions admitted (/metrics: $seen), $sent packets sent and confirmed, all closed cleanly"

# 2. 64 descriptors: 60 sensors cannot all fit.
bash -c "ulimit -n 64; exec \"$RECEIVER\" --listen 127.0.0.1:0 --port-file \"$WORK/r2.port\" -w \"$WORK/out2.pcap\" --auth-key-file \"$WORK/key\" --admin 127.0.0.1:0 --admin-port-file \"$WORK/aport2\"" 2>"$WORK/r2.log" &
RPID=$!; PIDS+=("$RPID")
for _ in $(seq 1 100); do [ -s "$WORK/r2.port" ] && [ -s "$WORK/aport2" ] && break; sleep 0.05; done
RPORT=$(awk '{print $NF}' "$WORK/r2.port")
APORT=$(awk '{print $NF}' "$WORK/aport2")
expect_line "$WORK/r2.log" "open files limit 64 \(was 64, hard 64\)" "the limit is logged"
expect_line "$WORK/r2.log" "open files limit 64 is below the [0-9]+ that --max-sensors 1024 needs" "the short limit is named"
t0=$(date +%s)
"$LOADGEN" -n 60 -t 1 -i 3 -d 0 -k "$WORK/key" 127.0.0.1 "$RPORT" \
  >"$WORK/lg2.out" 2>"$WORK/lg2.err" &
LPID=$!; PIDS+=("$LPID")
wait_line "$WORK/lg2.err" "loadgen: connected [0-9]+ streams" "$LPID" ||
  { cat "$WORK/lg2.err" >&2; fail "loadgen did not finish connecting"; }
conn=$(sed -n 's/^loadgen: connected \([0-9]*\) streams.*/\1/p' "$WORK/lg2.err")
seen=$(metric "$APORT" ps_receiver_sessions)
[ "$conn" -ge 20 ] && [ "$conn" -lt 60 ] || fail "$conn of 60 sessions connected with 64 descriptors"
[ "$seen" = "$conn" ] || fail "/metrics shows $seen sessions, loadgen holds $conn"
wait "$LPID" && fail "loadgen succeeded although sessions were refused"
t1=$(date +%s)
refused=$(grep -c "loadgen: stream [0-9]* failed" "$WORK/lg2.err")
[ $((conn + refused)) = 60 ] || fail "$conn connected + $refused failed is not 60"
kill -0 "$RPID" 2>/dev/null || fail "the receiver died"
lines=$(grep -c "accept: Too many open files (open files limit 64, [0-9]* sensors connected, [0-9]* connections refused since the last such line): refusing new connections while short" "$WORK/r2.log")
# one line, repeated at most every 10 s
[ "$lines" -ge 1 ] && [ "$lines" -le $(( (t1 - t0) / 10 + 1 )) ] ||
  fail "$lines lines on the descriptor shortage in $((t1 - t0)) s"
disc=$(grep -c "sensor loadgen-[0-9]* (.*) disconnected: " "$WORK/r2.log")
[ "$disc" = "$conn" ] || fail "$disc of the $conn admitted sessions closed cleanly"
# the shortage is over: a real sensor gets its capture through
mix IN 2000
"$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --auth-key-file "$WORK/key" \
  --connect-timeout 20 --name real 2>"$WORK/s.log" ||
  { cat "$WORK/s.log" >&2; fail "the sensor failed after the shortage"; }
stop_receiver
res=$("$PCAPCMP" "$IN" "$WORK/out2.pcap") || fail "output after the shortage: $res"
ok "64 descriptors: $conn of 60 sessions held, $refused refused and retried ($lines log line(s) in $((t1 - t0)) s), then a sensor: $res"

# 3. A version 1 sensor (hostile's "good" mode speaks the protocol of the
# earlier builds, waits for each ACK) is served by the receiver that
# acknowledges quiet sessions at most every 250 ms: its second batch is
# acknowledged (not immediately, it is not the first) and its close
# confirmed.
start_receiver "$WORK/r3.log" -w "$WORK/out3.pcap"
: >"$WORK/go"
HOSTILE_GO="$WORK/go" "$top_builddir/tests/hostile" good 127.0.0.1 "$RPORT" \
  >"$WORK/h.out" 2>&1 || { cat "$WORK/h.out" >&2; fail "the version 1 sensor failed"; }
expect_line "$WORK/h.out" "batch 2 acknowledged, close confirmed" "version 1 sensor served"
stop_receiver
expect_line "$WORK/r3.log" "1 sensor sessions \(0 failed\), 6 packets" "version 1 sensor's packets written"
ok "a version 1 sensor: both batches acknowledged, close confirmed, 6 packets written"

# 4. One ACK covers several batches of a quiet sensor: 10 small batches
# 25 ms apart (each in a round of its own) got 10 ACK frames from a
# receiver that acknowledged every round; now one at most every 250 ms.
start_receiver "$WORK/r4.log" -w "$WORK/out4.pcap"
"$top_builddir/tests/hostile" trickle 127.0.0.1 "$RPORT" >"$WORK/t.out" 2>&1 ||
  { cat "$WORK/t.out" >&2; fail "the trickling sensor failed"; }
stop_receiver
acks=$(sed -n 's/.*10 batches, \([0-9]*\) acknowledgements, close confirmed/\1/p' "$WORK/t.out")
[ -n "$acks" ] && [ "$acks" -ge 1 ] && [ "$acks" -le 4 ] ||
  fail "10 quiet batches got ${acks:-no} acknowledgements: $(cat "$WORK/t.out")"
expect_line "$WORK/r4.log" "1 sensor sessions \(0 failed\), 33 packets" "all 33 packets written"
ok "10 quiet batches 25 ms apart: $acks acknowledgement(s), 33 packets written"
