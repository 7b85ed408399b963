#!/usr/bin/env bash
# make demo: jelmore-infra end to end on a throw-away local JetStream server.
#
# Run by `make demo` once the virtualenv is installed in .venv. Every step is a function named
# step_<what>, called in order by main() at the bottom; add a step by writing a function that
# starts with `step "Title"` and calling it from main(). While the server runs, NATS_URL points
# at it, so every jelmore-infra command in a step talks to it without extra options.
#
# Environment:
#   VENV             the virtualenv to use (default .venv)
#   JELMORE_DEMO_DIR where the server keeps its data (default: a new temporary directory,
#                    removed at the end)
#   NO_COLOR         plain headings

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
JELMORE="$VENV/bin/jelmore-infra"
TOPOLOGY=topology

SERVER_PID=""      # the `jelmore-infra server` process, while it runs
NATS_SERVER_PID="" # the nats-server it started
OWN_DEMO_DIR=""    # set when we created DEMO_DIR (and so remove it)
STEP=0

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
    BOLD=$'\033[1m' RED=$'\033[31m' GREEN=$'\033[32m' RESET=$'\033[0m'
else
    BOLD="" RED="" GREEN="" RESET=""
fi

# --- helpers ------------------------------------------------------------------------------------

step() {
    STEP=$((STEP + 1))
    printf '\n%s==> %d. %s%s\n' "$BOLD" "$STEP" "$*" "$RESET"
}

ok() { printf '%s✓%s %s\n' "$GREEN" "$RESET" "$*"; }

fail() {
    printf '%sdemo failed:%s %s\n' "$RED" "$RESET" "$*" >&2
    exit 1
}

# Two free loopback TCP ports, chosen by the OS (both sockets are open at once, so they differ).
free_ports() {
    "$PY" - <<'EOF'
import socket

socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Stop the server if it still runs (SIGTERM, which it forwards to nats-server); never fails.
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
    # Belt and braces: the nats-server itself must not outlive the demo either.
    if [[ -n "$NATS_SERVER_PID" ]] && kill -0 "$NATS_SERVER_PID" 2>/dev/null; then
        kill -TERM "$NATS_SERVER_PID" 2>/dev/null || true
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_server
    if [[ $status -ne 0 ]]; then
        if [[ -n "${DEMO_DIR:-}" && -f "$DEMO_DIR/server.out" ]]; then
            echo "--- jelmore-infra server output ---" >&2
            cat "$DEMO_DIR/server.out" >&2 || true
        fi
        if ((status == 130)); then
            printf '%sdemo interrupted in step %d%s\n' "$RED" "$STEP" "$RESET" >&2
        else
            printf '%sdemo failed in step %d (exit status %d)%s\n' "$RED" "$STEP" "$status" \
                "$RESET" >&2
        fi
    fi
    if [[ -n "$OWN_DEMO_DIR" ]]; then
        rm -rf "$OWN_DEMO_DIR"
    fi
    exit "$status"
}

# --- steps --------------------------------------------------------------------------------------

step_validate() {
    step "Validate $TOPOLOGY/ offline"
    "$JELMORE" validate --topology "$TOPOLOGY"
}

step_start_server() {
    step "Start a local JetStream server"
    local ports
    read -r NATS_PORT HTTP_PORT <<<"$(free_ports)"
    ports="client port $NATS_PORT, monitoring port $HTTP_PORT"
    echo "$JELMORE server --port $NATS_PORT --http-port $HTTP_PORT --store-dir $DEMO_DIR/store"
    "$JELMORE" server --port "$NATS_PORT" --http-port "$HTTP_PORT" \
        --store-dir "$DEMO_DIR/store" >"$DEMO_DIR/server.out" 2>&1 &
    SERVER_PID=$!

    # It prints its summary, ending with "Press Ctrl-C", once /healthz says JetStream is ready.
    local waited=0
    until grep -q '^Press Ctrl-C' "$DEMO_DIR/server.out" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" || true
            SERVER_PID=""
            fail "the server did not start ($ports)"
        fi
        if ((waited >= 600)); then
            fail "the server was not ready after 60s ($ports)"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    cat "$DEMO_DIR/server.out"
    NATS_SERVER_PID=$(sed -n 's/.*(pid \([0-9][0-9]*\)).*/\1/p' "$DEMO_DIR/server.out" | head -n 1)
    export NATS_URL="nats://127.0.0.1:$NATS_PORT"
    MONITOR_URL="http://127.0.0.1:$HTTP_PORT"
    ok "ready: NATS_URL=$NATS_URL"
}

