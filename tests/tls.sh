#!/usr/bin/env bash
# TLS: a good chain connects (RSA and ECDSA receivers, mutual TLS with
# the client subject logged); a wrong CA, an expired certificate, a wrong
# host name, a self-signed certificate without --tls-insecure, a client
# without a certificate against a receiver that requires one, and a
# wrong pin are each refused: the reason in the log, exit code 1 on the
# sensor, and nothing written. Certificates are made here with certtool.
. "$top_srcdir/tests/lib.sh"
command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
mix AFS 601 # 601 generated frames (once the corpus' afs.pcap, hence the name)
cd "$WORK"

mk_key() { certtool --generate-privkey --key-type="$2" --outfile "$1" 2>/dev/null || fail "key $1"; }
mk_tmpl() { printf '%s\n' "$@" >tmpl; }
# CA
mk_key ca.key ecdsa
mk_tmpl 'cn = "ps test CA"' ca cert_signing_key 'expiration_days = 2'
certtool --generate-self-signed --load-privkey ca.key --template tmpl --outfile ca.pem 2>/dev/null || fail ca
# another CA, trusted by nobody
mk_key other.key ecdsa
mk_tmpl 'cn = "other CA"' ca cert_signing_key 'expiration_days = 2'
certtool --generate-self-signed --load-privkey other.key --template tmpl --outfile other.pem 2>/dev/null || fail other
# receiver certificates: RSA, ECDSA, expired, self-signed
server_tmpl() { mk_tmpl 'cn = "receiver.test"' 'dns_name = "receiver.test"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
  tls_www_server encryption_key signing_key "$@"; }
mk_key rsa.key rsa
server_tmpl 'expiration_days = 2'
certtool --generate-certificate --load-privkey rsa.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile rsa.pem 2>/dev/null || fail rsa
mk_key ec.key ecdsa
certtool --generate-certificate --load-privkey ec.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile ec.pem 2>/dev/null || fail ec
server_tmpl 'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"'
certtool --generate-certificate --load-privkey rsa.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile expired.pem 2>/dev/null || fail expired
server_tmpl 'expiration_days = 2'
certtool --generate-self-signed --load-privkey ec.key --template tmpl --outfile self.pem 2>/dev/null || fail self
# sensor (client) certificate
mk_key cli.key ecdsa
mk_tmpl 'cn = "sensor-7"' 'organization = "ps tests"' tls_www_client signing_key 'expiration_days = 2'
certtool --generate-certificate --load-privkey cli.key --load-ca-certificate ca.pem \
  --load-ca-privkey ca.key --template tmpl --outfile cli.pem 2>/dev/null || fail cli
pin_of() { certtool --certificate-info --infile "$1" 2>/dev/null | sed -n 's/^[[:space:]]*pin-sha256:\(.*\)$/sha256:\1/p' | head -n1; }
RSA_PIN=$(pin_of rsa.pem)
EC_PIN=$(pin_of ec.pem)
[ -n "$RSA_PIN" ] && [ -n "$EC_PIN" ] || fail "cannot compute pins"

# good SENSOR_ARGS...: streams afs.pcap, must arrive whole.
good() {
  local what=$1; shift
  "$SENSOR" -r "$AFS" --receiver "localhost:$RPORT" --name "$what" "$@" 2>"s-$what.log" \
    || { cat "s-$what.log" >&2; fail "$what: sensor failed"; }
  expect_line "s-$what.log" "TLS to localhost port $RPORT: TLS1\.[23] .*verified CN=receiver.test" "$what: verified"
  echo "ok: $what: $(grep -o 'TLS to .*' "s-$what.log")"
}
# refused REGEX SENSOR_ARGS...: exit 1 with the reason.
refused() {
  local what=$1 re=$2; shift 2
  "$SENSOR" -r "$AFS" --receiver "localhost:$RPORT" --connect-timeout 3 "$@" 2>"s-$what.log"
  local rc=$?
  [ "$rc" -eq 1 ] || { cat "s-$what.log" >&2; fail "$what: exit $rc, expected 1"; }
  expect_line "s-$what.log" "$re" "$what: reason"
  echo "ok: $what refused: $(grep -E -o -- "$re.*" "s-$what.log" | head -n1)"
}

