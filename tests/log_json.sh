#!/usr/bin/env bash
# --log-format json: both tools write one JSON object a line on standard
# error (ts, level, tool, sensor, event, msg, and the counters of a
# summary as numbers), through a real streaming run; hostile strings (a
# sensor name with quotes, backslashes and bytes that are not UTF-8, an
# output file name with newlines and every control byte) stay valid
# JSON; a bad value is the usual one-line usage error. Needs no corpus.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
python3 "$top_srcdir/tests/mkpcap.py" "$WORK/a.pcap" 37 || fail "mkpcap"
mix B 300 4

# Usage errors stay plain text, exit 2, on both tools.
for tool in "$SENSOR" "$RECEIVER"; do
  out=$("$tool" --log-format xml 2>&1)
  rc=$?
  [ "$rc" -eq 2 ] || fail "$tool --log-format xml exited $rc, expected 2"
  want="$(basename "$tool"): unknown --log-format 'xml': use text or json (see $(basename "$tool") --help)"
  [ "$out" = "$want" ] || fail "--log-format xml said '$out', expected '$want'"
  out=$("$tool" --log-format= 2>&1)
  [ $? -eq 2 ] && [ "$out" = "$(basename "$tool"): empty --log-format: give text or json (see $(basename "$tool") --help)" ] \
    || fail "empty --log-format: '$out'"
done
# A name with control bytes is refused in one line, without them (it
# used to be printed raw, a newline splitting the error).
out=$("$SENSOR" --log-format json -r "$WORK/a.pcap" --receiver 127.0.0.1:9 \
  --name $'evil\n2024-01-01T00:00:00Z ps-sensor: forged' 2>&1)
rc=$?
[ "$rc" -eq 2 ] || fail "--name with a newline exited $rc, expected 2"
[ "$out" = "ps-sensor: invalid --name: control byte 0x0a at offset 4: use printable characters (see ps-sensor --help)" ] \
  || fail "--name with a newline said: $out"

# The output's file name: every byte but NUL, '/' and the template
# characters % { }, so the receiver's own lines carry control bytes,
# quotes, backslashes and invalid UTF-8.
outname=$(python3 -c '
import sys
b = bytes(c for c in range(1, 256) if c not in b"/%{}")[:240] + b".pcap"
sys.stdout.buffer.write(b)')
[ -n "$outname" ] || fail "no file name"
# ($(...) dropped no byte: none is a newline at the end.)
OUT="$WORK/$outname"
start_receiver "$WORK/r.log" --log-format json -w "$OUT" --state none -v
# Two sensors, one after the other; a's name is hostile.
NAME_A=$'q"uo\\te \xff\xfe\xc3\x28 caf\xc3\xa9 {}'
"$SENSOR" --log-format json -r "$WORK/a.pcap" --name "$NAME_A" \
  --receiver "127.0.0.1:$RPORT" 2>"$WORK/a.log" || { cat "$WORK/a.log" >&2; fail "sensor a"; }
"$SENSOR" --log-format json -r "$B" --name b --receiver "127.0.0.1:$RPORT" \
  2>"$WORK/b.log" || { cat "$WORK/b.log" >&2; fail "sensor b"; }
wait_log "$WORK/r.log" '"event":"disconnected"' 2 "sensors did not finish"
stop_receiver
[ -s "$OUT" ] || fail "no output file"
# What the inputs and the output hold, counted by libpcap (pcapcmp),
# not by the tools.
read -r na _ _ bytes_a < <("$PCAPCMP" --summary "$WORK/a.pcap")
read -r nb _ _ bytes_b < <("$PCAPCMP" --summary "$B")
read -r nout _ _ bytes_out < <("$PCAPCMP" --summary "$OUT")
[ "$na" -eq 37 ] && [ "$nb" -eq 300 ] || fail "inputs hold $na and $nb packets"
[ "$nout" -eq $((na + nb)) ] && [ "$bytes_out" -eq $((bytes_a + bytes_b)) ] \
  || fail "the output holds $nout packets, $bytes_out bytes"

printf '%s' "$NAME_A" >"$WORK/name_a"
printf '%s' "$OUT" >"$WORK/outpath"
python3 "$top_srcdir/tests/log_json.py" \
  "$WORK/a.log" "$WORK/b.log" "$WORK/r.log" "$WORK/name_a" "$WORK/outpath" \
  "$na" "$bytes_a" "$nb" "$bytes_b" || fail "JSON lines"

# Text stays the default: the same run's lines without --log-format.
start_receiver "$WORK/t.log" -w "$WORK/t.pcap" --state none
"$SENSOR" -r "$WORK/a.pcap" --name t --receiver "127.0.0.1:$RPORT" 2>"$WORK/ta.log" \
  || fail "text sensor"
wait_log "$WORK/t.log" "sensor t .* disconnected: 37 packets" 1 "text run"
stop_receiver
grep -q '^{' "$WORK/t.log" "$WORK/ta.log" && fail "text mode wrote JSON"
expect_line "$WORK/ta.log" '^[0-9-]+T[0-9:]+Z ps-sensor: 37 packets \(7400 bytes\) sent to' "text summary"
ok "log_json: $(wc -l <"$WORK/r.log") receiver and $(cat "$WORK/a.log" "$WORK/b.log" | wc -l) sensor JSON lines checked"
