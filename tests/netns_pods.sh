#!/usr/bin/env bash
# ps-sensor --netns all: three "pods" (namespaces with a veth into a
# bridge namespace, addresses only inside them), each with its own
# traffic, one of them on its own loopback. Each pod's packets arrive
# under its own interface block, identical (bytes, lengths, time stamps
# to the ns) to a tcpdump -w run inside that namespace. A fourth pod
# added during the capture is picked up within the rescan period; a pod
# deleted mid-capture is closed with a statistics block and exact
# counts. "all" is narrowed with --netns-match to this test's pods, so
# namespaces of tests running beside it are left alone. The filter
# (udp: no ICMP port-unreachable replies) applies in every namespace.
. "$top_srcdir/tests/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v tcpdump >/dev/null || skip "tcpdump is not installed"
T=$$
BR="psbr-$T"
NS=()
cleanup_ns() {
  for p in "${NS[@]}"; do ip netns del "$p" 2>/dev/null; done
  cleanup
}
ip netns add "$BR" || skip "cannot create network namespaces here"
NS+=("$BR")
trap cleanup_ns EXIT
ip -n "$BR" link set lo up
ip netns exec "$BR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$BR" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n "$BR" link add br0 type bridge || fail "bridge"
ip -n "$BR" link set br0 up

# mkpod N: namespace podN-$$, eth0 10.78.0.N/24 into the bridge.
mkpod() {
  local p="pod$1-$T"
  ip netns add "$p" || fail "netns $p"
  NS+=("$p")
  ip netns exec "$p" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$p" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip link add eth0 netns "$p" type veth peer name "v$1" netns "$BR" || fail "veth"
  ip -n "$BR" link set "v$1" master br0 up
  ip -n "$p" addr add "10.78.0.$1/24" dev eth0
  ip -n "$p" link set lo up
  ip -n "$p" link set eth0 up
  # The bridge knows each pod's address and floods nothing, so a pod's
  # interface sees only its own traffic.
  ip netns exec "$BR" bridge fdb replace "$(ip netns exec "$p" cat /sys/class/net/eth0/address)" \
    dev "v$1" master static || fail "fdb"
  ip netns exec "$BR" bridge link set dev "v$1" flood off mcast_flood off || fail "flood off"
}
# neigh A B: static neighbours both ways (no ARP in the captures).
neigh() {
  local ma mb
  ma=$(ip netns exec "pod$1-$T" cat /sys/class/net/eth0/address)
  mb=$(ip netns exec "pod$2-$T" cat /sys/class/net/eth0/address)
  ip -n "pod$1-$T" neigh replace "10.78.0.$2" lladdr "$mb" dev eth0 nud permanent
  ip -n "pod$2-$T" neigh replace "10.78.0.$1" lladdr "$ma" dev eth0 nud permanent
}
# dump NAME NS IFACE: tcpdump -w $WORK/NAME.pcap in NS, until stopped.
TD=()
dump() {
  ip netns exec "$2" tcpdump -n -U -s 262144 --time-stamp-precision=nano \
    -i "$3" -w "$WORK/$1.pcap" udp 2>"$WORK/$1.log" &
  TD+=("$!"); PIDS+=("$!")
  local i
  for i in $(seq 1 200); do
    grep -q "listening on" "$WORK/$1.log" && return 0; sleep 0.05
  done
  cat "$WORK/$1.log"; fail "tcpdump in $2 did not start"
}
stopdump() { kill -INT "$1"; wait "$1" 2>/dev/null; }
send() { # POD DEST COUNT: UDP datagrams from pod POD; prints their bytes
  ip netns exec "pod$1-$T" "$top_builddir/tests/udpsend" "$2" 9999 "$3" || fail "udpsend"
}

for n in 1 2 3; do mkpod $n; done
neigh 1 2; neigh 1 3; neigh 2 3
sleep 0.5 # the links' own start-up is over before the captures begin

start_receiver "$WORK/r.log" -w "$WORK/out.pcapng"
for n in 1 2 3; do dump "pod$n" "pod$n-$T" eth0; done
dump pod2lo "pod2-$T" lo

"$SENSOR" --netns all --netns-match "netns=pod[0-9]-$T" --netns-loopback \
  --netns-rescan 1 --node-name node-t --receiver "127.0.0.1:$RPORT" --name S \
  udp 2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
wait_log "$WORK/r.log" "interface [0-9]+ pod[123]-$T/(eth0|lo): link type" 6 "the sensor did not announce the pods' 6 interfaces"
sleep 0.3

b12=$(send 1 10.78.0.2 300)
b31=$(send 3 10.78.0.1 200)
b2lo=$(send 2 127.0.0.1 100)

