#!/usr/bin/env bash
# Kafka throughput (issue 15): sensor -> receiver -> Kafka (acks=all, one
# broker on 127.0.0.1) next to Kafka's own kafka-producer-perf-test from
# the same jars, on the same machine in the same run, as a ratio. The
# broker is the tests' (tests/kafka/broker.sh, KRaft, one node).
#
#   bench/kafka.sh --build DIR [--packets N] [--runs R]
#
# Sensor side: ps-sensor -r MIX (bench/genmix, N packets of 64..1514
# bytes) -> ps-receiver --kafka, timed from the sensor's start to its
# exit (it exits once every batch is acknowledged, i.e. in Kafka). MB/s
# counts captured bytes. Kafka side: ProducerPerformance with acks=all,
# idempotence, records of the receiver's mean message size, the same
# total bytes. Prints one markdown row per run.
set -u
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD= PACKETS=200000 RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --packets) PACKETS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: bench/kafka.sh --build DIR [--packets N] [--runs R]" >&2; exit 2 ;;
  esac
done
[ -n "$BUILD" ] || { echo "bench/kafka.sh: --build DIR is required" >&2; exit 2; }
top_srcdir=$SRCDIR top_builddir=$(cd "$BUILD" && pwd)
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/kafka/broker.sh"
broker_start 1
mix MIX "$PACKETS" 7
bytes=$("$PCAPCMP" --summary "$MIX" | awk '{print $4}')
echo "| run | packets | MB | ps: s | ps: MB/s | messages | perf-test: MB/s | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for run in $(seq 1 "$RUNS"); do
  topic=bench$run
  start_receiver "$WORK/r$run.log" --kafka "$KAFKA" --kafka-topic "$topic"
  t0=$(date +%s.%N)
  "$SENSOR" -q -r "$MIX" --receiver "127.0.0.1:$RPORT" --name bench 2>"$WORK/s$run.log" \
    || { cat "$WORK/s$run.log"; fail "sensor"; }
  t1=$(date +%s.%N)
  stop_receiver
  msgs=$(kcat -b "$KAFKA" -C -t "$topic" -e -q -f '%S\n' 2>/dev/null | awk '{n++; s += $1} END {print n, s}')
  nmsg=${msgs% *} vbytes=${msgs#* }
  recsize=$((vbytes / nmsg))
  perf=$(kafka_java org.apache.kafka.tools.ProducerPerformance --topic "perf$run" \
    --num-records "$nmsg" --record-size "$recsize" --throughput -1 \
    --producer-props bootstrap.servers="$KAFKA" acks=all enable.idempotence=true \
    2>/dev/null | tail -1)
  pmbs=$(echo "$perf" | sed -n 's/.*records\/sec (\([0-9.]*\) MB\/sec).*/\1/p')
  awk -v r="$run" -v p="$PACKETS" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v n="$nmsg" -v pm="$pmbs" 'BEGIN {
    s = t1 - t0; mb = b / 1e6; mbs = mb / s; pmb = pm * 1.048576;
    printf "| %d | %d | %.1f | %.2f | %.1f | %d | %.1f | %.0f%% |\n", r, p, mb, s, mbs, n, pmb, 100 * mbs / pmb }'
done
