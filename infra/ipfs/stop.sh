#!/usr/bin/env bash
# Stop the Kubo node started by start.sh in this run folder (SIGTERM, wait).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
STATE="$(run_dir)/ipfs"
if [[ -f "$STATE/pid" ]]; then
    stop_pid "$(cat "$STATE/pid")" "${KUBO_STOP_TIMEOUT:-30}"
    rm -f "$STATE/pid"
    echo "infra/ipfs: stopped"
else
    echo "infra/ipfs: not running"
fi
