#!/usr/bin/env bash
# Every capture of a set streamed by ps-sensor -r into ps-receiver, the
# output compared packet by packet with what libpcap reads from the input
# (bytes, caplen, len, time stamp, link type), as pcap and as pcapng.
# Files libpcap cannot read must be refused with a clear error, and
# nothing of them written. The sets: the real captures in tests/data, the
# generated ones of tests/gencap, and, when it is there, the wider corpus
# beside the checkout (../shared/corpus or $PS_CORPUS).
. "$top_srcdir/tests/lib.sh"

# fidelity LABEL DIR: every file DIR/MANIFEST.tsv lists (columns: file,
# source, format, byte order, ts_resolution, link types, packets, ...,
# sha256 in 16, libpcap's reading in 17).
fidelity() {
  local label=$1 dir=$2 manifest="$2/MANIFEST.tsv"
  local file _src format _bo tsres _lt packets _rest status in prec src res sha
  # One pcapng receiver takes every file, one session per file: each
  # file's packets are then compared against its own interface block.
  start_receiver "$WORK/ng-$label.log" -w "$WORK/$label.pcapng"
  local ngport=$RPORT ngpid=$RPID passed=0 refused=0 n=0
  while IFS=$'\t' read -r file _src format _bo tsres _lt packets _rest; do
    [ "$file" = file ] && continue
    n=$((n + 1))
    status=$(awk -F'\t' -v f="$file" '$1 == f {print $17}' "$manifest")
    sha=$(awk -F'\t' -v f="$file" '$1 == f {print $16}' "$manifest")
    in="$dir/$file"
    if [ "$sha" != - ]; then
      [ "$(sha256sum <"$in" | cut -d' ' -f1)" = "$sha" ] || fail "$label/$file: sha256 differs from $manifest"
    fi
    # The pcap output at the file's own precision (pcapng input with any
    # finer resolution than usec needs nano).
    prec=nano
    case "$tsres" in usec) prec=micro ;; esac

    rm -f "$WORK"/out*.pcap # files are never overwritten: start afresh
    start_receiver "$WORK/r.log" -w "$WORK/out.pcap" --time-stamp-precision "$prec"
    "$SENSOR" -r "$in" --receiver "127.0.0.1:$RPORT" --name "$file" --connect-timeout 20 \
      2>"$WORK/s.log"
    src=$?
    stop_receiver

    case "$status" in
    *READERR*)
      # libpcap stops on these files: the sensor must say so and send nothing.
      [ "$src" -eq 1 ] || fail "$label/$file: sensor exited $src, expected 1"
      expect_line "$WORK/s.log" "libpcap cannot read this file.*nothing was sent" "$label/$file"
      # The dry run refuses the file before the sensor connects at all.
      grep -q "connected from" "$WORK/r.log" && fail "$label/$file: the sensor connected"
      "$SENSOR" -r "$in" --receiver "127.0.0.1:$ngport" --name "$file" 2>/dev/null \
        && fail "$label/$file: sensor accepted it into pcapng"
      echo "refused: $label/$file: $(grep -o 'libpcap cannot read.*' "$WORK/s.log" | head -n1)"
      refused=$((refused + 1))
      continue
      ;;
    esac
    [ "$src" -eq 0 ] || { cat "$WORK/s.log" >&2; fail "$label/$file: sensor exited $src"; }
    res=$("$PCAPCMP" "$in" "$WORK/out.pcap") || fail "$label/$file (pcap): $res"
    [ "$res" = "$packets packets identical" ] || fail "$label/$file (pcap): $res, manifest says $packets"
    expect_line "$WORK/r.log" "disconnected: $packets packets" "$label/$file (receiver log)"

    case "$status" in
    *data_diff*)
      # libpcap cuts packets longer than the file's snaplen: the output
      # equals what libpcap delivers, and the sensor says it was cut.
      expect_line "$WORK/s.log" "shortened" "$label/$file (truncation warning)"
      ;;
    esac

    # pcapng output, through zlib this time (lz4, the default, above).
    "$SENSOR" -q -r "$in" --receiver "127.0.0.1:$ngport" --name "$file" --compress zlib --connect-timeout 20 \
      2>"$WORK/s.log" || { cat "$WORK/s.log" >&2; fail "$label/$file: sensor (pcapng) failed"; }
    passed=$((passed + 1))
  done <"$manifest"

  RPID=$ngpid
  stop_receiver
  while IFS=$'\t' read -r file _src _f _bo _ts _lt packets _rest; do
    [ "$file" = file ] && continue
    if awk -F'\t' -v f="$file" '$1 == f && $17 ~ /READERR/ {x=1} END {exit !x}' "$manifest"; then
      "$PCAPCMP" --list "$WORK/$label.pcapng" | grep -q " $file/$file " \
        && fail "$label/$file: refused file has an interface in the pcapng output"
      continue
    fi
    res=$("$PCAPCMP" --iface "$file/$file" "$dir/$file" "$WORK/$label.pcapng") \
      || fail "$label/$file (pcapng): $res"
    [ "$res" = "$packets packets identical" ] || fail "$label/$file (pcapng): $res"
  done <"$manifest"
  # The whole pcapng file must also be valid for readers other than ours.
  if command -v tshark >/dev/null; then
    tshark -r "$WORK/$label.pcapng" -T fields -e frame.number >/dev/null 2>"$WORK/tshark.err" \
      || { cat "$WORK/tshark.err" >&2; fail "tshark cannot read the pcapng output of $label"; }
  else
    echo "note: tshark is not installed (packages.txt): $label.pcapng not read back by tshark"
  fi
  echo "$label: $n files, $passed identical as pcap and pcapng, $refused refused with a clear error"
  [ $((passed + refused)) -eq "$n" ] || fail "$label: not every file was accounted for"
}

# tests/data: every capture there is in its manifest, with its origin
# and licence in its README.
for f in "$DATA"/*.pcap "$DATA"/*.pcapng; do
  b=${f##*/}
  awk -F'\t' -v f="$b" '$1 == f {x=1} END {exit !x}' "$DATA/MANIFEST.tsv" \
    || fail "tests/data/$b is not in tests/data/MANIFEST.tsv"
  grep -qF "$b" "$DATA/README" || fail "tests/data/README does not describe $b"
done
fidelity data "$DATA"

mkdir "$WORK/gen"
"$top_builddir/tests/gencap" "$WORK/gen" || fail "tests/gencap failed"
fidelity generated "$WORK/gen"

if [ -f "$CORPUS/MANIFEST.tsv" ]; then
  fidelity corpus "$CORPUS"
else
  echo "corpus not found at $CORPUS (set PS_CORPUS): the wider check over it did not run; tests/data and the generated captures did"
fi
