#!/bin/bash
# Benchmark harness for ps-sensor / ps-receiver (root; Linux).
#
#   bench/run.sh [--smoke] [--build DIR] [--runs N] [--secs S]
#                [--only live,throughput,sessions,scale,latency,codec] [--profile]
#                [--no-live-none] [--out DIR]
#
# Scenarios (see docs/PERFORMANCE.md for what each measures):
#   live        tcpreplay of a generated mix onto a veth pair between two
#               network namespaces made here, at 10k/50k/100k/200k pps and
#               top speed; per rate and run, once with `tcpdump -w` and
#               once with ps-sensor -> ps-receiver (loopback of the capture
#               namespace) capturing the same replay, and (unless
#               --no-live-none) once more with ps-sensor --compress none.
#   throughput  ps-sensor -r BIG.pcap -> ps-receiver on loopback, for
#               --compress none and zlib, next to iperf3 over the same
#               loopback and `tcpdump -r BIG.pcap -w OUT`, same run.
#   scale       bench/scale.sh: the receiver's RSS with 0, 1000 and 10000
#               idle authenticated sessions, and its CPU per packet at 1
#               vs 1000 sessions (20k pps in total), with the default
#               batching and with bench/loadgen -m 1000
#               (ps_stream_set_batch_max_delay_ms); smoke: 0/50 idle,
#               1 vs 50 sessions at 2000 pps for 1 s.
#   latency     idle link, 10 bursts of 3 packets; time from the kernel's
#               capture time stamp to the packet being on the receiver's
#               stdout (`-w -`), and the same for `tcpdump -U -w -`.
#   codec       bench/codecbench: zlib levels 1, 6, 9 on the mix and on
#               corpus files, with the library's batch framing.
# --smoke runs everything with tiny counts and one run (for CI).
# --profile adds `perf record` of ps-sensor -r (lz4, none) and of the live
# sensor at 200k pps (default settings).
# Raw rows go to OUT/results.tsv, tables (markdown) to OUT/report.md.
# Namespaces, veth and temporary files are removed on exit.
set -u
set -o pipefail

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PS_BUILD:-}
RUNS=3
SECS=8
SMOKE=0
ONLY=live,throughput,sessions,scale,latency,codec
PROFILE=0
LIVE_NONE=1
OUT=
while [ $# -gt 0 ]; do
  case "$1" in
  --smoke) SMOKE=1 ;;
  --build) BUILD=$2; shift ;;
  --runs) RUNS=$2; shift ;;
  --secs) SECS=$2; shift ;;
  --only) ONLY=$2; shift ;;
  --profile) PROFILE=1 ;;
  --no-live-none) LIVE_NONE=0 ;;
  --out) OUT=$2; shift ;;
  -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  echo "run.sh: needs root (network namespaces, capture)" >&2
  exit 77
fi
if [ -z "$BUILD" ]; then
  for d in "$PWD" "$SRCDIR"; do
    [ -x "$d/tools/ps-sensor" ] && BUILD=$d && break
  done
fi
if [ -z "$BUILD" ] || [ ! -e "$BUILD/tools/ps-sensor" ]; then
  echo "run.sh: no built tools: give --build BUILDDIR (with tools/ps-sensor)" >&2
  exit 2
fi
BUILD=$(cd "$BUILD" && pwd)
if [ "$SMOKE" = 1 ]; then
  RUNS=1
  SECS=1
fi
RATES="10000 50000 100000 200000 top"
[ "$SMOKE" = 1 ] && RATES="10000 top"

log() { echo "[$(date +%T)] $*" >&2; }
has() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

# ------------------------------------------------------------ tools
need=()
command -v tcpreplay >/dev/null || need+=(tcpreplay)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v iperf3 >/dev/null || need+=(iperf3)
[ -x /usr/bin/time ] || need+=(time)
command -v ip >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
command -v certtool >/dev/null || need+=(gnutls-bin)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 ||
    { echo "run.sh: cannot install ${need[*]}" >&2; exit 1; }
