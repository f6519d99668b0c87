#!/usr/bin/env bash
# Output files dumpcap/tcpdump style: rotation by size (-C), time (-G) and
# count (-W), one output per sensor, --post-rotate, SIGHUP, never
# overwriting, --append repairing a torn tail. Every file must open alone
# (tshark, when installed) and the files in order must hold the input,
# packet for packet.
. "$top_srcdir/tests/lib.sh"
command -v mergecap >/dev/null || skip "mergecap (wireshark-common) is not installed"
mix MANY 4000 # about 3 MB
mix AFS 601
mix MIXB 300 2
PPTP="$DATA/pptp.pcap"

# valid FILE...: each file reads cleanly in tshark (if any) and libpcap.
valid() {
  local f
  for f in "$@"; do
    if command -v tshark >/dev/null; then
      tshark -r "$f" -q >/dev/null 2>"$WORK/tshark.err" \
        || { cat "$WORK/tshark.err" >&2; fail "tshark cannot read $f"; }
    fi
    "$PCAPCMP" --summary "$f" >/dev/null || fail "libpcap cannot read $f"
  done
}

# same EXPECTED FILE...: the files, concatenated in the order given, hold
# EXPECTED's packets.
same() {
  local exp=$1; shift
  mergecap -a -F pcap -w "$WORK/cat.pcap" "$@" || fail "mergecap $*"
  res=$("$PCAPCMP" "$exp" "$WORK/cat.pcap") || fail "$*: $res"
}

send() { # NAME FILE
  "$SENSOR" -q -r "$2" --receiver "127.0.0.1:$RPORT" --name "$1" \
    2>"$WORK/s-${1//\//_}.log" || { cat "$WORK/s-${1//\//_}.log" >&2; fail "sensor $1 ($2)"; }
}

