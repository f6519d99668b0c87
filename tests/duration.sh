#!/usr/bin/env bash
# --duration ends a capture from a file too, also while reading waits for
# a receiver that does not acknowledge (it used to hold only between
# blocks of 4096 packets, so a stalled receiver stretched it until the
# file was read). The receiver writes to a named pipe that nobody reads
# yet: it blocks at the first interface, after the hello, acknowledging
# nothing, and the sensor's 1 MiB replay buffer fills. Once the pipe is
# read, what was sent is delivered whole. Needs no corpus.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
cd "$WORK"
# 3000 packets of 1000 bytes: 3 MB, three times the replay buffer, and
# fewer than 4096 (one pcap_dispatch block).
python3 "$top_srcdir/tests/mkpcap.py" in.pcap 3000 1000 || fail "mkpcap"
mkfifo pipe || skip "cannot make a named pipe"

start_receiver r.log -w pipe
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$RPORT" --replay-buffer 1M --compress none \
  --duration 1 2>s.log &
spid=$!
PIDS+=("$spid")
wait_log r.log "sensor .* interface 0 in.pcap" 1 "the sensor did not start streaming"
# The sensor's run began before the receiver heard of the interface:
# its second is up by now.
sleep 2
cat pipe >out.pcap &
PIDS+=($!)
wait "$spid"
rc=$?
[ "$rc" -eq 0 ] || { cat s.log >&2; fail "sensor exit $rc"; }
stop_receiver
wait
n=$(sed -n 's/.*in\.pcap: \([0-9]*\) captured, .*/\1/p' s.log)
[ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt 3000 ] || { cat s.log >&2; fail "read ${n:-?} of 3000 packets"; }
expect_line s.log "in.pcap: $n captured, $n acknowledged by the receiver;" "account"
expect_line s.log "in.pcap: capture duration of 1 s reached: stopped reading after $n packets" "logged"
# Exactly those n packets arrived: the file's first n.
python3 "$top_srcdir/tests/mkpcap.py" first.pcap "$n" 1000 || fail "mkpcap"
res=$("$PCAPCMP" first.pcap out.pcap) || fail "output: $res"
ok "--duration 1 with a stalled receiver: $n of 3000 packets read and delivered ($res)"
