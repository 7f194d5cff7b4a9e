#!/usr/bin/env bash
# Print whether the broker of this run folder is up and answering; exit 0 when up, 3 when down.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
STATE="$(run_dir)/kafka"
pid="$(cat "$STATE/pid" 2>/dev/null || true)"
if pid_alive "$pid" && "$PY" "$INFRA_DIR/kafka/wait_ready.py" "$(cat "$STATE/bootstrap")" "$pid" 5 2>/dev/null; then
    echo "kafka       up    $(cat "$STATE/bootstrap") (pid $pid)"
    exit 0
fi
echo "kafka       down"
exit 3
