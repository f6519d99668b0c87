#!/usr/bin/env bash
# Outputs that can never be written (review issue 9, F2 and F7):
# - a sensor whose own file cannot be created (a 255-byte name makes the
#   file name too long) is refused with the reason, at once or when its
#   file rotates, while the sensors before and after it stream fully;
# - an output that cannot be created at all is reported at start, exit 1;
# - standard output whose reader left ends the receiver (exit 1) instead
#   of a stall that lasts for ever.
# Inputs come from bench/genmix.c: no corpus needed.
. "$top_srcdir/tests/lib.sh"

"${CC:-cc}" -O2 -o "$WORK/genmix" "$top_srcdir/bench/genmix.c" || fail "cannot build genmix"
IN="$WORK/in.pcap"
"$WORK/genmix" 500 "$IN" 7 2>/dev/null || fail "genmix"
N=$("$PCAPCMP" --summary "$IN" | cut -d' ' -f1)
[ "$N" -eq 500 ] || fail "genmix wrote $N packets"
name_of() { head -c "$1" /dev/zero | tr '\0' "$2"; }
LONG=$(name_of 255 x)

# send NAME LOG: a sensor that must deliver the whole input.
send() {
  timeout 60 "$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --name "$1" 2>"$2" \
    || { cat "$2" >&2; fail "sensor $1 did not deliver its stream"; }
  expect_line "$2" " $N captured, $N acknowledged by the receiver" "sensor $1 counts"
}
# refused NAME LOG: a sensor that must be refused, with the reason, and
# give up (the refusal is final: no reconnecting).
refused() {
  local rc=0
  timeout 60 "$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --name "$1" 2>"$2" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$2" >&2; fail "sensor ${1:0:20}... exited $rc, expected 1 (refused)"; }
  expect_line "$2" "receiver refused this sensor: the receiver cannot write this sensor's output: cannot open .* for writing: File name too long" \
    "the refused sensor learns why"
  grep -q "reconnecting" "$2" && fail "a refused sensor reconnected"
  return 0
}

# 1. --split-by-sensor, classic pcap: refused at its first interface.
mkdir "$WORK/split"
start_receiver "$WORK/r1.log" -w "$WORK/split/all.pcap" --split-by-sensor
send before "$WORK/s1a.log"
refused "$LONG" "$WORK/s1b.log"
send after "$WORK/s1c.log"
stop_receiver
for s in before after; do
  res=$("$PCAPCMP" "$IN" "$WORK/split/all.$s.pcap") || fail "$s: $res"
  expect_line "$WORK/r1.log" "sensor $s \(.*\) disconnected: $N packets" "$s log line"
done
expect_line "$WORK/r1.log" "sensor x{255} \(.*\) dropped: .*File name too long" "the refusal is logged"
grep -q "not acknowledging anything" "$WORK/r1.log" && fail "the long name stalled the receiver"
expect_line "$WORK/r1.log" "3 sensor sessions \(1 failed\), $((2 * N)) packets" "summary"
[ "$(ls "$WORK/split" | wc -l)" -eq 2 ] || { ls "$WORK/split" >&2; fail "expected 2 files"; }
ok "a 255-byte sensor name is refused with the reason; the sensors before and after it: $N packets each, exact"

# 2. {sensor} in a pcapng path: the same, and two good sensors at once
# around a refused one.
mkdir "$WORK/ng"
start_receiver "$WORK/r2.log" -w "$WORK/ng/{sensor}.pcapng" --split-by-sensor
send one "$WORK/s2a.log" &
p1=$!
refused "$(name_of 255 y)" "$WORK/s2b.log"
send two "$WORK/s2c.log"
wait "$p1" || fail "sensor one"
stop_receiver
for s in one two; do
  res=$("$PCAPCMP" --iface "$s/in.pcap" "$IN" "$WORK/ng/$s.pcapng") || fail "$s: $res"
done
ok "pcapng {sensor}: refused with the reason, the others exact"