# A fourth pod, during the capture: announced within the rescan period,
# and its first packets after that arrive.
mkpod 4; neigh 1 4
wait_log "$WORK/r.log" "interface [0-9]+ pod4-$T/eth0: link type" 1 "the fourth pod was not picked up"
dump pod4 "pod4-$T" eth0
sleep 0.3
b41=$(send 4 10.78.0.1 50)

# The third pod is deleted mid-capture: closed with its final counters.
sleep 1
stopdump "${TD[2]}"
ip netns del "pod3-$T"
wait_log "$WORK/s.log" "pod3-$T/eth0: its network namespace is gone: closed after 200 packets" 1 "pod3 was not closed with its 200 packets"

sleep 1.5 # more than the sensor's batching delay
for i in 0 1 3 4; do stopdump "${TD[$i]}"; done
kill -INT "$SPID"
wait "$SPID" || { cat "$WORK/s.log" >&2; fail "sensor exited non-zero"; }
stop_receiver
cat "$WORK/s.log" "$WORK/r.log"

# Each pod's packets, and only those, under its own interface.
for c in "pod1 pod1-$T/eth0" "pod2 pod2-$T/eth0" "pod3 pod3-$T/eth0" \
         "pod2lo pod2-$T/lo" "pod4 pod4-$T/eth0"; do
  set -- $c
  out=$("$PCAPCMP" --iface "S/$2" "$WORK/$1.pcap" "$WORK/out.pcapng") ||
    fail "S/$2 differs from tcpdump in the namespace: $out"
  echo "S/$2: $out"
done
n1=$("$PCAPCMP" --summary "$WORK/pod1.pcap"); n2=$("$PCAPCMP" --summary "$WORK/pod2.pcap")
n3=$("$PCAPCMP" --summary "$WORK/pod3.pcap"); nlo=$("$PCAPCMP" --summary "$WORK/pod2lo.pcap")
n4=$("$PCAPCMP" --summary "$WORK/pod4.pcap")
# The traffic each namespace saw: exactly what was sent there.
[ "$n1" = "550 550 0 $((b12 + b31 + b41))" ] || fail "pod1 saw '$n1'"
[ "$n2" = "300 300 0 $b12" ] || fail "pod2 saw '$n2'"
[ "$n3" = "200 200 0 $b31" ] || fail "pod3 saw '$n3'"
[ "$nlo" = "100 100 0 $b2lo" ] || fail "pod2 lo saw '$nlo'"
[ "$n4" = "50 50 0 $b41" ] || fail "pod4 saw '$n4'"
"$PCAPCMP" --list "$WORK/out.pcapng" >"$WORK/list"
cat "$WORK/list"
# The others' loopbacks are empty; pod3's statistics block has its count.
for p in 1 3 4; do
  id=$(sed -n "s|^idb \([0-9]*\) S/pod$p-$T/lo .*|\1|p" "$WORK/list")
  [ -n "$id" ] || fail "no interface block for pod$p's lo"
  grep -q "^epb $id 0$" "$WORK/list" || fail "pod$p's lo has packets"
done
id3=$(sed -n "s|^idb \([0-9]*\) S/pod3-$T/eth0 .*|\1|p" "$WORK/list")
expect_line "$WORK/list" "^isb $id3 ifrecv 200 ifdrop 0 osdrop 0 usrdeliv 200$" "pod3's statistics block"
# Identity in the blocks: description and the namespace's inode.
tshark -r "$WORK/out.pcapng" -T fields -e frame.interface_name \
  -e frame.interface_description 2>/dev/null | sort | uniq -c | tee "$WORK/tshark"
ino1=$(stat -L -c %i "/run/netns/pod1-$T")
expect_line "$WORK/tshark" "S/pod1-$T/eth0.interface eth0 of network namespace $ino1 /run/netns/pod1-$T; interface pod1-$T/eth0 of sensor S" "pod1's description"
grep -aq "netns.inode=$ino1" "$WORK/out.pcapng" || fail "no netns.inode option for pod1"
grep -aq "node=node-t" "$WORK/out.pcapng" || fail "no node option"
expect_line "$WORK/r.log" "sensor S interface [0-9]+ pod1-$T/eth0: interface eth0 of network namespace $ino1 .*netns.inode=$ino1; netns.name=pod1-$T; node=node-t" "receiver log of the identity"
! grep -q "psbr-$T" "$WORK/r.log" || fail "the bridge namespace was captured (not matched)"
ok "netns all: 5 interfaces identical to tcpdump in each namespace, pod4 picked up, pod3 closed with 200"