step_show_server() {
    step "What the server runs (from $MONITOR_URL/varz and /jsz)"
    "$PY" - "$MONITOR_URL" <<'EOF'
import json
import sys
import urllib.request

base = sys.argv[1]


def size(n):
    if n is None or n < 0:
        return "unlimited"
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        return json.load(resp)


varz, jsz = get("/varz"), get("/jsz")
config = jsz.get("config") or varz.get("jetstream", {}).get("config", {})
enabled = bool(config) and not jsz.get("disabled", False)
rows = [
    ("server", f"nats-server {varz['version']} ({varz.get('go', '?')}), name {varz['server_name']}"),
    ("clients", f"nats://{varz['host']}:{varz['port']}, max payload {size(varz['max_payload'])}"),
    ("JetStream", "enabled" if enabled else "DISABLED"),
    ("store dir", config.get("store_dir", "?")),
    ("max memory", size(config.get("max_memory", -1))),
    ("max storage", size(config.get("max_storage", -1))),
    ("API level", str(jsz.get("api", {}).get("level", "?"))),
    ("streams", f"{jsz.get('streams', 0)} streams, {jsz.get('consumers', 0)} consumers, "
                f"{jsz.get('messages', 0)} messages"),
]
for label, value in rows:
    print(f"  {label + ':':<13}{value}")
if not enabled:
    sys.exit("JetStream is not enabled on the demo server")
EOF
}

step_plan() {
    step "Plan $TOPOLOGY/ against the empty server"
    local status=0
    "$JELMORE" plan --topology "$TOPOLOGY" --detailed-exitcode || status=$?
    ((status == 2)) || fail "expected changes to be pending (exit 2), got exit $status"
    ok "changes pending (exit code 2 under --detailed-exitcode)"
}

step_apply() {
    step "Apply $TOPOLOGY/"
    "$JELMORE" apply --topology "$TOPOLOGY" --auto-approve
}

step_plan_again() {
    step "Plan again: nothing left to do"
    "$JELMORE" plan --topology "$TOPOLOGY" --detailed-exitcode ||
        fail "the second plan still has changes"
    ok "the server matches the topology (exit code 0)"
}

step_events() {
    step "Publish and consume Jelmore events on the provisioned topology"
    "$PY" -m jelmore_infra.runtime.demo
}

step_stop_server() {
    step "Stop the server"
    local pid=$SERVER_PID status=0
    kill -TERM "$pid"
    wait "$pid" || status=$?
    SERVER_PID=""
    tail -n 1 "$DEMO_DIR/server.out"
    if ((status != 0)); then
        fail "jelmore-infra server exited with status $status"
    fi
    if [[ -n "$NATS_SERVER_PID" ]] && kill -0 "$NATS_SERVER_PID" 2>/dev/null; then
        fail "nats-server (pid $NATS_SERVER_PID) is still running"
    fi
    ok "the server exited cleanly (status 0) and no nats-server is left running"
}

main() {
    [[ -x "$JELMORE" ]] || fail "$JELMORE not found: run 'make install' first"
    if [[ -n "${JELMORE_DEMO_DIR:-}" ]]; then
        DEMO_DIR=$JELMORE_DEMO_DIR
        mkdir -p "$DEMO_DIR"
    else
        DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jelmore-demo.XXXXXX")
        OWN_DEMO_DIR=$DEMO_DIR
    fi
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    step_validate
    step_start_server
    step_show_server
    step_plan
    step_apply
    step_plan_again
    if "$PY" -c "import jelmore_infra.runtime.demo" 2>/dev/null; then
        step_events
    fi
    step_stop_server

    printf '\n%sDemo complete.%s\n' "$BOLD" "$RESET"
}

main "$@"
