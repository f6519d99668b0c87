#!/usr/bin/env bash
# The receiver's disk fills up mid-stream (a 1 MiB tmpfs made by the
# test): it must say so, keep running, acknowledge nothing it could not
# write, leave a valid file, and write the rest once space returns (the
# tmpfs is enlarged), so the output equals the input exactly.
. "$top_srcdir/tests/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "mounting a small tmpfs needs root"
mix IN 4000 # about 3 MB
MNT="$WORK/full"
mkdir -p "$MNT"
mount -t tmpfs -o size=1m tmpfs "$MNT" || skip "cannot mount a tmpfs here"
trap 'umount -l "$MNT" 2>/dev/null; cleanup' EXIT

start_receiver "$WORK/r.log" -w "$MNT/out.pcap"
"$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --name full 2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
wait_log "$WORK/r.log" "No space left on device" 1 "the receiver did not report the full disk"
expect_line "$WORK/r.log" "not acknowledging anything until it can write" "stall message"
kill -0 "$RPID" || fail "the receiver died on a full disk"
# While full, what is there reads cleanly up to its end.
"$top_builddir/tests/seqcheck" "$MNT/out.pcap" || fail "the file on the full disk is not valid"
sleep 2
kill -0 "$SPID" || { cat "$WORK/s.log"; fail "the sensor gave up while the disk was full"; }
mount -o remount,size=64m "$MNT" || fail "cannot enlarge the tmpfs"
wait_log "$WORK/r.log" "writable again" 1 "the receiver did not resume"
wait "$SPID" || { cat "$WORK/s.log" >&2; fail "sensor exited non-zero"; }
stop_receiver
cat "$WORK/r.log" "$WORK/s.log"
"$PCAPCMP" "$IN" "$MNT/out.pcap" || fail "output differs from the input after the disk-full stall"
n=$("$PCAPCMP" --summary "$IN" | cut -d' ' -f1)
ok "disk full at 1 MiB: receiver stalled, resumed, $n packets written exactly once"
