#!/usr/bin/env bash
# The Kafka input (--from-kafka) against what anyone who may write to
# the topic can put there (tests/kafka/broker.sh): well-formed messages
# of many invented sensor names. The consumer keeps at most --max-sensors
# streams open to its outputs (the one with the oldest message ends, its
# file closed), so such a writer cannot make it hold a session and a
# file per name; a stream that comes back continues from its position
# (what it had is skipped as a duplicate), every packet once. And lines
# such a writer can cause (a gap per message) are at most 20 per 10 s.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/kafka/broker.sh"

GEN="$top_srcdir/tests/kmsg_gen.py"
command -v python3 >/dev/null || skip "python3 is not installed"

broker_start 1
TOPIC=h1
N=40
# put SENSOR SEQ NPKT [PART/PARTS]: one message of SENSOR's batch SEQ
# into the topic.
put() {
  local args
  args=$(python3 "$GEN" "$WORK/m.bin" "$1" "$2" "$3" "${4:-1/1}") || fail "kmsg_gen.py"
  # shellcheck disable=SC2086
  kcat -b "$KAFKA" -P -t $TOPIC -p 0 $args "$WORK/m.bin" || fail "kcat produce"
}
for i in $(seq 1 $N); do put "w$i" 1 2; done

# files_open PID: how many of the consumer's descriptors are output files.
files_open() {
  local n=0 f
  for f in /proc/"$1"/fd/*; do
    case $(readlink "$f" 2>/dev/null) in "$WORK"/out/w*.pcapng) n=$((n + 1)) ;; esac
  done
  echo "$n"
}
# packets FILE...: the packets (enhanced packet blocks) in the FILEs;
# every section counts (a stream taken up again
# appends a section to its sensor's file).
packets() {
  python3 - "$@" <<'PY'
import os, struct, sys
files = [f for f in sys.argv[1:] if os.path.isfile(f)]
n = 0
for f in files:
    d = open(f, "rb").read()
    o = 0
    while o + 8 <= len(d):
        t, l = struct.unpack("=II", d[o:o + 8])
        if l < 12:
            break
        n += t == 6
        o += l
print(n)
PY
}
wait_packets() {
  local i got=0
  for i in $(seq 1 600); do
    got=$(packets "$WORK"/out/*.pcapng)
    [ "$got" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "$got packets of $1 in the output files after 60 s"
}

mkdir -p "$WORK/out"
"$RECEIVER" --from-kafka "$KAFKA" --kafka-topic $TOPIC --kafka-group g1 \
  --max-sensors 4 -w "$WORK/out/{sensor}.pcapng" --split-by-sensor 2>"$WORK/c.log" &
CPID=$!; PIDS+=("$CPID")
wait_packets $((2 * N))
open=$(files_open "$CPID")
echo "count: $N invented sensors, --max-sensors 4: $open output files open"
[ "$open" -le 4 ] || { cat "$WORK/c.log" >&2; fail "$open output files open for $N streams, above --max-sensors 4"; }
expect_line "$WORK/c.log" "Kafka input: stream 00000000000000a1 of sensor w1 ended, the one longest without a message: 4 streams open is the limit \(--max-sensors\)" "the first stream ended at the limit"

# w1 comes back: its batch 1 again (a duplicate, skipped) and batch 2.
put w1 1 2
put w1 2 3
wait_packets $((2 * N + 3))
sleep 0.5
kill -INT "$CPID"; wait "$CPID" || fail "the consumer exited $? after SIGINT"
n=$(packets "$WORK"/out/*.pcapng)
[ "$n" -eq $((2 * N + 3)) ] || fail "$n packets written, not $((2 * N + 3))"
n=$(packets "$WORK/out/w1.pcapng")
[ "$n" -eq 5 ] || fail "w1.pcapng holds $n packets, not 5 (2 of batch 1 once, 3 of batch 2)"
expect_line "$WORK/c.log" "Kafka input: $((N + 2)) messages read, $((2 * N + 3)) packets, [0-9]+ bytes written for $((N + 1)) streams; 1 duplicate messages skipped, 0 gaps, 0 bad messages skipped" "closing note"
ok "invented sensor names: at most --max-sensors streams open, every packet once"

# A writer that makes every message a gap: the gaps are counted, and
# logged at most 20 per 10 s, then one line with the number not shown.
TOPIC=h2
for i in $(seq 1 31); do put gappy $((2 * i - 1)) 1; done
"$RECEIVER" --from-kafka "$KAFKA" --kafka-topic $TOPIC --kafka-group g2 \
  -w "$WORK/gaps.pcapng" 2>"$WORK/g.log" &
CPID=$!; PIDS+=("$CPID")
for _ in $(seq 1 600); do [ "$(packets "$WORK/gaps.pcapng")" -ge 31 ] && break; sleep 0.1; done
sleep 0.5
kill -INT "$CPID"; wait "$CPID" || fail "the consumer exited $? after SIGINT"
n=$(grep -c "(a gap: not in the topic)" "$WORK/g.log")
echo "count: 30 gaps, $n gap lines logged"
[ "$n" -eq 20 ] || fail "$n gap lines logged for 30 gaps, not 20 (at most 20 per 10 s)"
expect_line "$WORK/g.log" "Kafka input: 10 more gap lines not logged one by one \(at most 20 per 10 s\)" "the gap lines not shown counted"
expect_line "$WORK/g.log" "Kafka input: 31 messages read, 31 packets, [0-9]+ bytes written for 1 streams; 0 duplicate messages skipped, 30 gaps, 0 bad messages skipped" "closing note"
ok "30 gaps counted, 20 logged one by one"

# A batch whose last part is not in the topic is a gap too, even when
# the next batch follows it.
TOPIC=h3
put parted 1 1 1/2
put parted 1 1 2/2
put parted 2 1 1/2
put parted 3 1 1/1
# (Batch 4 claims 3 packets, its section holds 2: whole blocks, not the
# whole batch: skipped as bad, not written in part.)
args=$(python3 "$GEN" "$WORK/m.bin" parted 4 2) || fail "kmsg_gen.py"
# shellcheck disable=SC2086
kcat -b "$KAFKA" -P -t $TOPIC -p 0 $args -H ps-packets=3 "$WORK/m.bin" || fail "kcat produce"
put parted 5 1 1/1
"$RECEIVER" --from-kafka "$KAFKA" --kafka-topic $TOPIC --kafka-group g3 \
  -w "$WORK/parts.pcapng" 2>"$WORK/p.log" &
CPID=$!; PIDS+=("$CPID")
for _ in $(seq 1 600); do [ "$(packets "$WORK/parts.pcapng")" -ge 5 ] && break; sleep 0.1; done
sleep 0.5
kill -INT "$CPID"; wait "$CPID" || fail "the consumer exited $? after SIGINT"
expect_line "$WORK/p.log" "sensor parted stream 00000000000000a1: batch 3 part 1 follows batch 2 part 1 \(a gap: not in the topic\)" "the missing part logged"
expect_line "$WORK/p.log" "offset 4 skipped: its section holds 2 packets, its ps-packets header says 3" "the short section refused"
expect_line "$WORK/p.log" "Kafka input: 6 messages read, 5 packets, [0-9]+ bytes written for 1 streams; 0 duplicate messages skipped, 2 gaps, 1 bad messages skipped" "closing note"
ok "a batch's missing last part counted as a gap; a section short of its packets refused"
