#!/usr/bin/env bash
# Shared-key authentication (right key, wrong key, no key, a key the
# receiver does not ask for; with and without TLS), key-file hygiene, and
# dropping privileges (-Z).
. "$top_srcdir/tests/lib.sh"
mix AFS 601 # 601 generated frames (once the corpus' afs.pcap, hence the name)
cd "$WORK"
printf 'correct horse battery staple\n' >good.key
printf 'correct horse battery stapl3\n' >bad.key
chmod 600 good.key bad.key

start_receiver r.log --auth-key-file good.key -w out.pcapng
expect_line r.log "warning: shared-key authentication without TLS" "receiver warns about clear text"
"$SENSOR" -r "$AFS" --receiver "127.0.0.1:$RPORT" --auth-key-file good.key --name right 2>s-right.log \
  || { cat s-right.log >&2; fail "right key refused"; }
expect_line s-right.log "warning: shared-key authentication without TLS" "sensor warns about clear text"
"$SENSOR" -r "$AFS" --receiver "127.0.0.1:$RPORT" --auth-key-file bad.key --name wrong 2>s-wrong.log
[ $? -eq 1 ] || fail "wrong key: exit code"
expect_line s-wrong.log "receiver refused this sensor: authentication failed: wrong shared key for sensor wrong" "wrong key reason"
"$SENSOR" -r "$AFS" --receiver "127.0.0.1:$RPORT" --name nokey 2>s-nokey.log
[ $? -eq 1 ] || fail "no key: exit code"
expect_line s-nokey.log "requires a shared key: give --auth-key-file" "no key reason"
stop_receiver
expect_line r.log "sensor right connected from .*shared key verified" "right key logged"
expect_line r.log "sensor wrong \(.*\) dropped: .*authentication failed: wrong shared key for sensor wrong" "wrong key logged"
res=$("$PCAPCMP" --list out.pcapng | grep -c '^idb ') || true
[ "$res" -eq 1 ] || fail "only the authenticated sensor may have an interface block (got $res)"
res=$("$PCAPCMP" --iface "right/${AFS##*/}" "$AFS" out.pcapng) || fail "right: $res"
ok "shared key: right accepted ($res), wrong and missing refused on both sides"

# A sensor with a key does not stream to a receiver that cannot prove it.
start_receiver r2.log -w out2.pcap
"$SENSOR" -r "$AFS" --receiver "127.0.0.1:$RPORT" --auth-key-file good.key 2>s-noauth.log
[ $? -eq 1 ] || fail "keyed sensor streamed to an unauthenticated receiver"
expect_line s-noauth.log "does not authenticate, but a shared key was given" "reason"
stop_receiver
[ "$("$PCAPCMP" --summary out2.pcap 2>/dev/null | cut -d' ' -f1)" != 601 ] || fail "packets were sent"
ok "keyed sensor refuses an unauthenticated receiver"

# Key files: no key on the command line; loose permissions draw a warning.
# (getopt takes --auth-key as --auth-key-file: still a file name, never a key)
"$SENSOR" -r "$AFS" --receiver 127.0.0.1:1 --auth-key secret 2>err; [ $? -eq 1 ] || fail "--auth-key accepted"
expect_line err "cannot read key file secret: No such file or directory" "no key on the command line"
# A key group or others may read is no secret: refused (ps_auth_key_load),
# by both tools, before anything connects.
chmod 640 bad.key
"$SENSOR" -r "$AFS" --receiver 127.0.0.1:1 --connect-timeout 1 --auth-key-file bad.key 2>err
rc=$?; [ "$rc" -eq 1 ] || { cat err; fail "sensor took a group-readable key (exit $rc)"; }
expect_line err "^ps-sensor: key file bad.key can be read by group or others: chmod 600 bad.key$" "permission refusal"
chmod 604 bad.key
timeout 10 "$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --auth-key-file bad.key 2>err
rc=$?; [ "$rc" -eq 1 ] || { cat err; fail "receiver took an others-readable key (exit $rc)"; }
expect_line err "^ps-receiver: key file bad.key can be read by group or others: chmod 600 bad.key$" "permission refusal"
: >empty.key
chmod 600 empty.key
"$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --auth-key-file empty.key 2>err; [ $? -eq 1 ] || fail "empty key"
expect_line err "key file empty.key must hold 1 to 1024 bytes" "empty key message"
ok "key file checks"

# With TLS too, if certtool is here.
if command -v certtool >/dev/null; then
  certtool --generate-privkey --key-type=ecdsa --outfile k.pem 2>/dev/null
  printf '%s\n' 'cn = "localhost"' 'dns_name = "localhost"' tls_www_server signing_key 'expiration_days = 2' >t
  certtool --generate-self-signed --load-privkey k.pem --template t --outfile c.pem 2>/dev/null
  start_receiver r3.log --tls-cert c.pem --tls-key k.pem --auth-key-file good.key -w out3.pcap
  "$SENSOR" -r "$AFS" --receiver "localhost:$RPORT" --tls-ca c.pem --auth-key-file good.key 2>s3.log \
    || { cat s3.log >&2; fail "TLS + key"; }
  grep -q "without TLS" s3.log r3.log && fail "clear-text warning with TLS"
  "$SENSOR" -r "$AFS" --receiver "localhost:$RPORT" --tls-ca c.pem --auth-key-file bad.key 2>s4.log
  [ $? -eq 1 ] || fail "TLS + wrong key accepted"
  stop_receiver
  res=$("$PCAPCMP" "$AFS" out3.pcap) || fail "TLS + key: $res"
  ok "TLS + shared key: $res; wrong key refused"
fi

# -Z: the sensor gives up root once the capture is open.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
  start_receiver r4.log -w out4.pcap
  "$SENSOR" -i lo --receiver "127.0.0.1:$RPORT" -Z nobody 'udp port 9' 2>s5.log &
  spid=$!; PIDS+=("$spid")
  for _ in $(seq 1 100); do grep -q "connected to receiver" s5.log && break; sleep 0.05; done
  uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$spid/status")
  [ "$uid" = "65534 65534 65534 65534" ] || fail "sensor runs as uid '$uid', not nobody"
  for i in 1 2 3; do echo "datagram $i" >/dev/udp/127.0.0.1/9; done
  sleep 0.5
  kill -INT "$spid"; wait "$spid" || { cat s5.log >&2; fail "sensor as nobody"; }
  stop_receiver
  expect_line s5.log "dropped privileges to user nobody \(uid 65534\)" "drop logged"
  [ "$("$PCAPCMP" --summary out4.pcap | cut -d' ' -f1)" -eq 3 ] || fail "capture after dropping root"
  "$SENSOR" -r "$AFS" --receiver 127.0.0.1:1 -Z no-such-user-xyz 2>err; [ $? -eq 1 ] || fail "-Z unknown user"
  expect_line err "-Z no-such-user-xyz: no such user" "unknown user message"
  ok "-Z nobody: captured 3 packets as uid 65534"
else
  echo "SKIP: -Z checks need root and the user nobody"
fi
