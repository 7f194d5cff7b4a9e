#!/usr/bin/env bash
# Stop the broker started by start.sh in this run folder (SIGTERM, wait for a clean shutdown).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
STATE="$(run_dir)/kafka"
if [[ -f "$STATE/pid" ]]; then
    stop_pid "$(cat "$STATE/pid")" "${KAFKA_STOP_TIMEOUT:-60}"
    rm -f "$STATE/pid"
    echo "infra/kafka: stopped"
else
    echo "infra/kafka: not running"
fi
