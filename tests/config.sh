#!/usr/bin/env bash
# --config FILE and --print-config. Every key --print-config lists (the
# tool's long options, so a new option is listed without a change here
# and fails until the table below gives it a value) has the same effect
# in a file as on the command line: --print-config of "--OPT VALUE" and
# of "OPT: VALUE" in a file agree, and show VALUE. --print-config's
# output is itself a config file giving the same. Real streaming runs
# configured by files write what the same command lines write. Errors
# are one line with FILE:LINE:COLUMN, exit code 2, and nothing of a
# file with an error is applied.
. "$top_srcdir/tests/lib.sh"

printf 'udp\n' >"$WORK/f.txt"
printf 'k3y\n' >"$WORK/key" && chmod 600 "$WORK/key"

# KEY|VALUE|OTHER OPTIONS (on the command line in both runs)
sensor_table() {
  cat <<EOF
interface|lo|
read|$WORK/in.pcap|
receiver|127.0.0.1:9|
snapshot-length|1500|
buffer-size|1024|
no-promiscuous-mode|true|
count|5|
duration|7|
compress|none|
name|cfgtest|
connect-timeout|3|
peer-timeout|9|
batch-max-delay|250|
replay-buffer|1M|
spool-dir|$WORK/spool|
overflow|drop-newest|
filter-file|$WORK/f.txt|
interface-filter|lo=udp port 53|
tls|true|
tls-ca|$WORK/ca.pem|
tls-server-name|rx.example|
tls-cert|$WORK/c.pem|--tls-key $WORK/k.pem
tls-key|$WORK/k.pem|--tls-cert $WORK/c.pem
tls-pin|sha256:AAAA|
tls-insecure|true|
auth-key-file|$WORK/key|
relinquish-privileges|nobody|
quiet|true|
verbose|true|
log-format|json|
log-file|$WORK/l.log|
netns|cfgtest-ns|
netns-match|netns=cfgtest|--netns all
netns-loopback|true|--netns all
netns-rescan|5|--netns all
runtime-root|$WORK|--netns all
node-name|node-1|--netns all
sample|1/10|
max-pps|500|
label|app=web|
allow-remote-capture|true|
standby|true|
remote-max-duration|600|--allow-remote-capture
remote-max-snaplen|1500|--allow-remote-capture
remote-max-pps|1000|--allow-remote-capture
remote-interfaces|lo,eth0|--allow-remote-capture
remote-filter-guard|not port 22|--allow-remote-capture
filter|udp|
EOF
}
receiver_table() {
  cat <<EOF
listen|127.0.0.1:0|
write|$WORK/o.pcap|
format|pcapng|
time-stamp-precision|nano|
max-sensors|5|
max-pending|7|
idle-timeout|9|
split-by-sensor|true|
post-rotate|echo done|
append|true|
state|$WORK/st|
port-file|$WORK/pf|
tls-cert|$WORK/c.pem|--tls-key $WORK/k.pem
tls-key|$WORK/k.pem|--tls-cert $WORK/c.pem
tls-client-ca|$WORK/ca.pem|--tls-cert $WORK/c.pem --tls-key $WORK/k.pem
auth-key-file|$WORK/key|
relinquish-privileges|nobody|
quiet|true|
verbose|true|
log-format|json|
log-file|$WORK/l.log|
file-size|5|
rotate-seconds|60|
file-count|3|-C 5
pcap-over-ip|127.0.0.1:19000,format=pcapng|
pcap-over-ip-connect|127.0.0.1:57012|
kafka|127.0.0.1:9|--kafka-topic t
kafka-topic|t|--kafka 127.0.0.1:9
kafka-property|compression.codec=lz4|--kafka 127.0.0.1:9 --kafka-topic t
from-kafka|127.0.0.1:9|--kafka-topic t --kafka-group g
kafka-group|g|--from-kafka 127.0.0.1:9 --kafka-topic t
admin|127.0.0.1:0|
admin-token-file|$WORK/key|--admin 127.0.0.1:0
admin-port-file|$WORK/apf|--admin 127.0.0.1:0
admin-tls-cert|$WORK/c.pem|--admin 127.0.0.1:0 --admin-tls-key $WORK/k.pem
admin-tls-key|$WORK/k.pem|--admin 127.0.0.1:0 --admin-tls-cert $WORK/c.pem
admin-tls-client-ca|$WORK/ca.pem|--admin 127.0.0.1:0 --admin-tls-cert $WORK/c.pem --admin-tls-key $WORK/k.pem
capture-dir|$WORK|--admin 127.0.0.1:0
EOF
}

