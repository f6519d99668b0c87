#!/usr/bin/env bash
# Wrong input gets one clear line naming the problem, exit 2 for usage
# errors and 1 for runtime errors, before any data is touched.
. "$top_srcdir/tests/lib.sh"
# A capture of our own (the cases need a readable file, not the corpus).
AFS="$WORK/in.pcap"
python3 "$top_srcdir/tests/mkpcap.py" "$AFS" 601 || fail "mkpcap"

# check EXPECTED_RC REGEX CMD...: exit code, one line on stderr matching.
check() {
  local want=$1 re=$2; shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || { cat "$WORK/err" >&2; fail "'$*' exited $rc, expected $want"; }
  grep -Eq -- "$re" "$WORK/err" || { cat "$WORK/err" >&2; fail "'$*': no message matching /$re/"; }
  # One line of error; informational log lines (time-stamped, such as
  # the privilege drop) may precede it, warnings may not.
  [ "$(grep -Evc '^[0-9-]+T[0-9:]+Z ps-[a-z]+: [^we]' "$WORK/err")" -eq 1 ] \
    || { cat "$WORK/err" >&2; fail "'$*': more than one line"; }
  echo "ok: exit $rc: $(cat "$WORK/err")"
}

S="$SENSOR"
R="$RECEIVER"
# --- ps-sensor usage errors (2)
check 2 "unknown option --bogus" $S --bogus
check 2 "option -r needs an argument" $S --receiver 127.0.0.1:1 -r
check 2 "option --receiver needs an argument" $S -r "$AFS" --receiver
check 2 "invalid --replay-buffer: .*" $S -r "$AFS" --receiver 127.0.0.1:1 --replay-buffer 1k
check 2 "unknown --overflow 'sometimes': use drop-oldest or drop-newest" $S -r "$AFS" --receiver 127.0.0.1:1 --overflow sometimes
check 2 "empty --spool-dir: give a directory" $S -r "$AFS" --receiver 127.0.0.1:1 --spool-dir ""
check 1 "cannot create the spool /proc/no-spool: No such file or directory" $S -r "$AFS" --receiver 127.0.0.1:1 --spool-dir /proc/no-spool
check 2 "--receiver HOST:PORT is required" $S -r "$AFS"
check 2 "invalid --receiver: invalid port: '99999' is outside 1..65535" $S -r "$AFS" --receiver 127.0.0.1:99999
check 2 "invalid --receiver: invalid port: 'x' is not a whole number" $S -r "$AFS" --receiver host:x
check 2 "invalid --receiver: 'localhost' has no port" $S -r "$AFS" --receiver localhost
check 2 "IPv6 addresses in brackets" $S -r "$AFS" --receiver ::1:5000
check 2 "invalid snapshot length -s: '0' is outside" $S -r "$AFS" --receiver 127.0.0.1:1 -s 0
check 2 "invalid count -c: '-5' is not a whole number" $S -r "$AFS" --receiver 127.0.0.1:1 -c -5
check 2 "unknown --compress 'lz9'" $S -r "$AFS" --receiver 127.0.0.1:1 --compress lz9
check 2 "give either -i or -r, not both" $S -r "$AFS" -i lo --receiver 127.0.0.1:1
check 2 "nothing to capture" $S --receiver 127.0.0.1:1
check 2 "-s applies to live capture, not to -r" $S -r "$AFS" -s 96 --receiver 127.0.0.1:1
check 2 "bad filter expression 'tcp port': .*syntax error" $S -r "$AFS" --receiver 127.0.0.1:1 tcp port
check 2 "bad filter expression 'udp and hostx'" $S -r "$AFS" --receiver 127.0.0.1:1 udp and hostx
check 2 "cannot read filter file $WORK/nofilter" $S -r "$AFS" --receiver 127.0.0.1:1 -F "$WORK/nofilter"
# Empty values are never "default" or "off" (review F3: an empty
# --tls-server-name switched the host-name check off): each is a usage
# error naming the option, for every option that takes a value.
check 2 "empty --tls-server-name: give the name the receiver's certificate must carry" \
  $S -r "$AFS" --receiver 127.0.0.1:1 --tls-ca "$AFS" --tls-server-name ""
