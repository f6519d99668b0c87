#!/usr/bin/env bash
# Hostile peers: garbage, truncated, oversized, decompression-bomb,
# out-of-sequence and silent connections each cost only their own
# connection, with a log line naming the reason, while a real sensor
# streams a capture through the same receiver untouched.
. "$top_srcdir/tests/lib.sh"
mix AFS 601 # 601 generated frames (once the corpus' afs.pcap, hence the name)
HOSTILE="$top_builddir/tests/hostile"
[ -x "$HOSTILE" ] || fail "$HOSTILE not built (make tests/hostile)"

start_receiver "$WORK/r.log" -w "$WORK/out.pcap"

# Mode -> a regular expression for the receiver's line about it. Peers
# that broke the protocol before their hello are known by address only.
declare -A reason=(
  [garbage]='connection from 127\.0\.0\.1:[0-9]+ closed before the hello: unknown frame type'
  [oversized-hello]='connection from .* closed before the hello: HELLO frame of 4294967295 bytes exceeds the frame limit'
  [idle]='connection from .* closed before the hello: closed before the hello$'
  [truncated]='sensor hostile-truncated \(.*\) dropped: .*: connection closed without the end-of-stream message'
  [oversized]='sensor hostile-oversized \(.*\) dropped: .*: BATCH frame of 4294967295 bytes exceeds the frame limit'
  [bomb]='sensor hostile-bomb \(.*\) dropped: .*: zlib batch inflates beyond its declared 1048576 bytes'
  [badseq]='sensor hostile-badseq \(.*\) dropped: .*: batch 5 follows batch 0: batches are missing'
)
modes=(garbage truncated oversized oversized-hello bomb badseq idle)
declare -A runs=()
hpids=()
hnames=()

# hostile MODE: one hostile connection in the background.
hostile() {
  local n=${#hpids[@]}
  HOSTILE_HOLD=3 "$HOSTILE" "$1" 127.0.0.1 "$RPORT" >"$WORK/h$n.out" 2>&1 &
  hpids+=($!)
  hnames+=("$1")
  PIDS+=($!)
  runs[$1]=$(( ${runs[$1]:-0} + 1 ))
}

# Round 1 before the sensor connects (the idle one stays for 3 s), the
# sensor, round 2 while it streams, then garbage for as long as it runs.
for m in "${modes[@]}"; do hostile "$m"; done
"$SENSOR" -r "$AFS" --receiver "127.0.0.1:$RPORT" --connect-timeout 20 \
  2>"$WORK/sensor.log" &
spid=$!
PIDS+=("$spid")
for m in "${modes[@]}"; do hostile "$m"; done
while kill -0 "$spid" 2>/dev/null && [ "${runs[garbage]}" -lt 50 ]; do
  hostile garbage
  wait "${hpids[-1]}"
done

wait "$spid"
src=$?
[ "$src" -eq 0 ] || { cat "$WORK/sensor.log" >&2; fail "ps-sensor exited $src"; }
ok "the sensor finished with exit status 0"
for i in "${!hpids[@]}"; do
  wait "${hpids[$i]}"
  hrc=$?
  [ "$hrc" -eq 0 ] || { cat "$WORK/h$i.out" >&2; fail "hostile ${hnames[$i]} exited $hrc (the receiver did not end it)"; }
done
ok "${#hpids[@]} hostile connections ran"

kill -0 "$RPID" 2>/dev/null || { cat "$WORK/r.log" >&2; fail "ps-receiver died"; }
ok "ps-receiver is still running"

res=$("$PCAPCMP" "$AFS" "$WORK/out.pcap") || fail "output differs: $res"
ok "the capture came through: $res"
n=${res%% *}
expect_line "$WORK/r.log" "sensor .* disconnected: $n packets" "sensor log line"

# One line per hostile connection, with its reason.
for m in "${modes[@]}"; do
  got=$(grep -Ec -- "${reason[$m]}" "$WORK/r.log")
  [ "$got" -eq "${runs[$m]}" ] || { cat "$WORK/r.log" >&2; fail "$m: ${runs[$m]} connections but $got log lines matching /${reason[$m]}/"; }
  ok "$m: ${runs[$m]} connections, ${runs[$m]} log lines like: $(grep -Em1 -- "${reason[$m]}" "$WORK/r.log" | sed 's/^[^ ]* ps-receiver: //')"
done
# The receiver told the peers why, where they stayed to hear it.
grep -q 'receiver sent ERROR 510: zlib batch inflates beyond' "$WORK"/h*.out || fail "the bomb got no ERROR frame"
grep -q 'receiver sent ERROR 508: batch 5 follows batch 0' "$WORK"/h*.out || fail "badseq got no ERROR frame"

stop_receiver
ok "ps-receiver exited 0 on SIGINT"
total=${#hpids[@]}
# Hostile connections that never said hello are not sensor sessions.
nohello=$(grep -c "connection from .* closed before the hello" "$WORK/r.log")
[ "$nohello" -gt 0 ] && [ "$nohello" -lt "$total" ] || fail "$nohello of $total hostile connections without a hello"
expect_line "$WORK/r.log" "$((total + 1 - nohello)) sensor sessions \($((total - nohello)) failed\), $nohello other connections closed before the hello, $n packets" "summary"
ok "summary: $(grep -E 'sensor sessions' "$WORK/r.log" | sed 's/^[^ ]* ps-receiver: //')"
