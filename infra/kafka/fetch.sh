#!/usr/bin/env bash
# Resolve the pinned Kafka broker jars from Maven Central into the cache outside the repo.
# Maven keeps its own download cache (~/.m2); the copy under $MATERIALABS_CACHE is what
# start.sh puts on the classpath. A no-op when the cache is complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$INFRA_DIR/kafka/version.sh"

if [[ -f "$KAFKA_LIBS/.complete" ]]; then
    echo "infra/kafka: kafka $KAFKA_VERSION cached at $KAFKA_LIBS"
    exit 0
fi

need_cmd infra/kafka mvn "install Maven 3 (apt-get install maven)"
need_cmd infra/kafka java "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)"

echo "infra/kafka: resolving kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS ..."
rm -rf "$KAFKA_LIBS.tmp"
mkdir -p "$KAFKA_LIBS.tmp"
if ! mvn -B -q -f "$INFRA_DIR/kafka/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS.tmp" >"$KAFKA_HOME_DIR/mvn.log" 2>&1; then
    tail -n 20 "$KAFKA_HOME_DIR/mvn.log" >&2
    die infra/kafka "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log: $KAFKA_HOME_DIR/mvn.log); check access to Maven Central or the version in infra/kafka/version.sh"
fi
touch "$KAFKA_LIBS.tmp/.complete"
rm -rf "$KAFKA_LIBS"
mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
echo "infra/kafka: $(ls "$KAFKA_LIBS" | wc -l) jars in $KAFKA_LIBS"
