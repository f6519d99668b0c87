#!/usr/bin/env bash
# PCAP-over-IP: real consumers (tshark -i TCP@) and a test listener get
# the packets live, beside the file output, each stream a valid capture.
. "$top_srcdir/tests/lib.sh"
command -v tshark >/dev/null || skip "tshark is not installed"
command -v editcap >/dev/null || skip "editcap is not installed"
PEER="$top_srcdir/tests/poip_peer.py"
mix AFS 3000

# poip_port LOG N: the port of the Nth --pcap-over-ip listener.
poip_port() {
  sed -n 's/.*pcap-over-ip listening on [^ ]*:\([0-9][0-9]*\) (.*/\1/p' "$1" | sed -n "${2}p"
}
# tshark_client PORT OUT FORMAT: a tshark reading TCP@ into OUT.
tshark_client() {
  tshark -q -i "TCP@127.0.0.1:$1" -F "$3" -w "$2" >/dev/null 2>"$2.log" &
  TPID=$!
  PIDS+=("$TPID")
}
# wait_exit PID WHAT: waits up to 30 s for PID to end (and reaps it).
wait_exit() {
  local i
  for i in $(seq 1 600); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; return 0; }
    sleep 0.05
  done
  fail "$2 did not end"
}

# 1. Three sensors stream real captures; three listeners: classic pcap
# (micro) of sensor s1 only, pcapng of all, pcap-ns of sensor nano.
start_receiver "$WORK/r.log" -w "$WORK/all.pcapng" \
  --pcap-over-ip ":0,sensor=s1" --pcap-over-ip "127.0.0.1:0,format=pcapng" \
  --pcap-over-ip ":0,format=pcap-ns,sensor=n*"
P1=$(poip_port "$WORK/r.log" 1) P2=$(poip_port "$WORK/r.log" 2) P3=$(poip_port "$WORK/r.log" 3)
[ -n "$P1" ] && [ -n "$P2" ] && [ -n "$P3" ] || { cat "$WORK/r.log"; fail "no PCAP-over-IP ports logged"; }
tshark_client "$P1" "$WORK/t1.pcap" pcap; T1=$TPID
tshark_client "$P2" "$WORK/t2.pcapng" pcapng; T2=$TPID
tshark_client "$P3" "$WORK/t3.pcapng" pcapng; T3=$TPID
wait_log "$WORK/r.log" "client 127.0.0.1:[0-9]+ connected" 3 "three tshark clients"
files=("$DATA/resp_1_benchmark.pcap" "$DATA/of13_ericsson.pcapng" "$DATA/tcp-handshake-nano.pcap")
names=(s1 s2 nano)
for i in 0 1 2; do
  "$SENSOR" -q -r "${files[$i]}" --receiver "127.0.0.1:$RPORT" --name "${names[$i]}" \
    2>"$WORK/s$i.log" &
  pids[$i]=$!