fi
TIME=/usr/bin/time

# The real binaries, not the libtool wrappers, so time and perf see them.
export LD_LIBRARY_PATH="$BUILD/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
SENSOR=$BUILD/tools/.libs/ps-sensor
RECEIVER=$BUILD/tools/.libs/ps-receiver
[ -x "$SENSOR" ] || SENSOR=$BUILD/tools/ps-sensor
[ -x "$RECEIVER" ] || RECEIVER=$BUILD/tools/ps-receiver

# ------------------------------------------------------------ workspace
TAG=psb$$
W=$(mktemp -d /tmp/ps-bench.XXXXXX)
SHM=$(mktemp -d /dev/shm/ps-bench.XXXXXX)
[ -n "$OUT" ] || OUT=$W/out
mkdir -p "$OUT"
NSA=${TAG}a
NSB=${TAG}b
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
  rm -rf "$SHM"
  [ "$OUT" = "$W/out" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CC=${CC:-cc}
for t in genmix pcapstat codecbench; do
  $CC -O2 -o "$W/$t" "$SRCDIR/bench/$t.c" -lpcap -lz ||
    { echo "run.sh: cannot build bench/$t.c (libpcap-dev, zlib1g-dev)" >&2; exit 1; }
done
# codecbench also measures zstd and lz4 where their headers are installed
# (libzstd-dev, liblz4-dev), to choose a faster codec by measurement.
for lib in zstd lz4; do
  up=$(echo "$lib" | tr a-z A-Z)
  if [ -f "/usr/include/$lib.h" ] &&
    $CC -O2 -o "$W/codecbench.$lib" -DHAVE_$up "$SRCDIR/bench/codecbench.c" \
      -lpcap -lz -l$lib 2>/dev/null; then
    CB_DEFS="${CB_DEFS:-} -DHAVE_$up"
    CB_LIBS="${CB_LIBS:-} -l$lib"
  fi
done
if [ -n "${CB_DEFS:-}" ]; then
  # shellcheck disable=SC2086
  $CC -O2 -o "$W/codecbench" $CB_DEFS "$SRCDIR/bench/codecbench.c" -lpcap -lz $CB_LIBS ||
    exit 1
fi

# loadgen links the library of the build tree under test
$CC -O2 -I"$SRCDIR/include" -I"$BUILD/include" -o "$W/loadgen" \
  "$SRCDIR/bench/loadgen.c" "$BUILD/lib/.libs/libpacketstreamer.so" ||
  { echo "run.sh: cannot build bench/loadgen.c" >&2; exit 1; }

# TLS material for the throughput scenario: a CA and a receiver
# certificate for 127.0.0.1 / localhost (ECDSA P-256), made with certtool
mkdir -p "$W/tls"
(
  cd "$W/tls" || exit 1
  printf 'cn = "bench CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
  printf 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' >srv.tmpl
  certtool --generate-privkey --key-type ecdsa --outfile ca.key &&
    certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem &&
    certtool --generate-privkey --key-type ecdsa --outfile srv.key &&
    certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem \
      --load-ca-privkey ca.key --template srv.tmpl --outfile srv.pem
) >"$W/certtool.log" 2>&1 || { cat "$W/certtool.log" >&2; echo "run.sh: certtool failed" >&2; exit 1; }

ip netns add "$NSA" && ip netns add "$NSB" || exit 1
ip link add "${TAG}0" type veth peer name "${TAG}1" || exit 1
ip link set "${TAG}0" netns "$NSA"
ip link set "${TAG}1" netns "$NSB"
ip -n "$NSA" link set "${TAG}0" name veth0
ip -n "$NSB" link set "${TAG}1" name veth1
ip -n "$NSA" addr add 10.199.0.1/24 dev veth0
ip -n "$NSB" addr add 10.199.0.2/24 dev veth1
for ns in "$NSA" "$NSB"; do
  # no IPv6 autoconfiguration chatter on the measured link
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip -n "$NSA" link set veth0 up
ip -n "$NSB" link set veth1 up
INA() { ip netns exec "$NSA" "$@"; }
INB() { ip netns exec "$NSB" "$@"; }

RES=$OUT/results.tsv
printf 'scenario\ttool\tparam\trun\tsent\tcaptured\twritten\tkdrop\tifdrop\tuser_s\tsys_s\trss_kb\twall_s\textra\n' >"$RES"
row() { local IFS=$'\t'; echo "$*" >>"$RES"; }

# waits until FILE contains PATTERN (up to 10 s)
wait_for() {
  local i
  for i in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "run.sh: timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}
# pid of the program GNU time runs (time ignores SIGINT itself)
child_of() {
  local i c
  for i in $(seq 1 100); do
    c=$(pgrep -P "$1" | head -1)
    [ -n "$c" ] && { echo "$c"; return 0; }
    sleep 0.02
  done
  return 1
}
# "user sys maxrss_kb elapsed" from a GNU time -o file
tfields() { tail -1 "$1"; }
PORT=6000
nextport() { PORT=$((PORT + 1)); }

# ------------------------------------------------------------ traffic
if [ "$SMOKE" = 1 ]; then MIXN=20000; else MIXN=200000; fi
"$W/genmix" "$MIXN" "$SHM/mix.pcap" 2>"$W/genmix.log" || exit 1
cat "$W/genmix.log" >&2
MIXBYTES=$(awk '{print $4}' "$W/genmix.log")

# tcpreplay output: "Actual: N packets (B bytes) sent in T seconds"
replay() { # rate count -> prints "sent wall"
  local rate=$1 n=$2 speed loops
  if [ "$rate" = top ]; then speed=--topspeed; else speed=--pps=$rate; fi
  loops=$(((n + MIXN - 1) / MIXN))
  INA tcpreplay -q -K -i veth0 "$speed" --loop="$loops" -L "$n" \
    "$SHM/mix.pcap" >"$W/replay.out" 2>&1
  awk '/Actual:/ {s=$2; for (i=1;i<=NF;i++) if ($i=="in") t=$(i+1)} END {print s+0, t+0}' \
    "$W/replay.out"
}

live_tcpdump() { # rate n run
  local rate=$1 n=$2 run=$3 tp cp
  rm -f "$SHM/td.pcap"
  ip netns exec "$NSB" $TIME -f '%U %S %M %e' -o "$W/td.time" \
    tcpdump -i veth1 -w "$SHM/td.pcap" 2>"$W/td.err" &
  tp=$!
  PIDS+=("$tp")
  wait_for "$W/td.err" "listening on" || return 1
  cp=$(child_of "$tp")
  read -r sent rwall < <(replay "$rate" "$n")
  sleep 1
  kill -INT "$cp"
  wait "$tp"
  local cap kd
  cap=$(awk '/packets captured/ {print $1}' "$W/td.err")
  kd=$(awk '/dropped by kernel/ {print $1}' "$W/td.err")
  read -r written _ < <("$W/pcapstat" count "$SHM/td.pcap")
  read -r u s m e <"$W/td.time"
  row live tcpdump "$rate" "$run" "$sent" "$cap" "$written" "$kd" 0 "$u" "$s" "$m" "$e" "replay_s=$rwall"
}

live_ps() { # rate n run [none]: default settings (zlib), or --compress none
  local rate=$1 n=$2 run=$3 codec=${4:-} rp sp rc sc sfx= copt=()
  if [ -n "$codec" ]; then sfx=-$codec; copt=(--compress "$codec"); fi
  nextport
  rm -f "$SHM/ps.pcap"
  ip netns exec "$NSB" $TIME -f '%U %S %M %e' -o "$W/rc.time" \
    "$RECEIVER" --listen "127.0.0.1:$PORT" -w "$SHM/ps.pcap" 2>"$W/rc.err" &
  rp=$!
  PIDS+=("$rp")
  wait_for "$W/rc.err" "listening on" || return 1
  ip netns exec "$NSB" $TIME -f '%U %S %M %e' -o "$W/sn.time" \
    "$SENSOR" -i veth1 --receiver "127.0.0.1:$PORT" "${copt[@]}" 2>"$W/sn.err" &
  sp=$!
  PIDS+=("$sp")
  wait_for "$W/sn.err" "connected to receiver" || return 1
  sc=$(child_of "$sp")
  rc=$(child_of "$rp")
  local pp=
  if [ -n "${PERF_LIVE:-}" ]; then
    perf record -q -g -p "$sc" -o "$PERF_LIVE" 2>/dev/null &
    pp=$!
    sleep 0.5
  fi
  read -r sent rwall < <(replay "$rate" "$n")
  sleep 1
  if [ -n "$pp" ]; then kill -INT "$pp"; wait "$pp"; fi
  kill -INT "$sc"
  wait "$sp"
  kill -INT "$rc"
  wait "$rp"
  # "N packets (B bytes) sent to ...; dropped: K by the kernel, I by the interface"
  local cap kd ifd
  cap=$(sed -n 's/.*ps-sensor: \([0-9]*\) packets (.*/\1/p' "$W/sn.err" | tail -1)
  kd=$(sed -n 's/.*dropped: \([0-9]*\) by the kernel.*/\1/p' "$W/sn.err" | tail -1)
  ifd=$(sed -n 's/.*by the kernel, \([0-9]*\) by the interface.*/\1/p' "$W/sn.err" | tail -1)
  read -r written _ < <("$W/pcapstat" count "$SHM/ps.pcap")
  read -r u s m e <"$W/sn.time"
  row "${LIVE_SCEN:-live}" "ps-sensor$sfx" "$rate" "$run" "$sent" "$cap" "$written" "$kd" "$ifd" "$u" "$s" "$m" "$e" "replay_s=$rwall"
  read -r u s m e <"$W/rc.time"
  local rlog
  rlog=$(grep -o 'disconnected: .*' "$W/rc.err" | head -1 | tr '\t' ' ')
  row "${LIVE_SCEN:-live}" "ps-receiver$sfx" "$rate" "$run" "$sent" "" "$written" "" "" "$u" "$s" "$m" "$e" "$rlog"
  cp "$W/sn.err" "$OUT/live-$rate-$run$sfx.sensor.log"
  cp "$W/rc.err" "$OUT/live-$rate-$run$sfx.receiver.log"
}

if has live; then
  for rate in $RATES; do
    if [ "$rate" = top ]; then n=$((200000 * SECS)); else n=$((rate * SECS)); fi
    for run in $(seq 1 "$RUNS"); do
      log "live rate=$rate packets=$n run=$run: tcpdump"
      live_tcpdump "$rate" "$n" "$run" || exit 1
      log "live rate=$rate packets=$n run=$run: ps-sensor"
      live_ps "$rate" "$n" "$run" || exit 1
      if [ "$LIVE_NONE" = 1 ]; then
        log "live rate=$rate packets=$n run=$run: ps-sensor --compress none"
        live_ps "$rate" "$n" "$run" none || exit 1
      fi
    done
  done
  if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
    log "profile: perf record -p of ps-sensor -i veth1 (default) at 200k pps"
    PERF_LIVE=$W/perf-live.data LIVE_SCEN=live-profile \
      live_ps 200000 $((200000 * SECS)) 1 || exit 1
    perf report -i "$W/perf-live.data" --no-children -g none --stdio --sort dso,sym \
      2>/dev/null | grep -v '^#' | grep '%' | head -25 >"$OUT/perf-sensor-live200k.txt"
  fi
fi

# ------------------------------------------------------------ sessions
# One receiver, N concurrent sensor sessions from bench/loadgen (one
# process, one thread, the public stream API), TOTAL pps in total.
sess_run() { # nsessions run
  local ns=$1 run=$2 rp rc lp idle_kb idle_cpu
  nextport
  rm -f "$SHM/sess.pcap"
  ip netns exec "$NSB" $TIME -f '%U %S %M %e' -o "$W/src.time" \
    "$RECEIVER" --listen "127.0.0.1:$PORT" -w "$SHM/sess.pcap" 2>"$W/src.err" &
  rp=$!
  PIDS+=("$rp")
  wait_for "$W/src.err" "listening on" || return 1
  rc=$(child_of "$rp")
  # connect all, 3 s idle (RSS sampled then), then SECS s of traffic
  INB $TIME -f '%U %S %M %e' -o "$W/slg.time" \
    "$W/loadgen" -n "$ns" -p "$SESS_PPS" -d "$SECS" -i 3 127.0.0.1 "$PORT" \
    >"$W/slg.out" 2>"$W/slg.err" &
  lp=$!
  PIDS+=("$lp")
  wait_for "$W/slg.err" "loadgen: connected" || return 1
  sleep 2
  idle_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$rc/status")
  # receiver CPU spent so far (accept, hellos, idle): utime+stime in s
  idle_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$rc/stat")
  local lrc=0
  wait "$lp" || lrc=$?
  sleep 0.5
  kill -INT "$rc"
  wait "$rp"
  local sent sess sfail rpk refused written
  sent=$(sed -n 's/.* packets \([0-9]*\) (per stream.*/\1/p' "$W/slg.out")
  sess=$(sed -n 's/.*: \([0-9]*\) sensor sessions (\([0-9]*\) failed), \([0-9]*\) packets.*/\1/p' "$W/src.err" | tail -1)
  sfail=$(sed -n 's/.*: \([0-9]*\) sensor sessions (\([0-9]*\) failed), \([0-9]*\) packets.*/\2/p' "$W/src.err" | tail -1)
  rpk=$(sed -n 's/.*: \([0-9]*\) sensor sessions (\([0-9]*\) failed), \([0-9]*\) packets.*/\3/p' "$W/src.err" | tail -1)
  refused=$(grep -c 'refused' "$W/src.err")
  read -r written _ < <("$W/pcapstat" count "$SHM/sess.pcap")
  read -r u s m e <"$W/src.time"
  row sessions ps-receiver "$ns" "$run" "$sent" "$rpk" "$written" "" "" "$u" "$s" "$m" "$e" \
    "idle_rss_kb=$idle_kb cpu_before_traffic_s=$idle_cpu sessions=$sess failed=$sfail refused=$refused loadgen_rc=$lrc"
  read -r u s m e <"$W/slg.time"
  row sessions loadgen "$ns" "$run" "$sent" "" "$written" "" "" "$u" "$s" "$m" "$e" \
    "$(tr ' ' '_' <"$W/slg.out" | tr -d '\n')"
  cp "$W/src.err" "$OUT/sessions-$ns-$run.receiver.log"
  cp "$W/slg.out" "$OUT/sessions-$ns-$run.loadgen.out"
  cat "$W/slg.err" >>"$OUT/sessions-$ns-$run.loadgen.out"
  rm -f "$SHM/sess.pcap"
  [ "$lrc" = 0 ] || { log "sessions $ns: loadgen failed ($lrc)"; cat "$W/slg.err" >&2; }
  return 0
}
if has sessions; then
  SESS_PPS=20000
  for run in $(seq 1 "$RUNS"); do
    for ns in 1 1000; do
      log "sessions run=$run: $ns session(s), $SESS_PPS pps in total, ${SECS}s"
      sess_run "$ns" "$run" || exit 1
    done
  done
fi

# ------------------------------------------------------------ scale
if has scale; then
  rm -f "$OUT/scale.tsv"
  if [ "$SMOKE" = 1 ]; then
    SC_IDLE="0 50"; SC_CPU="1 50"; SC_PPS=2000; SC_SECS=1
  else
    SC_IDLE="0 1000 10000"; SC_CPU="1 1000"; SC_PPS=20000; SC_SECS=$SECS
  fi
  for sc_args in "" "-m 1000"; do
    log "scale: idle ${SC_IDLE}; cpu ${SC_CPU} at $SC_PPS pps, ${SC_SECS}s; loadgen ${sc_args:-defaults}"
    idle=$SC_IDLE
    [ -n "$sc_args" ] && idle=""
    bash "$SRCDIR/bench/scale.sh" --build "$BUILD" --idle "$idle" --cpu "$SC_CPU" \
      --pps "$SC_PPS" --secs "$SC_SECS" --runs "$RUNS" --loadgen-args "$sc_args" \
      >"$W/scale.out" || { log "scale.sh failed"; exit 1; }
    sed "s/\$/\t${sc_args:-default}/" "$W/scale.out" | tr ' ' '_' >>"$OUT/scale.tsv"
  done
fi

# ------------------------------------------------------------ throughput
if has throughput; then
  if [ "$SMOKE" = 1 ]; then BIGN=50000; else BIGN=1000000; fi
  "$W/genmix" "$BIGN" "$SHM/big.pcap" 2>"$W/big.log" || exit 1
  read -r bigpk bigby < <("$W/pcapstat" count "$SHM/big.pcap")
  ITIME=5
  [ "$SMOKE" = 1 ] && ITIME=1
  for run in $(seq 1 "$RUNS"); do
    log "throughput run=$run: iperf3 (${ITIME}s)"
    nextport
    ip netns exec "$NSB" iperf3 -s -1 -p "$PORT" >/dev/null 2>&1 &
    ip_=$!
    PIDS+=("$ip_")
    sleep 0.5
    INB iperf3 -c 127.0.0.1 -p "$PORT" -t "$ITIME" -J >"$W/iperf.json" 2>&1
    wait "$ip_"
    bps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]))' "$W/iperf.json")
    row throughput iperf3 tcp "$run" "" "" "" "" "" "" "" "" "$ITIME" "bytes_per_s=$((bps / 8))"

    log "throughput run=$run: tcpdump -r -w"
    rm -f "$SHM/tdr.pcap"
    $TIME -f '%U %S %M %e' -o "$W/tdr.time" tcpdump -r "$SHM/big.pcap" -w "$SHM/tdr.pcap" 2>/dev/null
    read -r u s m e <"$W/tdr.time"
    read -r written _ < <("$W/pcapstat" count "$SHM/tdr.pcap")
    row throughput tcpdump file "$run" "$bigpk" "$bigpk" "$written" "" "" "$u" "$s" "$m" "$e" "bytes=$bigby"
    rm -f "$SHM/tdr.pcap"

    # variant: codec[-tls][-null]; -null: the receiver writes to /dev/null
    for v in none none-null lz4 zlib none-tls none-tls-null; do
      codec=${v%%-*}
      topt=()
      rtopt=()
      case "$v" in *-tls*)
        topt=(--tls-ca "$W/tls/ca.pem")
        rtopt=(--tls-cert "$W/tls/srv.pem" --tls-key "$W/tls/srv.key") ;;
      esac
      dst=$SHM/tp.pcap
      case "$v" in *-null) dst=/dev/null ;; esac
      log "throughput run=$run: ps-sensor -r --compress $codec${topt[*]:+ (TLS)} -> $dst"
      nextport
      rm -f "$SHM/tp.pcap"
      ip netns exec "$NSB" $TIME -f '%U %S %M %e' -o "$W/trc.time" \
        "$RECEIVER" --listen "127.0.0.1:$PORT" -w "$dst" "${rtopt[@]}" 2>"$W/trc.err" &
      rp=$!
      PIDS+=("$rp")
      wait_for "$W/trc.err" "listening on" || exit 1
      rc=$(child_of "$rp")
      INB $TIME -f '%U %S %M %e' -o "$W/tsn.time" \
        "$SENSOR" -r "$SHM/big.pcap" --receiver "127.0.0.1:$PORT" \
        --compress "$codec" "${topt[@]}" 2>"$W/tsn.err" ||
        { cat "$W/tsn.err" >&2; echo "run.sh: sensor failed ($v)" >&2; exit 1; }
      kill -INT "$rc"
      wait "$rp"
      # written: the receiver's own count (the file may be /dev/null)
      written=$(sed -n 's/.* sensor sessions (.* failed), \([0-9]*\) packets.*/\1/p' "$W/trc.err" | tail -1)
      if [ "$dst" != /dev/null ]; then
        read -r fw _ < <("$W/pcapstat" count "$SHM/tp.pcap")
        [ "$fw" = "$written" ] || log "throughput $v: receiver says $written, file has $fw"
        written=$fw
      fi
      read -r u s m e <"$W/tsn.time"
      row throughput "ps-sensor-$v" file "$run" "$bigpk" "$bigpk" "$written" "" "" "$u" "$s" "$m" "$e" "bytes=$bigby"
      read -r u s m e <"$W/trc.time"
      row throughput "ps-receiver-$v" file "$run" "$bigpk" "" "$written" "" "" "$u" "$s" "$m" "$e" ""
      cp "$W/trc.err" "$OUT/throughput-$v-$run.receiver.log"
      rm -f "$SHM/tp.pcap"
    done
  done
  if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
    for codec in lz4 none; do
      log "profile: perf record ps-sensor -r --compress $codec"
      nextport
      ip netns exec "$NSB" "$RECEIVER" --listen "127.0.0.1:$PORT" -w "$SHM/pf.pcap" 2>"$W/pf.err" &
      rp=$!
      PIDS+=("$rp")
      wait_for "$W/pf.err" "listening on" || exit 1
      INB perf record -q -g -o "$W/perf-$codec.data" "$SENSOR" -r "$SHM/big.pcap" \
        --receiver "127.0.0.1:$PORT" --compress "$codec" 2>/dev/null
      kill -INT "$rp"
      wait "$rp"
      perf report -i "$W/perf-$codec.data" --no-children -g none --stdio --sort dso,sym \
        2>/dev/null | grep -v '^#' | grep '%' | head -25 >"$OUT/perf-sensor-$codec.txt"
      rm -f "$SHM/pf.pcap"
    done
  fi
  rm -f "$SHM/big.pcap"
