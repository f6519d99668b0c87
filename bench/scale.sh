#!/bin/bash
# Many sensors on one receiver: idle memory per session and CPU per packet.
#
#   bench/scale.sh --build DIR [--idle "0 1000 10000"] [--cpu "1 1000"]
#                  [--pps 20000] [--secs 8] [--runs 1] [--out FILE]
#                  [--loadgen-args "..."] [--receiver-args "..."]
#
# idle N: a fresh ps-receiver (--max-sensors 20000, -w to /dev/shm, the
#   admin API on), bench/loadgen -n N -i HOLD -d 0 connects N sensors
#   (shared-key authenticated, one interface each) and keeps them idle
#   (heartbeats only); once all are connected and the receiver's /metrics
#   shows ps_receiver_sessions N, the receiver's VmRSS (/proc/PID/status)
#   is taken. N = 0: the receiver's RSS 2 s after it listens. Row:
#     idle N rss_kb sessions_seen (rss - rss(0)) / N in KiB
# cpu N: a fresh receiver, loadgen -n N -p PPS -d SECS -i 2: PPS packets
#   per second in total spread over N sessions; the receiver's utime+stime
#   (/proc/PID/stat) is read when all N are connected and idle (before)
#   and after loadgen has closed every stream (after): traffic CPU =
#   after - before. Row:
#     cpu N packets_sent packets_written traffic_cpu_s us_per_packet
#   and, for N > the first N of the list, the ratio to the first.
# Rows (tab-separated) go to stdout and to --out; logs to stderr.
# Needs RLIMIT_NOFILE hard limit above N + 64 for loadgen (root raises it).
set -u
set -o pipefail
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD=
IDLE="0 1000 10000"
CPU="1 1000"
PPS=20000
SECS=8
RUNS=1
OUT=
LGARGS=
RARGS=
while [ $# -gt 0 ]; do
  case "$1" in
  --build) BUILD=$2; shift ;;
  --idle) IDLE=$2; shift ;;
  --cpu) CPU=$2; shift ;;
  --pps) PPS=$2; shift ;;
  --secs) SECS=$2; shift ;;
  --runs) RUNS=$2; shift ;;
  --out) OUT=$2; shift ;;
  --loadgen-args) LGARGS=$2; shift ;;
  --receiver-args) RARGS=$2; shift ;;
  -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$BUILD" ] && [ -e "$BUILD/tools/ps-receiver" ] ||
  { echo "scale.sh: give --build BUILDDIR (with tools/ps-receiver)" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
export LD_LIBRARY_PATH="$BUILD/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
RECEIVER=$BUILD/tools/.libs/ps-receiver
[ -x "$RECEIVER" ] || RECEIVER=$BUILD/tools/ps-receiver
W=$(mktemp -d /dev/shm/ps-scale.XXXXXX)
RPID=
LPID=
cleanup() {
  [ -n "$LPID" ] && kill "$LPID" 2>/dev/null
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date +%T)] scale: $*" >&2; }
row() {
  local IFS=$'\t'
  echo "$*"
  [ -z "$OUT" ] || echo "$*" >>"$OUT"
}

