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
# Sensor b: its file cannot open (the directory is gone), so nothing of
# it is written or acknowledged.
rm -rf "$WORK/d"
"$SENSOR" -r "$WORK/in.pcap" --name b --receiver "127.0.0.1:$RPORT" 2>"$WORK/b.log" &
bpid=$!
PIDS+=("$bpid")
wait_log "$WORK/r.log" "cannot open $WORK/d/b.pcap for writing: No such file or directory: not acknowledging" 1 \
  "the receiver did not stall on b"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null
kill -INT "$RPID"
wait "$RPID"
rc=$?
[ "$rc" -eq 1 ] || { cat "$WORK/r.log" >&2; fail "receiver exit $rc, expected 1 (output never written)"; }
expect_line "$WORK/r.log" "sensor b .* dropped: 50 packets" "sensor b's end"
expect_line "$WORK/r.log" "^ps-receiver: cannot open $WORK/d/b.pcap for writing" "final error"
expect_line "$WORK/r.log" "ps-receiver: 2 sensor sessions \(1 failed\), 1 other connections closed before the hello, 50 packets, 10000 bytes written;" \
  "summary"
ok "summary: $(grep -o '2 sensor sessions.* bytes written' "$WORK/r.log")"
