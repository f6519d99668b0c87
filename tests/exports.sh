#!/usr/bin/env bash
# The shared library exports exactly the functions the public header
# declares with PS_API: no internal ps__ name, nothing undeclared.
. "$top_srcdir/tests/lib.sh"
so="$top_builddir/lib/.libs/libpacketstreamer.so"
[ -f "$so" ] || skip "no shared library built ($so)"
command -v nm >/dev/null || fail "nm (binutils) is needed"
hdr="$top_srcdir/include/packetstreamer/packetstreamer.h"
# Declarations may span lines: join the header, then take the name
# before the first '(' of every PS_API declaration.
tr '\n' ' ' <"$hdr" | grep -oE 'PS_API[^;(]*\(' |
  sed -E 's/.*[ *]([a-z_][a-z0-9_]*)[[:space:]]*\($/\1/' | grep '^ps_' |
  sort -u >"$WORK/declared"
[ -s "$WORK/declared" ] || fail "no PS_API declaration found in $hdr"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRW]$/ {print $3}' |
  sed 's/@.*//' | sort -u >"$WORK/exported"
if grep -n '^ps__' "$WORK/exported"; then fail "internal symbols exported"; fi
diff -u "$WORK/declared" "$WORK/exported" >"$WORK/diff" || {
  cat "$WORK/diff" >&2
  fail "exports differ from the header's PS_API declarations (- declared only, + exported only)"
}
ok "$(wc -l <"$WORK/exported") exported functions, all declared in the public header"

# The version script alone keeps internal names local, even for a symbol
# compiled with default visibility.
printf '%s\n' 'void ps__internal(void) {}' 'void ps_public(void) {}' >"$WORK/v.c"
${CC:-cc} -shared -fPIC -fvisibility=default -o "$WORK/v.so" "$WORK/v.c" \
  -Wl,--version-script="$top_srcdir/lib/libpacketstreamer.map" ||
  fail "cannot link with the version script"
nm -D --defined-only "$WORK/v.so" | grep -q ' ps_public' ||
  fail "the version script does not export ps_public"
nm -D --defined-only "$WORK/v.so" | grep -q ' ps__internal' &&
  fail "the version script exports the internal name ps__internal"
ok "the version script exports ps_ names and keeps ps__ names local"
