#!/bin/bash
# The admin API over HTTPS with client certificates: with
# --admin-tls-client-ca a request needs a client certificate issued by
# that CA (403 with the reason without one, or with one from another
# CA); ps-ctl talks to it with --cacert/--cert/--key; curl reads
# /metrics with the CA. A client CA is authentication: the API may then
# listen beyond loopback without a token, HTTPS without one may not.
# Certificates are made here with certtool (as tests/tls.sh).
. "$top_srcdir/tests/lib.sh"
command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
command -v curl >/dev/null || skip "curl is not installed"
CTL="$top_builddir/tools/ps-ctl"
mix CAP 250
cd "$WORK"

mk_key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null || fail "key $1"; }
mk_tmpl() { printf '%s\n' "$@" >tmpl; }
mk_key ca.key
mk_tmpl 'cn = "ps admin CA"' ca cert_signing_key 'expiration_days = 2'
certtool --generate-self-signed --load-privkey ca.key --template tmpl --outfile ca.pem 2>/dev/null || fail ca
mk_key other.key
mk_tmpl 'cn = "other CA"' ca cert_signing_key 'expiration_days = 2'
certtool --generate-self-signed --load-privkey other.key --template tmpl --outfile other.pem 2>/dev/null || fail other
mk_key srv.key
mk_tmpl 'cn = "receiver.test"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
  tls_www_server encryption_key signing_key 'expiration_days = 2'
certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile srv.pem 2>/dev/null || fail srv
mk_key cli.key
mk_tmpl 'cn = "analyst-1"' tls_www_client signing_key 'expiration_days = 2'
certtool --generate-certificate --load-privkey cli.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile cli.pem 2>/dev/null || fail cli
certtool --generate-certificate --load-privkey cli.key --load-ca-certificate other.pem \
  --load-ca-privkey other.key --template tmpl --outfile rogue.pem 2>/dev/null || fail rogue

# Every address, no token: the client CA is the authentication.
start_receiver "$WORK/r.log" -w "$WORK/out.pcap" -w "$WORK/out.pcapng" --admin :0 \
  --admin-tls-cert srv.pem --admin-tls-key srv.key --admin-tls-client-ca ca.pem \
  --admin-port-file "$WORK/admin.port"
APORT=$(awk '{print $2}' "$WORK/admin.port")
[ -n "$APORT" ] || fail "no admin port file"
ADMIN="https://127.0.0.1:$APORT"
expect_line "$WORK/r.log" "admin API on https://\*:$APORT/ \(client certificate required\)" "HTTPS admin log line"

"$SENSOR" -r "$CAP" --receiver "127.0.0.1:$RPORT" --name tls-1 2>"$WORK/s.log" \
  || { cat "$WORK/s.log"; fail "ps-sensor failed"; }

# curl with the CA and the client certificate: the metrics.
curl -sf --cacert ca.pem --cert cli.pem --key cli.key "$ADMIN/metrics" >metrics.txt \
  || fail "GET /metrics over HTTPS with a client certificate failed"
grep -q '^ps_sensor_packets_total{sensor="tls-1",iface="[^"]*"} 250$' metrics.txt \
  || { cat metrics.txt; fail "no 250 packets of tls-1 in /metrics over HTTPS"; }
ok "curl over HTTPS with a client certificate reads /metrics"

# ps_receiver_output_bytes_total: what the two files took, headers,
# records and (pcapng) statistics blocks, once the session's end is
# written.
for i in $(seq 1 100); do
  want=$(( $(stat -c %s out.pcap) + $(stat -c %s out.pcapng) ))
  curl -sf --cacert ca.pem --cert cli.pem --key cli.key "$ADMIN/metrics" >metrics.txt
  got=$(sed -n 's/^ps_receiver_output_bytes_total \([0-9]*\)$/\1/p' metrics.txt)
  [ "$got" = "$want" ] && [ "$(stat -c %s out.pcapng)" -gt 0 ] &&
    tshark -r out.pcapng -Y 'frame' 2>/dev/null | wc -l | grep -qx 250 && break
  sleep 0.1
done
[ "$got" = "$want" ] || fail "ps_receiver_output_bytes_total = $got, the files hold $want bytes"
ok "ps_receiver_output_bytes_total = $got = the output files' sizes"

# No client certificate, or one of another CA: 403 with the reason.
code=$(curl -s -o ans -w '%{http_code}' --cacert ca.pem "$ADMIN/metrics")
[ "$code" = 403 ] || { cat ans; fail "no client certificate: HTTP $code, not 403"; }
grep -q 'client certificate issued by the receiver.s --admin-tls-client-ca is required: no client certificate was sent' ans \
  || fail "403 without its reason: $(cat ans)"
