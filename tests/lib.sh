# Shared helpers for the integration tests (sourced by tests/*.sh).
# Automake sets top_srcdir and top_builddir; exit 77 means SKIP.

set -u
: "${top_srcdir:?}" "${top_builddir:?}"
SENSOR="$top_builddir/tools/ps-sensor"
RECEIVER="$top_builddir/tools/ps-receiver"
PCAPCMP="$top_builddir/tests/pcapcmp"
# Inputs: small real captures committed in tests/data (origins and
# licences in tests/data/README) and captures generated here (mix,
# tests/gencap). The corpus beside the checkout is an extra: only
# tests/corpus.sh reads it, when it is there.
DATA="$top_srcdir/tests/data"
CORPUS="${PS_CORPUS:-$top_srcdir/../shared/corpus}"
# Tests run against the freshly built library, not an installed one.
export LD_LIBRARY_PATH="$top_builddir/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ps-test.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
ok() { echo "ok: $*"; }

# mix VAR N [SEED]: sets VAR to a capture of N Ethernet/IPv4 frames of
# 64..1514 bytes, UDP and TCP, 70% random and 30% text payloads (made by
# bench/genmix, the same bytes for the same N and SEED on every machine).
mix() {
  local f="$WORK/mix-$2-${3:-1}.pcap"
  [ -f "$f" ] || "$top_builddir/bench/genmix" "$2" "$f" "${3:-1}" 2>/dev/null \
    || fail "bench/genmix $2 ${3:-1} failed (make check builds it)"
  printf -v "$1" %s "$f"
}

# start_receiver LOG ARGS...: starts ps-receiver on 127.0.0.1 (unless
# ARGS has --listen), waits until it listens; sets RPID and RPORT (the
# first listening socket's port). The receiver says so in its
# --port-file, LOG.port, written whole once it listens: no log line is
# scraped. START_PREFIX (an array; see start_receiver_in) is a command
# the receiver runs under; it must exec the receiver, as ip netns exec
# does, so that RPID is the receiver's and signals reach it.
start_receiver() {
  local log=$1; shift
  local listen=(--listen 127.0.0.1:0)
  case " $* " in *" --listen "*|*" -l "*) listen=() ;; esac
  # A reused LOG must not hand over the previous receiver's port.
  : >"$log"
  rm -f "$log.port"
  ${START_PREFIX[@]+"${START_PREFIX[@]}"} "$RECEIVER" "${listen[@]}" \
    --port-file "$log.port" "$@" 2>"$log" &
  RPID=$!
  PIDS+=("$RPID")
  local i
  for i in $(seq 1 200); do
    if [ -s "$log.port" ]; then
      RPORT=$(sed -n '1s/^[^ ]* \([0-9][0-9]*\)$/\1/p' "$log.port")
      [ -n "$RPORT" ] || { cat "$log.port" >&2; fail "bad port file $log.port"; }
      return 0
    fi
    kill -0 "$RPID" 2>/dev/null || { cat "$log" >&2; fail "ps-receiver did not start"; }
    sleep 0.05
  done
  cat "$log" >&2
  fail "ps-receiver did not write its port file"
}

# start_receiver_in NS LOG ARGS...: start_receiver in network namespace
# NS (ip netns exec NS).
start_receiver_in() {
  local START_PREFIX=(ip netns exec "$1")
  shift
  start_receiver "$@"
}

# stop_receiver: SIGINT, and the receiver must exit 0 within 10 s.
stop_receiver() {
  kill -INT "$RPID"
  local i
  for i in $(seq 1 200); do
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$RPID" 2>/dev/null && fail "ps-receiver did not exit on SIGINT"
  wait "$RPID"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "ps-receiver exited $rc after SIGINT"
}

# expect_line FILE REGEX WHAT: FILE has a line matching REGEX.
expect_line() {
  grep -Eq -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "$3: no line matching /$2/"; }
}

# netns_pair: network namespaces $NSA (10.77.0.1, dev va) and $NSB
# (10.77.0.2, dev vb) joined by a veth pair made by the test, without
# IPv6 and with static neighbours (no ARP or ND in captures); removed at
# exit. SKIPs without root or namespaces. A/B run a command in them.
netns_pair() {
  [ "$(id -u)" -eq 0 ] || skip "live capture needs root (network namespaces)"
  command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
  NSA="psA-$$" NSB="psB-$$"
  ip netns add "$NSA" || skip "cannot create network namespaces here"
  ip netns add "$NSB" || { ip netns del "$NSA"; skip "cannot create network namespaces"; }
  trap 'ip netns del "$NSA" 2>/dev/null; ip netns del "$NSB" 2>/dev/null; cleanup' EXIT
  ip link add va netns "$NSA" type veth peer name vb netns "$NSB" || fail "veth"
  local ns
  for ns in "$NSA" "$NSB"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
  done
  A ip addr add 10.77.0.1/24 dev va && A ip link set va up
  B ip addr add 10.77.0.2/24 dev vb && B ip link set vb up
  local macb maca
  macb=$(B cat /sys/class/net/vb/address)
  maca=$(A cat /sys/class/net/va/address)
  A ip neigh add 10.77.0.2 lladdr "$macb" dev va nud permanent
  B ip neigh add 10.77.0.1 lladdr "$maca" dev vb nud permanent
}
A() { ip netns exec "$NSA" "$@"; }
B() { ip netns exec "$NSB" "$@"; }

# wait_log FILE REGEX COUNT WHAT: waits up to 30 s (sanitizer builds
# under a parallel make check are slow) until FILE has COUNT lines
# matching REGEX.
wait_log() {
  local i
  for i in $(seq 1 600); do
    [ "$(grep -Ec -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
    sleep 0.05
  done
  echo "--- $1:" >&2; cat "$1" >&2
  fail "$4"
}

# restart_receiver_in NS LOG ARGS...: starts ps-receiver in network
# namespace NS with its stderr appended to LOG, so that one log holds
# every run of a receiver a test kills and starts again, and waits for
# this run's "listening on" line; sets RPID. RSTARTS counts the runs.
RSTARTS=0
restart_receiver_in() {
  local ns=$1 log=$2
  shift 2
  ip netns exec "$ns" "$RECEIVER" "$@" 2>>"$log" &
  RPID=$!; PIDS+=("$RPID")
  RSTARTS=$((RSTARTS + 1))
  wait_log "$log" "listening on" "$RSTARTS" "receiver start $RSTARTS"
}
