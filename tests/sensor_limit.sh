#!/usr/bin/env bash
# Issue 9 (review finding F6): connections that never prove the shared
# key do not count against --max-sensors, so strangers cannot lock a
# keyed sensor out; a receiver at its limit says so, and the sensor
# retries until a slot frees instead of exiting; a receiver that
# welcomes the sensor and then breaks the protocol is retried ever more
# slowly, not every half second. Inputs come from bench/genmix.
. "$top_srcdir/tests/lib.sh"
HOSTILE="$top_builddir/tests/hostile"
GENMIX="$top_builddir/bench/genmix"
cd "$WORK"
"$GENMIX" 3000 in.pcap 9 2>/dev/null || fail "genmix"
total=$("$PCAPCMP" --summary in.pcap | cut -d' ' -f1)
[ "$total" -eq 3000 ] || fail "genmix wrote $total packets, not 3000"
head -c 32 /dev/urandom | base64 >key
chmod 600 key

# all_acked LOG: the sensor's last account says every packet arrived.
all_acked() {
  local summary
  summary=$(grep -o '[0-9]* packets (.*' "$1" | tail -n1)
  echo "$summary" | grep -Eq "^$total packets .*: $total acknowledged by the receiver;.* 0 lost unacknowledged" \
    || { cat "$1" >&2; fail "the sensor's account: $summary"; }
}

# 1. 20 connections hold their hello (never the key's proof); with room
# for 5 sensors, a sensor with the key still gets in and sends it all.
start_receiver r1.log --max-sensors 5 --auth-key-file key -w out1.pcapng
HOSTILE_COUNT=20 HOSTILE_HOLD=60 "$HOSTILE" hellos 127.0.0.1 "$RPORT" >h1.out 2>&1 &
hpid=$!; PIDS+=("$hpid")
wait_log h1.out "holding" 1 "the strangers did not connect"
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$RPORT" --auth-key-file key \
  --name keyed --connect-timeout 10 2>s1.log
rc=$?
kill -TERM "$hpid"; wait "$hpid"
cat h1.out
[ "$rc" -eq 0 ] || { cat s1.log >&2; fail "the keyed sensor exited $rc while 20 strangers held their hello"; }
grep -q "20 of 20 welcomed, 0 refused" h1.out || fail "the strangers were not all welcomed"
all_acked s1.log
stop_receiver
res=$("$PCAPCMP" --iface keyed/in.pcap in.pcap out1.pcapng) || fail "output: $res"
[ "$res" = "$total packets identical" ] || fail "output: $res"
expect_line r1.log "sensor keyed connected from .*shared key verified" "keyed sensor logged"
ok "20 strangers in their handshake, --max-sensors 5: the keyed sensor got in: $res"

# 1b. A pending pool of 8 (--max-pending): each newcomer closes the
# stranger that has waited longest; the keyed sensor, newest, gets in.
"$RECEIVER" --listen 127.0.0.1:0 --max-pending 0 -w x.pcap 2>err; rc=$?
[ "$rc" -eq 2 ] || fail "--max-pending 0: exit $rc"
expect_line err "invalid --max-pending: .*\(see ps-receiver --help\)" "--max-pending 0 message"
start_receiver r1b.log --max-sensors 5 --max-pending 8 --auth-key-file key -w out1b.pcapng
HOSTILE_COUNT=20 HOSTILE_HOLD=60 HOSTILE_REOPEN=0 "$HOSTILE" hellos 127.0.0.1 "$RPORT" >h1b.out 2>&1 &
hpid=$!; PIDS+=("$hpid")
wait_log h1b.out "holding" 1 "the strangers did not connect"
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$RPORT" --auth-key-file key \
  --name keyed --connect-timeout 10 2>s1b.log || { cat s1b.log >&2; fail "keyed sensor with 8 pending places"; }
kill -TERM "$hpid"; wait "$hpid"
all_acked s1b.log
stop_receiver
evicted=$(grep -c "closed for a newer connection: too many in their handshake (8 connections in their handshake, limit 8)" r1b.log)
[ "$evicted" -eq 13 ] || { cat r1b.log >&2; fail "$evicted evictions, not 12 for the strangers + 1 for the sensor"; }
res=$("$PCAPCMP" --iface keyed/in.pcap in.pcap out1b.pcapng) || fail "output: $res"
[ "$res" = "$total packets identical" ] || fail "output: $res"
ok "--max-pending 8, 20 strangers: 13 evicted oldest first, the keyed sensor got in: $res"

# 2. Room for one sensor, taken: the second is told the receiver is full,
# keeps trying, and completes once the first has gone.
start_receiver r2.log --max-sensors 1 -w out2.pcapng
"$HOSTILE" hold 127.0.0.1 "$RPORT" >h2.out 2>&1 &
hpid=$!; PIDS+=("$hpid")
wait_log h2.out "holding" 1 "the first sensor did not get in"
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$RPORT" --name second 2>s2.log &
spid=$!; PIDS+=("$spid")
wait_log s2.log "cannot take this sensor now: the receiver is at its limit of 1 sensors; retrying in 1 s" 1 \
  "the second sensor was not told the receiver is full"
kill -0 "$spid" 2>/dev/null || { cat s2.log >&2; fail "the second sensor gave up on a full receiver"; }
kill -TERM "$hpid"
wait "$hpid" || { cat h2.out >&2; fail "the first sensor did not close cleanly"; }
wait "$spid" || { cat s2.log >&2; fail "the second sensor exited non-zero"; }
all_acked s2.log
stop_receiver
res=$("$PCAPCMP" --iface second/in.pcap in.pcap out2.pcapng) || fail "output: $res"
[ "$res" = "$total packets identical" ] || fail "output: $res"
expect_line r2.log "sensor second \(127\.0\.0\.1:[0-9]+\) dropped: the receiver is at its limit of 1 sensors" "refusal logged"
ok "full receiver: the second sensor waited, then sent everything: $res"

# 3. A fake receiver welcomes the sensor, then answers with garbage: the
# reconnects back off (0.5, 1, 2, 4 s, +-25%) rather than coming every
# 0.5 s, since none of those connections ever worked.
HOSTILE_HOLD=6 "$HOSTILE" fake-receiver 127.0.0.1 0 >h3.out 2>&1 &
fpid=$!; PIDS+=("$fpid")
wait_log h3.out "listening on port" 1 "the fake receiver did not start"
fport=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' h3.out)
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$fport" --name victim 2>s3.log &
spid=$!; PIDS+=("$spid")
wait "$fpid" || { cat h3.out >&2; fail "fake receiver"; }
kill -INT "$spid"; wait "$spid"
cat h3.out
n=$(sed -n 's/.*: \([0-9]*\) connections within 6 s of the first.*/\1/p' h3.out)
expect_line s3.log "connection to receiver 127\.0\.0\.1 port $fport lost: .*unknown frame type" "protocol error seen"
[ -n "$n" ] && [ "$n" -ge 3 ] && [ "$n" -le 5 ] \
  || { grep reconnecting s3.log >&2; fail "$n connections in 6 s from a sensor whose connections never worked (want 3..5)"; }
ok "welcome-then-garbage receiver: $n connections in 6 s, backing off"
