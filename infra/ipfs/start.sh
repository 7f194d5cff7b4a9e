#!/usr/bin/env bash
# Start a throw-away, offline Kubo (IPFS) node with its RPC API and gateway on 127.0.0.1.
# Ports: KUBO_API_PORT / KUBO_GATEWAY_PORT if set (must be free), otherwise free ports.
# State in $MATERIALABS_RUN_DIR/ipfs (default ./run/ipfs): repo, pid, api URL.
# Log: $MATERIALABS_RUN_DIR/logs/ipfs.log. Prints the API URL when healthy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$INFRA_DIR/ipfs/version.sh"

C=infra/ipfs
RUN="$(run_dir)"
STATE="$RUN/ipfs"
LOG="$RUN/logs/ipfs.log"
START_TIMEOUT="${KUBO_START_TIMEOUT:-60}"

if [[ -f "$STATE/pid" ]] && pid_alive "$(cat "$STATE/pid")"; then
    echo "$C: already running at $(cat "$STATE/api") (pid $(cat "$STATE/pid"))"
    exit 0
fi
api_port="$(pick_port $C KUBO_API_PORT "${KUBO_API_PORT:-}")"
gw_port="$(pick_port $C KUBO_GATEWAY_PORT "${KUBO_GATEWAY_PORT:-}")"
while [[ "$gw_port" == "$api_port" ]]; do gw_port="$(free_port)"; done
[[ -x "$KUBO_BIN" ]] || bash "$INFRA_DIR/ipfs/build.sh" >&2


rm -rf "$STATE"
mkdir -p "$STATE"
export IPFS_PATH="$STATE/repo"
export IPFS_TELEMETRY=off
# The test profile: loopback-only swarm, no bootstrap peers, no MDNS.
if ! "$KUBO_BIN" init --profile=test --empty-repo >"$RUN/logs/ipfs-init.log" 2>&1; then
    die $C "ipfs init failed (log: $RUN/logs/ipfs-init.log: $(tail -n 1 "$RUN/logs/ipfs-init.log"))"
fi
"$PY" "$INFRA_DIR/ipfs/configure.py" "$IPFS_PATH/config" "$api_port" "$gw_port" ||
    die $C "could not write the Kubo config $IPFS_PATH/config (see error above)"

nohup "$KUBO_BIN" daemon --offline >"$LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$STATE/pid"
stop_with_owner "$pid"
echo "http://127.0.0.1:$api_port" >"$STATE/api"
echo "http://127.0.0.1:$gw_port" >"$STATE/gateway"

if ! "$PY" "$INFRA_DIR/lib/wait_http.py" "http://127.0.0.1:$api_port/api/v0/id" "$pid" "$START_TIMEOUT"; then
    reason="$(grep -m1 -iE 'error' "$LOG" || tail -n 1 "$LOG" || true)"
    rm -f "$STATE/pid"
    if ! pid_alive "$pid"; then
        die $C "Kubo exited during start-up (log: $LOG; first error: ${reason:-none}); read the log, fix the cause, run again"
    fi
    stop_pid "$pid" 10
    die $C "Kubo did not answer on http://127.0.0.1:$api_port within ${START_TIMEOUT}s (log: $LOG; first error: ${reason:-none}); raise KUBO_START_TIMEOUT on a slow machine or read the log"
fi
echo "$C: kubo $KUBO_VERSION ready at http://127.0.0.1:$api_port (gateway :$gw_port, pid $pid, log $LOG)"
