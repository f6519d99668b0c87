#!/usr/bin/env bash
# A PCAP-over-IP consumer that stops reading (a SIGSTOPped tshark)
# while a sensor streams 100 MB loses packets of its own only: the file
# and a second tshark are complete and identical, the sensor drops
# nothing, and the stopped client's count is exact: what it got plus
# what was dropped for it is every packet sent while it was connected.
. "$top_srcdir/tests/lib.sh"
command -v tshark >/dev/null || skip "tshark is not installed"
command -v setsid >/dev/null || skip "setsid is not installed"
command -v mergecap >/dev/null || skip "mergecap is not installed"
mix BIG 140000 3 # 106 MB of frames
mix SMALL 1000 4
mergecap -F pcap -a -w "$WORK/both.pcap" "$BIG" "$SMALL" || fail mergecap

poip_port() {
  sed -n 's/.*pcap-over-ip listening on [^ ]*:\([0-9][0-9]*\) (.*/\1/p' "$1" | sed -n "${2}p"
}
# wait_stable FILE: until FILE has not grown for a second (30 s at most).
wait_stable() {
  local last=-1 now i
  for i in $(seq 1 30); do
    now=$(stat -c %s "$1" 2>/dev/null || echo 0)
    [ "$now" -eq "$last" ] && return 0
    last=$now
    sleep 1
  done
  fail "$1 still grows after 30 s"
}
wait_exit() {
  local i
  for i in $(seq 1 600); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; return 0; }
    sleep 0.05
  done
  fail "$2 did not end"
}

# The stopped client's listener has the default queue (4 MiB); the
# other's holds the whole stream, so it never drops however slowly this
# shared machine runs tshark.
start_receiver "$WORK/r.log" -w "$WORK/file.pcap" --pcap-over-ip ":0" \
  --pcap-over-ip ":0,queue=1g"
PA=$(poip_port "$WORK/r.log" 1) PB=$(poip_port "$WORK/r.log" 2)
# Own process groups: tshark reads TCP@ through a dumpcap child, and
# SIGSTOP must stop both.
setsid tshark -q -i "TCP@127.0.0.1:$PA" -F pcap -w "$WORK/a.pcap" >/dev/null 2>"$WORK/a.log" &
TA=$!; PIDS+=("$TA")
setsid tshark -q -i "TCP@127.0.0.1:$PB" -F pcap -w "$WORK/b.pcap" >/dev/null 2>"$WORK/b.log" &
TB=$!; PIDS+=("$TB")
wait_log "$WORK/r.log" "client .* connected" 2 "two tshark clients"
# (Wait for dumpcap to be there too, so the stop reaches it.)
for _ in $(seq 1 100); do
  [ "$(pgrep -g "$TA" | wc -l)" -ge 2 ] && break; sleep 0.05
done
kill -STOP -- "-$TA"
"$SENSOR" -q -r "$BIG" --receiver "127.0.0.1:$RPORT" --name big 2>"$WORK/s.log" &
SP=$!
sleep 5
kill -CONT -- "-$TA"
wait "$SP" || { cat "$WORK/s.log"; fail "sensor failed"; }
wait_stable "$WORK/a.pcap"
# Once it has caught up, it gets every packet again.
"$SENSOR" -q -r "$SMALL" --receiver "127.0.0.1:$RPORT" --name small || fail "sensor small"
wait_stable "$WORK/a.pcap"
wait_stable "$WORK/b.pcap"
stop_receiver
wait_exit "$TA" "tshark a"; wait_exit "$TB" "tshark b"

res=$("$PCAPCMP" "$WORK/both.pcap" "$WORK/file.pcap") || fail "file: $res"
ok "file output: $res"
res=$("$PCAPCMP" "$WORK/both.pcap" "$WORK/b.pcap") || fail "second client: $res"
ok "second tshark client: $res"
expect_line "$WORK/r.log" "sensor big .* disconnected: 140000 packets, .* 0 dropped \(kernel 0, interface 0, sensor buffer 0\)" "sensor unaffected"
line=$(grep "pcap-over-ip 127.0.0.1:$PA client .* closed:" "$WORK/r.log") ||
  { cat "$WORK/r.log"; fail "no counts line for the stopped client"; }
sent=$(sed -n 's/.* closed: \([0-9]*\) packets sent, \([0-9]*\) dropped.*/\1/p' <<<"$line")
dropped=$(sed -n 's/.* closed: \([0-9]*\) packets sent, \([0-9]*\) dropped.*/\2/p' <<<"$line")
read -r got _ < <("$PCAPCMP" --summary "$WORK/a.pcap")
echo "stopped client: got $got, sent $sent, dropped $dropped"
[ "$dropped" -gt 0 ] || fail "the stopped client dropped nothing: the test proves nothing"
[ "$got" -eq "$sent" ] || fail "the stopped client got $got packets, the receiver says it sent $sent"
[ $((got + dropped)) -eq 141000 ] || fail "got $got + dropped $dropped != 141000"
expect_line "$WORK/r.log" "client 127.0.0.1:[0-9]+ does not keep up: its queue of 4194304 bytes is full" "drop start logged"
expect_line "$WORK/r.log" "keeps up again after [0-9]+ packets dropped" "drop end logged"
grep -q "pcap-over-ip 127.0.0.1:$PB client .* closed: 141000 packets sent, 0 dropped" "$WORK/r.log" ||
  fail "second client's counts"
# The last 1000 came after it caught up: all of them are at its end.
tail_res=$(editcap -r "$WORK/a.pcap" "$WORK/a-tail.pcap" "$((got - 999))-$got" 2>&1 &&
  "$PCAPCMP" "$SMALL" "$WORK/a-tail.pcap") || fail "the stopped client's last packets: $tail_res"
ok "stopped client: got $got + dropped $dropped = 141000; nothing else lost a packet"