# 1. RSA receiver, server-only TLS.
start_receiver r1.log --tls-cert rsa.pem --tls-key rsa.key -w out1.pcap
good rsa --tls-ca ca.pem
good rsa-pinned --tls-ca ca.pem --tls-pin "$RSA_PIN"
good rsa-servername --tls-ca ca.pem --tls-server-name receiver.test
refused wrong-ca "certificate verification failed for localhost: The certificate is NOT trusted. The certificate issuer is unknown" --tls-ca other.pem
refused wrong-name "certificate verification failed for wrong.test: .*name in the certificate does not match" --tls-ca ca.pem --tls-server-name wrong.test
refused wrong-pin "public key sha256:.* does not match the pinned key" --tls-ca ca.pem --tls-pin "$EC_PIN"
refused system-trust "certificate verification failed for localhost: The certificate is NOT trusted" --tls
refused plain "receiver localhost port [0-9]+ answered with TLS: connect with --tls" --compress none
stop_receiver
for n in rsa rsa-pinned rsa-servername; do
  expect_line r1.log "sensor $n \(.*\) disconnected: 601 packets" "$n written"
done
expect_line r1.log "connection from .* closed before the hello: TLS handshake failed" "receiver logs failed handshakes"
[ "$("$PCAPCMP" --summary out1.pcap | cut -d' ' -f1)" -eq $((3 * 601)) ] || fail "refused sensors wrote packets"

# 2. ECDSA receiver with mutual TLS.
start_receiver r2.log --tls-cert ec.pem --tls-key ec.key --tls-client-ca ca.pem -w out2.pcapng
good mtls --tls-ca ca.pem --tls-cert cli.pem --tls-key cli.key
refused no-client-cert "ended TLS with alert: Certificate is required" --tls-ca ca.pem
refused foreign-client-cert "alert" --tls-ca ca.pem --tls-cert self.pem --tls-key ec.key
stop_receiver
expect_line r2.log "sensor mtls connected from .*TLS client .*CN=sensor-7" "client subject logged"
expect_line r2.log "TLS handshake failed: .*[Cc]ertificate" "receiver names the missing certificate"
res=$("$PCAPCMP" --iface "mtls/${AFS##*/}" "$AFS" out2.pcapng) || fail "mtls output: $res"
ok "mutual TLS: $res"

# 3. Expired and self-signed receiver certificates.
start_receiver r3.log --tls-cert expired.pem --tls-key rsa.key -w out3.pcap
refused expired "certificate verification failed for localhost: The certificate is NOT trusted. The certificate chain uses expired certificate" --tls-ca ca.pem
stop_receiver
start_receiver r4.log --tls-cert self.pem --tls-key ec.key -w out4.pcap
refused self-signed "certificate verification failed for localhost: The certificate is NOT trusted" --tls
"$SENSOR" -r "$AFS" --receiver "localhost:$RPORT" --tls-insecure --name lab 2>s-lab.log || fail "insecure lab sensor"
expect_line s-lab.log "warning: --tls-insecure: the receiver is NOT verified" "insecure is loud"
expect_line s-lab.log "NOT VERIFIED \(--tls-insecure\)" "insecure says so at connect"
stop_receiver
res=$("$PCAPCMP" "$AFS" out4.pcap) || fail "insecure output: $res"
ok "self-signed accepted only with --tls-insecure, loudly: $res"

# 4. Bad TLS options are usage errors; bad files runtime errors.
"$SENSOR" -r "$AFS" --receiver localhost:1 --tls-pin md5:xx 2>err; [ $? -eq 2 ] || fail "bad pin accepted"
expect_line err "must look like sha256:BASE64" "bad pin message"
"$SENSOR" -r "$AFS" --receiver localhost:1 --tls-cert cli.pem 2>err; [ $? -eq 2 ] || fail "cert without key"
"$SENSOR" -r "$AFS" --receiver localhost:1 --tls-ca nonexistent.pem 2>err; [ $? -eq 1 ] || fail "missing CA file"
expect_line err "cannot load CA certificates from nonexistent.pem" "missing CA message"
"$RECEIVER" --listen 127.0.0.1:0 -w x.pcap --tls-cert rsa.pem --tls-key ec.key 2>err; [ $? -eq 1 ] || fail "mismatched key"
expect_line err "cannot load TLS certificate rsa.pem with key ec.key" "mismatched key message"
ok "TLS option errors"

# 5. A TLS sensor against a plain receiver: both sides say why.
start_receiver r5.log -w out5.pcap
refused tls-to-plain "(closed the connection during the TLS handshake|answered without TLS: it does not serve TLS) \(does it speak TLS\?\)" --tls-ca ca.pem
stop_receiver
expect_line r5.log "the sensor starts TLS, but this receiver serves none" "plain receiver explains"
