#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root (see README.md):
#   bash quickstart.sh demo   install what is missing, build, and stream
#                             the loopback traffic the demo makes from a
#                             sensor to a receiver into demo.pcap, then
#                             print a summary
#   bash quickstart.sh test   install what is missing, build, and run the
#                             whole test suite (make check)
# The packages come from packages.txt ([test]), the list .ci/run uses too.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-}
case "$mode" in demo|test) ;; *) echo "usage: bash quickstart.sh demo|test" >&2; exit 2 ;; esac

pkgs=$(awk '/^\[/ {sec = $0; next} {sub(/#.*/, "")} NF && sec == "[test]" {print $1}' packages.txt)
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "quickstart: run as root to install: $(echo $missing)" >&2; exit 1; }
  echo "== installing: $(echo $missing)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

echo "== building"
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure --enable-werror >/dev/null
make -j"$(nproc)" >/dev/null
cd ..

if [ "$mode" = test ]; then
  echo "== running the test suite"
  rc=0
  make -C build -j"$(nproc)" check || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "== failures:"
    for f in build/tests/*.log; do grep -qE '^(FAIL|ERROR)' "$f" && { echo "--- $f"; tail -20 "$f"; }; done
  fi
  grep -h '^# ' build/test-suite.log | head -8
  # A test that cannot run here says why (not root, no namespaces, ...).
  for f in build/tests/*.log; do
    grep -q '^SKIP ' "$f" 2>/dev/null || continue
    echo "skipped: $(basename "$f" .log): $(grep -h '^SKIP: ' "$f" | head -n1 | cut -c7-)"
  done
  exit "$rc"
fi

# demo: a receiver on loopback writing demo.pcap; a sensor capturing the
# loopback interface for 5 s while this script makes traffic between
# loopback addresses only: UDP datagrams and small TCP exchanges with a
# listener it starts itself. Nothing leaves the machine, no name is
# looked up.
export LD_LIBRARY_PATH="$PWD/build/lib/.libs"
out="$PWD/demo.pcap"
port=5555
rounds=20
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
# A fresh demo each time (the receiver never overwrites a capture, and
# its journal would remember the previous run's files).
rm -f "$out" "$PWD/.demo.pcap.state"

# The peer: a TCP listener that answers each line, and a UDP socket that
# takes the datagrams, on free ports of 127.0.0.1.
python3 -u -c '
import socket, threading
t = socket.socket()
t.bind(("127.0.0.1", 0))
t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1])
def drain():
    while True:
        u.recv(65536)
threading.Thread(target=drain, daemon=True).start()
while True:
    c, _ = t.accept()
    with c:
        c.sendall(b"hello back, " + c.recv(1024))
' >peer.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do read -r tport uport _ <peer.log 2>/dev/null && break; sleep 0.05; done
[ -n "${uport:-}" ] || { cat peer.log >&2; echo "quickstart: the demo's listener did not start" >&2; exit 1; }

./build/tools/ps-receiver --listen 127.0.0.1:$port -w "$out" 2>receiver.log &
rpid=$!
pids+=($rpid)
sleep 0.5
kill -0 $rpid 2>/dev/null || { cat receiver.log >&2; exit 1; }
filter="udp port $uport or tcp port $tport"
echo "== ps-sensor -i lo --duration 5 '$filter', streaming to 127.0.0.1:$port"
./build/tools/ps-sensor -i lo --duration 5 --receiver 127.0.0.1:$port --name demo $filter 2>sensor.log &
spid=$!
pids+=($spid)
# Traffic only once the capture runs (the receiver logs the interface).
for _ in $(seq 1 100); do grep -q "interface 0 lo" receiver.log && break; sleep 0.05; done
sleep 0.3
answers=0
for i in $(seq 1 $rounds); do
  echo "hello $i" >/dev/udp/127.0.0.1/$uport
  exec 3<>/dev/tcp/127.0.0.1/$tport
  echo "hello $i" >&3
  read -r reply <&3 && answers=$((answers + 1))
  exec 3>&-
  sleep 0.15
done
echo "made $rounds UDP datagrams to 127.0.0.1:$uport and $rounds TCP exchanges with 127.0.0.1:$tport ($answers answered, e.g. '$reply')"
wait $spid || { cat sensor.log >&2; exit 1; }
kill -INT $rpid
wait $rpid || { cat receiver.log >&2; exit 1; }
cat sensor.log receiver.log
echo
echo "== summary"
grep -h 'sent to\|sensor sessions' sensor.log receiver.log | sed 's/^[^ ]* //'
echo "output: $out ($(stat -c %s "$out") bytes)"
# The capture must hold what the demo made: every datagram, and the
# opening SYN of every TCP connection.
udp=$(tcpdump -nn -r "$out" "udp and dst port $uport" 2>/dev/null | wc -l)
syn=$(tcpdump -nn -r "$out" "tcp dst port $tport and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn" 2>/dev/null | wc -l)
tcp=$(tcpdump -nn -r "$out" "tcp port $tport" 2>/dev/null | wc -l)
if [ "$udp" -ne "$rounds" ] || [ "$syn" -ne "$rounds" ]; then
  echo "quickstart: demo.pcap holds $udp of $rounds UDP datagrams and $syn of $rounds TCP connections" >&2
  exit 1
fi
echo "check: demo.pcap holds all $rounds UDP datagrams and all $rounds TCP connections ($tcp TCP segments)"
echo "open it with: wireshark $out   or   tcpdump -nn -r $out | head"
tcpdump -nn -r "$out" 2>/dev/null | head -5 || true