grep -q ps_sensor_packets_total ans && fail "metrics given without a client certificate"
code=$(curl -s -o ans -w '%{http_code}' --cacert ca.pem --cert rogue.pem --key cli.key "$ADMIN/metrics")
[ "$code" = 403 ] || { cat ans; fail "client certificate of another CA: HTTP $code, not 403"; }
grep -q 'issuer is unknown\|not trusted\|signer' ans || fail "403 for another CA without its reason: $(cat ans)"
# The server is verified too: without the CA curl refuses it.
curl -s -o /dev/null --cert cli.pem --key cli.key "$ADMIN/metrics" && fail "curl trusted the receiver without --cacert"
# Plain HTTP on the HTTPS port gets nothing.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APORT/metrics")
[ "$code" = 000 ] || fail "plain HTTP on the HTTPS admin port answered $code"
ok "403 without a client certificate and with one of another CA"

# ps-ctl over HTTPS.
"$CTL" --admin "$ADMIN" --cacert ca.pem --cert cli.pem --key cli.key sensors >ctl.out 2>ctl.err \
  || { cat ctl.err; fail "ps-ctl sensors over HTTPS failed"; }
grep -q '^tls-1 ' ctl.out || { cat ctl.out; fail "ps-ctl sensors: no tls-1"; }
"$CTL" --admin "$ADMIN" --cacert ca.pem --cert cli.pem --key cli.key --json sensors tls-1 >ctl.json \
  || fail "ps-ctl sensors tls-1 over HTTPS failed"
grep -q '"name": "tls-1"' ctl.json || { cat ctl.json; fail "ps-ctl --json sensors tls-1"; }
"$CTL" --admin "$ADMIN" --cacert ca.pem sensors >ctl.out 2>ctl.err
rc=$?
[ "$rc" -eq 1 ] || fail "ps-ctl without a client certificate exited $rc, not 1"
grep -q 'no client certificate was sent' ctl.err || { cat ctl.err; fail "ps-ctl without a certificate: no reason"; }
"$CTL" --admin "$ADMIN" --cert cli.pem --key cli.key sensors >ctl.out 2>ctl.err
[ $? -eq 1 ] || fail "ps-ctl trusted the receiver without --cacert"
ok "ps-ctl over HTTPS: with --cert/--key served, without refused with the reason"

# Usage: --cert without --key; --cacert with http://.
"$CTL" --admin "$ADMIN" --cert cli.pem sensors 2>u1.err
[ $? -eq 2 ] || fail "ps-ctl --cert without --key is no usage error"
grep -q -- '--cert needs --key' u1.err || fail "ps-ctl --cert alone: $(cat u1.err)"
"$CTL" --admin "http://127.0.0.1:$APORT" --cacert ca.pem sensors 2>u2.err
[ $? -eq 2 ] || fail "ps-ctl --cacert with http:// is no usage error"
grep -q 'give an https:// --admin URL' u2.err || fail "ps-ctl --cacert http: $(cat u2.err)"
stop_receiver

# HTTPS without a client CA is no authentication: loopback only.
"$RECEIVER" -l 127.0.0.1:0 -w x.pcap --admin 0.0.0.0:0 --admin-tls-cert srv.pem --admin-tls-key srv.key 2>e1.log
[ $? -eq 2 ] || fail "--admin 0.0.0.0:0 with HTTPS and no client CA or token is no usage error"
expect_line e1.log "without authentication listens only on loopback" "HTTPS without a client CA off loopback"
"$RECEIVER" -l 127.0.0.1:0 -w x.pcap --admin 127.0.0.1:0 --admin-tls-cert srv.pem 2>e2.log
[ $? -eq 2 ] || fail "--admin-tls-cert without --admin-tls-key is no usage error"
expect_line e2.log "--admin-tls-cert needs --admin-tls-key" "cert without key"
"$RECEIVER" -l 127.0.0.1:0 -w x.pcap --admin-tls-cert srv.pem --admin-tls-key srv.key 2>e3.log
[ $? -eq 2 ] || fail "--admin-tls-cert without --admin is no usage error"
expect_line e3.log "--admin-tls-cert configures the admin API: add --admin" "TLS without --admin"
"$RECEIVER" -l 127.0.0.1:0 -w x.pcap --admin 127.0.0.1:0 --admin-tls-cert srv.pem --admin-tls-key ca.pem 2>e4.log
[ $? -eq 1 ] || fail "a key file that is a certificate was taken"
expect_line e4.log "--admin-tls-cert: " "bad admin key"
ok "no HTTPS-only admin API off loopback; usage errors named"
