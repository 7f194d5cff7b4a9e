#!/usr/bin/env bash
# Start an offline Kubo (IPFS) node with its RPC API and gateway on 127.0.0.1.
# Ports: KUBO_API_PORT / KUBO_GATEWAY_PORT if set (must be free), otherwise the ports of the
# last start when they are free, otherwise free ports.
# State in $MATERIALABS_RUN_DIR/ipfs (default ./run/ipfs): repo, pid, api URL.
# The repo is kept across stop and start (`ipfs init` runs only when there is none), so what
# was added stays readable; a fresh node is a fresh run folder or `make clean`.
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
export IPFS_PATH="$STATE/repo"
export IPFS_TELEMETRY=off
# A repo folder with files but no config is not one `ipfs init` finished: refuse rather than
# initialise over it.
if [[ ! -f "$IPFS_PATH/config" ]] && ! dir_empty "$IPFS_PATH"; then
    die $C "$IPFS_PATH holds files but no config (not a Kubo repo); run 'make clean' for a fresh start (it deletes the run folder's state) or move $IPFS_PATH away"
fi
api_port="$(pick_port $C KUBO_API_PORT "${KUBO_API_PORT:-}" "$(last_port "$STATE/api")")"
gw_port="$(pick_port $C KUBO_GATEWAY_PORT "${KUBO_GATEWAY_PORT:-}" "$(last_port "$STATE/gateway")")"
while [[ "$gw_port" == "$api_port" ]]; do gw_port="$(free_port)"; done
[[ -x "$KUBO_BIN" ]] || bash "$INFRA_DIR/ipfs/build.sh" >&2

mkdir -p "$STATE"
if [[ -f "$IPFS_PATH/config" ]]; then
    repo="kept repo"
else
    # The test profile: loopback-only swarm, no bootstrap peers, no MDNS.
    if ! "$KUBO_BIN" init --profile=test --empty-repo >"$RUN/logs/ipfs-init.log" 2>&1; then
        die $C "ipfs init failed (log: $RUN/logs/ipfs-init.log: $(tail -n 1 "$RUN/logs/ipfs-init.log"))"
    fi
    repo="new repo"
fi
# Written on every start: the ports may differ from the last one's.
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
echo "$C: kubo $KUBO_VERSION ready at http://127.0.0.1:$api_port (gateway :$gw_port, $repo $IPFS_PATH; pid $pid, log $LOG)"
