#!/usr/bin/env bash
# The systemd units as `make install` installs them: systemd-analyze
# verify passes (with ExecStart pointing into the staged install), they
# have the hardening docs/DEPLOYMENT.md lists, the example
# configurations' paths are in their StateDirectory, and
# systemd-analyze security scores them no worse than the docs say.
. "$top_srcdir/tests/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze (systemd) is not installed"
D="$WORK/dest"
$MAKE -C "$top_builddir" install DESTDIR="$D" \
  systemdsystemunitdir=/lib/systemd/system sysusersdir=/usr/lib/sysusers.d \
  >"$WORK/install.log" 2>&1 || { tail -20 "$WORK/install.log"; fail "make install"; }
prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
sysconfdir=$(sed -n 's/^sysconfdir = //p' "$top_builddir/Makefile" | sed "s|\${prefix}|$prefix|")
for t in sensor receiver; do
  u="$D/lib/systemd/system/ps-$t.service"
  [ -f "$u" ] || fail "make install did not install ps-$t.service"
  [ -f "$D$sysconfdir/packetstreamer/$t.yaml" ] || fail "no $sysconfdir/packetstreamer/$t.yaml installed"
  grep -qx "ExecStart=$prefix/bin/ps-$t --config $sysconfdir/packetstreamer/$t.yaml" "$u" ||
    fail "ps-$t.service: ExecStart is not ps-$t --config $sysconfdir/packetstreamer/$t.yaml"
  for k in User=packetstreamer NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
    PrivateTmp=yes Restart=on-failure "StateDirectory=packetstreamer/$t"; do
    grep -qx "$k" "$u" || fail "ps-$t.service has no $k"
  done
  # The unit as installed, but run from the staged install.
  sed "s|^ExecStart=$prefix/bin/|ExecStart=$D$prefix/bin/|" "$u" >"$WORK/ps-$t.service"
  systemd-analyze verify --man=no "$WORK/ps-$t.service" >"$WORK/verify.log" 2>&1 ||
    { cat "$WORK/verify.log"; fail "systemd-analyze verify ps-$t.service"; }
  [ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log"; fail "systemd-analyze verify ps-$t.service warned"; }
  # Writable paths of the example configuration: in the StateDirectory.
  for p in $(sed -n 's/^\(spool-dir\|write\|state\): *"\{0,1\}\([^"]*\)"\{0,1\}$/\2/p' "$top_srcdir/etc/$t.yaml"); do
    case $p in /var/lib/packetstreamer/$t/*) ;; *) fail "etc/$t.yaml: $p is not in StateDirectory packetstreamer/$t";; esac
  done
done
u="$D/lib/systemd/system"
grep -qx "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN" "$u/ps-sensor.service" &&
  grep -qx "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" "$u/ps-sensor.service" ||
  fail "ps-sensor.service: capabilities other than CAP_NET_RAW CAP_NET_ADMIN"
grep -qx "CapabilityBoundingSet=" "$u/ps-receiver.service" &&
  grep -qx "AmbientCapabilities=" "$u/ps-receiver.service" ||
  fail "ps-receiver.service: capabilities are not empty"
[ -f "$D/usr/lib/sysusers.d/packetstreamer.conf" ] || fail "no sysusers.d file installed"
grep -q '^u packetstreamer ' "$D/usr/lib/sysusers.d/packetstreamer.conf" || fail "sysusers.d: no user packetstreamer"
# Exposure scores (docs/DEPLOYMENT.md): sensor at most 2.2, receiver 1.3.
for t in sensor:2.2 receiver:1.3; do
  n=${t%%:*} max=${t#*:}
  if systemd-analyze security --offline=yes "$WORK/ps-$n.service" >"$WORK/sec.log" 2>&1; then
    score=$(sed -n 's/.*Overall exposure level for ps-[a-z]*\.service: \([0-9.]*\).*/\1/p' "$WORK/sec.log")
    [ -n "$score" ] || { cat "$WORK/sec.log"; fail "no exposure score for ps-$n.service"; }
    echo "ps-$n.service exposure $score (at most $max)"
    awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' || fail "ps-$n.service exposure $score > $max"
  else
    grep -q 'offline' "$WORK/sec.log" && echo "systemd-analyze security --offline not supported here" ||
      { cat "$WORK/sec.log"; fail "systemd-analyze security ps-$n.service"; }
  fi
done
ok "units installed, verified and hardened"
