#!/usr/bin/env bash
# The Kafka output against a real broker (tests/kafka/broker.sh): sensor
# -> receiver -> Kafka, read back by kcat (an independent consumer):
# every packet once, per sensor, bytes and time stamps compared; each
# message a whole pcapng section with its headers; a batch larger than
# the message limit split at packet boundaries; usage errors.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/kafka/broker.sh"

# Usage errors need no broker.
"$RECEIVER" --listen 127.0.0.1:0 --kafka 127.0.0.1:9 2>"$WORK/u1" && fail "--kafka without a topic accepted"
expect_line "$WORK/u1" "--kafka needs --kafka-topic TOPIC" "usage: topic"
"$RECEIVER" --listen 127.0.0.1:0 -w "$WORK/x.pcap" --kafka-topic t 2>"$WORK/u2"; [ $? -eq 2 ] || fail "exit code"
expect_line "$WORK/u2" "--kafka-topic needs --kafka BROKERS" "usage: brokers"
"$RECEIVER" --listen 127.0.0.1:0 --kafka 127.0.0.1:9 --kafka-topic t --kafka-property nope 2>"$WORK/u3"
expect_line "$WORK/u3" "invalid --kafka-property 'nope': give KEY=VALUE" "usage: property"
"$RECEIVER" --listen 127.0.0.1:0 --kafka 127.0.0.1:9 --kafka-topic t --kafka-property no.such.key=1 2>"$WORK/u4"
expect_line "$WORK/u4" "No such configuration property" "librdkafka refuses a property"
"$RECEIVER" --listen 127.0.0.1:0 -w "$WORK/y.pcap" --state "$WORK/s" --kafka 127.0.0.1:9 --kafka-topic t 2>"$WORK/u5"
expect_line "$WORK/u5" "journal does not go with --kafka" "usage: --state with --kafka"
# Properties librdkafka takes one by one but not together: refused when
# the client is made, with its reason, and nothing leaked on the way
# out (the sanitizer build's leak check would change the exit code).
"$RECEIVER" --listen 127.0.0.1:0 --kafka 127.0.0.1:9 --kafka-topic t --kafka-property acks=1 2>"$WORK/u6"
rc=$?; [ $rc -eq 2 ] || { cat "$WORK/u6" >&2; fail "--kafka with acks=1: exit code $rc, not 2"; }
expect_line "$WORK/u6" "Kafka: .acks. must be set to .all. when .enable.idempotence. is true" "producer refused"
"$RECEIVER" --from-kafka 127.0.0.1:9 --kafka-topic t --kafka-group g -w "$WORK/z.pcap" --kafka-property fetch.max.bytes=1000 2>"$WORK/u7"
rc=$?; [ $rc -eq 2 ] || { cat "$WORK/u7" >&2; fail "--from-kafka with fetch.max.bytes=1000: exit code $rc, not 2"; }
expect_line "$WORK/u7" "Kafka: .fetch.max.bytes. must be >= .message.max.bytes." "consumer refused"
ok "usage errors"

broker_start 3
mix A 3000 1
mix B 1200 2
NANO="$DATA/tcp-handshake-nano.pcap"

# 1. Three sensors (one with nanosecond stamps) into Kafka and a file.
start_receiver "$WORK/r.log" -w "$WORK/files.pcapng" --kafka "$KAFKA" --kafka-topic caps \
  --kafka-property compression.codec=lz4 --admin 127.0.0.1:0 --admin-port-file "$WORK/r.aport"
