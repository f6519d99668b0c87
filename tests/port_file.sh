#!/usr/bin/env bash
# ps-receiver --port-file: one "ADDR PORT" line per listening socket, in
# the order of --listen, with the ports the system picked for port 0;
# written by a rename (no temporary left behind). Errors: an unwritable
# place exits 1 naming the file, an empty or repeated option exits 2.
. "$top_srcdir/tests/lib.sh"
cd "$WORK" || fail "cd"

listen=(--listen 127.0.0.1:0 --listen 127.0.0.2:0)
want=2
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  listen+=(--listen '[::1]:0'); want=3
fi
start_receiver r.log "${listen[@]}" -w out.pcap
cat r.log.port
[ "$(wc -l <r.log.port)" -eq "$want" ] || fail "expected $want lines"
sed -n 1p r.log.port | grep -Eq '^127\.0\.0\.1 [1-9][0-9]*$' || fail "line 1"
sed -n 2p r.log.port | grep -Eq '^127\.0\.0\.2 [1-9][0-9]*$' || fail "line 2"
[ "$want" -eq 2 ] || sed -n 3p r.log.port | grep -Eq '^::1 [1-9][0-9]*$' || fail "line 3"
# The ports are the ones listening: a sensor reaches the second one.
p2=$(sed -n '2s/.* //p' r.log.port)
"$SENSOR" -r "$DATA/nflog.pcap" --receiver "127.0.0.2:$p2" --name pf 2>s.log ||
  { cat s.log; fail "sensor to the second listener"; }
[ "$RPORT" = "$(sed -n '1s/.* //p' r.log.port)" ] || fail "RPORT is not line 1's"
ls -a | grep -q 'r\.log\.port\.' && fail "a temporary was left behind"
stop_receiver
ok "port file lists the $want listening sockets"

"$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --port-file nodir/p 2>err; rc=$?
[ "$rc" -eq 1 ] || fail "unwritable port file: exit $rc"
grep -q "cannot write port file nodir/p: No such file or directory" err || { cat err; fail "message"; }
"$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --port-file '' 2>err; rc=$?
[ "$rc" -eq 2 ] && grep -q "empty --port-file: give a file name" err || { cat err; fail "empty: $rc"; }
"$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --port-file a --port-file b 2>err; rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--port-file given twice" err || { cat err; fail "twice: $rc"; }
ok "port file errors: exit 1 naming the file, 2 for empty or repeated"
