#!/usr/bin/env bash
# Start, stop or show the seven MateriaLabs services as local processes.
# usage: infra/services.sh start|stop|status
# Each runs `.venv/bin/materialabs serve <name>` against the broker and Kubo node of the same
# run folder (started first by infra/up.sh). Logs: run/logs/<name>.log; pids: run/services/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SERVICES=(ingest generator predictor acquisition dft_runner retrainer ledger)
RUN="$(run_dir)"
STATE="$RUN/services"
MATERIALABS_BIN="${MATERIALABS_BIN:-$REPO_ROOT/.venv/bin/materialabs}"
mkdir -p "$STATE"

start_all() {
    [[ -x "$MATERIALABS_BIN" ]] || die infra/services "$MATERIALABS_BIN not found; run 'make install' first"
    [[ -f "$RUN/kafka/bootstrap" && -f "$RUN/ipfs/api" ]] ||
        die infra/services "Kafka or Kubo has not been started in $RUN; run 'make up' (it starts them first)"
    export MATERIALABS_KAFKA="$(cat "$RUN/kafka/bootstrap")"
    export MATERIALABS_IPFS="$(cat "$RUN/ipfs/api")"
    export MATERIALABS_HOME="$RUN/home"
    mkdir -p "$MATERIALABS_HOME"
    # The ledger, the retrainer's key and the default model must exist before any service.
    "$MATERIALABS_BIN" setup >"$RUN/logs/setup.log" 2>&1 ||
        die infra/services "materialabs setup failed; see $RUN/logs/setup.log"
    local name pid
    for name in "${SERVICES[@]}"; do
        pid="$(cat "$STATE/$name.pid" 2>/dev/null || true)"
        if pid_alive "$pid"; then
            echo "$name: already running (pid $pid)"
            continue
        fi
        nohup "$MATERIALABS_BIN" serve "$name" >"$RUN/logs/$name.log" 2>&1 </dev/null &
        echo $! >"$STATE/$name.pid"
        echo "$name: started (pid $!, log $RUN/logs/$name.log)"
    done
    check_started
}

check_started() {
    # A service with a wrong configuration dies within seconds: say so now, not at `make status`.
    local grace="${SERVICE_START_GRACE:-8}" name pid failed=0
    sleep "$grace"
    for name in "${SERVICES[@]}"; do
        pid="$(cat "$STATE/$name.pid")"
        if ! pid_alive "$pid"; then
            echo "infra/services: $name exited during start-up; last log line: $(tail -n 1 "$RUN/logs/$name.log" 2>/dev/null) (log: $RUN/logs/$name.log)" >&2
            rm -f "$STATE/$name.pid"
            failed=1
        fi
    done
    return $failed
}

stop_all() {
    local name
    for name in "${SERVICES[@]}"; do
        if [[ -f "$STATE/$name.pid" ]]; then
            stop_pid "$(cat "$STATE/$name.pid")" "${SERVICE_STOP_TIMEOUT:-20}"
            rm -f "$STATE/$name.pid"
            echo "$name: stopped"
        fi
    done
}

status_all() {
    # A service is up while its process lives; one that died leaves its reason in its log.
    local name pid down=0
    for name in "${SERVICES[@]}"; do
        pid="$(cat "$STATE/$name.pid" 2>/dev/null || true)"
        if pid_alive "$pid"; then
            printf '%-11s up    pid %s, log %s\n' "$name" "$pid" "$RUN/logs/$name.log"
        elif [[ -n "$pid" || -s "$RUN/logs/$name.log" ]]; then
            printf '%-11s down  exited; last log line: %s\n' "$name" "$(tail -n 1 "$RUN/logs/$name.log" 2>/dev/null)"
            down=1
        else
            printf '%-11s down\n' "$name"
            down=1
        fi
    done
    return $down
}

case "${1:-}" in
    start) start_all ;;
    stop) stop_all ;;
    status) status_all ;;
    *) die infra/services "usage: infra/services.sh start|stop|status" ;;
esac
