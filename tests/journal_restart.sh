#!/usr/bin/env bash
# The receiver dies (SIGKILL, through the fault-test hook of its test
# build tests/ps-receiver-fp) in the two windows where a crash could
# duplicate packets: after writing a round but before its journal record,
# and after the record but before the acknowledgements. Started again on the same path, it must cut the file
# back (first case) or skip what the sensor resends (second case), so the
# files together equal the input exactly. Without the journal the second
# case duplicates packets, which shows the test can fail.
. "$top_srcdir/tests/lib.sh"
command -v mergecap >/dev/null || skip "mergecap (wireshark-common) is not installed"

# The hook is the test build's only: neither the shared library nor the
# installed tool reads the variable (any build could be made to SIGKILL
# itself).
for f in "$top_builddir"/lib/.libs/libpacketstreamer.so "$RECEIVER"; do
  [ -e "$f" ] || [ "$f" != "$RECEIVER" ] || fail "no $f"
  [ -e "$f" ] || continue # (a static-only build)
  ! grep -aq PS_RECEIVER_FAILPOINT "$f" || fail "$f reads PS_RECEIVER_FAILPOINT"
done
ok "the shipped library and ps-receiver have no failpoint variable"

mix IN 4000 # about 3 MB
TOTAL=$("$PCAPCMP" --summary "$IN" | cut -d' ' -f1)

# run CASE FAILPOINT [RECEIVER ARGS...]: a sensor streams IN; the first
# receiver dies at FAILPOINT, a second one takes over on the same port
# and path. Leaves the files in $WORK/CASE.
run() {
  local name=$1 fp=$2; shift 2
  local dir="$WORK/$name"
  mkdir -p "$dir"
  # The test build of the receiver: the installed one has no failpoint.
  RECEIVER="$top_builddir/tests/ps-receiver-fp" PS_RECEIVER_FAILPOINT=$fp \
    start_receiver "$dir/r1.log" -w "$dir/cap.pcap" "$@"
  local port=$RPORT
  "$SENSOR" -r "$IN" --receiver "127.0.0.1:$port" --name jr 2>"$dir/s.log" &
  local spid=$!; PIDS+=("$spid")
  wait "$RPID"
  local rc=$?
  [ "$rc" -eq 137 ] || { cat "$dir/r1.log"; fail "$name: the receiver did not die at $fp (exit $rc)"; }
  expect_line "$dir/r1.log" "failpoint: killing myself" "$name: failpoint"
  start_receiver "$dir/r2.log" --listen "127.0.0.1:$port" -w "$dir/cap.pcap" "$@"
  wait "$spid" || { cat "$dir/s.log" >&2; fail "$name: sensor exited non-zero"; }
  stop_receiver
  mergecap -F pcap -a -w "$dir/all.pcap" "$dir/cap.pcap" "$dir/cap.1.pcap" ||
    fail "$name: mergecap"
}

run cut before-journal:2
cat "$WORK/cut/r2.log"
expect_line "$WORK/cut/r2.log" "cap.pcap: removed [0-9]+ bytes written after the last acknowledged batch" \
  "the restart did not cut the unrecorded round"
"$PCAPCMP" "$IN" "$WORK/cut/all.pcap" || fail "killed before the journal record: output differs"
ok "killed after writing, before the journal record: cut back, $TOTAL packets once"

run skip after-journal:2
cat "$WORK/skip/r2.log"
expect_line "$WORK/skip/r2.log" "sensor jr: resuming after batch [1-9][0-9]*" "no resume"
"$PCAPCMP" "$IN" "$WORK/skip/all.pcap" || fail "killed after the journal record: output differs"
ok "killed after the journal record, before the acks: resent batches skipped, $TOTAL packets once"

run nojournal after-journal:2 --state none
got=$("$PCAPCMP" --summary "$WORK/nojournal/all.pcap" | cut -d' ' -f1)
[ "$got" -gt "$TOTAL" ] || fail "without the journal expected duplicates, got $got of $TOTAL packets"
ok "without the journal the same crash writes $((got - TOTAL)) packets twice"