for o in -i -r --receiver -s -B -c --duration --replay-buffer --overflow --spool-dir \
         --compress --name --connect-timeout --peer-timeout --tls-ca --tls-server-name \
         --tls-cert --tls-key --tls-pin --auth-key-file -Z -F; do
  check 2 "^ps-sensor: empty $o: give " $S --receiver 127.0.0.1:1 "$o" ""
done
check 2 "empty --interface: give an interface name" $S --receiver 127.0.0.1:1 --interface=
check 2 "empty -r: give a capture file" $S --receiver 127.0.0.1:1 -r ""
check 2 "empty filter expression: give one, or no arguments to capture everything" \
  $S -r "$AFS" --receiver 127.0.0.1:1 ""
check 2 "empty filter expression" $S -r "$AFS" --receiver 127.0.0.1:1 " " ""
printf '# nothing but a comment\n\n' >"$WORK/comment.bpf"
check 2 "filter file $WORK/comment.bpf holds no expression \(only blanks or comments\): leave -F out" \
  $S -r "$AFS" --receiver 127.0.0.1:1 -F "$WORK/comment.bpf"
# A directory opens, reads as nothing, and was taken as no filter.
check 2 "cannot read filter file $WORK: Is a directory" $S -r "$AFS" --receiver 127.0.0.1:1 -F "$WORK"
# One file, one name, one set of credentials: a second is refused, not
# silently preferred.
check 2 "-r given twice \('$AFS' and '$WORK/b.pcap'\): give it once" \
  $S -r "$AFS" -r "$WORK/b.pcap" --receiver 127.0.0.1:1
check 2 "--read given twice" $S -r "$AFS" --read "$WORK/b.pcap" --receiver 127.0.0.1:1
for o in --name --spool-dir --tls-ca --tls-server-name --tls-cert --tls-key --tls-pin \
         --auth-key-file -Z -F; do
  check 2 "^ps-sensor: $o given twice \('x' and 'y'\): give it once" \
    $S -r "$AFS" --receiver 127.0.0.1:1 "$o" x "$o" y
done
# Brackets hold IPv6 addresses only.
check 2 "invalid --receiver: '\[127.0.0.1\]:5555': brackets are for IPv6 addresses" \
  $S -r "$AFS" --receiver "[127.0.0.1]:5555"
check 2 "invalid --receiver: '\[localhost\]:5555': brackets are for IPv6" $S -r "$AFS" --receiver "[localhost]:5555"
check 2 "invalid --receiver: '\[\]:5555': brackets are for IPv6" $S -r "$AFS" --receiver "[]:5555"
check 2 "invalid --receiver: '\[fe80::1%\]:5555': brackets are for IPv6" $S -r "$AFS" --receiver "[fe80::1%]:5555"
check 2 "invalid --receiver: '\[::1\]' is not \[IPV6\]:PORT" $S -r "$AFS" --receiver "[::1]"
# --- ps-sensor runtime errors (1)
check 1 "cannot open $WORK/missing.pcap: No such file or directory" $S -r "$WORK/missing.pcap" --receiver 127.0.0.1:1
check 1 "not a capture file libpcap can read: unknown file format" $S -r "$top_srcdir/configure.ac" --receiver 127.0.0.1:1
: >"$WORK/empty-file"
check 1 "not a capture file libpcap can read" $S -r "$WORK/empty-file" --receiver 127.0.0.1:1
head -c 100 "$AFS" >"$WORK/cut.pcap"
check 1 "cut.pcap: libpcap cannot read this file past packet 0: truncated dump file" $S -r "$WORK/cut.pcap" --receiver 127.0.0.1:1
# Names that do not resolve are looked up in namespaces of their own: no
# network, and an nsswitch.conf that asks only /etc/hosts, so the lookup
# fails at once and no packet goes to the machine's resolver.
printf 'hosts: files\n' >"$WORK/nsswitch.conf"
offline_ok=0
[ "$(id -u)" -eq 0 ] && unshare -n -m true 2>/dev/null && offline_ok=1
offline() {
  unshare -n -m sh -c 'mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"' \
    sh "$WORK/nsswitch.conf" "$@"
}
if [ "$offline_ok" -eq 1 ]; then
  check 1 "cannot resolve receiver host no-such-host.invalid" \
    offline $S -r "$AFS" --receiver no-such-host.invalid:5000