# The base command line of a tool without KEY's own option.
base() {
  local tool=$1 key=$2
  if [ "$tool" = ps-sensor ]; then
    case $key in interface|read|standby) ;; *) echo -i lo ;; esac
    [ "$key" = receiver ] || echo --receiver 127.0.0.1:9
  else
    # (--from-kafka reads a topic instead of listening.)
    case $key in listen|from-kafka|kafka-group) ;; *) echo --listen 127.0.0.1:0 ;; esac
    [ "$key" = write ] || echo -w "$WORK/base.pcap"
  fi
}

n=0
for tool in ps-sensor ps-receiver; do
  T="$top_builddir/tools/$tool"
  if [ $tool = ps-sensor ]; then table=sensor_table; else table=receiver_table; fi
  "$T" $(base $tool none) --print-config >"$WORK/keys.out" ||
    fail "$tool --print-config"
  # Every key it lists has a row.
  sed -n -E 's/^(# )?([a-z][a-z0-9-]*): .*/\2/p' "$WORK/keys.out" |
    sort -u >"$WORK/keys"
  $table | cut -d'|' -f1 | sort -u >"$WORK/rows"
  comm -23 "$WORK/keys" "$WORK/rows" >"$WORK/missing"
  [ -s "$WORK/missing" ] && fail "$tool: keys without a row here: $(cat "$WORK/missing")"
  while IFS='|' read -r key value others; do
    cli=()
    if [ "$value" = true ]; then cli=(--$key); elif [ "$key" = filter ]; then cli=($value)
    else cli=(--$key "$value"); fi
    # (the positional filter comes last)
    if [ "$key" = filter ]; then
      "$T" $(base $tool $key) $others --print-config "${cli[@]}" >"$WORK/a" 2>"$WORK/a.err"
    else
      "$T" $(base $tool $key) $others "${cli[@]}" --print-config >"$WORK/a" 2>"$WORK/a.err"
    fi || { cat "$WORK/a.err"; fail "$tool --$key $value --print-config"; }
    if [ "$value" = true ]; then printf '%s: true\n' "$key"
    else printf '%s: "%s"\n' "$key" "$value"; fi >"$WORK/c.yaml"
    chmod 600 "$WORK/c.yaml"
    "$T" $(base $tool $key) $others --config "$WORK/c.yaml" --print-config \
      >"$WORK/b" 2>"$WORK/b.err" ||
      { cat "$WORK/b.err"; fail "$tool $key: \"$value\" in a file"; }
    grep -v '^#' "$WORK/a" >"$WORK/a.keys"; grep -v '^#' "$WORK/b" >"$WORK/b.keys"
    diff "$WORK/a.keys" "$WORK/b.keys" >"$WORK/d" ||
      { cat "$WORK/d"; fail "$tool: --$key on the command line and $key: in a file differ"; }
    diff <(grep '^#   ' "$WORK/a") <(grep '^#   ' "$WORK/b") ||
      fail "$tool $key: the per-interface filters differ"
    if [ "$value" = true ]; then want="$key: true"
    elif [ "$key" = interface ] || [ "$key" = receiver ] || [ "$key" = listen ] ||
      [ "$key" = interface-filter ] || [ "$key" = netns ] ||
      [ "$key" = netns-match ] || [ "$key" = pcap-over-ip ] || [ "$key" = write ] ||
      [ "$key" = pcap-over-ip-connect ] || [ "$key" = label ] || [ "$key" = kafka-property ]; then want="$key: \[.*\"$value\".*\]"
    else want="$key: \"$value\""; fi
    grep -Eq "^$want\$" "$WORK/b" || { cat "$WORK/b"; fail "$tool: $key not shown as $value"; }
    # The output, as a config file, gives the same again.
    "$T" $others --config "$WORK/b" --print-config >"$WORK/c" 2>"$WORK/c.err" ||
      { cat "$WORK/c.err" "$WORK/b"; fail "$tool: --print-config output is not a valid config ($key)"; }
    # (defaults read back are values: their "# default" goes)
    diff <(grep -v '^#' "$WORK/c" | sed 's/  # default$//') \
      <(sed 's/  # default$//' "$WORK/b.keys") ||
      fail "$tool: --print-config output read back differs ($key)"
    n=$((n + 1))
  done < <($table)
