#!/usr/bin/env bash
# Sensor CPU and memory with N workload namespaces at the same total
# packet rate: ps-sensor --netns all (one handle per namespace, entered
# with setns) against one sensor on the host side of the same veths
# (--netns BRIDGE -i v1 ... -i vN: the bridge namespace's ports). Root; makes and removes its own
# namespaces (nsb-PID-*), traffic only inside them.
#   bench/netns_bench.sh BUILD_DIR [SECONDS [TOTAL_PPS [N...]]]
# Prints one line per run: mode N pps seconds cpu_percent max_rss_kib
# packets_captured.
set -u
B=${1:?usage: netns_bench.sh BUILD_DIR [SECONDS [TOTAL_PPS [N...]]]}
SECS=${2:-5}
PPS=${3:-20000}
shift 3 2>/dev/null || shift $#
COUNTS=("${@:-1 10 50}")
[ "$#" -eq 0 ] && COUNTS=(1 10 50)
export LD_LIBRARY_PATH="$B/lib/.libs"
T=$$
BR="nsb-$T-br"
NSS=()
W=$(mktemp -d)
trap 'for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done; rm -rf "$W"' EXIT
ip netns add "$BR"; NSS+=("$BR")
ip netns exec "$BR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$BR" link add br0 type bridge; ip -n "$BR" link set br0 up
made=0
mk() { # up to N pods: nsb-T-K with 10.79.K/16 addresses
  while [ "$made" -lt "$1" ]; do
    made=$((made + 1)); local k=$made p="nsb-$T-$made"
    ip netns add "$p"; NSS+=("$p")
    ip netns exec "$p" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add eth0 netns "$p" type veth peer name "v$k" netns "$BR"
    ip -n "$BR" link set "v$k" master br0 up
    ip netns exec "$BR" bridge link set dev "v$k" flood off mcast_flood off
    ip -n "$p" addr add "10.79.$((k / 250)).$((k % 250 + 1))/16" dev eth0
    ip -n "$p" link set eth0 up
    # A static neighbour that does not exist: the datagrams leave eth0
    # and die at the bridge, no replies.
    ip -n "$p" neigh add 10.79.255.254 lladdr 02:00:00:00:00:01 dev eth0 nud permanent
  done
}
# run MODE N: a receiver writing to /dev/null-ish pcap, the sensor, the
# traffic; CPU from /proc/PID/stat, peak RSS from /proc/PID/status.
run() {
  local mode=$1 n=$2
  rm -f "$W/port"
  "$B/tools/ps-receiver" --listen 127.0.0.1:0 --port-file "$W/port" -w "$W/out.pcap" -q 2>"$W/r.log" &
  local rp=$!
  for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
  local port; port=$(cut -d' ' -f2 "$W/port")
  if [ "$mode" = netns ]; then
    "$B/tools/ps-sensor" --netns all --netns-match "netns=nsb-$T-[0-9]*" \
      --receiver "127.0.0.1:$port" udp 2>"$W/s.log" &
  else
    # The host side of the same veths: one namespace, N interfaces.
    local ifs=() k
    for k in $(seq 1 "$n"); do ifs+=(-i "v$k"); done
    "$B/tools/ps-sensor" --netns "$BR" "${ifs[@]}" \
      --receiver "127.0.0.1:$port" udp 2>"$W/s.log" &
  fi
  local sp=$!
  sleep 2
  local per=$((PPS / n)) cnt=$((PPS / n * SECS)) k
  local t0; t0=$(awk '{print $14 + $15}' "/proc/$sp/stat")
  for k in $(seq 1 "$n"); do
    ip netns exec "nsb-$T-$k" "$B/tests/udpsend" 10.79.255.254 9 "$cnt" "$per" >/dev/null &
  done
  wait_senders=$(jobs -p | grep -v -e "^$rp$" -e "^$sp$")
  sleep "$SECS"
  for j in $wait_senders; do wait "$j" 2>/dev/null; done
  local t1 rss; t1=$(awk '{print $14 + $15}' "/proc/$sp/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$sp/status")
  kill -INT "$sp"; wait "$sp"
  kill -INT "$rp"; wait "$rp"
  local hz; hz=$(getconf CLK_TCK)
  local got; got=$(grep -o '^[^ ]* [^ ]* [0-9]* packets' "$W/s.log" | tail -1 | awk '{print $3}')
  echo "$mode $n $PPS $SECS $(awk -v d=$((t1 - t0)) -v h="$hz" -v s="$SECS" 'BEGIN {printf "%.1f", d * 100 / h / s}') $rss ${got:-?}"
}
echo "mode workloads total_pps seconds cpu_percent max_rss_kib captured"
for n in "${COUNTS[@]}"; do
  mk "$n"
  run netns "$n"
  run host-veth "$n"
done
