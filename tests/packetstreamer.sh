#!/usr/bin/env bash
# deepfence PacketStreamer's own config files (tests/data/packetstreamer)
# given unchanged to ps-sensor --config and ps-receiver --config stream
# real traffic: UDP and TCP on ports 80, 443 and 53 between the test's
# namespaces psA (10.77.0.1, va) and psB (10.77.0.2, vb). A tcpdump on va
# (without the sensor's stream port) is the reference: with pcapMode
# allow [80, 443] the output holds exactly its 80/443 packets, with deny
# exactly the others, with all (to a local receiver) all of them; the
# sensor's own stream (port 8081, across va in allow and deny) never.
. "$top_srcdir/tests/lib.sh"
PSD="$DATA/packetstreamer"
command -v tcpdump >/dev/null || skip "tcpdump is not installed"
command -v tshark >/dev/null || skip "tshark is not installed"
netns_pair

# start_ps NS LOG CONFIG [OUT]: ps-receiver --config CONFIG in NS, in
# $WORK (the file's relative output path), stdout to OUT; waits until it
# listens.
start_ps() {
  local ns=$1 log=$2 cfg=$3 out=${4:-/dev/null}
  rm -f "$log.port"
  (cd "$WORK" && exec ip netns exec "$ns" "$RECEIVER" --config "$cfg" \
    --port-file "$log.port" >"$out" 2>"$log") &
  RPID=$!; PIDS+=("$RPID")
  for _ in $(seq 1 200); do
    [ -s "$log.port" ] && return 0
    kill -0 "$RPID" 2>/dev/null || { cat "$log"; fail "ps-receiver --config $cfg did not start"; }
    sleep 0.05
  done
  fail "ps-receiver --config $cfg did not listen"
}

# TCP and UDP servers in psB on 80, 443 and 53 (no ICMP errors): each
# reads what comes.
ip netns exec "$NSB" python3 -c '
import socket, threading, sys
def serve(p):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.77.0.2", p)); s.listen(8)
    while True:
        c, _ = s.accept()
        while c.recv(65536): pass
        c.close()
