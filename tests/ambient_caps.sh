#!/usr/bin/env bash
# The sensor as ps-sensor.service runs it: an ordinary user (nobody here)
# with only CAP_NET_RAW and CAP_NET_ADMIN, ambient (setpriv does what
# systemd's AmbientCapabilities= does). It must capture exactly what is
# sent, and hold no capability once the capture is open: it handles the
# network as an ordinary user, as a sensor started as root does after -Z.
. "$top_srcdir/tests/lib.sh"
netns_pair
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
id nobody >/dev/null 2>&1 || skip "no user nobody"

start_receiver_in "$NSB" "$WORK/r.log" --listen 10.77.0.2:0 -w "$WORK/caps.pcap"
caps=+net_raw,+net_admin
ip netns exec "$NSA" setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
  --inh-caps="$caps" --ambient-caps="$caps" --bounding-set=-all,"$caps" \
  "$SENSOR" -i va --receiver "10.77.0.2:$RPORT" --name caps udp 2>"$WORK/s.log" &
SPID=$!; PIDS+=("$SPID")
wait_log "$WORK/r.log" "interface 0 va" 1 "the sensor's interface"
sleep 0.3 # the capture is active before the interface is announced

# The sensor process (the libtool wrapper execs it: same pid).
status=$(cat "/proc/$SPID/status") || fail "no sensor process"
grep '^\(Uid\|Cap\)' <<<"$status"
grep -Eq '^Uid:[[:space:]]+'"$(id -u nobody)"'[[:space:]]' <<<"$status" ||
  fail "the sensor does not run as nobody"
for set in CapInh CapPrm CapEff CapAmb; do
  grep -Eq "^$set:[[:space:]]+0+$" <<<"$status" ||
    fail "$set of the running sensor is not empty: $(grep "^$set:" <<<"$status")"
done

COUNT=200
bytes=$(A "$top_builddir/tests/udpsend" 10.77.0.2 9999 $COUNT) || fail "udpsend"
sleep 1.5 # more than the sensor's batching delay
kill -INT "$SPID"
wait "$SPID" || { cat "$WORK/s.log" >&2; fail "sensor exited non-zero"; }
stop_receiver
cat "$WORK/s.log"
expect_line "$WORK/s.log" "dropped capabilities \(running as uid $(id -u nobody)\)" "sensor log"
read -r n udp tcp total <<<"$("$PCAPCMP" --summary "$WORK/caps.pcap")"
[ "$n" -eq "$COUNT" ] && [ "$udp" -eq "$COUNT" ] ||
  fail "captured $n packets ($udp UDP), sent $COUNT"
[ "$total" -eq "$bytes" ] || fail "captured $total bytes, sent $bytes"
ok "as nobody with ambient CAP_NET_RAW/CAP_NET_ADMIN: $COUNT packets, $bytes bytes, no capability left"
