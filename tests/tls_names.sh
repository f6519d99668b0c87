#!/usr/bin/env bash
# Review F3: `--tls-server-name ''` reached GnuTLS as "no name", which
# checks the chain but not the name, so a receiver whose certificate
# names another host was accepted ("verified CN=...", exit 0, every
# packet sent). An empty name is now a usage error (exit 2) before any
# connection, and so are the other empty TLS values; the name is
# checked otherwise. Needs no corpus: the certificates are made here with
# certtool, the capture with tests/mkpcap.py.
. "$top_srcdir/tests/lib.sh"
command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
cd "$WORK"
python3 "$top_srcdir/tests/mkpcap.py" in.pcap 50 || fail "mkpcap"

mk_key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null || fail "key $1"; }
mk_tmpl() { printf '%s\n' "$@" >tmpl; }
mk_key ca.key
mk_tmpl 'cn = "ps test CA"' ca cert_signing_key 'expiration_days = 2'
certtool --generate-self-signed --load-privkey ca.key --template tmpl --outfile ca.pem 2>/dev/null || fail ca
# A good certificate of the trusted CA, for another host than the one
# the sensor connects to (localhost).
mk_key r.key
mk_tmpl 'cn = "other.test"' 'dns_name = "other.test"' tls_www_server signing_key 'expiration_days = 2'
certtool --generate-certificate --load-privkey r.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile r.pem 2>/dev/null || fail "receiver certificate"

start_receiver r.log --tls-cert r.pem --tls-key r.key -w out.pcap --state none

# sensor EXPECTED_RC LOG ARGS...
sensor() {
  local want=$1 log=$2; shift 2
  "$SENSOR" -r in.pcap --receiver "localhost:$RPORT" --connect-timeout 3 "$@" 2>"$log"
  local rc=$?
  [ "$rc" -eq "$want" ] || { cat "$log" >&2; fail "sensor $*: exit $rc, expected $want"; }
}

# 1. The empty name, as typed and as an unset variable expands.
sensor 2 s1.log --tls-ca ca.pem --tls-server-name ''
expect_line s1.log "^ps-sensor: empty --tls-server-name: give the name the receiver's certificate must carry, or leave the option out to check the host of --receiver" "empty name"
[ "$(wc -l <s1.log)" -eq 1 ] || { cat s1.log >&2; fail "more than the usage error"; }
unset PS_TEST_NAME
sensor 2 s2.log --tls-ca ca.pem --tls-server-name="${PS_TEST_NAME:-}"
expect_line s2.log "^ps-sensor: empty --tls-server-name:" "empty name with ="
ok "--tls-server-name '' is a usage error: $(cat s1.log)"
# The other TLS values that an empty string could switch off.
sensor 2 s3.log --tls-ca ''
expect_line s3.log "^ps-sensor: empty --tls-ca: give a file of CA certificates, or leave the option out" "empty CA"
sensor 2 s4.log --tls-ca ca.pem --tls-pin ''
expect_line s4.log "^ps-sensor: empty --tls-pin: give sha256:BASE64" "empty pin"
"$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --tls-cert r.pem --tls-key r.key --tls-client-ca '' 2>r2.log
rc=$?
[ "$rc" -eq 2 ] || { cat r2.log >&2; fail "receiver --tls-client-ca '': exit $rc"; }
expect_line r2.log "^ps-receiver: empty --tls-client-ca: give a file of CA certificates" "empty client CA"
ok "empty --tls-ca, --tls-pin, --tls-client-ca are usage errors"

# 2. Without the option the name checked is the --receiver host: the
# certificate does not carry it.
sensor 1 s5.log --tls-ca ca.pem
expect_line s5.log "TLS certificate verification failed for localhost: .*The name in the certificate does not match" "name checked"
ok "the certificate's name is checked: $(grep -o 'TLS certificate verification failed.*' s5.log)"

# 3. The name the certificate carries: accepted, every packet written.
sensor 0 s6.log --tls-ca ca.pem --tls-server-name other.test
expect_line s6.log "TLS to localhost port $RPORT: TLS1\.[23] .*verified CN=other.test" "verified"
stop_receiver
res=$("$PCAPCMP" in.pcap out.pcap) || fail "output: $res"
ok "--tls-server-name other.test: $res"
# Only that sensor reached the receiver: the refused one failed in its
# TLS handshake, the empty names never connected.
expect_line r.log "1 sensor sessions \(0 failed\), 1 other connections closed before the hello, 50 packets, 10000 bytes written" "receiver summary"
ok "receiver: $(grep -o '1 sensor sessions.*written' r.log)"
