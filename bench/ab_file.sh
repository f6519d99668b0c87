#!/bin/bash
# ab_file.sh BUILD CODEC [SENSOR ARGS...]: one run of the file path,
# for A/B comparisons of two builds alternating on the same machine:
# ps-receiver -w /dev/shm/ab.pcap on loopback, ps-sensor -r
# /dev/shm/big.pcap (made by bench/run.sh: genmix, 1 M frames) with
# --compress CODEC. Prints wall and CPU seconds and peak RSS. As root.
set -u
B=$1 C=$2
shift 2
[ -f /dev/shm/big.pcap ] || { echo "ab_file.sh: /dev/shm/big.pcap missing (run bench/run.sh first)" >&2; exit 2; }
port=$((20000 + RANDOM % 20000))
export LD_LIBRARY_PATH=$B/lib/.libs
rm -f /dev/shm/ab*.pcap /dev/shm/.ab*.state
/usr/bin/time -f '%U %S' -o /tmp/ab.rtime "$B/tools/.libs/ps-receiver" \
  --listen 127.0.0.1:$port -w /dev/shm/ab.pcap 2>/tmp/ab.rlog &
rp=$!
sleep 0.3
/usr/bin/time -f '%e %U %S %M' -o /tmp/ab.stime "$B/tools/.libs/ps-sensor" -q \
  -r /dev/shm/big.pcap --receiver 127.0.0.1:$port --compress "$C" -Z root "$@" 2>/tmp/ab.slog
pkill -INT -P $rp # GNU time does not pass SIGINT on
wait $rp
read -r e u s m </tmp/ab.stime
read -r ru rs </tmp/ab.rtime
echo "$(basename "$B") $C $* wall=$e sensor_cpu=$(awk "BEGIN{print $u+$s}") rss=$((m / 1024))MB receiver_cpu=$(awk "BEGIN{print $ru+$rs}")"
rm -f /dev/shm/ab*.pcap /dev/shm/.ab*.state
