#!/usr/bin/env bash
# Bring up the distributed stack locally: Kafka, Kubo, then the seven services.
# Kafka and Kubo start empty (their start scripts wipe their state), so the services' home
# (ledger, keys, catalog) starts empty too: a ledger that names models and datasets the new
# Kubo node does not hold would make every service that reads it fail.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/lib/common.sh"
rm -rf "$(run_dir)/home"
bash "$here/kafka/start.sh"
bash "$here/ipfs/start.sh"
bash "$here/services.sh" start