# 3. A name whose first file fits but whose rotated file (NAME.1.pcap)
# does not: refused when its file rotates. What was written before is
# acknowledged and stays in its first file, whole; the next sensor
# streams fully. (5000 packets, about 4 MB: more than the receiver reads
# from one sensor in a round, so the rotation comes mid-stream.)
"$WORK/genmix" 5000 "$WORK/big.pcap" 8 2>/dev/null || fail "genmix"
IN="$WORK/big.pcap" N=5000
mkdir "$WORK/rot"
MID=$(name_of 246 z) # all.MID.pcap is 255 bytes, all.MID.1.pcap 257
start_receiver "$WORK/r3.log" -w "$WORK/rot/all.pcap" --split-by-sensor -C 100k
refused "$MID" "$WORK/s3a.log"
acked=$(sed -n "s/.* [0-9]* captured, \([0-9]*\) acknowledged by the receiver.*/\1/p" "$WORK/s3a.log" | head -n1)
[ -n "$acked" ] || { cat "$WORK/s3a.log" >&2; fail "no summary from the refused sensor"; }
send later "$WORK/s3b.log"
stop_receiver
first="$WORK/rot/all.$MID.pcap"
got=$("$PCAPCMP" --summary "$first" | cut -d' ' -f1) || fail "$first is not readable"
[ "$got" -eq "$acked" ] || fail "the refused sensor's file holds $got packets, $acked were acknowledged"
[ "$got" -gt 0 ] && [ "$got" -lt "$N" ] || fail "expected a rotation mid-stream ($got of $N packets in the first file)"
# The later sensor's files, in order, are the input.
mapfile -t files < <(ls -v "$WORK"/rot/all.later*.pcap)
{ cat "${files[0]}"; for f in "${files[@]:1}"; do tail -c +25 "$f"; done; } >"$WORK/later.pcap"
res=$("$PCAPCMP" "$IN" "$WORK/later.pcap") || fail "later: $res"
grep -q "not acknowledging anything" "$WORK/r3.log" && fail "the rotation failure stalled the receiver"
ok "refused at rotation: $got acknowledged packets kept whole, the next sensor exact over ${#files[@]} files"
IN="$WORK/in.pcap" N=500

# 4. An output that cannot be created at all: exit 1 at start, with the
# path and the reason, before any sensor could be accepted.
start_fails() { # WHAT REGEX ARGS...
  local what=$1 re=$2 rc=0; shift 2
  timeout 10 "$RECEIVER" --listen 127.0.0.1:0 "$@" 2>"$WORK/start.log" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$WORK/start.log" >&2; fail "$what: exit $rc, expected 1 at start"; }
  expect_line "$WORK/start.log" "$re" "$what: message"
  grep -q "listening on" "$WORK/start.log" && fail "$what: it started listening"
  return 0
}
if [ -d /proc/self ]; then
  start_fails "/proc" "ps-receiver: cannot create /proc/x.pcap: No such file or directory" \
    -w /proc/x.pcap --state none
  start_fails "/proc, split" "cannot create /proc/x.sensor.pcap: No such file or directory" \
    -w /proc/x.pcap --split-by-sensor --state none
fi
TOOLONG="$WORK/$(name_of 256 w).pcap"
start_fails "a name too long" "cannot create .*/w{256}.pcap: File name too long" \
  -w "$TOOLONG" --state none
# The check leaves nothing behind: twice (the second time x.pcap exists,
# so a probe is made beside it), and only the empty captures remain.
mkdir "$WORK/probe"
for _ in 1 2; do
  start_receiver "$WORK/r4.log" -w "$WORK/probe/x.pcap" --state none
  stop_receiver
done
[ "$(ls -A "$WORK/probe" | tr '\n' ' ')" = "x.1.pcap x.pcap " ] \
  || { ls -A "$WORK/probe" >&2; fail "the start-up check left a file"; }
ok "an output that cannot be created fails at start, exit 1, with the path and the reason; the check leaves nothing"

# 5. Standard output whose reader left: the receiver stops (exit 1) with
# the reason instead of stalling for ever.
"$RECEIVER" --listen 127.0.0.1:0 -w - 2>"$WORK/r5.log" > >(head -c 100 >/dev/null) &
RPID=$!
PIDS+=("$RPID")
for _ in $(seq 1 100); do
  RPORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), writing.*/\1/p' "$WORK/r5.log")
  [ -n "$RPORT" ] && break
  sleep 0.05
done
[ -n "$RPORT" ] || fail "receiver on standard output did not start"
"$SENSOR" -q -r "$IN" --receiver "127.0.0.1:$RPORT" --name pipe 2>"$WORK/s5.log" &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 1 600); do
  kill -0 "$RPID" 2>/dev/null || break
  sleep 0.05
done
kill -0 "$RPID" 2>/dev/null && { cat "$WORK/r5.log" >&2; fail "the receiver went on after standard output was closed"; }
rc=0
wait "$RPID" || rc=$?
[ "$rc" -eq 1 ] || fail "receiver exited $rc after its reader left, expected 1"
expect_line "$WORK/r5.log" "writing standard output: Broken pipe: stopping" "reason"
kill "$SPID" 2>/dev/null
ok "standard output closed by its reader: the receiver stops, exit 1, with the reason"
