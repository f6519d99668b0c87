#!/usr/bin/env bash
# Files planted beside the output or in the spool by anyone who can write
# those directories (security review, issue 9, F4 and F5). A link as the
# journal's temporary made every start overwrite the link's target with
# the journal; a dangling link as the journal made the receiver create
# its target; a forged journal (inode 0, "..", an absolute path, another
# user's) made the restart cut files anywhere to 0 bytes; a link as a
# spool segment made the sensor cut and overwrite its target. Now each is
# refused or ignored, with a line saying which file and why, and the
# victims keep every byte. The receiver runs as whoever runs the tests
# (root under the usual `make check` here). No corpus needed: the input
# is generated.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"

IN="$WORK/in.pcap"
# 400 Ethernet/IPv4/UDP frames of 60..1059 bytes, time stamps 1 ms apart.
python3 - "$IN" <<'EOF' || fail "cannot write the input"
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(400):
        n = 60 + (i * 37) % 1000
        body = bytes((i * 7 + k) & 0xff for k in range(n - 42))
        udp = struct.pack(">HHHH", 4000, 9, 8 + len(body), 0) + body
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64,
                         17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        eth = bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0])
        pkt = eth + ip + udp
        f.write(struct.pack("<IIII", 1700000000 + i // 1000,
                            (i % 1000) * 1000, len(pkt), len(pkt)))
        f.write(pkt)
EOF

OUT="$WORK/out"
mkdir -p "$OUT"
VICTIM="$WORK/victim" # outside the output's directory
INSIDE="$OUT/inside"  # in it, but never written by the receiver
printf 'thirty bytes of precious data\n' >"$VICTIM"
cp "$VICTIM" "$INSIDE"
cp "$VICTIM" "$WORK/victim.orig"
intact() { # WHAT: both victims hold their 30 bytes
  cmp -s "$VICTIM" "$WORK/victim.orig" || fail "$1: $VICTIM was changed ($(wc -c <"$VICTIM") bytes)"
  cmp -s "$INSIDE" "$WORK/victim.orig" || fail "$1: $INSIDE was changed ($(wc -c <"$INSIDE") bytes)"
}

# refused LOG REGEX WHAT ARGS...: the receiver exits 1 at once, saying so.
refused() {
  local log=$1 re=$2 what=$3; shift 3
  timeout 10 "$RECEIVER" --listen 127.0.0.1:0 "$@" 2>"$log"
  local rc=$?
  intact "$what"
  [ "$rc" -eq 1 ] || { cat "$log" >&2; fail "$what: the receiver exited $rc, not 1"; }
  expect_line "$log" "$re" "$what"
}

# 1. The journal's temporary is a link to the victim.
ln -s "$VICTIM" "$OUT/.cap.pcap.state.new"
refused "$WORK/r1.log" \
  "the journal's temporary file .*/out/\.cap\.pcap\.state\.new is a symbolic link: remove it" \
  "linked temporary" -w "$OUT/cap.pcap"
[ -L "$OUT/.cap.pcap.state.new" ] || fail "the link was removed"
rm "$OUT/.cap.pcap.state.new" "$OUT/.cap.pcap.state" # (created empty)
ok "a link as the journal's temporary: refused, its target untouched"

# 2. The journal is a dangling link.
ln -s "$WORK/created" "$OUT/.cap.pcap.state"
refused "$WORK/r2.log" \
  "refusing the receiver's journal .*/out/\.cap\.pcap\.state: it is a symbolic link.*remove it or fix its owner/mode" \
  "dangling journal link" -w "$OUT/cap.pcap"
[ ! -e "$WORK/created" ] || fail "the link's target was created"
# ... or a link to the victim.
ln -sf "$VICTIM" "$OUT/.cap.pcap.state"
refused "$WORK/r2b.log" "it is a symbolic link" "journal linked to a file" -w "$OUT/cap.pcap"
rm "$OUT/.cap.pcap.state"
ok "a link as the journal: refused, nothing created or written"

# forge FILE NAME:INODE...: a journal cutting each NAME to 0 bytes.
forge() {
  python3 - "$@" <<'EOF' || fail "cannot forge a journal"
import struct, sys, zlib
p = b""
for a in sys.argv[2:]:
    name, ino = a.rsplit(":", 1)
    n = name.encode()
    p += b"F" + struct.pack(">QQH", 0, int(ino), len(n)) + n
with open(sys.argv[1], "wb") as f:
    f.write(b"PSJ1\0\0\0\0" + struct.pack(">II", len(p), zlib.crc32(p)) + p)
EOF
  chmod 600 "$1"
}
ino() { stat -c %i "$1"; }

# 3. A forged journal (ours by owner and mode): inode 0, "..", absolute.
# Run from the output's directory, so a receiver resolving names from
# its working directory would find them too.
forge "$OUT/.cap.pcap.state" "inside:0" "../victim:$(ino "$VICTIM")" \
  "$VICTIM:$(ino "$VICTIM")"