fi

# ------------------------------------------------------------ latency
lat_bursts() { # tool-label: 10 bursts of 3 packets, 1.5 s apart
  local i
  for i in $(seq 1 "$BURSTS"); do
    sleep 1.5
    INA tcpreplay -q -i veth0 --topspeed "$SHM/burst.pcap" >/dev/null 2>&1
  done
  sleep 2
}
if has latency; then
  BURSTS=10
  [ "$SMOKE" = 1 ] && BURSTS=3
  "$W/genmix" 3 "$SHM/burst.pcap" 7 2>/dev/null
  log "latency: ps-sensor -> ps-receiver -w - ($BURSTS bursts of 3)"
  nextport
  rm -f "$W/lat.fifo"
  mkfifo "$W/lat.fifo"
  "$W/pcapstat" lat <"$W/lat.fifo" >"$W/lat-ps.txt" &
  lp=$!
  PIDS+=("$lp")
  ip netns exec "$NSB" "$RECEIVER" --listen "127.0.0.1:$PORT" -w - \
    >"$W/lat.fifo" 2>"$W/lr.err" &
  rp=$!
  PIDS+=("$rp")
  wait_for "$W/lr.err" "listening on" || exit 1
  ip netns exec "$NSB" "$SENSOR" -i veth1 --receiver "127.0.0.1:$PORT" \
    2>"$W/ls.err" &
  sp=$!
  PIDS+=("$sp")
  wait_for "$W/ls.err" "connected to receiver" || exit 1
  sleep 1
  lat_bursts
  kill -INT "$sp"
  wait "$sp"
  kill -INT "$rp"
  wait "$rp"
  wait "$lp"
  log "latency: tcpdump -U -w - ($BURSTS bursts of 3)"
  rm -f "$W/lat.fifo"
  mkfifo "$W/lat.fifo"
  "$W/pcapstat" lat <"$W/lat.fifo" >"$W/lat-td.txt" &
  lp=$!
  PIDS+=("$lp")
  ip netns exec "$NSB" tcpdump -U -i veth1 -w - >"$W/lat.fifo" 2>"$W/lt.err" &
  tp=$!
  PIDS+=("$tp")
  wait_for "$W/lt.err" "listening on" || exit 1
  sleep 1
  lat_bursts
  kill -INT "$tp"
  wait "$tp"
  wait "$lp"
  for t in ps td; do
    label=ps-sensor
    [ $t = td ] && label=tcpdump-U
    # per burst: the last of its 3 packets
    # a burst: packets captured within 0.5 s of its first; its latency is
    # that of its last packet
    awk -v l="$label" '
      function out() { if (n) printf "latency\t%s\tburst\t%d\t3\t%d\t%d\t\t\t\t\t\t\tlatency_ms=%s\n", l, b, n, n, m }
      { if (!n || $2 - t0 > 0.5) { out(); b++; n = 0; m = 0; t0 = $2 }
        n++; if ($4 + 0 > m) m = $4 + 0 }
      END { out() }' "$W/lat-$t.txt" >>"$RES"
    cp "$W/lat-$t.txt" "$OUT/latency-$t.txt"
  done
