#!/usr/bin/env bash
# Fetch/build everything the distributed stack needs into the cache (~/.cache/materialabs):
# the pinned Kafka jars (Maven Central) and the pinned Kubo binary (Go module proxy).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/kafka/fetch.sh"
bash "$here/ipfs/build.sh"
