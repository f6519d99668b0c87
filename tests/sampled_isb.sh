#!/usr/bin/env bash
# Packets sampling leaves out are counted per interface and reach the
# receiver's pcapng statistics blocks: isb_filteraccept = what the
# filter took (before sampling), isb_usrdeliv = what was sent, and a
# comment "sampled-out N" for readers that show neither (tshark 4.0 -V
# and capinfos show no ISB option). The same count is in GET /metrics,
# per interface. Two sensors read a file of exactly 100 packets (one per
# millisecond, all in one second): --sample 1/4 keeps 25 and leaves out
# 75; --max-pps 30 keeps 30 and leaves out 70. Needs no corpus.
. "$top_srcdir/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
CTL="$top_builddir/tools/ps-ctl"
cd "$WORK"
python3 "$top_srcdir/tests/mkpcap.py" in.pcap 100 200 || fail "mkpcap"

start_receiver r.log -w out.pcapng --admin 127.0.0.1:0 --admin-port-file admin.port
ADMIN="http://127.0.0.1:$(awk '{print $2}' admin.port)"
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$RPORT" --name quarter --sample 1/4 2>s1.log ||
  { cat s1.log >&2; fail "sensor --sample 1/4"; }
"$SENSOR" -r in.pcap --receiver "127.0.0.1:$RPORT" --name capped --max-pps 30 2>s2.log ||
  { cat s2.log >&2; fail "sensor --max-pps 30"; }
expect_line s1.log "in.pcap: 25 captured, 25 acknowledged" "the sensor sent 25 of 100"
expect_line s2.log "in.pcap: 30 captured, 30 acknowledged" "the sensor sent 30 of 100"
"$CTL" --admin "$ADMIN" metrics >metrics.txt || fail "ps-ctl metrics"
expect_line metrics.txt '^ps_sensor_sampled_out_packets_total\{sensor="quarter",iface="in.pcap"\} 75$' "metrics: 75 sampled out by quarter"
expect_line metrics.txt '^ps_sensor_sampled_out_packets_total\{sensor="capped",iface="in.pcap"\} 70$' "metrics: 70 sampled out by capped"
stop_receiver

"$PCAPCMP" --isb out.pcapng >isb.txt || fail "pcapcmp --isb"
cat isb.txt
expect_line isb.txt '^isb quarter/in.pcap filteraccept 100 usrdeliv 25$' "ISB of quarter"
expect_line isb.txt '^isb quarter/in.pcap comment sampled-out 75$' "ISB comment of quarter"
expect_line isb.txt '^isb capped/in.pcap filteraccept 100 usrdeliv 30$' "ISB of capped"
expect_line isb.txt '^isb capped/in.pcap comment sampled-out 70$' "ISB comment of capped"
# The file holds exactly what the ISBs say was delivered.
"$PCAPCMP" --list out.pcapng >list.txt || fail "pcapcmp --list"
expect_line list.txt '^epb 0 25$' "25 packets of quarter in the file"
expect_line list.txt '^epb 1 30$' "30 packets of capped in the file"
ok "sampled out in the statistics blocks: 100 accepted, 25 and 30 delivered, 75 and 70 sampled out; metrics agree"
