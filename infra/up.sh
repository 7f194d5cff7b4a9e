#!/usr/bin/env bash
# Bring up the distributed stack locally: Kafka, Kubo, then the seven services.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/kafka/start.sh"
bash "$here/ipfs/start.sh"
bash "$here/services.sh" start