done
ok "$n keys: a file gives what the command line gives, --print-config reads back"

# Lists, and the command line over the file (a list replaced whole).
S="$SENSOR"
printf 'receiver: [a:5555, "b:5555"]\ninterface: [lo]\nreplay-buffer: 8M\nfilter: "tcp port 443"\ntls-insecure: true\n' >"$WORK/s.yaml"
"$S" --config "$WORK/s.yaml" --print-config >"$WORK/p" || fail "lists"
expect_line "$WORK/p" '^receiver: \["a:5555", "b:5555"\]$' "receiver list"
expect_line "$WORK/p" '^#   lo: tcp port 443$' "the filter of lo"
"$S" --config "$WORK/s.yaml" --receiver c:1 --replay-buffer 16M --print-config udp >"$WORK/p" || fail "override"
expect_line "$WORK/p" '^receiver: \["c:1"\]$' "command line replaces the list"
expect_line "$WORK/p" '^replay-buffer: "16M"$' "command line over the file"
expect_line "$WORK/p" '^filter: "udp"$' "arguments over filter:"
expect_line "$WORK/p" '^tls-insecure: true$' "a file's value kept"

# Real runs. A file of the mix read by a sensor configured by a file,
# into a receiver configured by a file: the same as the command lines.
mix IN 300
cp "$IN" "$WORK/in.pcap"
start_receiver "$WORK/r1.log" -w "$WORK/cli.pcapng" --format pcapng
"$S" -r "$IN" --receiver "127.0.0.1:$RPORT" --name cfg --compress zlib udp 2>"$WORK/s1.log" ||
  { cat "$WORK/s1.log"; fail "sensor, command line"; }
stop_receiver
cat >"$WORK/r.yaml" <<EOF
listen: "127.0.0.1:0"
write: $WORK/file.pcapng
format: pcapng
EOF
start_receiver "$WORK/r2.log" --config "$WORK/r.yaml" --listen 127.0.0.1:0
cat >"$WORK/s2.yaml" <<EOF
read: $IN
receiver: ["127.0.0.1:$RPORT"]
name: cfg
compress: zlib
filter: udp
EOF
"$S" --config "$WORK/s2.yaml" 2>"$WORK/s2.log" || { cat "$WORK/s2.log"; fail "sensor, config file"; }
stop_receiver
"$PCAPCMP" "$WORK/cli.pcapng" "$WORK/file.pcapng" || fail "config-file run differs from the command-line run"
expect_line "$WORK/r2.log" "sensor cfg .*compression zlib" "the file's name and compress"
ok "a streaming run configured by files writes what the command lines write"

