#!/usr/bin/env bash
# Hostile and odd PCAP-over-IP clients: 200 at once against max-clients,
# one that sends garbage, and clients that connect and disconnect (some
# with a reset) in a loop during a stream. None of them costs the file,
# the sensors or a well-behaved tshark client a packet.
. "$top_srcdir/tests/lib.sh"
command -v tshark >/dev/null || skip "tshark is not installed"
command -v mergecap >/dev/null || skip "mergecap is not installed"
PEER="$top_srcdir/tests/poip_peer.py"
mix AFS 20000 5

poip_port() {
  sed -n 's/.*pcap-over-ip listening on [^ ]*:\([0-9][0-9]*\) (.*/\1/p' "$1" | sed -n "${2}p"
}
wait_exit() {
  local i
  for i in $(seq 1 600); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; return 0; }
    sleep 0.05
  done
  fail "$2 did not end"
}

start_receiver "$WORK/r.log" -w "$WORK/file.pcap" \
  --pcap-over-ip ":0,format=pcapng,max-clients=150,queue=64m" \
  --pcap-over-ip ":0,queue=64k"
P=$(poip_port "$WORK/r.log" 1) P2=$(poip_port "$WORK/r.log" 2)
tshark -q -i "TCP@127.0.0.1:$P" -F pcapng -w "$WORK/t.pcapng" >/dev/null 2>"$WORK/t.log" &
T=$!; PIDS+=("$T")
wait_log "$WORK/r.log" "client .* connected" 1 "tshark client"

# 1. 200 at once: with tshark, 150 get a stream (a pcapng header at
# once), the other 51 are closed at once, and the log says why.
out=$(python3 "$PEER" crowd "$P" 200 3) || fail crowd
[ "$out" = "served 149 refused 51" ] || fail "200 clients, max-clients=150: $out"
expect_line "$WORK/r.log" "refused client 127.0.0.1:[0-9]+: at the limit of 150 clients \(max-clients\)" "refusal logged"
wait_log "$WORK/r.log" "more clients refused|refused client" 1 "refusals"
ok "max-clients=150: $out"

# 2. During a stream: a client that writes garbage at us, 8 s of
# clients connecting and disconnecting, and one that reads at 200 KB/s
# (a slow consumer on the edge of its queue must not log a line per
# packet: at most one "does not keep up" per 10 s).
python3 "$PEER" slowread "$P2" 200000 8 >"$WORK/sl.out" & SL=$!
python3 "$PEER" garbage "$P" 8 >"$WORK/g.out" & G=$!
python3 "$PEER" churn "$P" 8 >"$WORK/c.out" & C=$!
sleep 1
for i in 1 2 3; do
  "$SENSOR" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" --name "s$i" || fail "sensor s$i"
  sleep 1
done
wait "$G" || fail "garbage client"
wait "$C" || fail "churn"
wait "$SL" || fail "slow reader"
cat "$WORK/g.out" "$WORK/c.out" "$WORK/sl.out"
nslow=$(grep -c "pcap-over-ip 127.0.0.1:$P2: client .* does not keep up" "$WORK/r.log")
[ "$nslow" -ge 1 ] && [ "$nslow" -le 2 ] || fail "slow client: $nslow 'does not keep up' lines in about 8 s"
read -r _ _ _ gbytes _ <"$WORK/g.out"
[ "$gbytes" -gt 1000000 ] || fail "the garbage client got only $gbytes bytes of its stream"
read -r _ nchurn _ <"$WORK/c.out"
[ "$nchurn" -ge 20 ] || fail "only $nchurn churn connections"
stop_receiver
wait_exit "$T" tshark
for i in 1 2 3; do
  res=$("$PCAPCMP" --iface "s$i/${AFS##*/}" "$AFS" "$WORK/t.pcapng") || fail "tshark, s$i: $res"
  echo "ok: tshark client, s$i: $res"
done
mergecap -F pcap -a -w "$WORK/three.pcap" "$AFS" "$AFS" "$AFS" || fail mergecap
res=$("$PCAPCMP" "$WORK/three.pcap" "$WORK/file.pcap") || fail "file: $res"
expect_line "$WORK/r.log" "3 sensor sessions \(0 failed\), 60000 packets" "sensors unaffected"
expect_line "$WORK/r.log" "pcap-over-ip 127.0.0.1:$P: [0-9]+ clients served, 51 refused at max-clients" "totals"
ok "garbage and $nchurn churning clients cost nobody a packet: file $res"

# Out of descriptors: a client waiting in the listener's backlog that
# accept() cannot take (EMFILE) does not make the receiver's loop spin
# on it; the listener rests a second at a time, and takes the client
# once descriptors are free again.
command -v prlimit >/dev/null || skip "prlimit (util-linux) is not installed"
start_receiver "$WORK/r2.log" --pcap-over-ip ":0"
P=$(poip_port "$WORK/r2.log" 1)
# The limit at the lowest free descriptor number: no new one can open.
nfd=$(ls /proc/"$RPID"/fd | sort -n | awk '$1 != NR - 1 {print NR - 1; f = 1; exit} END {if (!f) print NR}')
soft=$(prlimit --pid "$RPID" --nofile --output SOFT --noheadings)
prlimit --pid "$RPID" --nofile="$nfd:" || fail "prlimit"
python3 -c 'import socket,sys,time; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); time.sleep(60)' "$P" &
HOLD=$!; PIDS+=("$HOLD")
wait_log "$WORK/r2.log" "pcap-over-ip 127.0.0.1:$P: accept: Too many open files" 1 "accept failing"
# CPU time (clock ticks) the receiver spends in 2 s out of descriptors.
cpu() { awk '{print $14 + $15}' /proc/"$RPID"/stat; }
c0=$(cpu); sleep 2; c1=$(cpu)
hz=$(getconf CLK_TCK)
echo "count: out of descriptors, the receiver used $((c1 - c0)) of $((2 * hz)) clock ticks in 2 s"
[ $((c1 - c0)) -lt $((hz / 2)) ] || fail "the receiver used $((c1 - c0)) clock ticks of CPU in 2 s out of descriptors: its loop spins on the backlog"
expect_line "$WORK/r2.log" "pcap-over-ip 127.0.0.1:$P: accept: Too many open files; not accepting for 1 s \(raise the open files limit, ulimit -n\)" "EMFILE logged, the fix named"
prlimit --pid "$RPID" --nofile="$soft:" || fail "prlimit"
wait_log "$WORK/r2.log" "pcap-over-ip 127.0.0.1:$P: client 127.0.0.1:[0-9]+ connected" 1 "the waiting client taken once descriptors are free"
kill "$HOLD"; wait "$HOLD" 2>/dev/null
stop_receiver
ok "out of descriptors: no spin ($((c1 - c0)) ticks in 2 s), the client taken afterwards"
