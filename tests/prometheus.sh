#!/bin/bash
# The admin API's /metrics, read by a real Prometheus server (Debian's
# prometheus): it scrapes the receiver with a bearer token while a
# sensor streams, and its query API must return the sensor's packet
# counter equal to the packets in the output file. promtool finds no
# problem in the exposition. Also: the token is required (401 without
# or with a wrong one), a token file others can read is refused, and
# without a token the admin API binds only to loopback.
. "$top_srcdir/tests/lib.sh"
command -v prometheus >/dev/null || skip "prometheus is not installed (Debian package prometheus)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
command -v curl >/dev/null || skip "curl is not installed"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

TOK="$WORK/token"
printf 'secret-%s\n' "$$" >"$TOK"
chmod 600 "$TOK"
mix CAP 3000

start_receiver "$WORK/r.log" -w "$WORK/out.pcap" --admin 127.0.0.1:0 \
  --admin-token-file "$TOK" --admin-port-file "$WORK/admin.port"
APORT=$(awk '{print $2}' "$WORK/admin.port")
[ -n "$APORT" ] || fail "no admin port file"
ADMIN="http://127.0.0.1:$APORT"

# Authentication: no token, a wrong one, then the right one.
code=$(curl -s -o "$WORK/401.json" -w '%{http_code}' "$ADMIN/metrics")
[ "$code" = 401 ] || fail "GET /metrics without a token: HTTP $code, not 401"
grep -q 'bearer token is required' "$WORK/401.json" || fail "401 without its reason: $(cat "$WORK/401.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$ADMIN/metrics")
[ "$code" = 401 ] || fail "GET /metrics with a wrong token: HTTP $code, not 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$TOK")x" "$ADMIN/metrics")
[ "$code" = 401 ] || fail "GET /metrics with the token and one more byte: HTTP $code, not 401"
ok "401 without the token, with a wrong one"

PPORT=$(free_port)
cat >"$WORK/prom.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: ps
    authorization:
      type: Bearer
      credentials_file: $TOK
    static_configs:
      - targets: ["127.0.0.1:$APORT"]
YML
prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" >"$WORK/prom.log" 2>&1 &
PIDS+=($!)

# The stream runs while Prometheus scrapes (paced a little, so that
# scrapes fall during it and after it).
"$SENSOR" -r "$CAP" --receiver "127.0.0.1:$RPORT" --name prom-1 2>"$WORK/s.log" \
  || { cat "$WORK/s.log"; fail "ps-sensor failed"; }
n_file=$(tshark -r "$WORK/out.pcap" 2>/dev/null | wc -l)
[ "$n_file" -eq 3000 ] || fail "output holds $n_file packets, not 3000"

query() {
  curl -sG "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
got=none
for i in $(seq 1 120); do
  got=$(query 'ps_sensor_packets_total{sensor="prom-1"}' 2>/dev/null) || got=none
  [ "$got" = "$n_file" ] && break
  sleep 0.5
done
[ "$got" = "$n_file" ] || { cat "$WORK/prom.log" | tail -20; fail "Prometheus says ps_sensor_packets_total{sensor=\"prom-1\"} = $got, the file holds $n_file"; }
ok "Prometheus query: ps_sensor_packets_total{sensor=\"prom-1\",iface=...} = $got = packets in the file"
up=$(query 'up{job="ps"}')
[ "$up" = 1 ] || fail "Prometheus scrape target not up ($up)"
rp=$(query 'ps_receiver_packets_total')
[ "$rp" = "$n_file" ] || fail "ps_receiver_packets_total = $rp, not $n_file"
ok "ps_receiver_packets_total = $rp"

curl -sf -H "Authorization: Bearer $(cat "$TOK")" "$ADMIN/metrics" >"$WORK/metrics.txt" || fail "GET /metrics with the token failed"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1 ||
  { cat "$WORK/promtool.out"; fail "promtool check metrics found problems"; }
[ ! -s "$WORK/promtool.out" ] || { cat "$WORK/promtool.out"; fail "promtool check metrics printed lint problems"; }
grep -q '^ps_sensor_packets_total{sensor="prom-1",iface="[^"]*"} 3000$' "$WORK/metrics.txt" || fail "no per-interface packet counter in /metrics"
ok "promtool check metrics: no problem"
stop_receiver

# A token file others may read is refused; without a token, only
# loopback.
chmod 644 "$TOK"
"$RECEIVER" -l 127.0.0.1:0 -w "$WORK/x.pcap" --admin 127.0.0.1:0 --admin-token-file "$TOK" 2>"$WORK/e1.log" && fail "a readable token file was taken"
expect_line "$WORK/e1.log" "can be read by group or others: chmod 600" "readable token file"
"$RECEIVER" -l 127.0.0.1:0 -w "$WORK/x.pcap" --admin 0.0.0.0:0 2>"$WORK/e2.log"
rc=$?
[ "$rc" -eq 2 ] || fail "--admin 0.0.0.0:0 without a token exited $rc, not 2"
expect_line "$WORK/e2.log" "without authentication listens only on loopback" "non-loopback admin without a token"
"$RECEIVER" -l 127.0.0.1:0 -w "$WORK/x.pcap" --admin-token-file "$TOK" 2>"$WORK/e3.log"
[ $? -eq 2 ] || fail "--admin-token-file without --admin is no usage error"
expect_line "$WORK/e3.log" "add --admin" "--admin-token-file alone"
ok "token file mode checked, no unauthenticated admin API off loopback"
