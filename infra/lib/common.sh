# Shared helpers for the infra/ scripts. Source it; do not execute it.
# Every failure goes through `die`, which prints ONE line naming the component, what is
# wrong and what to do, so a bad set-up is explained rather than dumped as a stack trace.

MATERIALABS_CACHE="${MATERIALABS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/materialabs}"
INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$INFRA_DIR/.." && pwd)"

# The project's interpreter when it exists (it has the Kafka/HTTP clients), else any python3.
if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PY="$REPO_ROOT/.venv/bin/python"; else PY=python3; fi

die() {
    # usage: die COMPONENT "what is wrong; what to do"
    echo "$1: $2" >&2
    exit 1
}

run_dir() {
    # The run folder holds ports, pids, logs and data of started processes.
    local dir="${MATERIALABS_RUN_DIR:-$REPO_ROOT/run}"
    mkdir -p "$dir/logs"
    (cd "$dir" && pwd)
}

need_cmd() {
    # usage: need_cmd COMPONENT CMD "install hint"
    command -v "$2" >/dev/null 2>&1 || die "$1" "$2 not found on PATH; $3"
}

free_port() {
    # Ask the kernel for a free loopback port (bind to port 0), then release it.
    python3 - <<'EOF'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

port_in_use() {
    # True when something already listens on 127.0.0.1:$1.
    python3 - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    s.settimeout(0.5)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

pick_port() {
    # usage: pick_port COMPONENT VARNAME [REQUESTED [PREVIOUS]]; REQUESTED may be empty (= any
    # free port). PREVIOUS, the port of the last start, is taken again when it is free, so a
    # restarted broker or node keeps its address (and clients that wrote it down still work).
    local requested="${3:-}" previous="${4:-}"
    if [[ -n "$requested" ]]; then
        if port_in_use "$requested"; then
            die "$1" "port $requested on 127.0.0.1 is already in use; stop whatever listens there (ss -ltnp | grep :$requested) or unset $2 to pick a free port"
        fi
        echo "$requested"
    elif [[ "$previous" =~ ^[0-9]+$ ]] && ! port_in_use "$previous"; then
        echo "$previous"
    else
        free_port
    fi
}

last_port() {
    # usage: last_port FILE — the port in FILE (a port, host:port or a URL), empty when FILE
    # is missing or holds none.
    [[ -f "$1" ]] || return 0
    sed -n 's/^\(.*:\)\{0,1\}\([0-9][0-9]*\)\/*$/\2/p' "$1" | head -n 1
}

dir_empty() {
    # True when $1 is missing or holds nothing (hidden files included).
    [[ ! -d "$1" ]] || [[ -z "$(ls -A "$1")" ]]
}

pid_alive() {
    # A killed process whose parent never reaps it (an orphan under a container's PID 1
    # that does not wait) stays a zombie: it answers kill -0 but is gone.
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1 || true)"
    [[ "$state" != Z ]]
}

stop_pid() {
    # usage: stop_pid PID SECONDS — SIGTERM, wait, then SIGKILL if it will not go.
    local pid="$1" wait_s="${2:-30}" i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    echo "process $pid did not stop within ${wait_s}s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

stop_with_owner() {
    # usage: stop_with_owner SERVICE_PID — when MATERIALABS_OWNER_PID is set (the pytest
    # fixtures set it to pytest's pid), a watchdog stops the service once that owner is gone,
    # so a killed test run does not leave a broker or node behind. It ends with the service.
    local owner="${MATERIALABS_OWNER_PID:-}" pid="$1"
    [[ -n "$owner" ]] || return 0
    nohup bash -c "while kill -0 $owner 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 2; done
                   kill -TERM $pid 2>/dev/null" >/dev/null 2>&1 </dev/null &
}
