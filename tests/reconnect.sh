#!/usr/bin/env bash
# The connection cut again and again: a proxy between ps-sensor and
# ps-receiver resets or closes it after a random number of bytes (inside
# a frame), five times. The sensor reconnects, resends what was not
# acknowledged, the receiver skips what it already wrote: the output
# equals the input packet for packet, nothing lost, nothing twice.
. "$top_srcdir/tests/lib.sh"
CUTPROXY="$top_builddir/tests/cutproxy"
SEED=${PS_SEED:-$RANDOM}
echo "seed $SEED (PS_SEED=$SEED to repeat)"

# A large input: a generated capture and its records three more times.
mix src 4000 # about 3 MB
in="$WORK/in.pcap"
{ cat "$src"; for _ in 1 2 3; do tail -c +25 "$src"; done; } >"$in"
total=$("$PCAPCMP" --summary "$in" | cut -d' ' -f1)

start_receiver "$WORK/r.log" -w "$WORK/out.pcap"
"$CUTPROXY" "$WORK/proxy.port" "$RPORT" 5 20000 3000000 "$SEED" \
  2>"$WORK/proxy.log" &
PIDS+=("$!")
for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
PPORT=$(cat "$WORK/proxy.port")

# Small batches and no compression: many frames, cuts in their middle.
"$SENSOR" -r "$in" --receiver "127.0.0.1:$PPORT" --compress none \
  --name cut-sensor 2>"$WORK/s.log"
rc=$?
stop_receiver
cat "$WORK/proxy.log"
[ "$rc" -eq 0 ] || { cat "$WORK/s.log" >&2; fail "sensor exited $rc"; }
cuts=$(grep -c 'cutproxy: cut' "$WORK/proxy.log")
[ "$cuts" -ge 1 ] || fail "the proxy cut nothing"
expect_line "$WORK/s.log" "reconnecting to 127\.0\.0\.1 port $PPORT in [0-9]+ ms" "backoff log"
"$PCAPCMP" "$in" "$WORK/out.pcap" || { grep -E 'lost|reconnect|summary|packets' "$WORK/s.log" >&2; fail "output differs from the input"; }
summary=$(grep -o '[0-9]* packets (.*' "$WORK/s.log" | tail -n1)
echo "sensor: $summary"
echo "$summary" | grep -Eq "^$total packets .*: $total acknowledged by the receiver; .* 0 by the sensor's buffer \(overflow\), 0 lost unacknowledged" \
  || fail "the sensor's account does not add up: $summary"
reconnects=$(echo "$summary" | sed -n 's/.*; \([0-9]*\) reconnects.*/\1/p')
[ "$reconnects" -eq "$cuts" ] || fail "$cuts cuts but $reconnects reconnects"
ok "$cuts cuts (seed $SEED): $total packets sent, $total written, 0 dropped, 0 duplicated; $reconnects reconnects"
