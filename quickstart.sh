#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root (see README.md):
#   bash quickstart.sh demo   install what is missing, build, and stream
#                             live traffic from a sensor to a receiver
#                             into demo.pcap, then print a summary
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

# demo: a receiver on loopback writing demo.pcap, a sensor capturing all
# interfaces for a few seconds while this script makes some traffic.
export LD_LIBRARY_PATH="$PWD/build/lib/.libs"
out="$PWD/demo.pcap"
port=5555
# A fresh demo each time (the receiver never overwrites a capture, and
# its journal would remember the previous run's files).
rm -f "$out" "$PWD/.demo.pcap.state"
./build/tools/ps-receiver --listen 127.0.0.1:$port -w "$out" 2>receiver.log &
rpid=$!
sleep 0.5
kill -0 $rpid 2>/dev/null || { cat receiver.log >&2; exit 1; }
echo "== ps-sensor -i any --duration 5, streaming to 127.0.0.1:$port"
./build/tools/ps-sensor -i any --duration 5 --receiver 127.0.0.1:$port --name demo 2>sensor.log &
spid=$!
# Traffic to capture: DNS lookups and UDP datagrams on loopback, TCP
# connection attempts to a closed port. (The sensor's own stream is not captured.)
for i in $(seq 1 20); do
  getent hosts "host$i.example" >/dev/null 2>&1 || true
  echo "hello $i" >/dev/udp/127.0.0.1/9 2>/dev/null || true
  (exec 3<>/dev/tcp/127.0.0.1/1) 2>/dev/null || true
  sleep 0.2
done
wait $spid
kill -INT $rpid
wait $rpid
cat sensor.log receiver.log
echo
echo "== summary"
grep -h 'sent to\|sensor sessions' sensor.log receiver.log | sed 's/^[^ ]* //'
echo "output: $out ($(stat -c %s "$out") bytes)"
echo "open it with: wireshark $out   or   tcpdump -nn -r $out | head"
tcpdump -nn -r "$out" 2>/dev/null | head -5 || true