# Errors: one line, FILE:LINE:COLUMN, exit 2.
# err TOOL YAML REGEX [ARGS...]
err() {
  local tool=$1 yaml=$2 re=$3; shift 3
  printf -- "$yaml" >"$WORK/e.yaml"
  chmod 600 "$WORK/e.yaml"
  "$top_builddir/tools/$tool" --config "$WORK/e.yaml" "$@" >"$WORK/e.out" 2>"$WORK/e.err"
  local rc=$?
  [ "$rc" -eq 2 ] || { cat "$WORK/e.err"; fail "$tool: '$yaml': exit $rc, not 2"; }
  [ "$(wc -l <"$WORK/e.err")" -eq 1 ] || { cat "$WORK/e.err"; fail "'$yaml': not one line"; }
  grep -Eq -- "^$tool: $WORK/e.yaml:$re" "$WORK/e.err" ||
    { cat "$WORK/e.err"; fail "'$yaml': no /$re/"; }
  [ -s "$WORK/e.out" ] && fail "'$yaml': something printed on standard output"
  return 0
}
SA=(-i lo --receiver 127.0.0.1:9 --print-config)
err ps-sensor 'replay-bufer: 8M\n' "1:1: unknown key 'replay-bufer' \(did you mean 'replay-buffer'\?\)$" "${SA[@]}"
err ps-sensor 'compres: lz4\n' "1:1: unknown key 'compres' \(did you mean 'compress'\?\)$" "${SA[@]}"
err ps-sensor 'name: a\nduplicate-me: 1\n' "2:1: unknown key 'duplicate-me': the keys are the long options" "${SA[@]}"
err ps-sensor 'count: 1\ncount: 2\n' "2:1: duplicate key 'count' \(first at line 1\)" "${SA[@]}"
err ps-sensor 'tls: maybe\n' "1:6: 'tls' takes true or false" "${SA[@]}"
err ps-sensor 'replay-buffer: [1M, 2M]\n' "1:16: 'replay-buffer' takes one value, not a list$" "${SA[@]}"
err ps-sensor 'name: {a: b}\n' "1:7: 'name' takes one value, not a mapping$" "${SA[@]}"
err ps-sensor '\n\nreplay-buffer: 1k\n' "3:16: invalid --replay-buffer: '1k' is outside 65536\.\." "${SA[@]}"
err ps-sensor 'peer-timeout: 1\n' "1:15: invalid --peer-timeout: '1' is outside 2\.\.86400" "${SA[@]}"
err ps-sensor 'count: -1\n' "1:8: invalid count -c: '-1' is not a whole number" "${SA[@]}"
err ps-sensor 'receiver: "nohost"\n' "1:11: invalid --receiver: 'nohost' has no port" -i lo --print-config
err ps-sensor 'help: true\n' "1:1: 'help' is a command-line option, not a key" "${SA[@]}"
err ps-sensor 'a: [\n' "2:1: not valid YAML" "${SA[@]}"
err ps-sensor 'count: 1\n---\nname: b\n' "3:1: a second YAML document" "${SA[@]}"
err ps-sensor '- a\n- b\n' "1:1: the file must be a mapping" "${SA[@]}"
err ps-receiver 'max-sensors: 0\n' "1:14: invalid --max-sensors: '0' is outside 1\.\.1000000" -l :0 -w "$WORK/x.pcap"
err ps-receiver 'listen: [":0", "[::1:0"]\n' "1:16: invalid --listen: .\[::1:0. is not \[IPV6\]:PORT" -w "$WORK/x.pcap"
# Never partly applied: the first key alone would start a receiver.
rm -f "$WORK/partial.pcap"
err ps-receiver "listen: \":0\"\nwrite: $WORK/partial.pcap\nmax-pendng: 5\n" "3:1: unknown key 'max-pendng' \(did you mean 'max-pending'\?\)$"
[ -e "$WORK/partial.pcap" ] && fail "a file with an error was partly applied"
# PacketStreamer keys we do not have.
err ps-receiver 'input:\n  address: 0.0.0.0\n  port: 8081\noutput:\n  plugins:\n    s3:\n      region: eu-west-1\n      bucket: b\n' \
  "6:5: output.plugins.s3: S3 upload is not supported; rotate the output .* post-rotate: CMD$"
KPS='input:\n  address: 0.0.0.0\n  port: 8081\noutput:\n  plugins:\n    kafka:\n'
err ps-receiver "$KPS      topic: t\n" "6:5: output.plugins.kafka needs brokers: HOST:PORT$"
err ps-receiver "$KPS      brokers: 127.0.0.1:9092\n      acks: 1\n" \
  "8:13: output.plugins.kafka.acks: 1 is refused: .* \\(acks all\\); leave acks out$"
err ps-receiver "$KPS      brokers: 127.0.0.1:9092\n      messageSize: 64XB\n" \
  "8:20: 'output.plugins.kafka.messageSize': unknown unit in '64XB' \\(give B, KB, MB or GB\\)$"
err ps-receiver "$KPS      brokers: 127.0.0.1:9092\n      messageSize: 10B\n" \
  "8:20: 'output.plugins.kafka.messageSize': 10B is outside 1000\\.\\.1000000000 bytes$"
err ps-receiver "$KPS      brokers: 127.0.0.1:9092\n      partition: 3\n" \
  "8:7: unknown key 'output.plugins.kafka.partition'"
err ps-sensor 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\n  plugins:\n    kafka:\n      brokers: 127.0.0.1:9092\n' \
  "6:5: output.plugins.kafka: the sensor streams to a ps-receiver; give the receiver the Kafka output" -i lo
err ps-sensor 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\ntls:\n  enable: true\n' \
  "6:11: tls.enable: PacketStreamer never verified the receiver, ps-sensor does: add tls-ca: FILE .* or for a lab tls-insecure: true$" -i lo --print-config