else
  echo "not run (needs root and unshare): unresolvable names"
fi
if [ "$(id -u)" -eq 0 ]; then
  check 1 "no such interface nosuchif0" $S -i nosuchif0 --receiver 127.0.0.1:1
  if command -v setpriv >/dev/null; then
    cp "$AFS" "$WORK/private.pcap"; chmod 600 "$WORK/private.pcap"; chmod 755 "$WORK"
    # nobody runs a copy of the sensor: the build tree may be private to
    # root (a clone in /root).
    mkdir "$WORK/bin"
    if [ -x "$top_builddir/tools/.libs/ps-sensor" ]; then
      cp "$top_builddir/tools/.libs/ps-sensor" "$top_builddir"/lib/.libs/libpacketstreamer.so.* "$WORK/bin/"
    else
      cp "$SENSOR" "$WORK/bin/"
    fi
    NS="env LD_LIBRARY_PATH=$WORK/bin $WORK/bin/ps-sensor"
    check 1 "cannot open $WORK/private.pcap: Permission denied" \
      setpriv --reuid=65534 --regid=65534 --clear-groups $NS -r "$WORK/private.pcap" --receiver 127.0.0.1:1
    check 1 "no permission to capture on lo: run as root or grant CAP_NET_RAW" \
      setpriv --reuid=65534 --regid=65534 --clear-groups $NS -i lo --receiver 127.0.0.1:1
  fi
else
  echo "SKIP (not root): interface and permission cases"
fi

# An unreachable receiver: retries with growing back-off, says so, then
# gives up when told to (it would otherwise retry forever).
PORT_CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 9)
start=$(date +%s)
"$S" -r "$AFS" --receiver "127.0.0.1:$PORT_CLOSED" --connect-timeout 4 2>"$WORK/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
[ "$rc" -eq 1 ] || fail "unreachable receiver: exit $rc"
expect_line "$WORK/err" "Connection refused; retrying in 1 s" "first retry"
expect_line "$WORK/err" "Connection refused; retrying in 2 s" "second retry, backed off"
expect_line "$WORK/err" "gave up after 3 attempts" "gives up"
[ "$(grep -c retrying "$WORK/err")" -eq 2 ] || fail "retries are not backing off"
[ "$elapsed" -ge 3 ] && [ "$elapsed" -le 8 ] || fail "retry timing: ${elapsed}s"
ok "unreachable receiver: 2 retries (1 s, 2 s), then exit 1"

# --- ps-receiver usage errors (2)
check 2 "unknown option --bogus" $R --bogus
check 2 "--listen \[ADDR\]:PORT is required" $R -w "$WORK/x.pcap"
check 2 "-w FILE .* is required" $R --listen 127.0.0.1:0
check 2 "invalid --listen: invalid port: 'abc' is not a whole number" $R --listen 127.0.0.1:abc -w "$WORK/x.pcap"
check 2 "invalid --listen: invalid port: '70000' is outside 0..65535" $R --listen :70000 -w "$WORK/x.pcap"
check 2 "unknown --format 'pcapx'" $R --listen :0 -w "$WORK/x.pcap" --format pcapx
check 2 "unknown --time-stamp-precision 'pico'" $R --listen :0 -w "$WORK/x.pcap" --time-stamp-precision pico
check 2 "unexpected argument 'extra'" $R --listen :0 -w "$WORK/x.pcap" extra
check 2 "invalid --max-sensors: '0' is outside" $R --listen :0 -w "$WORK/x.pcap" --max-sensors 0
for o in -l --listen -w --format --time-stamp-precision -C -G -W --max-sensors \
         --idle-timeout --tls-cert --tls-key --tls-client-ca --auth-key-file -Z --state; do
  check 2 "^ps-receiver: empty $o: give " $R --listen :0 -w "$WORK/x.pcap" "$o" ""
