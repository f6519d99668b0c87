#!/usr/bin/env bash
# Several outputs at once (the live-feeds issue): -w given more than once
# writes every packet to each, a file per format and standard output
# beside them, with one journal and SIGHUP reopening every file. Needs
# no corpus.
. "$top_srcdir/tests/lib.sh"
mix IN 3000
mkdir "$WORK/o"

# Three outputs: pcap, pcapng (by suffix) and standard output.
"$RECEIVER" --listen 127.0.0.1:0 --port-file "$WORK/r.port" \
  -w "$WORK/o/a.pcap" -w "$WORK/o/b.pcapng" -w - >"$WORK/stdout.pcap" 2>"$WORK/r.log" &
RPID=$!
PIDS+=("$RPID")
for i in $(seq 1 200); do [ -s "$WORK/r.port" ] && break; sleep 0.05; done
RPORT=$(sed -n '1s/^[^ ]* \([0-9][0-9]*\)$/\1/p' "$WORK/r.port")
[ -n "$RPORT" ] || { cat "$WORK/r.log"; fail "receiver did not start"; }
expect_line "$WORK/r.log" "writing pcap to $WORK/o/a.pcap, pcapng to $WORK/o/b.pcapng and pcap to standard output" "the outputs named"
"$SENSOR" -r "$IN" --name m --receiver "127.0.0.1:$RPORT" 2>"$WORK/s.log" ||
  { cat "$WORK/s.log"; fail "sensor"; }
# SIGHUP: the files start again under new names, standard output goes on.
kill -HUP "$RPID"
"$SENSOR" -r "$IN" --name m2 --receiver "127.0.0.1:$RPORT" 2>"$WORK/s2.log" ||
  { cat "$WORK/s2.log"; fail "second sensor"; }
stop_receiver
[ -f "$WORK/o/.a.pcap.state" ] || fail "no journal beside the first file: $(ls -a "$WORK/o")"
mergecap -a -F pcap -w "$WORK/exp.pcap" "$IN" "$IN" || fail mergecap
res=$("$PCAPCMP" "$WORK/exp.pcap" "$WORK/stdout.pcap") || fail "standard output: $res"
for f in a b; do
  ls "$WORK/o/$f".* >/dev/null || fail "no $f files"
  ext=pcap; [ $f = b ] && ext=pcapng
  [ -f "$WORK/o/$f.1.$ext" ] || fail "SIGHUP did not reopen $f: $(ls "$WORK/o")"
  mergecap -a -w "$WORK/$f.all" "$WORK/o/$f.$ext" "$WORK/o/$f.1.$ext" || fail "mergecap $f"
  res=$("$PCAPCMP" "$WORK/exp.pcap" "$WORK/$f.all") || fail "$f: $res"
done
[ "$(head -c4 "$WORK/o/b.pcapng" | od -An -tx1 | tr -d ' ')" = 0a0d0d0a ] ||
  fail "b.pcapng is not pcapng"
ok "-w a.pcap -w b.pcapng -w -: each holds all 6000 packets ($res); SIGHUP reopened both files"

# Bad combinations: one line naming the option, exit 2.
bad() { # REGEX ARGS...
  local re=$1; shift
  "$RECEIVER" --listen 127.0.0.1:0 "$@" >/dev/null 2>"$WORK/bad.err"
  local rc=$?
  [ "$rc" -eq 2 ] || fail "$* exited $rc, expected 2"
  [ "$(wc -l <"$WORK/bad.err")" -eq 1 ] || fail "$*: not one line: $(cat "$WORK/bad.err")"
  expect_line "$WORK/bad.err" "$re" "$*"
}
bad "-w $WORK/x.pcap is given twice" -w "$WORK/x.pcap" -w "$WORK/x.pcap"
bad "-w - is given twice" -w - -w -
bad "too many -w outputs \(at most 4\)" -w "$WORK/1" -w "$WORK/2" -w "$WORK/3" -w "$WORK/4" -w "$WORK/5"
bad "9 outputs: at most 8 in all" -w "$WORK/1" -w "$WORK/2" -w "$WORK/3" -w "$WORK/4" \
  --pcap-over-ip :0 --pcap-over-ip :0 --pcap-over-ip :0 --pcap-over-ip :0 --pcap-over-ip :0
bad "-C needs a file: standard output" -w - -C 1
bad "time-stamp-precision applies to pcap" -w "$WORK/n.pcap" -w "$WORK/n.pcapng" --time-stamp-precision nano
bad "--state $WORK/o/j: .* -w /tmp/elsewhere.pcap is not there" -w "$WORK/o/x.pcap" -w /tmp/elsewhere.pcap --state "$WORK/o/j"
ok "several -w: duplicates, too many, rotation of standard output alone, nano with pcapng, a journal that does not cover them: refused"

# Only a PCAP-over-IP output: --print-config works (no -w to name a
# journal after), and -C beside -w - rotates the file only.
"$RECEIVER" --listen 127.0.0.1:0 --pcap-over-ip 127.0.0.1:0 --print-config >"$WORK/pc" 2>"$WORK/pc.err" ||
  { cat "$WORK/pc.err"; fail "--print-config with only --pcap-over-ip"; }
expect_line "$WORK/pc" '^pcap-over-ip: \["127\.0\.0\.1:0"\]$' "print-config"
"$RECEIVER" --listen 127.0.0.1:0 -w "$WORK/o/r.pcap" -w - -C 1 --print-config >"$WORK/pc2" ||
  fail "-C with a file beside standard output"
expect_line "$WORK/pc2" '^write: \[.*"-".*\]$' "write as a list"
ok "--print-config with only --pcap-over-ip; -C beside -w - is accepted (files only)"
