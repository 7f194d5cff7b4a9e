#!/usr/bin/env bash
# Start a single-node KRaft Kafka (combined broker + controller) on 127.0.0.1 in the background.
# Ports: KAFKA_PORT / KAFKA_CONTROLLER_PORT if set (must be free), otherwise the ports of the
# last start when they are free, otherwise free ports.
# State in $MATERIALABS_RUN_DIR/kafka (default ./run/kafka): pid, bootstrap, config, data.
# The log directory (data/) is kept across stop and start: it is formatted (a new cluster id)
# only when it is empty, so topics, offsets and transactions survive a restart. A fresh
# broker is a fresh run folder (tests and benchmarks use temporary ones) or `make clean`.
# Log: $MATERIALABS_RUN_DIR/logs/kafka.log. Prints the bootstrap address when ready.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$INFRA_DIR/kafka/version.sh"

C=infra/kafka
RUN="$(run_dir)"
STATE="$RUN/kafka"
LOG="$RUN/logs/kafka.log"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"

if [[ -f "$STATE/pid" ]] && pid_alive "$(cat "$STATE/pid")"; then
    echo "$C: already running at $(cat "$STATE/bootstrap") (pid $(cat "$STATE/pid"))"
    exit 0
fi

need_cmd $C java "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)"
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
if [[ -z "$java_major" || "$java_major" -lt 17 ]]; then
    die $C "java on PATH is version '${java_major:-unknown}' but Kafka $KAFKA_VERSION needs 17 or newer; install OpenJDK 17 (apt-get install openjdk-17-jre-headless) and put it first on PATH"
fi
DATA="$STATE/data"
# A log directory with data but no meta.properties was not formatted by this script (or its
# format was interrupted): formatting it could mix two clusters' logs, so refuse.
if [[ ! -f "$DATA/meta.properties" ]] && ! dir_empty "$DATA"; then
    die $C "$DATA holds data but no meta.properties (not a formatted KRaft log directory); run 'make clean' for a fresh start (it deletes the run folder's state) or move $DATA away"
fi
port="$(pick_port $C KAFKA_PORT "${KAFKA_PORT:-}" "$(last_port "$STATE/bootstrap")")"
cport="$(pick_port $C KAFKA_CONTROLLER_PORT "${KAFKA_CONTROLLER_PORT:-}" "$(last_port "$STATE/controller_port")")"
while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
[[ -f "$KAFKA_LIBS/.complete" ]] || bash "$INFRA_DIR/kafka/fetch.sh" >&2

mkdir -p "$DATA"
cat >"$STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS

# A small heap and a quick-starting JIT: the machine is shared and the broker is idle most of the time.
JAVA_OPTS=(-Xms128m -Xmx${KAFKA_HEAP:-512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$INFRA_DIR/kafka/log4j2.xml")
CP="$KAFKA_LIBS/*"

if [[ -f "$DATA/meta.properties" ]]; then
    storage="kept storage, cluster $(sed -n 's/^cluster.id=//p' "$DATA/meta.properties")"
else
    cluster_id="$(python3 -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break')"
    if ! java "${JAVA_OPTS[@]}" -cp "$CP" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$STATE/server.properties" >"$RUN/logs/kafka-format.log" 2>&1; then
        die $C "formatting the KRaft storage failed (log: $RUN/logs/kafka-format.log: $(tail -n 1 "$RUN/logs/kafka-format.log"))"
    fi
    storage="new storage, cluster $cluster_id"
fi

echo "127.0.0.1:$port" >"$STATE/bootstrap"
echo "$cport" >"$STATE/controller_port"
nohup java "${JAVA_OPTS[@]}" -cp "$CP" kafka.Kafka "$STATE/server.properties" >"$LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$STATE/pid"
stop_with_owner "$pid"

if ! "$PY" "$INFRA_DIR/kafka/wait_ready.py" "127.0.0.1:$port" "$pid" "$START_TIMEOUT"; then
    reason="$(grep -m1 -E 'ERROR|Exception' "$LOG" || tail -n 1 "$LOG" || true)"
    rm -f "$STATE/pid"
    if ! pid_alive "$pid"; then
        die $C "broker exited during start-up (log: $LOG; first error: ${reason:-none}); read the log, fix the cause, run again"
    fi
    stop_pid "$pid" 10
    die $C "broker did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s (log: $LOG; last line: ${reason:-none}); raise KAFKA_START_TIMEOUT on a slow machine or read the log"
fi
echo "$C: kafka $KAFKA_VERSION ready at 127.0.0.1:$port ($storage in $DATA; pid $pid, log $LOG)"
