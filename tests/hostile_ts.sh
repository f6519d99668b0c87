#!/usr/bin/env bash
# Issue 9, F1: a sensor sending a time stamp its receiver's output cannot
# hold (seconds INT64_MAX and a whole second of fraction, converted
# between micro- and nanoseconds, overflowed a signed 64-bit value and
# killed a UBSan build of the receiver with every session) is refused
# with ERROR 508 and one log line, and none of its batch is written. A
# well-behaved session open across the attack and a ps-sensor after it
# come through exactly; the receiver keeps running. Once for each
# output: microsecond pcap, nanosecond pcap, pcapng. No corpus needed.
. "$top_srcdir/tests/lib.sh"
HOSTILE="$top_builddir/tests/hostile"
[ -x "$HOSTILE" ] || fail "$HOSTILE not built (make tests/hostile)"
command -v python3 >/dev/null || skip "python3 writes this test's capture"

# A microsecond capture with odd times every output holds, kept
# verbatim: after 2038, the last second of 32 bits, fractions at, above
# and far above 10^6.
python3 - "$WORK/odd.pcap" <<'EOF'
import struct, sys
times = [(1700000000, 0), (2147483648, 1), (4294967294, 999999),
         (1700000001, 1000000), (1700000002, 1500000),
         (1700000003, 4294967295)]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i, (sec, frac) in enumerate(times):
        data = bytes.fromhex("ffffffffffff0200000000010800")
        data += bytes((i * 13 + k) & 0xFF for k in range(46 + i))
        f.write(struct.pack("<IIII", sec, frac, len(data), len(data)) + data)
EOF
NODD=6

# round NAME TSRES SEC ERROR-TEXT RECEIVER-ARGS...
round() {
  local name=$1 tsres=$2 sec=$3 want=$4
  shift 4
  local ext=pcap
  case " $* " in *" pcapng "*) ext=pcapng ;; esac
  local out="$WORK/$name.$ext"
  start_receiver "$WORK/$name.log" -w "$out" --split-by-sensor "$@"
  rm -f "$WORK/go"
  HOSTILE_GO="$WORK/go" "$HOSTILE" good 127.0.0.1 "$RPORT" \
    >"$WORK/$name.good" 2>&1 &
  local gpid=$!
  PIDS+=("$gpid")
  wait_log "$WORK/$name.good" 'batch 1 acknowledged' 1 \
    "$name: the good session's first batch was not acknowledged"

  HOSTILE_TSRES=$tsres HOSTILE_SEC=$sec "$HOSTILE" tsoverflow 127.0.0.1 \
    "$RPORT" >"$WORK/$name.bad" 2>&1 ||
    { cat "$WORK/$name.bad" "$WORK/$name.log" >&2; fail "$name: the receiver did not end the hostile connection"; }
  grep -q "receiver sent ERROR 508: batch 1, packet 2: $want" "$WORK/$name.bad" ||
    { cat "$WORK/$name.bad" >&2; fail "$name: no ERROR 508 saying why"; }
  ok "$name: hostile sensor refused: $(grep -o 'ERROR 508: .*' "$WORK/$name.bad")"
  kill -0 "$RPID" 2>/dev/null || { cat "$WORK/$name.log" >&2; fail "$name: ps-receiver died"; }

  touch "$WORK/go"
  wait "$gpid" || { cat "$WORK/$name.good" >&2; fail "$name: the good session failed"; }
  ok "$name: the session open across the attack finished cleanly"
  "$SENSOR" -r "$WORK/odd.pcap" --receiver "127.0.0.1:$RPORT" --name good-sensor \
    --connect-timeout 20 2>"$WORK/$name.sensor.log" ||
    { cat "$WORK/$name.sensor.log" >&2; fail "$name: ps-sensor failed after the attack"; }
  stop_receiver

  expect_line "$WORK/$name.log" \
    "sensor hostile-tsoverflow \(.*\) dropped: .*batch 1, packet 2: $want" \
    "$name: receiver log"
  local got
  got=$(grep -Ec 'sensor hostile-tsoverflow \(.*\) dropped:' "$WORK/$name.log")
  [ "$got" -eq 1 ] || fail "$name: $got log lines for the hostile sensor"
  expect_line "$WORK/$name.log" "3 sensor sessions \(1 failed\), $((6 + NODD)) packets" \
    "$name: summary"
  local base="${out%.*}"
  if [ "$ext" = pcap ]; then
    res=$("$PCAPCMP" "$WORK/odd.pcap" "$base.good-sensor.pcap") ||
      fail "$name: ps-sensor's packets differ: $res"
    [ "$("$PCAPCMP" --summary "$base.hostile-good.pcap" | cut -d' ' -f1)" = 6 ] ||
      fail "$name: the good session's file does not hold its 6 packets"
    # The refused batch's first packet was fine, and is not there either.
    local hf="$base.hostile-tsoverflow.pcap"
    [ ! -e "$hf" ] || [ "$(stat -c %s "$hf")" -eq 24 ] ||
      fail "$name: the hostile sensor's file holds more than a header"
  else
    res=$("$PCAPCMP" --iface good-sensor/odd.pcap "$WORK/odd.pcap" \
      "$base.good-sensor.pcapng") || fail "$name: ps-sensor's packets differ: $res"
    "$PCAPCMP" --list "$base.hostile-good.pcapng" | grep -qx 'epb 0 6' ||
      fail "$name: the good session's file does not hold its 6 packets"
    "$PCAPCMP" --list "$base.hostile-tsoverflow.pcapng" | grep -qx 'epb 0 0' ||
      fail "$name: the hostile sensor's file holds packets"
  fi
  ok "$name: ps-sensor's odd times came through exactly: $res"
}

round micro 9 9223372036854775807 \
  'interface eth0: time stamp 9223372036854775807 s [+] 1000000000 nanoseconds cannot be written: pcap output in microseconds holds 0 to 4294967295 s'
round nano 6 9223372036854775807 \
  'interface eth0: time stamp 9223372036854775807 s [+] 1000000 microseconds cannot be written: pcap output in nanoseconds holds 0 to 4294967295 s' \
  --time-stamp-precision nano
# 2^64 ns is 18446744073.7 s: pcapng's 64 bits end within that second.
round pcapng 9 18446744073 \
  'interface eth0: time stamp 18446744073 s [+] 1000000000 nanoseconds cannot be written: pcapng output in nanoseconds holds 0 to 18446744072 s' \
  -F pcapng