err ps-sensor 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\npcapMode: sometimes\n' "5:11: pcapMode 'sometimes': give all, allow or deny$" -i lo
err ps-sensor 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\ncapturePorts: [80, 70000]\n' "5:20: 'capturePorts': 70000 is outside 1\.\.65535$" -i lo
err ps-sensor 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\npcapMode: allow\n' "5:11: pcapMode allow captures nothing" 
err ps-sensor 'output:\n  servr:\n    address: 127.0.0.1\n' "2:3: unknown key 'output.servr' \(did you mean 'server'\?\)$" -i lo
err ps-sensor 'input:\n  port: 8081\n' "1:1: input is a receiver's key" -i lo
# ... and with a CA, or tls-insecure, it goes.
printf 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\ntls:\n  enable: true\ntls-insecure: true\n' >"$WORK/t.yaml"
"$S" --config "$WORK/t.yaml" -i lo --print-config >"$WORK/p" || fail "tls.enable with tls-insecure"
expect_line "$WORK/p" '^tls-insecure: true$' "tls-insecure kept"
expect_line "$WORK/p" '^receiver: \["127.0.0.1:8081"\]$' "output.server mapped"
printf 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\ntls:\n  enable: true\n' >"$WORK/t2.yaml"
"$S" --config "$WORK/t2.yaml" --tls-ca "$WORK/ca.pem" -i lo --print-config >"$WORK/p" ||
  fail "tls.enable with --tls-ca on the command line"
expect_line "$WORK/p" '^tls: true$' "tls.enable mapped to tls"
# pcapMode names in any case; output.file.path stdout.
printf 'output:\n  server:\n    address: 127.0.0.1\n    port: 8081\npcapMode: DENY\ncapturePorts: [22]\ninterface: [lo]\n' >"$WORK/m.yaml"
"$S" --config "$WORK/m.yaml" --print-config >"$WORK/p" || fail "pcapMode DENY"
expect_line "$WORK/p" '^interface-filter: \["lo=not \(port 22\)"\]$' "deny filter"
printf 'input:\n  address: 0.0.0.0\n  port: 8081\noutput:\n  file:\n    path: stdout\n' >"$WORK/o.yaml"
"$RECEIVER" --config "$WORK/o.yaml" --print-config >"$WORK/p" || fail "stdout"
expect_line "$WORK/p" '^write: \["-"\]$' "stdout mapped to -"
expect_line "$WORK/p" '^listen: \["0.0.0.0:8081"\]$' "input mapped"
# PacketStreamer's Kafka plugin (its contrib/config/receiver-kafka.yaml,
# plus the keys its plugin reads) is our Kafka output.
printf 'input:\n  address: 0.0.0.0\n  port: 8081\noutput:\n  plugins:\n    kafka:\n      brokers: 10.0.0.1:9092,10.0.0.2:9092\n      clientId: packetstreamer\n      topic: pkts\n      messageSize: 65KB\n      acks: all\n      fileSize: 1MB\n      timeout: 10s\n' >"$WORK/k.yaml"
"$RECEIVER" --config "$WORK/k.yaml" --print-config >"$WORK/p" || fail "the kafka plugin"
expect_line "$WORK/p" '^kafka: "10.0.0.1:9092,10.0.0.2:9092"$' "kafka.brokers mapped"
expect_line "$WORK/p" '^kafka-topic: "pkts"$' "kafka.topic mapped"
expect_line "$WORK/p" '^kafka-property: \["client.id=packetstreamer", "message.max.bytes=66560"\]$' "clientId, messageSize mapped"
"$RECEIVER" --config "$WORK/p" --print-config >"$WORK/p2" || fail "the printed Kafka config is not a config"
cmp -s <(grep -v '^# ps-receiver --print-config' "$WORK/p") <(grep -v '^# ps-receiver --print-config' "$WORK/p2") ||
  fail "the printed Kafka config reads back differently"
# Without a file output there is no format to print (it was printed,
# and the printed file then refused itself: --format needs -w).
"$RECEIVER" -l 127.0.0.1:0 --pcap-over-ip 127.0.0.1:0 --print-config >"$WORK/p" || fail "--pcap-over-ip alone"
"$RECEIVER" --config "$WORK/p" --print-config >/dev/null 2>"$WORK/p.err" ||
  { cat "$WORK/p.err"; fail "the printed config of a receiver without -w is not a config"; }
printf 'input:\n  port: 8081\noutput:\n  plugins:\n    kafka:\n      brokers: 127.0.0.1:9092\n' >"$WORK/k2.yaml"
"$RECEIVER" --config "$WORK/k2.yaml" --print-config >"$WORK/p" || fail "the kafka plugin, brokers alone"
expect_line "$WORK/p" '^kafka-topic: "packetstreamer"$' "PacketStreamer's default topic"

