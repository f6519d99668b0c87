#!/usr/bin/env bash
# Pod identity from the container runtime's own state: a fixture runtime
# directory in containerd's layout (k8s.io/ID/config.json, the sandbox's
# annotations and the network namespace path of a namespace made here).
# The interface block is named SENSOR/NAMESPACE/NAME/IFACE and carries
# the pod's namespace, name and UID. Hostile bundles beside it (huge,
# malformed, a path outside /proc and /run, a namespace that is gone)
# are logged once each and the pod keeps streaming. --netns-match on a
# label selects the pod and leaves the other namespace out.
. "$top_srcdir/tests/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
netns_pair # $NSA (va 10.77.0.1) <-> $NSB (vb 10.77.0.2)

RT="$WORK/rt"
SB=4a5b6c7d8e9f0011223344556677889900aabbccddeeff001122334455667788
mkdir -p "$RT/k8s.io/$SB" "$RT/k8s.io/ctr1" "$RT/k8s.io/huge" \
  "$RT/k8s.io/bad" "$RT/k8s.io/outside" "$RT/k8s.io/gone"
cat >"$RT/k8s.io/$SB/config.json" <<EOF
{"ociVersion": "1.1.0",
 "linux": {"namespaces": [{"type": "pid"},
   {"type": "network", "path": "/run/netns/$NSA"}]},
 "annotations": {
   "io.kubernetes.cri.container-type": "sandbox",
   "io.kubernetes.cri.sandbox-id": "$SB",
   "io.kubernetes.cri.sandbox-name": "web-1",
   "io.kubernetes.cri.sandbox-namespace": "payments",
   "io.kubernetes.cri.sandbox-uid": "8f0e2b4c-1d2e-4f60-a1b2-c3d4e5f60718",
   "io.kubernetes.cri-o.Labels": "{\"team\": \"payments\", \"app\": \"web\"}"}}
EOF
cat >"$RT/k8s.io/ctr1/config.json" <<EOF
{"linux": {"namespaces": [{"type": "network", "path": "/run/netns/$NSA"}]},
 "annotations": {"io.kubernetes.cri.container-type": "container",
   "io.kubernetes.cri.sandbox-id": "$SB",
   "io.kubernetes.cri.container-name": "nginx"}}
EOF
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$RT/k8s.io/huge/config.json"
printf '{"linux": {"namespaces": [{"type": "network", "path": ' >"$RT/k8s.io/bad/config.json"
cat >"$RT/k8s.io/outside/config.json" <<EOF
{"linux": {"namespaces": [{"type": "network", "path": "/etc/../run/netns/$NSB"}]},
 "annotations": {"io.kubernetes.cri.container-type": "sandbox",
   "io.kubernetes.cri.sandbox-name": "evil", "io.kubernetes.cri.sandbox-namespace": "x"}}
EOF
cat >"$RT/k8s.io/gone/config.json" <<EOF
{"linux": {"namespaces": [{"type": "network", "path": "/run/netns/gone-$$"}]},
 "annotations": {"io.kubernetes.cri.container-type": "sandbox",
   "io.kubernetes.cri.sandbox-name": "gone", "io.kubernetes.cri.sandbox-namespace": "x"}}
EOF

start_receiver "$WORK/r.log" -w "$WORK/out.pcapng"
"$SENSOR" --netns all --netns-match team=payments --runtime-root "$RT" \
  --netns-rescan 1 --node-name node-7 --receiver "127.0.0.1:$RPORT" --name S \
  udp 2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
wait_log "$WORK/r.log" "interface [0-9]+ payments/web-1/va: link type" 1 "the pod's interface was not announced"
sleep 0.3
bytes=$(A "$top_builddir/tests/udpsend" 10.77.0.2 9999 120) || fail "udpsend"
sleep 2.5 # two rescans over the hostile bundles: each is logged once
kill -INT "$SPID"
wait "$SPID" || { cat "$WORK/s.log" >&2; fail "sensor exited non-zero"; }
stop_receiver
cat "$WORK/s.log" "$WORK/r.log"

got=$("$PCAPCMP" --summary "$WORK/out.pcapng") || fail "read output"
[ "$got" = "120 120 0 $bytes" ] || fail "captured '$got', sent 120 packets of $bytes bytes"
"$PCAPCMP" --list "$WORK/out.pcapng" >"$WORK/list"
cat "$WORK/list"
[ "$(grep -c '^idb ' "$WORK/list")" -eq 1 ] || fail "more than the pod's one interface (lo is off; $NSB has no label)"
expect_line "$WORK/list" "^idb 0 S/payments/web-1/va " "IDB name SENSOR/NAMESPACE/NAME/IFACE"
tshark -r "$WORK/out.pcapng" -T fields -e frame.interface_name \
  -e frame.interface_description 2>/dev/null | sort | uniq -c | tee "$WORK/tshark"
ino=$(stat -L -c %i "/run/netns/$NSA")
expect_line "$WORK/tshark" "120 S/payments/web-1/va.interface va of pod payments/web-1 \(network namespace $ino\)" "description"
for kv in "pod.namespace=payments" "pod.name=web-1" \
  "pod.uid=8f0e2b4c-1d2e-4f60-a1b2-c3d4e5f60718" "netns.inode=$ino" \
  "container.id=$SB,ctr1" "node=node-7"; do
  grep -aqF "$kv" "$WORK/out.pcapng" || fail "no option $kv in the interface block"
done
# Each hostile bundle: one clear line, once (two rescans happened).
for w in "huge/config.json: 2097152 bytes, above the limit of 1048576: not read" \
  "bad/config.json: malformed JSON at line 1" \
  "outside/config.json: network namespace path '/etc/../run/netns/$NSB' is outside /proc and /run: ignored" \
  "gone/config.json: network namespace /run/netns/gone-$$ is not there"; do
  [ "$(grep -cF "$w" "$WORK/s.log")" -eq 1 ] || fail "expected one log line '$w'"
done
! grep -q "evil" "$WORK/r.log" || fail "the bundle with a path outside /run named a workload"
ok "runtime identity: payments/web-1 with its UID and containers, 120 packets; hostile bundles logged once each"