cd "$OUT" || fail "cd"
start_receiver "$WORK/r3.log" -w cap.pcap
"$SENSOR" -q -r "$IN" --receiver "127.0.0.1:$RPORT" --name trust 2>"$WORK/s3.log" ||
  { cat "$WORK/s3.log" >&2; fail "sensor"; }
stop_receiver
cd "$WORK" || fail "cd"
intact "forged journal"
cat "$WORK/r3.log"
grep -q "removed" "$WORK/r3.log" && fail "the receiver cut something: $(grep removed "$WORK/r3.log")"
expect_line "$WORK/r3.log" "ignoring its entry for inside \(no inode recorded\)" "inode 0"
expect_line "$WORK/r3.log" "ignoring its entry for \.\./victim \(not a file in its directory\)" "../"
expect_line "$WORK/r3.log" "ignoring its entry for $VICTIM \(not a file in its directory\)" "absolute path"
"$PCAPCMP" "$IN" "$OUT/cap.pcap" || fail "forged journal: the output differs from the input"
ok "a forged journal (inode 0, .., absolute path): nothing cut, 400 packets written"

# 4. A journal another user could have written: refused, not read.
if [ "$(id -u)" -eq 0 ]; then
  rm -f "$OUT/.cap.pcap.state" "$OUT/cap.pcap"
  forge "$OUT/.cap.pcap.state" "inside:$(ino "$INSIDE")"
  chown 65534:65534 "$OUT/.cap.pcap.state"
  refused "$WORK/r4.log" \
    "refusing the receiver's journal .*: it is owned by uid 65534, not by this receiver \(uid 0\)" \
    "another user's journal" -w "$OUT/cap.pcap"
  chown 0:0 "$OUT/.cap.pcap.state"
  chmod 666 "$OUT/.cap.pcap.state"
  refused "$WORK/r4b.log" "it is writable by others than its owner \(mode 0666\)" \
    "world-writable journal" -w "$OUT/cap.pcap"
  rm "$OUT/.cap.pcap.state"
  ok "a journal of uid 65534, or writable by all: refused, the file it names untouched"
fi

# 5. --state outside the output's directory: the journal could not cut
# the output back, so it is a usage error.
mkdir -p "$WORK/elsewhere"
timeout 10 "$RECEIVER" --listen 127.0.0.1:0 -w "$OUT/cap.pcap" \
  --state "$WORK/elsewhere/j.state" 2>"$WORK/r5.log"
rc=$?
[ "$rc" -eq 2 ] || { cat "$WORK/r5.log" >&2; fail "--state elsewhere: exit $rc, not 2"; }
expect_line "$WORK/r5.log" "the journal cuts back only files in its own directory or below it" "--state elsewhere"
ok "--state outside the output's directory: usage error"

# 6. The spool: a link as the first segment (recovery cut it, the first
# batch overwrote it), and a spool anyone can write.
SP="$WORK/spool"
mkdir -m 700 "$SP"
# As root the sensor would give root up before opening the spool: keep it.
ZARG=()
[ "$(id -u)" -eq 0 ] && ZARG=(-Z root)
ln -s "$VICTIM" "$SP/seg-00000000000000000001"
start_receiver "$WORK/r6.log" -w "$WORK/spooled.pcap"
"$SENSOR" -r "$IN" --receiver "127.0.0.1:$RPORT" --name sp --spool-dir "$SP" \
  "${ZARG[@]}" 2>"$WORK/s6.log" || { cat "$WORK/s6.log" >&2; fail "spool: sensor exited non-zero"; }
stop_receiver
cat "$WORK/s6.log"
intact "linked spool segment"
expect_line "$WORK/s6.log" "spool .*: ignoring seg-00000000000000000001: it is a symbolic link" "segment link not reported"
expect_line "$WORK/s6.log" "seg-00000000000000000001 is there and it is a symbolic link: remove it" "segment creation"
[ -L "$SP/seg-00000000000000000001" ] || fail "the planted link was removed"
"$PCAPCMP" "$IN" "$WORK/spooled.pcap" || fail "spool: the output differs from the input"
mkdir -m 777 "$WORK/ww"
chmod 777 "$WORK/ww"
"$SENSOR" -r "$IN" --receiver 127.0.0.1:1 --spool-dir "$WORK/ww" "${ZARG[@]}" \
  2>"$WORK/s7.log"
rc=$?
[ "$rc" -eq 1 ] || { cat "$WORK/s7.log" >&2; fail "world-writable spool: exit $rc, not 1"; }
expect_line "$WORK/s7.log" "the spool .*/ww is writable by anyone \(mode 0777\)" "world-writable spool"
ok "spool: a linked segment is ignored and never written through; a world-writable spool is refused"