# A secret others may read: a warning (and the run goes on).
printf 'k3y\n' >"$WORK/tk.pem" && chmod 644 "$WORK/tk.pem"
printf "tls-cert: $WORK/c.pem\ntls-key: $WORK/tk.pem\n" >"$WORK/w.yaml"
"$RECEIVER" -l :0 -w "$WORK/x.pcap" --config "$WORK/w.yaml" --print-config >/dev/null 2>"$WORK/w.err" ||
  fail "a readable key is a warning, not an error"
expect_line "$WORK/w.err" "^ps-receiver: $WORK/w.yaml:2:10: warning: tls-key $WORK/tk.pem can be read by group or others: chmod 600" "secret warning"
printf 'input:\n  port: 8081\noutput:\n  file:\n    path: x.pcap\nauth:\n  enable: true\n  key: s3cret\n' >"$WORK/a.yaml"
chmod 644 "$WORK/a.yaml"
"$RECEIVER" --config "$WORK/a.yaml" --print-config >"$WORK/p" 2>"$WORK/a.err" || fail "auth.key"
expect_line "$WORK/a.err" "$WORK/a.yaml:8:8: warning: the file holds a shared key and can be read by group or others" "inline key warning"
expect_line "$WORK/p" '^auth-key: "s3cret"$' "auth.key mapped"
ok "errors: one line each with FILE:LINE:COLUMN, exit 2; warnings for readable secrets"

# The example files of etc/ (the packages install them) are valid
# config files of their tool, every key known.
n=0
for f in "$top_srcdir"/etc/*.yaml; do
  [ -e "$f" ] || continue
  case $(basename "$f") in
    *receiver*) T=$RECEIVER ;;
    *sensor*) T=$SENSOR ;;
    *) continue ;;
  esac
  "$T" --config "$f" --print-config >"$WORK/etc.out" 2>"$WORK/etc.err" ||
    { cat "$WORK/etc.err"; fail "$f does not pass --print-config"; }
  [ -s "$WORK/etc.err" ] && { cat "$WORK/etc.err"; fail "$f: warnings"; }
  n=$((n + 1))
done
[ "$n" -eq 2 ] || fail "etc/ should hold sensor.yaml and receiver.yaml, found $n"
ok "$n example files of etc/ pass --print-config"

# --log-file: the lines go there, not to standard error; usage errors
# stay on standard error; PacketStreamer's logFilename is the same.
"$SENSOR" -r "$WORK/in.pcap" --receiver 127.0.0.1:1 --connect-timeout 1 \
  --log-file "$WORK/s.log" 2>"$WORK/s.err" && fail "no receiver: should fail"
[ -s "$WORK/s.err" ] || fail "--log-file: the runtime error is on stderr too"
expect_line "$WORK/s.log" "ps-sensor: .*127\.0\.0\.1" "--log-file holds the log lines"
[ "$(stat -c %a "$WORK/s.log")" = 640 ] || fail "--log-file mode $(stat -c %a "$WORK/s.log")"
ln -s "$WORK/s.log" "$WORK/link.log"
"$SENSOR" -r "$WORK/in.pcap" --receiver 127.0.0.1:1 --log-file "$WORK/link.log" 2>"$WORK/e"
[ $? -eq 2 ] || fail "--log-file through a symbolic link: exit 2"
expect_line "$WORK/e" "^ps-sensor: cannot open --log-file $WORK/link.log: Too many levels of symbolic links" "log-file through a link"
"$RECEIVER" -l 127.0.0.1:0 -w "$WORK/x.pcap" --log-file /nonexistent/d/r.log 2>"$WORK/e"
[ $? -eq 2 ] || fail "--log-file in a missing directory: exit 2"
expect_line "$WORK/e" "^ps-receiver: cannot open --log-file /nonexistent/d/r.log: No such file or directory" "log-file missing dir"
printf 'output:\n  server:\n    address: 127.0.0.1\n    port: 1\nlogFilename: %s/ps.log\n' "$WORK" >"$WORK/psl.yaml"
"$SENSOR" -r "$WORK/in.pcap" --config "$WORK/psl.yaml" --print-config >"$WORK/p" || fail "logFilename"
expect_line "$WORK/p" "^log-file: \"$WORK/ps.log\"$" "logFilename mapped to log-file"
ok "--log-file: lines appended there (0640, no symbolic link), errors by message; logFilename maps to it"
