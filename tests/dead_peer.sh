#!/usr/bin/env bash
# A receiver that vanishes without closing (here: frozen with SIGSTOP, so
# TCP stays up but nothing answers) is noticed by the sensor within its
# peer timeout, which names it and reconnects (with backoff) until the
# receiver is back; a receiver that is merely idle keeps the sensor
# connected (heartbeats are answered).
. "$top_srcdir/tests/lib.sh"

start_receiver "$WORK/r.log" -w "$WORK/out.pcap"
# Idle but alive: 7 s of no traffic with a 3 s peer timeout.
"$SENSOR" -i lo --receiver "127.0.0.1:$RPORT" --peer-timeout 3 --duration 7 \
  'udp port 9' 2>"$WORK/s1.log" || { cat "$WORK/s1.log" >&2; fail "an idle sensor lost a live receiver"; }
ok "idle for 7 s with a 3 s peer timeout: heartbeats kept it up"

"$SENSOR" -i lo --receiver "127.0.0.1:$RPORT" --peer-timeout 3 'udp port 9' 2>"$WORK/s2.log" &
spid=$!; PIDS+=("$spid")
for _ in $(seq 1 100); do grep -q "connected to receiver" "$WORK/s2.log" && break; sleep 0.05; done
kill -STOP "$RPID"
start=$(date +%s)
for _ in $(seq 1 300); do grep -q "presumed dead" "$WORK/s2.log" && break; sleep 0.05; done
elapsed=$(( $(date +%s) - start ))
expect_line "$WORK/s2.log" "receiver 127.0.0.1 port $RPORT has been silent for 3 s .*presumed dead" "reason"
[ "$elapsed" -le 10 ] || fail "took ${elapsed}s to notice a 3 s silence"
ok "frozen receiver noticed after ${elapsed}s: $(grep -o 'has been silent.*' "$WORK/s2.log" | head -n1)"
# The sensor does not give up: it keeps reconnecting, and gets through
# once the receiver is back.
expect_line "$WORK/s2.log" "reconnecting to 127\.0\.0\.1 port $RPORT in [0-9]+ ms" "backoff"
kill -0 "$spid" 2>/dev/null || { cat "$WORK/s2.log" >&2; fail "the sensor gave up on a frozen receiver"; }
kill -CONT "$RPID"
for _ in $(seq 1 400); do [ "$(grep -c 'connected to receiver' "$WORK/s2.log")" -ge 2 ] && break; sleep 0.05; done
[ "$(grep -c 'connected to receiver' "$WORK/s2.log")" -ge 2 ] || { cat "$WORK/s2.log" >&2; fail "no reconnect after the receiver came back"; }
kill -INT "$spid"
wait "$spid"
rc=$?
[ "$rc" -eq 0 ] || { cat "$WORK/s2.log" >&2; fail "sensor exit $rc after the receiver came back"; }
ok "reconnected once the receiver was back, closed cleanly"
stop_receiver
