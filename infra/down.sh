#!/usr/bin/env bash
# Stop everything infra/up.sh started: every service instance first (they drain to Kafka),
# then Kubo, Kafka. State stays in the run folder (the next `make up` continues from it);
# `make clean` removes it.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/lib/common.sh"
bash "$here/services.sh" stop
bash "$here/ipfs/stop.sh"
bash "$here/kafka/stop.sh"
echo "infra: stopped; state kept in $(run_dir) (make clean removes it)"
