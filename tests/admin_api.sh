#!/bin/bash
# The admin API's answers to bad requests, each with its status and its
# reason: malformed JSON 400, a request outside the limits 400, no or a
# wrong token 401, an oversized body 413, an unknown sensor or capture
# 404, a method a resource does not take 405. And a version 1 sensor
# (hostile's v1 hello, as every earlier build sends) is served, shown
# in the inventory as not announced, and refused remote captures with
# the reason.
. "$top_srcdir/tests/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
TOK="$WORK/token"
printf 'tok-%s' "$$" >"$TOK"
chmod 600 "$TOK"
start_receiver "$WORK/r.log" -w "$WORK/out.pcap" --admin 127.0.0.1:0 \
  --admin-token-file "$TOK" --admin-port-file "$WORK/admin.port"
ADMIN="http://127.0.0.1:$(awk '{print $2}' "$WORK/admin.port")"
AUTH="Authorization: Bearer $(cat "$TOK")"

# api METHOD PATH BODY STATUS REASON: the answer has STATUS and REASON.
api() {
  local out="$WORK/answer" code
  if [ -n "$3" ]; then
    code=$(curl -s -o "$out" -w '%{http_code}' -X "$1" -H "$AUTH" --data-binary "$3" "$ADMIN$2")
  else
    code=$(curl -s -o "$out" -w '%{http_code}' -X "$1" -H "$AUTH" "$ADMIN$2")
  fi
  [ "$code" = "$4" ] || { cat "$out"; fail "$1 $2: HTTP $code, expected $4"; }
  grep -qF -- "$5" "$out" || { cat "$out"; fail "$1 $2: no '$5' in the answer"; }
}
api POST /api/v1/captures '{"sensors": "x",' 400 'invalid JSON: '
api POST /api/v1/captures '[1, 2]' 400 'the request must be a JSON object'
api POST /api/v1/captures '{"filter": "udp"}' 400 "'sensors' is required"
api POST /api/v1/captures '{"sensors": "a", "sensors": "b"}' 400 'duplicate object key'
api POST /api/v1/captures '{"sensors": "a", "colour": 1}' 400 "unknown key 'colour'"
api POST /api/v1/captures '{"sensors": "a", "snaplen": 262145}' 400 "'snaplen' must be an integer 1..262144"
api POST /api/v1/captures '{"sensors": "a", "sample": "1/0"}' 400 "'sample' must be a string"
api POST /api/v1/captures '{"sensors": {"labels": {"9x": "y"}}}' 400 "invalid label key '9x'"
api POST /api/v1/captures '{"sensors": "a\u0001"}' 400 'without control characters'
api POST /api/v1/captures '{"sensors": "a", "output": "/tmp/{capture}.pcap"}' 400 "'output'"
api POST /api/v1/captures '{"sensors": "nosuch", "duration_s": 1}' 404 'no sensor matches the selector'
head -c 70000 /dev/zero | tr '\0' ' ' >"$WORK/big"
api POST /api/v1/captures "@$WORK/big" 413 'request body larger than 65536 bytes'
api GET /api/v1/sensors/nosuch '' 404 "no sensor named 'nosuch'"
api GET /api/v1/captures/12 '' 404 'no capture 12'
api GET /api/v1/captures/x1 '' 404 'no capture x1'
api DELETE /metrics '' 405 'only GET'
api PUT /api/v1/captures '' 405 'GET or POST'
api GET /nothing '' 404 'no such resource: /nothing'
code=$(curl -s -o "$WORK/answer" -w '%{http_code}' -X POST --data '{}' "$ADMIN/api/v1/captures")
[ "$code" = 401 ] || fail "POST without the token: HTTP $code"
ok "bad requests answered with their status and reason"

# A version 1 sensor: hostile's "good" mode speaks the protocol of the
# earlier builds (hello 1..1, no announcement). It is served (version 1
# chosen), listed without an announcement, and a capture is refused for
# it at the receiver, without a frame it would not know.
HOSTILE_GO="$WORK/go" "$top_builddir/tests/hostile" good 127.0.0.1 "$RPORT" >"$WORK/h.log" 2>&1 &
HPID=$!; PIDS+=("$HPID")
wait_log "$WORK/h.log" "batch 1 acknowledged" 1 "the version 1 sensor was not served"
api GET /api/v1/sensors/hostile-good '' 200 '"announced": false'
api POST /api/v1/captures '{"sensors": "hostile-*", "duration_s": 1}' 201 \
  'the sensor speaks protocol version 1: it takes no remote captures'
touch "$WORK/go"
wait "$HPID" || { cat "$WORK/h.log"; fail "the version 1 sensor did not finish"; }
expect_line "$WORK/h.log" "batch 2 acknowledged, close confirmed" "version 1 sensor"
api GET /metrics '' 200 'ps_sensor_packets_total{sensor="hostile-good",iface='
grep -q '} 6$' "$WORK/answer" || fail "6 packets of the version 1 sensor not in /metrics"
ok "a version 1 sensor is served by this receiver, and refused remote captures"
stop_receiver