pids=()
"$SENSOR" -q -r "$A" --receiver "127.0.0.1:$RPORT" --name sa 2>"$WORK/sa.log" & pids+=($!)
"$SENSOR" -q -r "$B" --receiver "127.0.0.1:$RPORT" --name sb 2>"$WORK/sb.log" & pids+=($!)
"$SENSOR" -q -r "$NANO" --receiver "127.0.0.1:$RPORT" --name sn 2>"$WORK/sn.log" & pids+=($!)
for p in "${pids[@]}"; do wait "$p" || { cat "$WORK"/s?.log >&2; fail "a sensor failed"; }; done
curl -sf "http://127.0.0.1:$(awk '{print $2}' "$WORK/r.aport")/metrics" >"$WORK/r.metrics" || fail "GET /metrics"
stop_receiver
expect_line "$WORK/r.log" "writing pcapng to $WORK/files.pcapng and to Kafka topic caps at $KAFKA" "start line"
# Everything is in Kafka once the sensors finished: they had their acks.
kcat -b "$KAFKA" -C -t caps -e -q -D '' >"$WORK/all.pcapng" 2>"$WORK/kcat.log" || fail "kcat"
for s in sa:"$A" sb:"$B" sn:"$NANO"; do
  n=${s%%:*} f=${s#*:}
  res=$("$PCAPCMP" --iface "$n/${f##*/}" "$f" "$WORK/all.pcapng") || fail "$n in Kafka: $res"
  ok "$n in Kafka: $res"
  res=$("$PCAPCMP" --iface "$n/${f##*/}" "$f" "$WORK/files.pcapng") || fail "$n in the file: $res"
done
# tshark reads the messages written one after another as one capture.
want=$(( $(tshark -r "$A" 2>/dev/null | wc -l) + $(tshark -r "$B" 2>/dev/null | wc -l) + $(tshark -r "$NANO" 2>/dev/null | wc -l) ))
got=$(tshark -r "$WORK/all.pcapng" 2>"$WORK/tshark.err" | wc -l)
[ "$got" -eq "$want" ] || { cat "$WORK/tshark.err"; fail "tshark reads $got packets of $want"; }
ok "tshark reads the concatenated messages: $got packets"

# 2. Messages: one per batch, each a whole section, key and headers.
kcat -b "$KAFKA" -C -t caps -e -q -f '%k %h %S\n' >"$WORK/meta" 2>/dev/null
msgs=$(wc -l <"$WORK/meta")
# Batches are numbered 1..N in each stream: one message each, N in all.
nb=$(grep -c '^sb/' "$WORK/meta")
grep '^sb/' "$WORK/meta" | sed 's/.*ps-seq=\([0-9]*\).*/\1/' | sort -n | uniq >"$WORK/seqs"
[ "$(wc -l <"$WORK/seqs")" -eq "$nb" ] && [ "$(head -1 "$WORK/seqs")" = 1 ] && [ "$(tail -1 "$WORK/seqs")" = "$nb" ] \
  || fail "sb: $nb messages, sequence headers $(head -1 "$WORK/seqs")..$(tail -1 "$WORK/seqs")"
sum=$(grep '^sb/' "$WORK/meta" | sed 's/.*ps-packets=\([0-9]*\).*/\1/' | paste -sd+ | bc)
[ "$sum" -eq 1200 ] || fail "sb packet headers add up to $sum"
grep '^sb/' "$WORK/meta" | head -1 | grep -Eq 'ps-sensor=sb,ps-stream=[0-9a-f]{16},ps-seq=1,ps-part=1/1,ps-packets=[0-9]+,ps-first-ts=[0-9]+\.[0-9]{6},ps-last-ts=' \
  || { head -3 "$WORK/meta"; fail "sb headers"; }
grep '^sn/' "$WORK/meta" | grep -Eq 'ps-first-ts=[0-9]+\.[0-9]{9}' || fail "sn: nanosecond time stamp headers"
# One key per stream: a stream stays in one partition, in order.
kcat -b "$KAFKA" -C -t caps -e -q -f '%k %p\n' 2>/dev/null | sort -u | awk '{print $1}' | sort | uniq -d >"$WORK/split"
[ ! -s "$WORK/split" ] || fail "a stream spread over partitions: $(cat "$WORK/split")"
# Each message alone is a pcapng file tshark reads.
kcat -b "$KAFKA" -C -t caps -e -q -D '' -c 1 -o beginning -p 0 >"$WORK/one.pcapng" 2>/dev/null
tshark -r "$WORK/one.pcapng" >/dev/null 2>&1 || fail "one message is not a pcapng file tshark reads"
ok "$msgs messages, one per batch, keyed by stream, headers right"
# The metrics count them: every one handed on, and every one confirmed
# (the sensors had their acknowledgements, so the broker had them all).
for m in sent delivered; do
  n=$(awk -v m="ps_receiver_kafka_${m}_messages_total" '$1 == m {print $2}' "$WORK/r.metrics")
  [ "$n" = "$msgs" ] || fail "ps_receiver_kafka_${m}_messages_total is '$n', the topic holds $msgs"
done
ok "metrics: $msgs messages sent, $msgs delivered"

# 3. A batch larger than the message limit is split at packet boundaries.
start_receiver "$WORK/r3.log" --kafka "$KAFKA" --kafka-topic big \
  --kafka-property message.max.bytes=100000
"$SENSOR" -q -r "$A" --receiver "127.0.0.1:$RPORT" --name big 2>"$WORK/big.log" \
  || { cat "$WORK/big.log"; fail "sensor big"; }
stop_receiver
kcat -b "$KAFKA" -C -t big -e -q -D '' >"$WORK/big.pcapng" 2>/dev/null
res=$("$PCAPCMP" --iface "big/${A##*/}" "$A" "$WORK/big.pcapng") || fail "big: $res"
kcat -b "$KAFKA" -C -t big -e -q -f '%S %h\n' >"$WORK/bigmeta" 2>/dev/null
awk '$1 > 100000 {exit 1}' "$WORK/bigmeta" || fail "a message above message.max.bytes"
grep -q 'ps-part=2/' "$WORK/bigmeta" || fail "no batch was split"
ok "large batches split at packet boundaries: $res, $(wc -l <"$WORK/bigmeta") messages"

# 4. PacketStreamer's receiver file with its Kafka plugin, as is (its
# contrib/config/receiver-kafka.yaml; messageSize as its plugin reads
# it): the same output. (--listen on the command line overrides its
# fixed port, as any option overrides the file.)
printf 'input:\n  address: 127.0.0.1\n  port: 8081\noutput:\n  plugins:\n    kafka:\n      brokers: %s\n      clientId: packetstreamer\n      topic: psyaml\n      messageSize: 100KB\n' \
  "$KAFKA" >"$WORK/ps-kafka.yaml"
start_receiver "$WORK/r4.log" --config "$WORK/ps-kafka.yaml"
"$SENSOR" -q -r "$A" --receiver "127.0.0.1:$RPORT" --name psy 2>"$WORK/psy.log" \
  || { cat "$WORK/psy.log"; fail "sensor psy"; }
stop_receiver
expect_line "$WORK/r4.log" "to Kafka topic psyaml at $KAFKA" "start line"
kcat -b "$KAFKA" -C -t psyaml -e -q -D '' >"$WORK/psy.pcapng" 2>/dev/null
res=$("$PCAPCMP" --iface "psy/${A##*/}" "$A" "$WORK/psy.pcapng") || fail "PacketStreamer YAML: $res"
kcat -b "$KAFKA" -C -t psyaml -e -q -f '%S\n' >"$WORK/psymeta" 2>/dev/null
awk '$1 > 102400 {exit 1}' "$WORK/psymeta" || fail "a message above messageSize"
ok "PacketStreamer's Kafka receiver YAML: $res, $(wc -l <"$WORK/psymeta") messages within 100KB"

# 5. --from-kafka feeds a PCAP-over-IP client live, beside its file:
# the topic of section 1's sensor sa, every packet once on both.
"$RECEIVER" --from-kafka "$KAFKA" --kafka-topic caps --kafka-group live1 -w "$WORK/c5.pcapng" \
  --pcap-over-ip 127.0.0.1:0,format=pcapng 2>"$WORK/c5.log" &
C5=$!; PIDS+=("$C5")
wait_log "$WORK/c5.log" "pcap-over-ip listening on" 1 "the consumer's PCAP-over-IP listener"
PP=$(sed -n 's/.*pcap-over-ip listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/c5.log" | head -1)
# The client reads until the stream has been quiet for 3 s (60 s at most).
python3 - "$PP" "$WORK/live.pcapng" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.5)
out, start, last, got = open(sys.argv[2], "wb"), time.time(), time.time(), 0
while time.time() - start < 60 and (got == 0 or time.time() - last < 3):
    try:
        b = s.recv(65536)
    except socket.timeout:
        continue
    if not b:
        break
    out.write(b)
    got += len(b)
    last = time.time()
PY
PY5=$!
wait "$PY5" || fail "the PCAP-over-IP client"
kill -INT "$C5"; wait "$C5" || fail "the consumer exited $?"
res=$("$PCAPCMP" --iface "sa/${A##*/}" "$A" "$WORK/c5.pcapng") || fail "--from-kafka file: $res"
res=$("$PCAPCMP" --iface "sa/${A##*/}" "$A" "$WORK/live.pcapng") || fail "--from-kafka PCAP-over-IP: $res"
ok "--from-kafka into a file and a live PCAP-over-IP client: $res on both"
