#!/usr/bin/env bash
# Bring up the distributed stack locally: Kafka, Kubo, then the seven services, each as
# SCALE says (e.g. SCALE="predictor=3 dft_runner=2"; one instance of each by default).
# Kafka and Kubo start empty (their start scripts wipe their state), so the services' home
# (ledger, keys, catalog) starts empty too: a ledger that names models and datasets the new
# Kubo node does not hold would make every service that reads it fail. On a stack that is
# already up, only the services change: `make up SCALE=...` again rescales it.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/lib/common.sh"
if ! { bash "$here/kafka/status.sh" && bash "$here/ipfs/status.sh"; } >/dev/null 2>&1; then
    rm -rf "$(run_dir)/home"
fi
bash "$here/kafka/start.sh"
bash "$here/ipfs/start.sh"
bash "$here/services.sh" start