# wait_lines FILE N: FILE gets N lines within 10 s.
wait_lines() {
  local i
  for i in $(seq 1 200); do
    [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 has $(cat "$1" 2>/dev/null | wc -l) lines, expected $2"
}

# 1. By size, with a post-rotate command on every closed file.
mkdir "$WORK/size"
start_receiver "$WORK/r1.log" -w "$WORK/size/out.pcap" -C 200k \
  --post-rotate "echo >>'$WORK/post.log'"
send a "$MANY"
stop_receiver
mapfile -t files < <(ls -v "$WORK"/size/out*.pcap)
[ "${#files[@]}" -ge 2 ] || fail "-C 200k made ${#files[@]} files of a 3 MB capture"
[ "${files[0]}" = "$WORK/size/out.pcap" ] || fail "first file is ${files[0]}"
[ "${files[1]}" = "$WORK/size/out.1.pcap" ] || fail "second file is ${files[1]}"
valid "${files[@]}"
same "$MANY" "${files[@]}"
wait_lines "$WORK/post.log" "${#files[@]}"
ok "-C: ${#files[@]} files, each valid, together the input ($res); --post-rotate ran on each"

# 2. By count: -W 2 keeps the last two.
mkdir "$WORK/ring"
start_receiver "$WORK/r2.log" -w "$WORK/ring/out.pcapng" -C 200k -W 2
send a "$MANY"
stop_receiver
mapfile -t files < <(ls -v "$WORK"/ring/out*.pcapng)
[ "${#files[@]}" -eq 2 ] || fail "-W 2 left ${#files[@]} files: ${files[*]}"
[ ! -e "$WORK/ring/out.pcapng" ] || fail "-W 2 kept the oldest file"
expect_line "$WORK/r2.log" "deleted .*/ring/out.pcapng: at most 2 files are kept" "ring deletion logged"
valid "${files[@]}"
ok "-W 2: the two newest files remain, the oldest deletions logged"

# 3. By time: -G 1 with a strftime name; sensors a second apart.
mkdir "$WORK/time"
start_receiver "$WORK/r3.log" -w "$WORK/time/t-%Y%m%d-%H%M%S.pcap" -G 1
send a "$AFS"
sleep 1.2
send b "$MIXB"
sleep 1.2
send c "$PPTP"
stop_receiver
mapfile -t files < <(ls "$WORK"/time/t-*.pcap | sort)
[ "${#files[@]}" -ge 2 ] || fail "-G 1 made ${#files[@]} files over 2.4 s"
for f in "${files[@]}"; do
  [[ $(basename "$f") =~ ^t-[0-9]{8}-[0-9]{6}(\.[0-9]+)?\.pcap$ ]] || fail "-G file name $f"
done
valid "${files[@]}"
mergecap -a -F pcap -w "$WORK/abc.pcap" "$AFS" "$MIXB" "$PPTP"
same "$WORK/abc.pcap" "${files[@]}"
ok "-G 1: ${#files[@]} time-named files, together the input ($res)"

# 4. One output per sensor, with and without {sensor} in the name.
mkdir "$WORK/split"
start_receiver "$WORK/r4.log" -w "$WORK/split/{sensor}-x.pcapng" --split-by-sensor
send one "$AFS" & p1=$!
send ../two "$PPTP" & p2=$!
wait $p1 && wait $p2 || fail "a sensor failed"
stop_receiver
res=$("$PCAPCMP" --iface "one/${AFS##*/}" "$AFS" "$WORK/split/one-x.pcapng") || fail "one: $res"
res=$("$PCAPCMP" --iface ../two/pptp.pcap "$PPTP" "$WORK/split/_._two-x.pcapng") || fail "two: $res"
valid "$WORK/split/one-x.pcapng" "$WORK/split/_._two-x.pcapng"
[ "$(ls "$WORK/split" | wc -l)" -eq 2 ] || fail "split: $(ls "$WORK/split")"
start_receiver "$WORK/r5.log" -w "$WORK/split/all.pcap" --split-by-sensor
send one "$AFS"
send two "$PPTP"
stop_receiver
same "$AFS" "$WORK/split/all.one.pcap"
same "$PPTP" "$WORK/split/all.two.pcap"
ok "--split-by-sensor: one file per sensor, names made safe ({sensor} and .SENSOR)"

# 5. SIGHUP: a new file from the next write on; nothing lost or doubled.
mkdir "$WORK/hup"
start_receiver "$WORK/r6.log" -w "$WORK/hup/h.pcap"
send a "$AFS"
kill -HUP "$RPID"
sleep 0.2
send b "$MIXB"
send c "$PPTP"
stop_receiver
[ -f "$WORK/hup/h.1.pcap" ] || fail "SIGHUP made no new file: $(ls "$WORK/hup")"
valid "$WORK/hup/h.pcap" "$WORK/hup/h.1.pcap"
same "$WORK/abc.pcap" "$WORK/hup/h.pcap" "$WORK/hup/h.1.pcap"
ok "SIGHUP: h.pcap then h.1.pcap, together the input ($res)"

# 6. An existing file is never overwritten.
printf 'precious' >"$WORK/keep.pcap"
start_receiver "$WORK/r7.log" -w "$WORK/keep.pcap"
send a "$PPTP"
stop_receiver
[ "$(cat "$WORK/keep.pcap")" = precious ] || fail "an existing file was overwritten"
expect_line "$WORK/r7.log" "warning: .*/keep.pcap exists: writing to .*/keep.1.pcap instead" "warning names both files"
same "$PPTP" "$WORK/keep.1.pcap"
ok "existing output kept; keep.1.pcap written instead, with a warning"

# 7. --append cuts a torn tail and continues after the last whole record.
start_receiver "$WORK/r8.log" -w "$WORK/app.pcap" --append
send a "$AFS"
stop_receiver
n=$("$PCAPCMP" --summary "$AFS" | cut -d' ' -f1)
truncate -s -50 "$WORK/app.pcap"
start_receiver "$WORK/r9.log" -w "$WORK/app.pcap" --append
send b "$PPTP"
stop_receiver
# pcap is checked once the first interface tells the link type.
expect_line "$WORK/r9.log" "app.pcap ended in a torn record: cut [0-9]+ bytes" "repair logged"
[ ! -e "$WORK/app.1.pcap" ] || fail "--append started a new file"
editcap -r "$AFS" "$WORK/afs-1.pcap" "1-$((n - 1))" 2>/dev/null \
  || fail "editcap"
mergecap -a -F pcap -w "$WORK/exp.pcap" "$WORK/afs-1.pcap" "$PPTP"
valid "$WORK/app.pcap"
res=$("$PCAPCMP" "$WORK/exp.pcap" "$WORK/app.pcap") || fail "append: $res"
ok "--append: torn last record cut, then continued ($res)"

# 8. Bad values: one line naming the option, exit 2.
bad() { # REGEX ARGS...
  local re=$1; shift
  "$RECEIVER" --listen 127.0.0.1:0 "$@" >/dev/null 2>"$WORK/bad.err"
  local rc=$?
  [ "$rc" -eq 2 ] || fail "$* exited $rc, expected 2"
  [ "$(wc -l <"$WORK/bad.err")" -eq 1 ] || fail "$*: not one line: $(cat "$WORK/bad.err")"
  expect_line "$WORK/bad.err" "$re" "$*"
}
bad "invalid -C: '0' is outside" -w "$WORK/x" -C 0
bad "invalid -C: 'lots' is not a whole number" -w "$WORK/x" -C lots
bad "invalid -G: '-1' is not a whole number" -w "$WORK/x" -G -1
bad "invalid -W: '0' is outside" -w "$WORK/x" -C 1 -W 0
bad "-W needs -C SIZE or -G SECONDS" -w "$WORK/x" -W 3
bad "-C needs a file: standard output" -w - -C 1
bad "--append needs a file" -w - --append
bad "--split-by-sensor needs a file" -w - --split-by-sensor
bad "names \{sensor\}: add --split-by-sensor" -w "$WORK/{sensor}.pcap"
bad "empty --post-rotate command" -w "$WORK/x" --post-rotate ""
ok "bad rotation options: one line each, exit 2"

# 9. A named pipe (Wireshark reading it) and a device are written as they
# are, never renamed or journaled; an idle receiver leaves one valid,
# empty capture.
mkfifo "$WORK/pipe"
cat "$WORK/pipe" >"$WORK/from-pipe.pcap" &
CATPID=$!
start_receiver "$WORK/r10.log" -w "$WORK/pipe"
send pipe "$AFS"
stop_receiver
wait "$CATPID"
res=$("$PCAPCMP" "$AFS" "$WORK/from-pipe.pcap") || fail "named pipe: $res"
[ ! -e "$WORK/pipe.1" ] && [ ! -e "$WORK/.pipe.state" ] || fail "named pipe: $(ls -a "$WORK")"
start_receiver "$WORK/r11.log" -w /dev/null
send null "$AFS"
stop_receiver
[ -c /dev/null ] && [ ! -e /dev/null.1 ] && [ ! -e /dev/.null.state ] || fail "/dev/null was replaced"
mkdir "$WORK/idle"
start_receiver "$WORK/r12.log" -w "$WORK/idle/out.pcap"
stop_receiver
[ "$(ls "$WORK/idle")" = "out.pcap" ] || fail "idle receiver left: $(ls "$WORK/idle")"
valid "$WORK/idle/out.pcap"
ok "named pipe ($res) and /dev/null written as they are; an idle receiver leaves one empty capture"
