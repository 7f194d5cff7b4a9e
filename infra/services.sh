#!/usr/bin/env bash
# Start, stop or show the MateriaLabs services as local processes, each as one or more
# instances: the eight event services and the HTTP gateway.
# usage: [SCALE="predictor=3 dft_runner=2"] [GATEWAY_PORT=8686] infra/services.sh start|stop|status
# Each instance runs `.venv/bin/materialabs serve <name> --instance <name>-<i>` against the
# broker and Kubo node of the same run folder (started first by infra/up.sh).
# Logs: run/logs/<name>-<i>.log; pids: run/services/<name>-<i>.pid; the scale of the last
# start: run/services/scale. SCALE names the services with more than one instance (the rest
# get one); `start` on a running stack starts what is missing and stops instances beyond
# the new counts. Instances of the single-active services (ingest, acquisition, retrainer,
# ledger, catalog) elect a leader; `status` shows which one leads (asked of the broker).
# The gateway (one instance) listens on 127.0.0.1:$GATEWAY_PORT (default 8686); `status`
# prints its URL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SERVICES=(ingest generator predictor acquisition dft_runner retrainer ledger catalog gateway)
GATEWAY_PORT="${GATEWAY_PORT:-8686}"
MAX_INSTANCES=16
RUN="$(run_dir)"
STATE="$RUN/services"
SCALE_FILE="$STATE/scale"
MATERIALABS_BIN="${MATERIALABS_BIN:-$REPO_ROOT/.venv/bin/materialabs}"
mkdir -p "$STATE"
declare -A COUNT