${CC:-cc} -O2 -I"$SRCDIR/include" -I"$BUILD/include" -o "$W/loadgen" \
  "$SRCDIR/bench/loadgen.c" "$BUILD/lib/.libs/libpacketstreamer.so" ||
  { echo "scale.sh: cannot build bench/loadgen.c" >&2; exit 1; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/key"
chmod 600 "$W/key"

start_receiver() {
  rm -f "$W/port" "$W/aport" "$W/out.pcap"
  # shellcheck disable=SC2086
  "$RECEIVER" --listen 127.0.0.1:0 --port-file "$W/port" \
    --admin 127.0.0.1:0 --admin-port-file "$W/aport" \
    --auth-key-file "$W/key" --max-sensors 20000 -w "$W/out.pcap" \
    $RARGS 2>"$W/r.log" &
  RPID=$!
  for _ in $(seq 1 200); do
    [ -s "$W/port" ] && [ -s "$W/aport" ] && break
    sleep 0.05
  done
  PORT=$(awk '{print $NF}' "$W/port")
  APORT=$(awk '{print $NF}' "$W/aport")
  [ -n "$PORT" ] || { echo "scale.sh: receiver did not start" >&2; cat "$W/r.log" >&2; exit 1; }
}
stop_receiver() {
  kill -INT "$RPID"
  wait "$RPID"
  RPID=
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
sessions() {
  curl -s "http://127.0.0.1:$APORT/metrics" |
    awk '$1 == "ps_receiver_sessions" {print $2}'
}
# wait_sessions N: until the receiver counts N sessions (or 120 s)
wait_sessions() {
  local n
  for _ in $(seq 1 600); do
    n=$(sessions)
    [ "$n" = "$1" ] && return 0
    sleep 0.2
  done
  log "receiver shows ${n:-?} sessions, not $1"
  return 1
}
wait_line() { # file pattern
  for _ in $(seq 1 1200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$LPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

RSS0=
for run in $(seq 1 "$RUNS"); do
  for n in $IDLE; do
    start_receiver
    if [ "$n" = 0 ]; then
      sleep 2
      RSS0=$(rss_kb "$RPID")
      row idle 0 "$RSS0" "$(sessions)" ""
      stop_receiver
      continue
    fi
    log "idle: $n sessions (run $run)"
    hold=$((10 + n / 500))
    # loadgen needs two descriptors a stream: at most 5000 per process
    parts=$(( (n + 4999) / 5000 ))
    lps=()
    for p in $(seq 1 "$parts"); do
      k=$(( n / parts + (p <= n % parts ? 1 : 0) ))
      # shellcheck disable=SC2086
      "$W/loadgen" -n "$k" -i "$hold" -d 0 -k "$W/key" $LGARGS \
        127.0.0.1 "$PORT" >"$W/lg$p.out" 2>"$W/lg$p.err" &
      LPID=$!
      lps+=("$!")
    done
    for p in $(seq 1 "$parts"); do
      LPID=${lps[$((p - 1))]}
      wait_line "$W/lg$p.err" "loadgen: connected" || { cat "$W/lg$p.err" >&2; exit 1; }
    done
    wait_sessions "$n" || exit 1
    sleep 2
    rss=$(rss_kb "$RPID")
    seen=$(sessions)
    per=
    [ -n "$RSS0" ] && per=$(awk -v a="$rss" -v b="$RSS0" -v n="$n" 'BEGIN {printf "%.2f", (a - b) / n}')
    row idle "$n" "$rss" "$seen" "$per"
    for p in $(seq 1 "$parts"); do
      wait "${lps[$((p - 1))]}" || { log "loadgen failed"; cat "$W/lg$p.err" >&2; }
    done
    LPID=
    cat "$W"/lg[0-9]*.out >"$W/lg.out"
    stop_receiver
    [ "$(grep -c "failed 0 " "$W/lg.out")" = "$parts" ] || { log "loadgen: $(cat "$W/lg.out")"; exit 1; }
    rm -f "$W"/lg[0-9]*.out "$W"/lg[0-9]*.err
  done

  FIRST=
  for n in $CPU; do
    start_receiver
    log "cpu: $n sessions, $PPS pps in total, ${SECS}s (run $run)"
    # shellcheck disable=SC2086
    "$W/loadgen" -n "$n" -p "$PPS" -d "$SECS" -i 2 -k "$W/key" $LGARGS \
      127.0.0.1 "$PORT" >"$W/lg.out" 2>"$W/lg.err" &
    LPID=$!
    wait_line "$W/lg.err" "loadgen: connected" || { cat "$W/lg.err" >&2; exit 1; }
    wait_sessions "$n" || exit 1
    before=$(cpu_s "$RPID")
    wait "$LPID" || { log "loadgen failed"; cat "$W/lg.err" >&2; }
    LPID=
    after=$(cpu_s "$RPID")
    stop_receiver
    sent=$(sed -n 's/.* packets \([0-9]*\) (per stream.*/\1/p' "$W/lg.out")
    written=$(sed -n 's/.* sensor sessions (.* failed), \([0-9]*\) packets.*/\1/p' "$W/r.log" | tail -1)
    us=$(awk -v a="$after" -v b="$before" -v p="$written" 'BEGIN {printf "%.3f", (a - b) / p * 1e6}')
    [ -n "$FIRST" ] || FIRST=$us
    ratio=$(awk -v a="$us" -v b="$FIRST" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')
    row cpu "$n" "$sent" "$written" "$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.2f", a - b}')" "$us" "$ratio"
    [ "$sent" = "$written" ] || log "cpu $n: sent $sent, written $written"
  done
done
