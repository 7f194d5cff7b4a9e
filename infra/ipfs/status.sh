#!/usr/bin/env bash
# Print whether the Kubo node of this run folder is up and healthy; exit 0 when up, 3 when down.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
STATE="$(run_dir)/ipfs"
pid="$(cat "$STATE/pid" 2>/dev/null || true)"
if pid_alive "$pid" && "$PY" "$INFRA_DIR/lib/wait_http.py" "$(cat "$STATE/api")/api/v0/id" "$pid" 5 2>/dev/null; then
    echo "ipfs        up    $(cat "$STATE/api") (pid $pid)"
    exit 0
fi
echo "ipfs        down"
exit 3
