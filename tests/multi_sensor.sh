#!/usr/bin/env bash
# Several sensors at once into one receiver: each keeps its identity in
# pcapng (its own interface block) and every packet is accounted for; in
# classic pcap, each link type goes to its own file.
. "$top_srcdir/tests/lib.sh"
mix AFS 601
mix MANY 4000

# 1. Four sensors, one of them twice with the same file, into one pcapng.
start_receiver "$WORK/r.log" -w "$WORK/multi.pcapng"
files=("$AFS" "$DATA/bigtcp-ipv4.pcap" "$MANY" "$DATA/of13_ericsson.pcapng" "$AFS")
pids=()
codecs=(lz4 zlib none lz4 zlib)
for i in "${!files[@]}"; do
  "$SENSOR" -q -r "${files[$i]}" --receiver "127.0.0.1:$RPORT" \
    --name "s$i" --compress "${codecs[$i]}" 2>"$WORK/s$i.log" &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { cat "$WORK/s$i.log" >&2; fail "sensor s$i failed"; }
done
stop_receiver
total=0
for i in "${!files[@]}"; do
  f=${files[$i]##*/}
  res=$("$PCAPCMP" --iface "s$i/$f" "${files[$i]}" "$WORK/multi.pcapng") \
    || fail "s$i ($f): $res"
  n=${res%% *}
  total=$((total + n))
  expect_line "$WORK/r.log" "sensor s$i \(.*\) disconnected: $n packets" "s$i log line"
  echo "ok: s$i $f: $res"
done
"$PCAPCMP" --list "$WORK/multi.pcapng" >"$WORK/list"
[ "$(grep -c '^idb ' "$WORK/list")" -eq 5 ] || fail "expected 5 interface blocks"
# Each session ends with a statistics block that counts what it delivered.
for i in "${!files[@]}"; do
  id=$(awk -v n="s$i/${files[$i]##*/}" '$1 == "idb" && $3 == n {print $2}' "$WORK/list")
  want=$(awk -v id="$id" '$1 == "epb" && $2 == id {print $3}' "$WORK/list")
  grep -q "^isb $id ifrecv 0 ifdrop 0 osdrop 0 usrdeliv $want\$" "$WORK/list" \
    || { cat "$WORK/list" >&2; fail "no statistics block for s$i"; }
done
expect_line "$WORK/r.log" "5 sensor sessions \(0 failed\), $total packets" "summary"
ok "5 concurrent sensors, $total packets, each in its own interface block"

# 2. Classic pcap with three link types: one file per link type.
start_receiver "$WORK/r2.log" -w "$WORK/mixed.pcap"
"$SENSOR" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" --name eth &
p1=$!
"$SENSOR" -q -r "$DATA/babel_rtt.pcap" --receiver "127.0.0.1:$RPORT" --name raw &
p2=$!
"$SENSOR" -q -r "$DATA/resp_1_benchmark.pcap" --receiver "127.0.0.1:$RPORT" --name sll &
p3=$!
wait $p1 && wait $p2 && wait $p3 || fail "a sensor failed"
stop_receiver
# Whichever came first owns mixed.pcap; the others have sibling files.
for pair in "$AFS:EN10MB" "$DATA/babel_rtt.pcap:RAW" "$DATA/resp_1_benchmark.pcap:LINUX_SLL"; do
  f=${pair%:*} lt=${pair##*:}
  if [ -f "$WORK/mixed.$lt.pcap" ]; then out="$WORK/mixed.$lt.pcap"
    expect_line "$WORK/r2.log" "writing it to $WORK/mixed.$lt.pcap" "log names the $lt file"
  else out="$WORK/mixed.pcap"; fi
  res=$("$PCAPCMP" "$f" "$out") || fail "$f: $res"
  echo "ok: ${f##*/} ($lt) -> $(basename "$out"): $res"
done
[ "$(ls "$WORK"/mixed*.pcap | wc -l)" -eq 3 ] || fail "expected 3 pcap files"

# 3. On standard output a second link type is refused with a reason.
"$RECEIVER" --listen 127.0.0.1:0 -w - >"$WORK/stdout.pcap" 2>"$WORK/r3.log" &
RPID=$!; PIDS+=("$RPID")
for _ in $(seq 1 100); do
  RPORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), writing.*/\1/p' "$WORK/r3.log")
  [ -n "$RPORT" ] && break; sleep 0.05
done
"$SENSOR" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" || fail "first sensor"
"$SENSOR" -q -r "$DATA/babel_rtt.pcap" --receiver "127.0.0.1:$RPORT" 2>"$WORK/s3.log" \
  && fail "a RAW sensor was accepted into an Ethernet pcap stream"
expect_line "$WORK/s3.log" "refused.*use --format pcapng" "sensor learns why"
stop_receiver
res=$("$PCAPCMP" "$AFS" "$WORK/stdout.pcap") || fail "stdout: $res"
ok "stdout pcap kept its first link type and refused the second: $res"

# 4. Addresses: IPv6 literal, host name, and a dual-stack listener taking
# IPv4 and IPv6 sensors at once.
if ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
  start_receiver "$WORK/r4.log" --listen "[::1]:0" -w "$WORK/v6.pcapng"
  "$SENSOR" -q -r "$DATA/pptp.pcap" --receiver "[::1]:$RPORT" --name v6 \
    || fail "sensor over IPv6"
  stop_receiver
  expect_line "$WORK/r4.log" "sensor v6 connected from \[::1\]:" "IPv6 peer logged"
  res=$("$PCAPCMP" --iface v6/pptp.pcap "$DATA/pptp.pcap" "$WORK/v6.pcapng") || fail "IPv6: $res"
  ok "IPv6 [::1]: $res"
  start_receiver "$WORK/r5.log" --listen ":0" -w "$WORK/dual.pcapng"
  "$SENSOR" -q -r "$DATA/pptp.pcap" --receiver "[::1]:$RPORT" --name six || fail "dual-stack v6"
  "$SENSOR" -q -r "$DATA/pptp.pcap" --receiver "127.0.0.1:$RPORT" --name four || fail "dual-stack v4"
  "$SENSOR" -q -r "$DATA/pptp.pcap" --receiver "localhost:$RPORT" --name named || fail "host name"
  stop_receiver
  for n in six four named; do
    res=$("$PCAPCMP" --iface "$n/pptp.pcap" "$DATA/pptp.pcap" "$WORK/dual.pcapng") || fail "$n: $res"
  done
  expect_line "$WORK/r5.log" "sensor four connected from 127.0.0.1:" "IPv4 peer on a dual-stack listener"
  ok "dual-stack listener: IPv6, IPv4 and a host name"
else
  echo "SKIP: no IPv6 loopback; address tests skipped"
fi

# 5. No sensor at all: the output is still a valid, empty capture.
start_receiver "$WORK/r6.log" -w "$WORK/empty.pcap"
stop_receiver
res=$("$PCAPCMP" --summary "$WORK/empty.pcap") || fail "an empty run left an unreadable pcap"
[ "$res" = "0 0 0 0" ] || fail "empty run: $res"
start_receiver "$WORK/r7.log" -w "$WORK/empty.pcapng"
stop_receiver
"$PCAPCMP" --list "$WORK/empty.pcapng" >/dev/null || fail "an empty run left an unreadable pcapng"
ok "no sensor: valid empty pcap and pcapng"