done
check 2 "empty --tls-client-ca: give a file of CA certificates, or leave the option out" \
  $R --listen :0 -w "$WORK/x.pcap" --tls-cert a --tls-key b --tls-client-ca ""
check 2 "empty --post-rotate command" $R --listen :0 -w "$WORK/x.pcap" --post-rotate ""
for o in --state --post-rotate --tls-cert --tls-key --tls-client-ca --auth-key-file -Z; do
  check 2 "^ps-receiver: $o given twice \('x' and 'y'\): give it once" \
    $R --listen :0 -w "$WORK/x.pcap" "$o" x "$o" y
done
# -w may be repeated (several outputs; tests/multi_output.sh), but one
# name is one output.
check 2 "-w $WORK/a.pcap is given twice: one output a name" $R --listen :0 -w "$WORK/a.pcap" -w "$WORK/a.pcap"
check 2 "invalid --listen: '\[127.0.0.1\]:0': brackets are for IPv6 addresses" \
  $R --listen "[127.0.0.1]:0" -w "$WORK/x.pcap"
# (Every address is ":PORT", not "[]:PORT".)
check 2 "invalid --listen: '\[\]:0': brackets are for IPv6" $R --listen "[]:0" -w "$WORK/x.pcap"
# A size out of range names the range the user can give, in bytes.
check 2 "invalid -C: '99999999999g' is outside 1\.\.1000000000000000 bytes" \
  $R --listen :0 -w "$WORK/x.pcap" -C 99999999999g
check 2 "invalid -C: '99999999999999999999999' is outside 1\.\.1000000000000000 bytes" \
  $R --listen :0 -w "$WORK/x.pcap" -C 99999999999999999999999
check 2 "invalid --replay-buffer: '99999999999G' is outside 65536\.\.68719476736 bytes" \
  $S -r "$AFS" --receiver 127.0.0.1:1 --replay-buffer 99999999999G
# --- ps-receiver runtime errors (1)
check 1 "cannot create the receiver's journal /nonexistent-dir/.out.pcap.state: No such file or directory \(its directory must exist" \
  $R --listen 127.0.0.1:0 -w /nonexistent-dir/out.pcap
check 1 "cannot create /nonexistent-dir/out.pcap: No such file or directory" \
  $R --listen 127.0.0.1:0 -w /nonexistent-dir/out.pcap --state none
check 2 "the directory of -w .*/%Y/x.pcap is a template: give --state FILE" \
  $R --listen 127.0.0.1:0 -w "$WORK/%Y/x.pcap"
check 2 "empty --state: give a file name, or none" $R --listen :0 -w "$WORK/x.pcap" --state ""
[ "$offline_ok" -eq 0 ] ||
  check 1 "cannot resolve listen address no-such-host.invalid" offline $R --listen no-such-host.invalid:0 -w "$WORK/x.pcap"
start_receiver "$WORK/r.log" -w "$WORK/first.pcap"
check 1 "cannot listen on 127.0.0.1:$RPORT: Address already in use" \
  $R --listen "127.0.0.1:$RPORT" -w "$WORK/second.pcap"
# The refused second receiver must not have touched the first one's data.
"$S" -q -r "$AFS" --receiver "127.0.0.1:$RPORT" || fail "sensor after refused receiver"
stop_receiver
res=$("$PCAPCMP" "$AFS" "$WORK/first.pcap") || fail "first receiver's output: $res"
ok "address in use refused; the running receiver kept serving: $res"