done
for i in 0 1 2; do wait "${pids[$i]}" || { cat "$WORK/s$i.log"; fail "sensor $i"; }; done
# A fourth sensor, of another link type, later: the s1 stream is
# LINUX_SLL, so an s1 of Ethernet is skipped for it (and counted).
"$SENSOR" -q -r "$DATA/pptp.pcap" --receiver "127.0.0.1:$RPORT" --name s1 || fail "sensor s1 (pptp)"
stop_receiver
wait_exit "$T1" "tshark 1"; wait_exit "$T2" "tshark 2"; wait_exit "$T3" "tshark 3"
res=$("$PCAPCMP" "${files[0]}" "$WORK/t1.pcap") || fail "pcap stream of s1: $res"
ok "tshark TCP@ pcap stream, sensor=s1: $res"
expect_line "$WORK/r.log" "client 127.0.0.1:[0-9]+ closed: 150 packets sent, 0 dropped \(queue full\), 23 skipped \(not in its pcap stream\)" "s1 client counts"
expect_line "$WORK/r.log" "sensor s1 interface pptp.pcap has link type EN10MB \(1\), which a client's pcap stream of another link type cannot hold" "link type skip logged"
for i in 0 1 2; do
  f=${files[$i]##*/}
  res=$("$PCAPCMP" --iface "${names[$i]}/$f" "${files[$i]}" "$WORK/t2.pcapng") || fail "pcapng ${names[$i]}: $res"
  res2=$("$PCAPCMP" --iface "${names[$i]}/$f" "${files[$i]}" "$WORK/all.pcapng") || fail "file ${names[$i]}: $res2"
  ok "pcapng stream and file, ${names[$i]}/$f: $res"
done
tshark -r "$WORK/t2.pcapng" -T fields -e frame.interface_name | sort | uniq -c >"$WORK/names"
grep -Eq '^ *150 s1/resp_1_benchmark.pcap$' "$WORK/names" &&
  grep -Eq '^ *174 s2/of13_ericsson.pcapng$' "$WORK/names" &&
  grep -Eq '^ *3 nano/tcp-handshake-nano.pcap$' "$WORK/names" &&
  grep -Eq '^ *23 s1/pptp.pcap$' "$WORK/names" || { cat "$WORK/names"; fail "tshark interface names"; }
ok "tshark reads interface names SENSOR/IFACE from the pcapng stream"
res=$("$PCAPCMP" "${files[2]}" "$WORK/t3.pcapng") || fail "pcap-ns stream: $res"
ok "pcap-ns stream keeps nanoseconds: $res"

# 2. Classic pcap in microseconds truncates a nanosecond source, and
# nothing else changes (editcap's conversion is the oracle).
editcap -F pcap "$DATA/tcp-handshake-nano.pcap" "$WORK/nano-us.pcap" || fail editcap
start_receiver "$WORK/r2.log" --pcap-over-ip ":0"
P=$(poip_port "$WORK/r2.log" 1)
tshark_client "$P" "$WORK/us.pcap" pcap; T=$TPID
wait_log "$WORK/r2.log" "client .* connected" 1 "tshark client"
"$SENSOR" -q -r "$DATA/tcp-handshake-nano.pcap" --receiver "127.0.0.1:$RPORT" || fail sensor
stop_receiver
wait_exit "$T" tshark
res=$("$PCAPCMP" "$WORK/nano-us.pcap" "$WORK/us.pcap") || fail "microsecond stream: $res"
ok "no -w: a microsecond pcap stream of a nanosecond source: $res"
expect_line "$WORK/r2.log" "writing no file \(PCAP-over-IP only\)" "no file output"

# 3. filter= and allow=.
start_receiver "$WORK/r3.log" -w "$WORK/f.pcap" --pcap-over-ip ":0,filter=udp" \
  --pcap-over-ip ":0,allow=10.0.0.0/8,192.168.0.0/16"
P=$(poip_port "$WORK/r3.log" 1) PA=$(poip_port "$WORK/r3.log" 2)
tshark_client "$P" "$WORK/udp.pcap" pcap; T=$TPID
wait_log "$WORK/r3.log" "client .* connected" 1 "tshark client"
out=$(python3 "$PEER" crowd "$PA" 3 2) || fail "crowd"
[ "$out" = "served 0 refused 3" ] || fail "allow=: $out"
expect_line "$WORK/r3.log" "refused client 127.0.0.1:[0-9]+: not in allow=" "allow refusal logged"
"$SENSOR" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" || fail sensor
stop_receiver
wait_exit "$T" tshark
read -r _ udp _ _ < <("$PCAPCMP" --summary "$AFS")
tshark -r "$AFS" -Y udp -w "$WORK/udp-exp.pcap" -F pcap 2>/dev/null || fail "tshark -Y udp"
res=$("$PCAPCMP" "$WORK/udp-exp.pcap" "$WORK/udp.pcap") || fail "filter=udp: $res"
[ "${res%% *}" -eq "$udp" ] || fail "filter=udp: $res, expected $udp"
res=$("$PCAPCMP" "$AFS" "$WORK/f.pcap") || fail "file beside the filter: $res"
ok "filter=udp sent the $udp UDP packets; allow= refused loopback"

# 4. Connection out to a test listener (like Arkime's server mode); the
# listener restarts and gets a new stream with a fresh header.
mix BFS 2000 2
python3 "$PEER" listen 0 "$WORK/l.port" "$WORK/l1.pcap" & L1=$!
PIDS+=("$L1")
for _ in $(seq 1 100); do [ -s "$WORK/l.port" ] && break; sleep 0.05; done
LP=$(cat "$WORK/l.port")
start_receiver "$WORK/r4.log" -w "$WORK/c.pcap" --pcap-over-ip-connect "127.0.0.1:$LP"
wait_log "$WORK/r4.log" "pcap-over-ip to 127.0.0.1:$LP: client 127.0.0.1:$LP connected" 1 "connect out"
"$SENSOR" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" || fail sensor
want=$(stat -c %s "$AFS")
for _ in $(seq 1 600); do [ "$(stat -c %s "$WORK/l1.pcap")" -ge "$want" ] && break; sleep 0.05; done
kill "$L1"; wait "$L1" 2>/dev/null
wait_log "$WORK/r4.log" "client 127.0.0.1:$LP disconnected: 3000 packets sent" 1 "listener gone"
rm -f "$WORK/l.port"
python3 "$PEER" listen "$LP" "$WORK/l.port" "$WORK/l2.pcap" & L2=$!
PIDS+=("$L2")
wait_log "$WORK/r4.log" "client 127.0.0.1:$LP connected" 2 "reconnect"
"$SENSOR" -q -r "$BFS" --receiver "127.0.0.1:$RPORT" || fail sensor
stop_receiver
wait_exit "$L2" "test listener"
res=$("$PCAPCMP" "$AFS" "$WORK/l1.pcap") || fail "first stream: $res"
res2=$("$PCAPCMP" "$BFS" "$WORK/l2.pcap") || fail "second stream: $res2"
ok "connect-out: first stream $res; after the restart a new stream: $res2"

# 4b. A consumer that closes each connection at once gets them at the
# growing back-off (500 ms doubling), not every 500 ms for ever.
rm -f "$WORK/rf.port"
python3 "$PEER" refuse "$WORK/rf.port" 5 >"$WORK/rf.out" & RF=$!
PIDS+=("$RF")
for _ in $(seq 1 100); do [ -s "$WORK/rf.port" ] && break; sleep 0.05; done
start_receiver "$WORK/r4b.log" -w "$WORK/c4b.pcap" --pcap-over-ip-connect "127.0.0.1:$(cat "$WORK/rf.port")"
wait_exit "$RF" "refusing consumer"
stop_receiver
read -r _ g1 g2 g3 g4 <"$WORK/rf.out"
echo "count: reconnect gaps to a consumer closing at once: $g1 $g2 $g3 $g4 s"
# (Lower bounds only: a loaded machine makes the gaps longer, not shorter.)
awk -v g="$g4" 'BEGIN {exit !(g >= 3.0)}' || fail "the 4th reconnect came $g4 s after the 3rd (gaps $g1 $g2 $g3 $g4): the back-off does not grow to 4 s"
ok "connect-out: a consumer that closes at once: back-off grows ($g1 $g2 $g3 $g4 s)"

# 5. TLS, when asked: a listener with tls-cert=/tls-key= and a
# connection out with tls-ca=, each to a Python TLS peer.
if command -v certtool >/dev/null; then
  (
    cd "$WORK" || exit 1
    certtool --generate-privkey --key-type=ecdsa --outfile ca.key 2>/dev/null &&
      printf '%s\n' 'cn = "poip CA"' ca cert_signing_key 'expiration_days = 2' >tmpl &&
      certtool --generate-self-signed --load-privkey ca.key --template tmpl --outfile ca.pem 2>/dev/null &&
      certtool --generate-privkey --key-type=ecdsa --outfile srv.key 2>/dev/null &&
      printf '%s\n' 'cn = "127.0.0.1"' 'ip_address = "127.0.0.1"' tls_www_server signing_key 'expiration_days = 2' >tmpl &&
      certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template tmpl --outfile srv.pem 2>/dev/null
  ) || fail "certificates"
  python3 "$PEER" tls-listen "$WORK/tl.port" "$WORK/srv.pem" "$WORK/srv.key" "$WORK/tls-out.pcap" & TL=$!
  PIDS+=("$TL")
  for _ in $(seq 1 100); do [ -s "$WORK/tl.port" ] && break; sleep 0.05; done
  start_receiver "$WORK/r5.log" \
    --pcap-over-ip ":0,tls-cert=$WORK/srv.pem,tls-key=$WORK/srv.key,format=pcapng" \
    --pcap-over-ip-connect "127.0.0.1:$(cat "$WORK/tl.port"),tls-ca=$WORK/ca.pem"
  P=$(poip_port "$WORK/r5.log" 1)
  python3 "$PEER" tls-read "$P" "$WORK/ca.pem" "$WORK/tls-in.pcapng" & TR=$!
  PIDS+=("$TR")
  wait_log "$WORK/r5.log" "client .* connected \(.*TLS\)" 2 "two TLS clients"
  "$SENSOR" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" --name tls || fail sensor
  wait_log "$WORK/r5.log" "sensor tls .* disconnected" 1 "sensor done"
  stop_receiver
  wait_exit "$TR" "TLS reader"; wait_exit "$TL" "TLS listener"
  res=$("$PCAPCMP" --iface "tls/${AFS##*/}" "$AFS" "$WORK/tls-in.pcapng") || fail "TLS listener: $res"
  res2=$("$PCAPCMP" "$AFS" "$WORK/tls-out.pcap") || fail "TLS connection out: $res2"
  ok "TLS: listener $res; connection out $res2"
fi

# 6. Usage errors name the option and the fix.
for bad in ":0,format=pcap2" ":0,queue=1k" ":0,bogus=1" ":0,tls-cert=x" ":0,max-clients=0" ":0,filter=nosuchproto"; do
  "$RECEIVER" --listen 127.0.0.1:0 --pcap-over-ip "$bad" 2>"$WORK/u.log"
  rc=$?
  [ "$rc" -eq 2 ] || { cat "$WORK/u.log"; fail "--pcap-over-ip $bad: exit $rc, expected 2"; }
  expect_line "$WORK/u.log" "pcap-over-ip" "usage error for $bad"
done
"$RECEIVER" --listen 127.0.0.1:0 --pcap-over-ip-connect ":9" 2>"$WORK/u.log" && fail "connect without host"
expect_line "$WORK/u.log" "invalid --pcap-over-ip-connect ':9'" "connect needs a host"
ok "usage errors"
