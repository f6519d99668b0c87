#!/bin/bash
# poip.sh BUILD [FRAMES]: PCAP-over-IP costs, on loopback, as root.
#  1. Receiver CPU per packet with 0, 1 and 8 live clients (cat from
#     /dev/tcp, which keeps up) beside the file output (-w /dev/shm),
#     while ps-sensor -r streams FRAMES genmix frames (default 300000,
#     about 230 MB); the clients' drops are printed too.
#  2. Throughput of one tshark -i TCP@ client (-c FRAMES -w /dev/shm)
#     from the sensor's start to tshark's exit, against tshark -r of the
#     same file (-w /dev/shm), both without dissection.
# Prints one line per measurement. Numbers go to docs/PERFORMANCE.md.
set -u
B=$1 N=${2:-300000}
export LD_LIBRARY_PATH=$B/lib/.libs
R=$B/tools/.libs/ps-receiver S=$B/tools/.libs/ps-sensor
IN=/dev/shm/poip-in.pcap
"$B/bench/genmix" "$N" "$IN" 9 2>/dev/null || { echo "genmix failed" >&2; exit 2; }
size=$(stat -c %s "$IN")
cleanup() { rm -f /dev/shm/poip-*.pcap /dev/shm/.poip-*.state /tmp/poip-r.*; }
trap cleanup EXIT

start_receiver() { # ARGS...: sets RP, PORT, PPORT
  rm -f /tmp/poip-r.port /dev/shm/poip-out.pcap /dev/shm/.poip-out.pcap.state
  "$R" --listen 127.0.0.1:0 --port-file /tmp/poip-r.port "$@" 2>/tmp/poip-r.log &
  RP=$!
  for _ in $(seq 1 100); do [ -s /tmp/poip-r.port ] && break; sleep 0.05; done
  PORT=$(awk 'NR==1{print $2}' /tmp/poip-r.port)
  PPORT=$(sed -n 's/.*pcap-over-ip listening on [^ ]*:\([0-9]*\) .*/\1/p' /tmp/poip-r.log | head -1)
}
cpu_s() { # PID: user+system seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

for clients in 0 1 8; do
  start_receiver -w /dev/shm/poip-out.pcap --pcap-over-ip :0
  cats=()
  for _ in $(seq 1 "$clients"); do
    cat </dev/tcp/127.0.0.1/"$PPORT" >/dev/null &
    cats+=($!)
  done
  sleep 0.5
  c0=$(cpu_s "$RP")
  "$S" -q -r "$IN" --receiver "127.0.0.1:$PORT" -Z root || echo "sensor failed" >&2
  sleep 0.5
  c1=$(cpu_s "$RP")
  kill -INT "$RP"
  wait "$RP"
  wait "${cats[@]}" 2>/dev/null
  drops=$(sed -n 's/.* \([0-9]*\) dropped (queue full).*/\1/p' /tmp/poip-r.log | awk '{s += $1} END {print s + 0}')
  awk -v c="$clients" -v a="$c0" -v b="$c1" -v n="$N" -v d="${drops:-0}" \
    'BEGIN{printf "clients=%d receiver_cpu=%.2fs per_packet=%.2fus client_drops=%s\n", c, b-a, (b-a)*1e6/n, d}'
done

start_receiver --pcap-over-ip :0,queue=1g
tshark -q -i "TCP@127.0.0.1:$PPORT" -c "$N" -w /dev/shm/poip-t.pcap >/dev/null 2>&1 &
T=$!
sleep 1.5
t0=$(date +%s.%N)
"$S" -q -r "$IN" --receiver "127.0.0.1:$PORT" -Z root || echo "sensor failed" >&2
wait "$T"
t1=$(date +%s.%N)
kill -INT "$RP"
wait "$RP"
got=$(capinfos -c -M /dev/shm/poip-t.pcap 2>/dev/null | awk '/Number of packets/{print $NF}')
awk -v a="$t0" -v b="$t1" -v s="$size" -v g="$got" \
  'BEGIN{printf "tshark TCP@ client: %.2fs, %.0f MB/s, %s packets\n", b-a, s/(b-a)/1e6, g}'
t0=$(date +%s.%N)
tshark -q -r "$IN" -w /dev/shm/poip-r2.pcap >/dev/null 2>&1
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v s="$size" \
  'BEGIN{printf "tshark -r the same file: %.2fs, %.0f MB/s\n", b-a, s/(b-a)/1e6}'