def udp(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.77.0.2", p))
    while True: s.recv(65536)
for p in (80, 443, 53):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
    threading.Thread(target=udp, args=(p,), daemon=True).start()
print("up", flush=True)
threading.Event().wait()
' >"$WORK/tcpd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q up "$WORK/tcpd.log" && break; sleep 0.05; done

# traffic: 15 UDP datagrams and one TCP connection (3 writes) per port.
traffic() {
  local p
  for p in 80 443 53; do
    A "$top_builddir/tests/udpsend" 10.77.0.2 "$p" 15 >/dev/null || fail "udpsend $p"
  done
  A python3 -c '
import socket, time
for p in (80, 443, 53):
    s = socket.create_connection(("10.77.0.2", p))
    for i in range(3):
        s.sendall(b"x" * (100 + 300 * i)); time.sleep(0.01)
    s.close()
' || fail "TCP client"
}

# fields FILE: one line per packet, protocol, ports, length (sorted).
fields() {
  tshark -r "$1" -T fields -e ip.proto -e udp.srcport -e udp.dstport \
    -e tcp.srcport -e tcp.dstport -e frame.len 2>/dev/null | sort
}

# run NAME SENSOR_CFG RECEIVER_NS RECEIVER_CFG: streams the traffic with
# the sensor in psA; the output is $WORK/NAME.pcap, the reference
# $WORK/NAME.ref.pcap.
run() {
  local name=$1 scfg=$2 rns=$3 rcfg=$4 out=/dev/null
  rm -f "$WORK/capture.pcap"
  [ "$rcfg" = receiver-stdout.yaml ] && out="$WORK/$name.pcap"
  start_ps "$rns" "$WORK/$name.r.log" "$PSD/$rcfg" "$out"
  ip netns exec "$NSA" tcpdump -i va -U -n -w "$WORK/$name.ref.pcap" \
    'not tcp port 8081' 2>"$WORK/$name.td.log" &
  local tpid=$!; PIDS+=("$tpid")
  for _ in $(seq 1 100); do grep -q listening "$WORK/$name.td.log" && break; sleep 0.05; done
  case $scfg in /*) ;; *) scfg="$PSD/$scfg" ;; esac
  ip netns exec "$NSA" "$SENSOR" --config "$scfg" 2>"$WORK/$name.s.log" &
  local spid=$!; PIDS+=("$spid")
  wait_log "$WORK/$name.r.log" "interface 0 va" 1 "$name: the sensor did not start"
  sleep 0.3
  traffic
  sleep 1.5 # more than the sensor's batching delay
  kill -INT "$spid"
  wait "$spid" || { cat "$WORK/$name.s.log"; fail "$name: sensor exited non-zero"; }
  sleep 0.2
  kill -INT "$tpid"; wait "$tpid"
  stop_receiver
  [ "$rcfg" = receiver.yaml ] && mv "$WORK/capture.pcap" "$WORK/$name.pcap"
  grep -q "interface 1" "$WORK/$name.r.log" &&
    fail "$name: more than va captured (loopback?)"
  return 0
}

# check NAME TCPDUMP_FILTER: the output is exactly the reference's
# packets that the filter matches, and holds some on each port it should.
check() {
  local name=$1
  tcpdump -r "$WORK/$name.ref.pcap" -w "$WORK/$name.exp.pcap" "$2" 2>/dev/null ||
    fail "tcpdump -r"
  fields "$WORK/$name.exp.pcap" >"$WORK/$name.exp"
  fields "$WORK/$name.pcap" >"$WORK/$name.got"
  diff "$WORK/$name.exp" "$WORK/$name.got" >"$WORK/$name.diff" ||
    { head -20 "$WORK/$name.diff"; fail "$name: output differs from the reference ($2)"; }
  grep -q 8081 "$WORK/$name.got" && fail "$name: the sensor's own stream was captured"
  echo "$name: $(wc -l <"$WORK/$name.got") packets, as the reference ($2)"
}

count() { awk -F'\t' -v p="$2" '$2==p||$3==p||$4==p||$5==p' "$WORK/$1.got" | wc -l; }

# allow [80, 443]: receiver to standard output (receiver-stdout.yaml).
run allow sensor-allow.yaml "$NSB" receiver-stdout.yaml
check allow 'port 80 or port 443'
[ "$(count allow 80)" -ge 20 ] && [ "$(count allow 443)" -ge 20 ] &&
  [ "$(count allow 53)" -eq 0 ] || fail "allow: ports 80/443 missing or 53 present"

# deny [80, 443]: receiver to a file (receiver.yaml).
run deny sensor-deny.yaml "$NSB" receiver.yaml
check deny 'not (port 80 or port 443)'
[ "$(count deny 53)" -ge 20 ] && [ "$(count deny 80)" -eq 0 ] &&
  [ "$(count deny 443)" -eq 0 ] || fail "deny: port 53 missing or 80/443 present"

# deny with 200 more ports: a filter of 2 kB, which the exclusion of the
# sensor's own stream once cut short (the stream was then captured).
{ cat "$PSD/sensor-deny.yaml"; for p in $(seq 1000 1199); do echo "  - $p"; done; } \
  >"$WORK/sensor-deny-long.yaml"
run denylong "$WORK/sensor-deny-long.yaml" "$NSB" receiver.yaml
check denylong 'not (port 80 or port 443)'
grep -q "cannot filter out" "$WORK/denylong.s.log" && fail "denylong: $(cat "$WORK/denylong.s.log")"

# all, to a local receiver (sensor-local.yaml, 127.0.0.1:8081 in psA).
run local sensor-local.yaml "$NSA" receiver.yaml
check local 'ip'
[ "$(count local 53)" -ge 20 ] && [ "$(count local 80)" -ge 20 ] ||
  fail "local: traffic missing"

# The filter each interface gets, as --print-config shows it.
A "$SENSOR" --config "$PSD/sensor-allow.yaml" --print-config >"$WORK/pc" ||
  fail "--print-config"
expect_line "$WORK/pc" '^#   va: \(port 80 or port 443\)$' "print-config filter"
A "$SENSOR" --config "$PSD/sensor-allow.yaml" --print-config 'udp' >"$WORK/pc2"
expect_line "$WORK/pc2" '^#   va: \(udp\) and \(\(port 80 or port 443\)\)$' \
  "a filter combined with the port filter"
ok "PacketStreamer's config files: allow, deny and all stream exactly their packets"
