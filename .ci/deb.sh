#!/usr/bin/env bash
# The Debian packages: builds them with dpkg-buildpackage -us -uc -b in a
# copy of the tree, fails on any lintian error, installs the three with
# apt on this machine, checks the tools, the library, the user and the
# units, builds and runs the examples against the installed library,
# then purges them and checks that nothing is left. Needs root; the
# packages must not be installed before.
set -euo pipefail
trap 'echo ".ci/deb.sh: failed at line $LINENO"' ERR
cd "$(dirname "$0")/.."
had_user=no
id packetstreamer >/dev/null 2>&1 && had_user=yes
pkgs="libpacketstreamer0 libpacketstreamer-dev packetstreamer"
for p in $pkgs; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    echo "$p is installed already: apt-get purge it first"; exit 1
  fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ps-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/libpacketstreamer"
git ls-files -co --exclude-standard -z | grep -zv '^build' |
  tar --null -cf - -T - | tar -xf - -C "$tmp/libpacketstreamer"

echo "--- dpkg-buildpackage -us -uc -b"
(cd "$tmp/libpacketstreamer" &&
  DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
  >"$tmp/build.log" 2>&1 || { tail -60 "$tmp/build.log"; exit 1; }
ls "$tmp"/*.deb

echo "--- lintian"
lintian --fail-on error --tag-display-limit 0 "$tmp"/libpacketstreamer_*.changes |
  tee "$tmp/lintian.log" || { echo "lintian reports errors"; exit 1; }
! grep -q '^E: ' "$tmp/lintian.log"

echo "--- install"
debs=()
for p in $pkgs; do debs+=("$(ls "$tmp"/${p}_*.deb)"); done
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${debs[@]}" >"$tmp/apt.log" 2>&1 ||
  { cat "$tmp/apt.log"; exit 1; }
trap 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=600 $pkgs >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
version=$(dpkg-query -W -f='${Version}' packetstreamer)
ps-receiver --version | grep -F "$version"
ps-sensor --version | grep -F "$version"
ps-ctl --version | grep -F "$version"
[ "$(command -v ps-receiver)" = /usr/bin/ps-receiver ]
libs=$(pkg-config --libs libpacketstreamer | xargs)
[ "$libs" = "-lpacketstreamer" ] || { echo "pkg-config --libs: $libs"; exit 1; }
pkg-config --modversion libpacketstreamer | grep -qxF "$version"
uid=$(id -u packetstreamer)
[ "$uid" -lt 1000 ] || { echo "packetstreamer is not a system user (uid $uid)"; exit 1; }
dpkg-query -W -f='${Conffiles}\n' packetstreamer | grep -q /etc/packetstreamer/sensor.yaml
dpkg-query -W -f='${Conffiles}\n' packetstreamer | grep -q /etc/packetstreamer/receiver.yaml
man_opt=--man=no
command -v man >/dev/null && man -w ps-sensor >/dev/null 2>&1 && man_opt=--man=yes
systemd-analyze verify "$man_opt" /lib/systemd/system/ps-sensor.service \
  /lib/systemd/system/ps-receiver.service
grep -qx 'ExecStart=/usr/bin/ps-sensor --config /etc/packetstreamer/sensor.yaml' \
  /lib/systemd/system/ps-sensor.service

echo "--- the examples against the installed library"
ex=/usr/share/doc/libpacketstreamer-dev/examples
mkdir "$tmp/ex"
cp "$ex"/Makefile "$ex"/*.c "$tmp/ex/"
gunzip -f "$tmp"/ex/*.gz 2>/dev/null || true
make -s -C "$tmp/ex" CFLAGS="-O2 -Wall -Wextra -Werror"
ldd "$tmp/ex/count_receiver" | grep -q 'libpacketstreamer.so.0 => /\(usr/\)\{0,1\}lib/' ||
  { ldd "$tmp/ex/count_receiver"; echo "not linked to the packaged library"; exit 1; }
"$tmp/ex/count_receiver" 0 1 >"$tmp/counts" 2>"$tmp/cr.err" &
cr=$!
for _ in $(seq 1 100); do
  port=$(sed -n 's/^listening on port \([0-9]*\)$/\1/p' "$tmp/counts")
  [ -n "$port" ] && break; sleep 0.05
done
[ -n "$port" ] || { cat "$tmp/cr.err"; exit 1; }
"$tmp/ex/send_packets" 127.0.0.1 "$port" 1000 | grep -qx "sent 1000 packets"
wait "$cr"
grep -qx "sensor send-demo: 1000 packets, 143500 bytes" "$tmp/counts" ||
  { cat "$tmp/counts" "$tmp/cr.err"; exit 1; }
echo "examples: 1000 packets, 143500 bytes through the installed library"

echo "--- purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=600 $pkgs >/dev/null
for f in /usr/bin/ps-sensor /usr/bin/ps-receiver /etc/packetstreamer \
  /lib/systemd/system/ps-sensor.service /usr/include/packetstreamer; do
  [ ! -e "$f" ] || { echo "$f is left after purge"; exit 1; }
done
ls /usr/lib/*/libpacketstreamer.so* 2>/dev/null && { echo "library left after purge"; exit 1; }
# The user stays after a purge (Debian's rule for system users); this
# machine gets back the users it had.
[ "$had_user" = yes ] || deluser --system --quiet packetstreamer 2>/dev/null ||
  echo "warning: could not remove the user packetstreamer (in use?)"
echo "debian packages: built, lintian clean of errors, installed, checked and purged"
