#!/usr/bin/env bash
# The receiver's final account counts sensor sessions (connections that
# said hello) apart from other connections, and counts as written only
# what the output took: a connection that never said hello used to be a
# "sensor session", and the packets of a session whose file never opened
# were "written" (review, issue 9). Needs no corpus.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
python3 "$top_srcdir/tests/mkpcap.py" "$WORK/in.pcap" 50 || fail "mkpcap"
mkdir "$WORK/d"

start_receiver "$WORK/r.log" -w "$WORK/d/{sensor}.pcap" --split-by-sensor --state none
# A connection that says nothing and goes.
exec 3<>"/dev/tcp/127.0.0.1/$RPORT" || fail "cannot connect"
exec 3<&-
wait_log "$WORK/r.log" "connection from 127\.0\.0\.1:[0-9]+ closed before the hello" 1 "no close logged"
# Sensor a: 50 packets into d/a.pcap.
"$SENSOR" -r "$WORK/in.pcap" --name a --receiver "127.0.0.1:$RPORT" 2>"$WORK/a.log" \
  || { cat "$WORK/a.log" >&2; fail "sensor a"; }
wait_log "$WORK/r.log" "sensor a .* disconnected: 50 packets" 1 "sensor a did not finish"
# Sensor b: its file cannot open (the directory is gone, a reason that
# will not pass), so it is refused with the reason and nothing of it is
# written; the receiver goes on.
rm -rf "$WORK/d"
"$SENSOR" -r "$WORK/in.pcap" --name b --receiver "127.0.0.1:$RPORT" 2>"$WORK/b.log"
brc=$?
[ "$brc" -eq 1 ] || { cat "$WORK/b.log" >&2; fail "sensor b exited $brc, expected 1 (refused)"; }
expect_line "$WORK/b.log" "cannot open $WORK/d/b.pcap for writing: No such file or directory" "b's reason"
wait_log "$WORK/r.log" "sensor b .* dropped: 0 packets" 1 "sensor b's end"
stop_receiver
expect_line "$WORK/r.log" "ps-receiver: 2 sensor sessions \(1 failed\), 1 other connections closed before the hello, 50 packets, 10000 bytes written;" \
  "summary"
ok "summary: $(grep -o '2 sensor sessions.* bytes written' "$WORK/r.log")"
