#!/usr/bin/env bash
# Show the health of Kafka, Kubo and every service instance (which one leads, for the
# single-active services); exit 0 only when all are up.
set -uo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
rc=0
bash "$here/kafka/status.sh" || rc=1
bash "$here/ipfs/status.sh" || rc=1
bash "$here/services.sh" status || rc=1
exit $rc