fi

# ------------------------------------------------------------ codec
if has codec; then
  CORPUS=${PS_CORPUS:-}
  [ -n "$CORPUS" ] || for d in "$SRCDIR/../shared/corpus" /work/shared/corpus; do
    [ -d "$d" ] && CORPUS=$d && break
  done
  files=("$SHM/mix.pcap")
  if [ -n "$CORPUS" ]; then
    for f in many-protocols.pcap wireshark_samples-test.pcapng afs.pcap \
      huge-tipc-messages.pcap bigtcp-ipv4.pcap; do
      [ -f "$CORPUS/$f" ] && files+=("$CORPUS/$f")
    done
  fi
  ct=1.0
  [ "$SMOKE" = 1 ] && ct=0.05
  log "codec: zlib 1,6,9 (and zstd 1,3, lz4 where built) on ${#files[@]} files"
  "$W/codecbench" -l 1,6,9 -t "$ct" "${files[@]}" >"$OUT/codec.md" || exit 1
fi

# ------------------------------------------------------------ report
{
  echo "machine: nproc=$(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); kernel $(uname -r); loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: bench/run.sh $([ $SMOKE = 1 ] && echo --smoke) --runs $RUNS --secs $SECS --only $ONLY"
  echo "mix: $MIXN frames, $MIXBYTES bytes"
  echo
  python3 "$SRCDIR/bench/report.py" "$RES"
  if [ -f "$OUT/scale.tsv" ]; then
    echo
    echo "### scale: idle sessions (RSS KiB, per session KiB over 0) and CPU per packet (1 vs N sessions)"
    echo
    echo "| kind | sessions | RSS KiB / packets sent | sessions seen / written | per session KiB / CPU s | us/packet | ratio | loadgen |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    awk -F'\t' '$1 == "idle" {printf "| idle | %s | %s | %s | %s | | | %s |\n", $2, $3, $4, $5, $6}
                $1 == "cpu" {printf "| cpu | %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6, $7, $8}' "$OUT/scale.tsv"
  fi
  if [ -f "$OUT/codec.md" ]; then
    echo
    echo "### codec (library framing, 256 KiB batches; MB/s per CPU second)"
    echo
    cat "$OUT/codec.md"
  fi
  for c in lz4 none live200k; do
    if [ -f "$OUT/perf-sensor-$c.txt" ]; then
      echo
      if [ $c = live200k ]; then
        echo "### perf: ps-sensor -i veth1 (default settings), tcpreplay at 200k pps (self time)"
      else
        echo "### perf: ps-sensor -r BIG.pcap --compress $c (self time)"
      fi
      echo
      echo '```'
      cat "$OUT/perf-sensor-$c.txt"
      echo '```'
    fi
  done
} >"$OUT/report.md"
cat "$OUT/report.md"
log "results: $OUT (results.tsv, report.md)"