parse_scale() {
    # usage: parse_scale "predictor=3 dft-runner=2" -> COUNT[service]=instances (default 1).
    local entry name count known
    for name in "${SERVICES[@]}"; do COUNT[$name]=1; done
    for entry in $1; do
        [[ "$entry" == *=* ]] ||
            die infra/services "SCALE entry '$entry' is not SERVICE=COUNT (e.g. SCALE=\"predictor=3 dft_runner=2\")"
        name="${entry%%=*}"
        name="${name//-/_}"
        count="${entry#*=}"
        known=0
        for service in "${SERVICES[@]}"; do [[ "$service" == "$name" ]] && known=1; done
        ((known)) ||
            die infra/services "SCALE entry '$entry': no service '$name' (services: ${SERVICES[*]})"
        [[ "$count" =~ ^[0-9]+$ ]] && ((10#$count >= 1 && 10#$count <= MAX_INSTANCES)) ||
            die infra/services "SCALE entry '$entry': the count must be a whole number from 1 to $MAX_INSTANCES"
        COUNT[$name]=$((10#$count))
        [[ "$name" != gateway ]] || ((COUNT[$name] == 1)) ||
            die infra/services "SCALE entry '$entry': the gateway runs once (one port)"
    done
}

read_scale() {
    # The counts of the last start (one instance each when there was none).
    local name count
    for name in "${SERVICES[@]}"; do COUNT[$name]=1; done
    [[ -f "$SCALE_FILE" ]] || return 0
    while read -r name count; do
        [[ -n "${COUNT[$name]:-}" && "$count" =~ ^[0-9]+$ ]] && COUNT[$name]=$count
    done <"$SCALE_FILE"
}

instances() {
    # usage: instances SERVICE -> its instance names for the current COUNT, one a line.
    local i
    for ((i = 1; i <= COUNT[$1]; i++)); do echo "$1-$i"; done
}

running_pid() {
    # The pid of a live instance (empty otherwise).
    local pid
    pid="$(cat "$STATE/$1.pid" 2>/dev/null || true)"
    if pid_alive "$pid"; then echo "$pid"; fi
}

any_running() {
    local file
    for file in "$STATE"/*.pid; do
        [[ -e "$file" ]] && [[ -n "$(running_pid "$(basename "$file" .pid)")" ]] && return 0
    done
    return 1
}

start_all() {
    parse_scale "${SCALE:-}"
    [[ -x "$MATERIALABS_BIN" ]] || die infra/services "$MATERIALABS_BIN not found; run 'make install' first"
    [[ -f "$RUN/kafka/bootstrap" && -f "$RUN/ipfs/api" ]] ||
        die infra/services "Kafka or Kubo has not been started in $RUN; run 'make up' (it starts them first)"
    export MATERIALABS_KAFKA="$(cat "$RUN/kafka/bootstrap")"
    export MATERIALABS_IPFS="$(cat "$RUN/ipfs/api")"
    export MATERIALABS_HOME="$RUN/home"
    mkdir -p "$MATERIALABS_HOME"
    if ! any_running; then
        # The ledger, the retrainer's key and the default model must exist before any
        # service. (On a running stack they do, and the ledger service holds the writer lock.)
        "$MATERIALABS_BIN" setup >"$RUN/logs/setup.log" 2>&1 ||
            die infra/services "materialabs setup failed; see $RUN/logs/setup.log"
    fi
    local name instance pid started=()
    stop_extra
    : >"$SCALE_FILE"
    for name in "${SERVICES[@]}"; do
        echo "$name ${COUNT[$name]}" >>"$SCALE_FILE"
        for instance in $(instances "$name"); do
            pid="$(running_pid "$instance")"
            if [[ -n "$pid" ]]; then
                echo "$instance: already running (pid $pid)"
                continue
            fi
            local extra=()
            if [[ "$name" == gateway ]]; then
                [[ "$GATEWAY_PORT" =~ ^[0-9]+$ ]] && ((GATEWAY_PORT >= 1 && GATEWAY_PORT <= 65535)) ||
                    die infra/services "GATEWAY_PORT '$GATEWAY_PORT' is not a port from 1 to 65535"
                extra=(--host 127.0.0.1 --port "$GATEWAY_PORT")
                echo "http://127.0.0.1:$GATEWAY_PORT/" >"$STATE/gateway.url"
            fi
            nohup "$MATERIALABS_BIN" serve "$name" --instance "$instance" "${extra[@]}" \
                >"$RUN/logs/$instance.log" 2>&1 </dev/null &
            echo $! >"$STATE/$instance.pid"
            started+=("$instance")
            echo "$instance: started (pid $!, log $RUN/logs/$instance.log)"
        done
    done
    check_started "${started[@]}"
}

stop_extra() {
    # Instances a smaller SCALE no longer wants (and pid files of an older layout).
    local file instance wanted=" " name extra=()
    for name in "${SERVICES[@]}"; do wanted+="$(instances "$name" | tr '\n' ' ')"; done
    for file in "$STATE"/*.pid; do
        [[ -e "$file" ]] || continue
        instance="$(basename "$file" .pid)"
        [[ "$wanted" == *" $instance "* ]] || extra+=("$instance")
    done
    ((${#extra[@]})) && stop_instances "${extra[@]}"
    return 0
}

check_started() {
    # A service with a wrong configuration dies within seconds: say so now, not at `make status`.
    (($#)) || return 0
    local grace="${SERVICE_START_GRACE:-8}" instance failed=0
    sleep "$grace"
    for instance in "$@"; do
        if [[ -z "$(running_pid "$instance")" ]]; then
            echo "infra/services: $instance exited during start-up; last log line: $(tail -n 1 "$RUN/logs/$instance.log" 2>/dev/null) (log: $RUN/logs/$instance.log)" >&2
            rm -f "$STATE/$instance.pid"
            failed=1
        fi
    done
    return $failed
}

stop_instances() {
    # SIGTERM every given instance at once, then wait for all (SIGKILL what will not go).
    local wait_s="${SERVICE_STOP_TIMEOUT:-20}" instance pid i pids=()
    for instance in "$@"; do
        pid="$(running_pid "$instance")"
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for ((i = 0; i < wait_s * 10; i++)); do
        local alive=0
        for pid in "${pids[@]}"; do pid_alive "$pid" && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if pid_alive "$pid"; then
            echo "process $pid did not stop within ${wait_s}s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for instance in "$@"; do
        rm -f "$STATE/$instance.pid"
        echo "$instance: stopped"
    done
}

stop_all() {
    local file instances=()
    for file in "$STATE"/*.pid; do
        [[ -e "$file" ]] && instances+=("$(basename "$file" .pid)")
    done
    ((${#instances[@]})) && stop_instances "${instances[@]}"
    return 0
}

lease_roles() {
    # "SERVICE CLIENT_ID" for each single-active service with lease members (from the broker).
    [[ -f "$RUN/kafka/bootstrap" ]] || return 0
    PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        "$PY" "$INFRA_DIR/lib/leaders.py" "$(cat "$RUN/kafka/bootstrap")" "${SERVICES[@]}" 2>/dev/null || true
}

status_all() {
    # An instance is up while its process lives; one that died leaves its reason in its log.
    # For a single-active service, each live instance is the leader or a standby.
    read_scale
    local name instance pid role down=0 roles holder
    declare -A HOLDER
    roles="$(lease_roles)"
    while read -r name holder; do
        [[ -n "$name" ]] && HOLDER[$name]="$holder"
    done <<<"$roles"
    for name in "${SERVICES[@]}"; do
        for instance in $(instances "$name"); do
            pid="$(running_pid "$instance")"
            log="$RUN/logs/$instance.log"
            if [[ -n "$pid" ]]; then
                role=""
                case "${HOLDER[$name]:-}" in
                    "") ;;  # not single-active (or its lease group not joined yet)
                    -) role=electing ;;
                    "$instance/$pid") role=leader ;;
                    *) role=standby ;;
                esac
                printf '%-15s up    %-8s pid %s, log %s' "$instance" "$role" "$pid" "$log"
                if [[ "$name" == gateway && -f "$STATE/gateway.url" ]]; then
                    printf ', %s' "$(cat "$STATE/gateway.url")"
                fi
                printf '\n'
            elif [[ -f "$STATE/$instance.pid" || -s "$log" ]]; then
                printf '%-15s down  exited; last log line: %s\n' "$instance" "$(tail -n 1 "$log" 2>/dev/null)"
                down=1
            else
                printf '%-15s down\n' "$instance"
                down=1
            fi
        done
    done
    return $down
}

case "${1:-}" in
    start) start_all ;;
    stop) stop_all ;;
    status) status_all ;;
    *) die infra/services "usage: [SCALE=\"predictor=3 dft_runner=2\"] infra/services.sh start|stop|status" ;;
esac
