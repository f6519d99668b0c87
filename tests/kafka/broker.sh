# A real Apache Kafka broker for the tests: one KRaft node (broker and
# controller in one JVM) on 127.0.0.1, on free ports, its data in the
# test's work directory. Sourced by tests/kafka_*.sh after tests/lib.sh;
# also run as `bash tests/kafka/broker.sh fetch [DIR]` (.ci/run) to fill
# the jar cache before the suite.
#
# The jars come from Maven Central through Maven (tests/kafka/pom.xml):
# the local Maven repository (~/.m2) keeps them between runs, and
# copy-dependencies puts them in $KAFKA_JARS (in the build tree, never
# in the source tree or in git).
#
#   kafka_fetch          the jars in $KAFKA_JARS (Maven once per tree)
#   broker_start [PARTS] starts the broker, waits until it takes
#                        metadata requests; sets KAFKA (host:port) and
#                        BROKER_PID; new topics get PARTS partitions (4)
#   broker_stop          SIGTERM, waits for a clean exit (30 s)
#   broker_kill          SIGKILL
#   broker_restart       starts it again on the same port and data
# The broker's log is $WORK/broker.log; it is printed into the test's
# log when the test ends.

KAFKA_POM="${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/tests/kafka/pom.xml"
KAFKA_JARS="${KAFKA_JARS:-${top_builddir:-.}/tests/kafka/jars}"

kafka_fetch() {
  [ -f "$KAFKA_JARS/.complete" ] && return 0
  command -v mvn >/dev/null || { echo "mvn (Debian maven) is not installed" >&2; return 1; }
  command -v java >/dev/null || { echo "java (Debian default-jre-headless) is not installed" >&2; return 1; }
  mkdir -p "$KAFKA_JARS"
  # The Kafka tests run side by side under make -j: one fetches, the
  # other waits for it (two copy-dependencies into one directory tore a
  # jar in CI).
  (
    flock 9 || exit 1
    [ -f "$KAFKA_JARS/.complete" ] && exit 0
    mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies \
      -DoutputDirectory="$(cd "$KAFKA_JARS" && pwd)" >"$KAFKA_JARS/mvn.log" 2>&1 || {
      tail -30 "$KAFKA_JARS/mvn.log" >&2; exit 1; }
    ls "$KAFKA_JARS"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "no kafka_2.13 jar in $KAFKA_JARS" >&2; exit 1; }
    touch "$KAFKA_JARS/.complete"
  ) 9>"$KAFKA_JARS/.lock"
}

# kafka_java CLASS ARGS...: a Kafka tool from the jars.
kafka_java() {
  local cls=$1; shift
  java -Xmx256m -Dlog4j.configuration="file:$BROKER_DIR/log4j.properties" \
    -cp "$KAFKA_JARS/*" "$cls" "$@"
}

_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

broker_start() {
  kafka_fetch || fail "the Kafka broker's jars could not be fetched (tests/kafka/pom.xml)"
  command -v kcat >/dev/null || fail "kcat (Debian kcat) is not installed"
  BROKER_DIR="$WORK/broker"
  mkdir -p "$BROKER_DIR/data"
  local port cport
  port=$(_free_port); cport=$(_free_port)
  while [ "$cport" = "$port" ]; do cport=$(_free_port); done
  KAFKA="127.0.0.1:$port"
  cat >"$BROKER_DIR/log4j.properties" <<L4J
log4j.rootLogger=INFO, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
L4J
  cat >"$BROKER_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$BROKER_DIR/data
num.partitions=${1:-4}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=1
num.network.threads=2
num.io.threads=2
background.threads=2
PROPS
  local id
  # (urlsafe base64 may begin with '-', which the tool takes for an
  # option: one start in 64 failed. Kafka's own ids avoid it too.)
  id=$(python3 -c 'import base64,os; print("A" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")[1:])')
  kafka_java kafka.tools.StorageTool format --cluster-id="$id" \
    -c "$BROKER_DIR/server.properties" >>"$WORK/broker.log" 2>&1 \
    || { cat "$WORK/broker.log" >&2; fail "kafka-storage format failed"; }
  _broker_launch
  trap 'broker_kill; broker_log; cleanup' EXIT
}

_broker_launch() {
  java -Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$BROKER_DIR/log4j.properties" \
    -cp "$KAFKA_JARS/*" kafka.Kafka "$BROKER_DIR/server.properties" \
    >>"$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  local i
  for i in $(seq 1 600); do
    # Ready: the broker answers a metadata request with itself in it.
    if kcat -b "$KAFKA" -L -m 2 2>/dev/null | grep -q 'broker 1 at'; then
      return 0
    fi
    kill -0 "$BROKER_PID" 2>/dev/null || { tail -50 "$WORK/broker.log" >&2; fail "the Kafka broker exited"; }
    sleep 0.1
  done
  tail -50 "$WORK/broker.log" >&2
  fail "the Kafka broker did not answer within 60 s"
}

broker_restart() {
  _broker_launch
}

broker_stop() {
  [ -n "${BROKER_PID:-}" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null
  local i
  for i in $(seq 1 300); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$BROKER_PID" 2>/dev/null
  wait "$BROKER_PID" 2>/dev/null
  BROKER_PID=
}

broker_kill() {
  [ -n "${BROKER_PID:-}" ] || return 0
  kill -9 "$BROKER_PID" 2>/dev/null
  wait "$BROKER_PID" 2>/dev/null
  BROKER_PID=
}

# The broker's log into the test's log (WARN and above, and its start).
broker_log() {
  [ -f "$WORK/broker.log" ] || return 0
  echo "--- Kafka broker log (WARN, ERROR, and the start), $WORK/broker.log:"
  grep -E ' (WARN|ERROR|FATAL) |Kafka Server started|Formatting' "$WORK/broker.log" | tail -200
}

# kafka_topic NAME [PARTS]: creates the topic (so consumers that start
# before the producer find it).
kafka_topic() {
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA" --create \
    --topic "$1" --partitions "${2:-4}" --replication-factor 1 \
    >>"$WORK/broker.log" 2>&1 || fail "creating topic $1 failed"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    fetch) KAFKA_JARS="${2:-$KAFKA_JARS}"; kafka_fetch && echo "Kafka jars in $KAFKA_JARS" ;;
    *) echo "usage: bash tests/kafka/broker.sh fetch [DIR]" >&2; exit 2 ;;
  esac
fi
