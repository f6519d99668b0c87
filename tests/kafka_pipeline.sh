#!/usr/bin/env bash
# The Kafka pipeline end to end on a real broker (tests/kafka/broker.sh):
# sensors -> receivers (--kafka) -> topic -> consumers (--from-kafka) ->
# pcapng, identical to the input per sensor, under faults: the broker
# stopped 10 s mid-stream, a receiver SIGKILLed with the sensor failing
# over to a second one, the consumer SIGKILLed and restarted, a second
# consumer joining the group mid-stream; and bad messages in the topic.
# After each: every packet exactly once, with the consumer's counts.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/kafka/broker.sh"

# pace FILE PPS FIFO: writes the classic pcap FILE into FIFO at PPS
# packets a second (a sensor reading FIFO streams for a while).
UDPSEND="$top_builddir/tests/udpsend"
SEQCHECK="$top_builddir/tests/seqcheck"
[ "$(id -u)" -eq 0 ] || skip "the fault phases capture on lo: needs root"

# live NAME ARGS...: a sensor capturing on lo only the datagrams sent to
# its own address of 127/8 and port (lo is shared), streaming to the
# receivers in ARGS; sets SPID, DST, UPORT once it is connected. Traffic
# that lasts while faults happen: udpsend stamps each datagram, seqcheck
# finds every index once, in order.
live() {
  local name=$1; shift
  DST=127.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
  UPORT=$((20000 + RANDOM % 20000))
  "$SENSOR" -i lo "$@" --name "$name" "udp and dst host $DST and dst port $UPORT" \
    2>"$WORK/$name.log" &
  SPID=$!; PIDS+=("$SPID")
  wait_log "$WORK/$name.log" "connected to receiver" 1 "sensor $name did not connect"
  sleep 0.3
}

# consumer LOG OUT GROUP [ARGS]: starts a --from-kafka receiver; CPID.
consumer() {
  local log=$1 out=$2 group=$3; shift 3
  "$RECEIVER" --from-kafka "$KAFKA" --kafka-topic "$TOPIC" --kafka-group "$group" \
    -w "$out" "$@" 2>>"$log" &
  CPID=$!; PIDS+=("$CPID")
}

# drained LOG N: waits (60 s) until the consumer logged N packets taken
# (its counters, through a SIGINT) -- here: until OUT has N packets.
wait_packets() {
  local file=$1 want=$2 i got=0
  for i in $(seq 1 600); do
    got=$("$PCAPCMP" --list "$file" 2>/dev/null | awk '$1 == "epb" {s += $3} END {print s + 0}')
    [ "${got:-0}" -ge "$want" ] && return 0
    sleep 0.1
  done
  fail "$file: $got packets of $want after 60 s"
}

stop_pid() {
  kill -INT "$1"; wait "$1"; local rc=$?
  [ "$rc" -eq 0 ] || fail "pid $1 exited $rc after SIGINT"
}

# note LOG WHAT: prints the consumer's closing note as the fault's count.
note() {
  local l
  l=$(grep 'Kafka input: .* messages read' "$1" | tail -1)
  [ -n "$l" ] || { cat "$1" >&2; fail "$2: no closing note"; }
  echo "count: $2: ${l#*Kafka input: }"
}

broker_start 3
mix A 4000 11
mix B 2500 12

