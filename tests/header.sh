#!/usr/bin/env bash
# The public header compiles alone, in strict C99 and as C++, and pulls in
# no libpcap, GnuTLS or zlib header.
. "$top_srcdir/tests/lib.sh"
inc=(-I"$top_srcdir/include" -I"$top_builddir/include")
echo '#include <packetstreamer/packetstreamer.h>
int main(void) { return ps_strerror(PS_ERR_INVALID) == 0; }' >"$WORK/h.c"
${CC:-cc} -std=c99 -pedantic -Wall -Wextra -Werror "${inc[@]}" -fsyntax-only "$WORK/h.c" \
  || fail "header does not compile as C99"
if command -v c++ >/dev/null; then
  c++ -x c++ -std=c++11 -Wall -Werror "${inc[@]}" -fsyntax-only "$WORK/h.c" \
    || fail "header does not compile as C++"
fi
${CC:-cc} -E "${inc[@]}" "$WORK/h.c" | grep -Eq '(pcap|gnutls|zlib)\.h' \
  && fail "the public header includes a dependency's header"
ok "public header is self-contained"
