#!/usr/bin/env bash
# Every corpus file streamed by ps-sensor -r into ps-receiver, the output
# compared packet by packet with what libpcap reads from the input
# (bytes, caplen, len, time stamp, link type), as pcap and as pcapng.
# Files libpcap cannot read must be refused with a clear error, and
# nothing of them written.
. "$top_srcdir/tests/lib.sh"
need_corpus

# One pcapng receiver takes every file, one session per file: each file's
# packets are then compared against its own interface block.
start_receiver "$WORK/ng.log" -w "$WORK/all.pcapng"
NGPORT=$RPORT NGPID=$RPID

passed=0 refused=0 n=0
while IFS=$'\t' read -r file _src format _bo tsres _lt packets _rest; do
  [ "$file" = file ] && continue
  n=$((n + 1))
  status=$(awk -F'\t' -v f="$file" '$1 == f {print $17}' "$CORPUS/MANIFEST.tsv")
  in="$CORPUS/$file"
  prec=micro
  case "$tsres" in nsec) prec=nano ;; esac

  # pcap output, at the file's own precision.
  rm -f "$WORK"/out*.pcap # files are never overwritten: start afresh
  start_receiver "$WORK/r.log" -w "$WORK/out.pcap" --time-stamp-precision "$prec"
  "$SENSOR" -r "$in" --receiver "127.0.0.1:$RPORT" --name "$file" \
    2>"$WORK/s.log"
  src=$?
  stop_receiver

  case "$status" in
  *READERR*)
    # libpcap stops on these files: the sensor must say so and send nothing.
    [ "$src" -eq 1 ] || fail "$file: sensor exited $src, expected 1"
    expect_line "$WORK/s.log" "libpcap cannot read this file.*nothing was sent" "$file"
    # The dry run refuses the file before the sensor connects at all.
    grep -q "connected from" "$WORK/r.log" && fail "$file: the sensor connected"
    "$SENSOR" -r "$in" --receiver "127.0.0.1:$NGPORT" --name "$file" 2>/dev/null \
      && fail "$file: sensor accepted it into pcapng"
    echo "refused: $file: $(grep -o 'libpcap cannot read.*' "$WORK/s.log" | head -n1)"
    refused=$((refused + 1))
    continue
    ;;
  esac
  [ "$src" -eq 0 ] || { cat "$WORK/s.log" >&2; fail "$file: sensor exited $src"; }
  res=$("$PCAPCMP" "$in" "$WORK/out.pcap") || fail "$file (pcap): $res"
  [ "$res" = "$packets packets identical" ] || fail "$file (pcap): $res, manifest says $packets"
  expect_line "$WORK/r.log" "disconnected: $packets packets" "$file (receiver log)"

  case "$status" in
  *data_diff*)
    # libpcap cuts packets longer than the file's snaplen: the output
    # equals what libpcap delivers, and the sensor says it was cut.
    expect_line "$WORK/s.log" "shortened" "$file (truncation warning)"
    ;;
  esac

  # pcapng output, through zlib this time (lz4, the default, above).
  "$SENSOR" -q -r "$in" --receiver "127.0.0.1:$NGPORT" --name "$file" --compress zlib \
    2>"$WORK/s.log" || { cat "$WORK/s.log" >&2; fail "$file: sensor (pcapng) failed"; }
  passed=$((passed + 1))
done <"$CORPUS/MANIFEST.tsv"

RPID=$NGPID
stop_receiver
while IFS=$'\t' read -r file _src _f _bo _ts _lt packets _rest; do
  [ "$file" = file ] && continue
  if awk -F'\t' -v f="$file" '$1 == f && $17 ~ /READERR/ {x=1} END {exit !x}' "$CORPUS/MANIFEST.tsv"; then
    "$PCAPCMP" --list "$WORK/all.pcapng" | grep -q " $file/$file " \
      && fail "$file: refused file has an interface in the pcapng output"
    continue
  fi
  res=$("$PCAPCMP" --iface "$file/$file" "$CORPUS/$file" "$WORK/all.pcapng") \
    || fail "$file (pcapng): $res"
  [ "$res" = "$packets packets identical" ] || fail "$file (pcapng): $res"
done <"$CORPUS/MANIFEST.tsv"
# The whole pcapng file must also be valid for readers other than ours.
if command -v tshark >/dev/null; then
  tshark -r "$WORK/all.pcapng" -T fields -e frame.number >/dev/null 2>"$WORK/tshark.err" \
    || { cat "$WORK/tshark.err" >&2; fail "tshark cannot read the pcapng output"; }
fi
echo "corpus: $n files, $passed identical as pcap and pcapng, $refused refused with a clear error"
[ $((passed + refused)) -eq "$n" ] || fail "not every file was accounted for"
