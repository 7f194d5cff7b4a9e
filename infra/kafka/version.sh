# The pinned Kafka version and where its jars live (sourced by the other scripts).
# Why 4.1.1 and not 3.9.x: see infra/README.md.
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_HOME_DIR="$MATERIALABS_CACHE/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME_DIR/libs"
mkdir -p "$KAFKA_HOME_DIR"