# 1. Two sensors through one receiver into the topic, one consumer.
TOPIC=t1
start_receiver "$WORK/r1.log" --kafka "$KAFKA" --kafka-topic $TOPIC
R1=$RPID
"$SENSOR" -q -r "$A" --receiver "127.0.0.1:$RPORT" --name sa 2>"$WORK/sa.log" & p1=$!
"$SENSOR" -q -r "$B" --receiver "127.0.0.1:$RPORT" --name sb 2>"$WORK/sb.log" & p2=$!
wait $p1 && wait $p2 || fail "a sensor failed"
consumer "$WORK/c1.log" "$WORK/c1.pcapng" g1
wait_packets "$WORK/c1.pcapng" 6500
stop_pid "$CPID"
for s in sa:"$A" sb:"$B"; do
  n=${s%%:*} f=${s#*:}
  res=$("$PCAPCMP" --iface "$n/${f##*/}" "$f" "$WORK/c1.pcapng") || fail "$n: $res"
done
expect_line "$WORK/c1.log" "Kafka input: [0-9]+ messages read, 6500 packets, [0-9]+ bytes written for 2 streams; 0 duplicate messages skipped, 0 gaps, 0 bad messages skipped" "closing note"
note "$WORK/c1.log" "no fault"
ok "sensor -> receiver -> Kafka -> consumer: both sensors identical"

# 2. The broker stopped for 10 s mid-stream, then started again: the
# receiver acknowledges nothing meanwhile, nothing is lost.
TOPIC=t2
start_receiver "$WORK/r2.log" --kafka "$KAFKA" --kafka-topic $TOPIC \
  --admin 127.0.0.1:0 --admin-port-file "$WORK/r2.aport"
R2=$RPID
# metric NAME: its value for sensor s2 (or the receiver's), from /metrics.
metric() {
  curl -sf "http://127.0.0.1:$(awk '{print $2}' "$WORK/r2.aport")/metrics" |
    awk -v m="$1" '$1 == m || index($1, m "{sensor=\"s2\"") == 1 {print $2; exit}'
}
live s2 --receiver "127.0.0.1:$RPORT"
"$UDPSEND" "$DST" "$UPORT" 3000 300 >/dev/null & U=$!
sleep 2
before=$(metric ps_sensor_acknowledged_batches_total)
[ "${before:-0}" -gt 0 ] || fail "nothing acknowledged before the outage ('$before')"
broker_stop
# What was in flight when the broker stopped may still be confirmed;
# from then on nothing is, and no sensor hears of anything.
sleep 2
a1=$(metric ps_sensor_acknowledged_batches_total) d1=$(metric ps_receiver_kafka_delivered_messages_total)
sleep 7
a2=$(metric ps_sensor_acknowledged_batches_total) d2=$(metric ps_receiver_kafka_delivered_messages_total)
[ -n "$a1" ] && [ "$a1" = "$a2" ] || fail "acknowledgements during the outage: $a1 then $a2 batches"
[ -n "$d1" ] && [ "$d1" = "$d2" ] || fail "deliveries during the outage: $d1 then $d2 messages"
sleep 1
broker_restart
wait "$U" || fail "udpsend"
# (librdkafka reconnects with its own back-off: up to 10 s.)
for i in $(seq 1 300); do
  after=$(metric ps_sensor_acknowledged_batches_total)
  [ "${after:-0}" -gt "$a2" ] && break
  sleep 0.1
done
[ "${after:-0}" -gt "$a2" ] || fail "no acknowledgement 30 s after the broker came back ($a2 then '$after')"
stop_pid "$SPID"
stop_pid "$R2"
expect_line "$WORK/r2.log" "brokers are down" "the receiver saw the outage"
echo "count: broker outage: $before batches acknowledged before, none from $a1 for 7 s while the broker was down (deliveries stayed at $d1), $after once it was back"
consumer "$WORK/c2.log" "$WORK/c2.pcapng" g2
wait_packets "$WORK/c2.pcapng" 3000
stop_pid "$CPID"
res=$("$SEQCHECK" --count 3000 "$WORK/c2.pcapng") || fail "broker outage: $res"
note "$WORK/c2.log" "broker stopped 10 s (3000 packets in)"
ok "broker stopped for 10 s mid-stream: $res"

# 3. A receiver SIGKILLed mid-stream: the sensor fails over to a second
# receiver and resends what was not acknowledged; Kafka may hold some
# batches twice, the consumer writes them once.
TOPIC=t3
start_receiver "$WORK/r3a.log" --kafka "$KAFKA" --kafka-topic $TOPIC
RA=$RPID PA=$RPORT
start_receiver "$WORK/r3b.log" --kafka "$KAFKA" --kafka-topic $TOPIC
RB=$RPID PB=$RPORT
live s3 --receiver "127.0.0.1:$PA" --receiver "127.0.0.1:$PB"
"$UDPSEND" "$DST" "$UPORT" 2000 500 >/dev/null & U=$!
sleep 2
kill -9 "$RA"
wait "$U" || fail "udpsend"
sleep 1
stop_pid "$SPID"
stop_pid "$RB"
expect_line "$WORK/r3b.log" "sensor s3 connected" "the sensor failed over"
consumer "$WORK/c3.log" "$WORK/c3.pcapng" g3
wait_packets "$WORK/c3.pcapng" 2000
stop_pid "$CPID"
res=$("$SEQCHECK" --count 2000 "$WORK/c3.pcapng") || fail "receiver failover: $res"
note "$WORK/c3.log" "receiver SIGKILLed, failover (2000 packets in)"
ok "receiver SIGKILLed, sensor failed over: $res"

# 4. The consumer SIGKILLed mid-stream and restarted on the same output
# path and journal: every packet once across its files.
TOPIC=t4
start_receiver "$WORK/r4.log" --kafka "$KAFKA" --kafka-topic $TOPIC
R4=$RPID
mkdir -p "$WORK/c4"
live s4 --receiver "127.0.0.1:$RPORT"
"$UDPSEND" "$DST" "$UPORT" 2000 500 >/dev/null & U=$!
consumer "$WORK/c4.log" "$WORK/c4/out.pcapng" g4
sleep 2
kill -9 "$CPID"; wait "$CPID" 2>/dev/null
consumer "$WORK/c4.log" "$WORK/c4/out.pcapng" g4
wait "$U" || fail "udpsend"
sleep 1
stop_pid "$SPID"
stop_pid "$R4"
c4files() { ls -tr "$WORK"/c4/out*.pcapng; }
for i in $(seq 1 600); do
  got=0
  for f in $(c4files); do
    got=$((got + $("$PCAPCMP" --list "$f" 2>/dev/null | awk '$1 == "epb" {s += $3} END {print s + 0}')))
  done
  [ "$got" -ge 2000 ] && break
  sleep 0.1
done
stop_pid "$CPID"
res=$("$SEQCHECK" --count 2000 $(c4files)) || fail "consumer restart: $res"
note "$WORK/c4.log" "consumer SIGKILLed and restarted, second run (2000 packets in)"
ok "consumer SIGKILLed and restarted: $res ($(c4files | wc -l) files)"

# 5. A second consumer joins the group mid-stream: the partitions are
# split, a rebalance loses and repeats nothing.
TOPIC=t5
start_receiver "$WORK/r5.log" --kafka "$KAFKA" --kafka-topic $TOPIC
R5=$RPID
mkdir -p "$WORK/d1" "$WORK/d2"
declare -A D5 P5
spids=()
for n in 1 2 3 4; do
  live "j$n" --receiver "127.0.0.1:$RPORT"
  D5[$n]=$DST P5[$n]=$UPORT; spids+=("$SPID")
done
us=()
for n in 1 2 3 4; do "$UDPSEND" "${D5[$n]}" "${P5[$n]}" 1500 400 >/dev/null & us+=($!); done
consumer "$WORK/c5a.log" "$WORK/d1/c.pcapng" g5 --split-by-sensor
C5A=$CPID
sleep 2
consumer "$WORK/c5b.log" "$WORK/d2/c.pcapng" g5 --split-by-sensor
C5B=$CPID
for u in "${us[@]}"; do wait "$u" || fail "udpsend"; done
sleep 1
for p in "${spids[@]}"; do stop_pid "$p"; done
stop_pid "$R5"
j5files() { ls -tr "$WORK"/d1/c.j$1*.pcapng "$WORK"/d2/c.j$1*.pcapng 2>/dev/null; }
for n in 1 2 3 4; do
  for i in $(seq 1 600); do
    got=0
    for f in $(j5files $n); do
      got=$((got + $("$PCAPCMP" --list "$f" 2>/dev/null | awk '$1 == "epb" {s += $3} END {print s + 0}')))
    done
    [ "$got" -ge 1500 ] && break
    sleep 0.1
  done
done
stop_pid "$C5B"
stop_pid "$C5A"
expect_line "$WORK/c5a.log" "partitions revoked" "a rebalance"
expect_line "$WORK/c5b.log" "[1-9] partitions of t5 assigned" "the second consumer's partitions"
for n in 1 2 3 4; do
  # A stream's messages are in one partition: its first owner's file,
  # then (if the partition moved) the second's.
  fs=()
  for f in "$WORK"/d1/c.j$n*.pcapng "$WORK"/d2/c.j$n*.pcapng; do [ -f "$f" ] && fs+=("$f"); done
  res=$("$SEQCHECK" --count 1500 "${fs[@]}") || fail "j$n across the rebalance: $res"
  echo "j$n: ${#fs[@]} files: $res"
done
note "$WORK/c5a.log" "second consumer joins: first consumer (4 x 1500 packets in)"
note "$WORK/c5b.log" "second consumer joins: second consumer"
ok "a second consumer joined mid-stream: 4 sensors exactly once across both"

# 6. Bad messages in the topic: not ours, a truncated section, an absurd
# sequence number: skipped, counted, logged; the good message after them
# is written.
TOPIC=t6
# (The first message of a partition of t1 that has one.)
part=$(kcat -b "$KAFKA" -C -t t1 -e -q -f '%p\n' 2>/dev/null | head -1)
kcat -b "$KAFKA" -C -t t1 -p "$part" -o 0 -c 1 -e -q -D '' >"$WORK/good.bin" 2>/dev/null
hdr=$(kcat -b "$KAFKA" -C -t t1 -p "$part" -o 0 -c 1 -e -q -f '%h' 2>/dev/null)
cnt=$(echo "$hdr" | sed -n 's/.*ps-packets=\([0-9]*\).*/\1/p')
[ -n "$cnt" ] || fail "no headers in t1 partition $part: $hdr"
hargs=(); IFS=, read -ra hs <<<"$hdr"; for h in "${hs[@]}"; do hargs+=(-H "$h"); done
absurd=(); for h in "${hs[@]}"; do case $h in ps-seq=*) absurd+=(-H "ps-seq=99999999999999999999") ;; *) absurd+=(-H "$h") ;; esac; done
printf 'not a packetstreamer message' >"$WORK/foreign.bin"
head -c 200 "$WORK/good.bin" >"$WORK/trunc.bin"
kcat -b "$KAFKA" -P -t $TOPIC -p 0 "$WORK/foreign.bin" || fail "kcat produce"
kcat -b "$KAFKA" -P -t $TOPIC -p 0 "${hargs[@]}" "$WORK/trunc.bin" || fail "kcat produce"
kcat -b "$KAFKA" -P -t $TOPIC -p 0 "${absurd[@]}" "$WORK/good.bin" || fail "kcat produce"
kcat -b "$KAFKA" -P -t $TOPIC -p 0 "${hargs[@]}" "$WORK/good.bin" || fail "kcat produce"
# The same batch again (as a sensor's resend through a second receiver
# puts it): skipped as a duplicate.
kcat -b "$KAFKA" -P -t $TOPIC -p 0 "${hargs[@]}" "$WORK/good.bin" || fail "kcat produce"
consumer "$WORK/c6.log" "$WORK/c6.pcapng" g6
wait_packets "$WORK/c6.pcapng" "$cnt"
stop_pid "$CPID"
expect_line "$WORK/c6.log" "5 messages read, $cnt packets, [0-9]+ bytes written for 1 streams; 1 duplicate messages skipped, 0 gaps, 3 bad messages skipped" "bad input counts"
expect_line "$WORK/c6.log" "offset 0 skipped: not a packetstreamer message" "foreign message logged"
expect_line "$WORK/c6.log" "offset 1 skipped: truncated" "truncated section logged"
expect_line "$WORK/c6.log" "offset 2 skipped: absurd batch sequence" "absurd sequence logged"
note "$WORK/c6.log" "bad messages and a duplicate"
res=$("$PCAPCMP" --list "$WORK/c6.pcapng" | awk '$1 == "epb" {s += $3} END {print s + 0}')
[ "$res" -eq "$cnt" ] || fail "c6.pcapng holds $res packets, not $cnt"
ok "bad messages skipped, counted and logged; the good one written once"
