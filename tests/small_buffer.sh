#!/usr/bin/env bash
# A receiver down longer than the sensor's replay buffer lasts: a live
# capture on lo keeps going, the 64 KiB buffer overflows (drop-oldest),
# the receiver comes back (same port, same output, --append) and gets
# what fit. The sensor's account adds up exactly:
#   captured == acknowledged + dropped by the buffer + lost unacknowledged
# and the output holds exactly the acknowledged packets.
. "$top_srcdir/tests/lib.sh"
UDPSEND="$top_builddir/tests/udpsend"
[ "$(id -u)" -eq 0 ] || skip "needs root to capture on lo"

# lo is shared with whatever else runs on the machine: this test's
# datagrams go to an address of 127/8 and a port of its own, and the
# filter takes only those.
DST=127.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
UPORT=$((20000 + RANDOM % 20000))
start_receiver "$WORK/r1.log" -w "$WORK/out.pcap"
PORT=$RPORT
"$SENSOR" -i lo --receiver "127.0.0.1:$PORT" --replay-buffer 64k \
  --overflow drop-oldest --peer-timeout 2 --name small "udp and dst host $DST and dst port $UPORT" \
  2>"$WORK/s.log" &
spid=$!; PIDS+=("$spid")
for _ in $(seq 1 100); do grep -q "connected to receiver" "$WORK/s.log" && break; sleep 0.05; done
grep -q "connected to receiver" "$WORK/s.log" || { cat "$WORK/s.log" >&2; fail "sensor did not connect"; }

# Up: 300 packets. Down: 3000 (about 2 MB, far more than 64 KiB). Up
# again: 300.
"$UDPSEND" "$DST" "$UPORT" 300 2000 >/dev/null || fail "udpsend"
sleep 0.5
stop_receiver
"$UDPSEND" "$DST" "$UPORT" 3000 5000 >/dev/null || fail "udpsend"
sleep 1
start_receiver "$WORK/r2.log" --listen "127.0.0.1:$PORT" -w "$WORK/out.pcap" --append
for _ in $(seq 1 200); do
  [ "$(grep -c 'connected to receiver' "$WORK/s.log")" -ge 2 ] && break
  sleep 0.05
done
"$UDPSEND" "$DST" "$UPORT" 300 2000 >/dev/null || fail "udpsend"
sleep 0.5
kill -INT "$spid"
wait "$spid"
src=$?
stop_receiver
[ "$src" -eq 0 ] || { cat "$WORK/s.log" >&2; fail "sensor exited $src"; }
expect_line "$WORK/s.log" "replay buffer full" "overflow warning"
expect_line "$WORK/s.log" "reconnecting to 127\.0\.0\.1 port $PORT in [0-9]+ ms" "backoff"

line=$(grep -o 'lo: [0-9]* captured.*' "$WORK/s.log" | tail -n1)
echo "sensor: $line"
num() { echo "$line" | sed -n "s/.*[^0-9]\([0-9][0-9]*\) $1.*/\1/p"; }
captured=$(echo "$line" | sed -n 's/^lo: \([0-9]*\) captured.*/\1/p')
acked=$(num "acknowledged by the receiver")
kernel=$(num "by the kernel")
overflow=$(num "by the sensor's buffer")
lost=$(num "lost unacknowledged")
written=$("$PCAPCMP" --summary "$WORK/out.pcap" | cut -d' ' -f1)
echo "captured $captured = written $written + overflow $overflow + lost $lost (kernel drops $kernel, sent 3600)"
[ "$overflow" -gt 0 ] || fail "a 64 KiB buffer held a 2 MB outage?"
[ "$captured" -eq $((acked + overflow + lost)) ] \
  || fail "captured $captured != acknowledged $acked + overflow $overflow + lost $lost"
[ "$written" -eq "$acked" ] || fail "written $written != acknowledged $acked"
[ $((captured + kernel)) -le 3600 ] || fail "captured more than was sent"
ok "outage with a 64 KiB buffer: 3600 sent, $captured captured, $written written, $overflow dropped by the buffer, $lost lost, $kernel kernel drops"
