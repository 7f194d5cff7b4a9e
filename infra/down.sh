#!/usr/bin/env bash
# Stop everything infra/up.sh started: every service instance first (they drain to Kafka),
# then Kubo, Kafka.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/services.sh" stop
bash "$here/ipfs/stop.sh"
bash "$here/kafka/stop.sh"
