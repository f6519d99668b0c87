#!/usr/bin/env bash
# Files the receiver creates beside its output are never taken over from
# whoever put something at their names (review issue 9, F4): a symbolic
# link is never followed, a named pipe or device is written only when -w
# names it, --append continues only a regular file with one link, and a
# sensor's file taken up again must still be the same file. The target
# of every planted link stays as it was, and the packets go to the next
# free name instead, whole.
# Inputs come from bench/genmix.c: no corpus needed.
. "$top_srcdir/tests/lib.sh"

"${CC:-cc}" -O2 -o "$WORK/genmix" "$top_srcdir/bench/genmix.c" || fail "cannot build genmix"
IN="$WORK/in.pcap"
"$WORK/genmix" 300 "$IN" 3 2>/dev/null || fail "genmix"

send() { # NAME
  timeout 30 "$SENSOR" -q -r "$IN" --receiver "127.0.0.1:$RPORT" --name "$1" \
    2>"$WORK/s-$1.log" || { cat "$WORK/s-$1.log" >&2; fail "sensor $1 did not deliver its stream"; }
}
same() { # FILE WHAT
  res=$("$PCAPCMP" "$IN" "$1") || fail "$2: $res"
}
unchanged() { # FILE COPY WHAT
  cmp -s "$1" "$2" || fail "$3: the link's target $1 was changed"
}

# 1. --split-by-sensor --append: a symbolic link where a sensor's file
# goes, to a file that could be appended to (empty), and a second hard
# link of a capture file.
mkdir "$WORK/a"
: >"$WORK/victim-empty"
cp "$WORK/victim-empty" "$WORK/victim-empty.orig"
ln -s "$WORK/victim-empty" "$WORK/a/all.s1.pcap"
cp "$IN" "$WORK/victim-linked"
cp "$IN" "$WORK/victim-linked.orig"
ln "$WORK/victim-linked" "$WORK/a/all.s2.pcap"
start_receiver "$WORK/r1.log" -w "$WORK/a/all.pcap" --split-by-sensor --append --state none
send s1
send s2
stop_receiver
unchanged "$WORK/victim-empty" "$WORK/victim-empty.orig" "--append, symbolic link"
unchanged "$WORK/victim-linked" "$WORK/victim-linked.orig" "--append, hard link"
[ -L "$WORK/a/all.s1.pcap" ] || fail "the symbolic link was replaced"
same "$WORK/a/all.s1.1.pcap" "s1"
same "$WORK/a/all.s2.1.pcap" "s2"
expect_line "$WORK/r1.log" "cannot append to .*/a/all.s1.pcap \(it is a symbolic link, which is never followed\): writing to .*/a/all.s1.1.pcap instead" "symbolic link warning"
expect_line "$WORK/r1.log" "cannot append to .*/a/all.s2.pcap \(it has 2 hard links\): writing to .*/a/all.s2.1.pcap instead" "hard link warning"
ok "--append: a symbolic link and a hard link were left alone, the packets went to the next names: $res"

# 2. Rotated files with --append: the sequence out.pcap, out.1.pcap ends
# in a symbolic link to an appendable capture. It is not continued.
mkdir "$WORK/b"
cp "$IN" "$WORK/b/out.pcap"
cp "$IN" "$WORK/victim-rot"
cp "$IN" "$WORK/victim-rot.orig"
ln -s "$WORK/victim-rot" "$WORK/b/out.1.pcap"
start_receiver "$WORK/r2.log" -w "$WORK/b/out.pcap" -C 100m --append --state none
send r
stop_receiver
unchanged "$WORK/victim-rot" "$WORK/victim-rot.orig" "rotation, --append"
cmp -s "$IN" "$WORK/b/out.pcap" || fail "out.pcap (not the last of its sequence) was changed"
same "$WORK/b/out.2.pcap" "rotation"
ok "--append of a rotated sequence: a symbolic link as its last file was not followed: $res"

# 3. --split-by-sensor: a symbolic link to /dev/null and a named pipe
# where sensors' files go. Neither is written (a pipe without a reader
# would also hang the receiver); the next free names are.
mkdir "$WORK/c"
ln -s /dev/null "$WORK/c/all.s3.pcap"
mkfifo "$WORK/c/all.s4.pcap"
start_receiver "$WORK/r3.log" -w "$WORK/c/all.pcap" --split-by-sensor --state none
send s3
send s4
stop_receiver
same "$WORK/c/all.s3.1.pcap" "s3"
same "$WORK/c/all.s4.1.pcap" "s4"
[ -p "$WORK/c/all.s4.pcap" ] || fail "the named pipe was replaced"
expect_line "$WORK/r3.log" "/c/all.s3.pcap exists: writing to .*/c/all.s3.1.pcap instead" "warning"
ok "--split-by-sensor: a link to /dev/null and a named pipe at sensors' names were not written: $res"

# 4. A sensor's file is taken up again when it reconnects, unless it was
# replaced meanwhile, here by a symbolic link to a copy of the same size.
mkdir "$WORK/d"
start_receiver "$WORK/r4.log" -w "$WORK/d/all.pcap" --split-by-sensor --state none \
  --post-rotate "echo >>'$WORK/closed.log'"
send s5
send s6 # its writes close s5's idle file (post-rotate runs on it)
for _ in $(seq 1 200); do
  grep -q "all.s5.pcap" "$WORK/closed.log" 2>/dev/null && break
  sleep 0.05
done
grep -q "all.s5.pcap" "$WORK/closed.log" 2>/dev/null || fail "s5's file was not closed after it left"
cp "$WORK/d/all.s5.pcap" "$WORK/victim-resume"
cp "$WORK/d/all.s5.pcap" "$WORK/victim-resume.orig"
rm "$WORK/d/all.s5.pcap"
ln -s "$WORK/victim-resume" "$WORK/d/all.s5.pcap"
send s5
stop_receiver
unchanged "$WORK/victim-resume" "$WORK/victim-resume.orig" "taken up again"
same "$WORK/victim-resume" "s5's first stream"
same "$WORK/d/all.s5.1.pcap" "s5 after it reconnected"
ok "a sensor's replaced file is not taken up again through a symbolic link: $res"
