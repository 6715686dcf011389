# Shared by the side-by-side benchmark scripts (bench-peers.sh, bench-db.sh, bench-ws.sh):
# logging, wrk, ports, and starting and stopping one pinned server. Sourced, not run. The
# caller defines SERVER_CPU, FIRST_PORT, NEXT_PORT, STARTUP_TRIES, STOP_TRIES, the BINARY map
# and SERVER_PID, and, for argument parsing, ALL_SERVERS and the defaults of ROUNDS, DURATION,
# ONLY and WRITE.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }

warn() { printf 'warning: %s\n' "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# wrk comes from Debian's package; only touch apt when it is really missing.
ensure_wrk() {
    command -v wrk >/dev/null && return
    log "wrk not found; installing it with apt-get"
    if ! { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; then
        die "could not install wrk"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A fresh port per launch: nothing lingering from the previous server
# (TIME_WAIT, a slow exit) can be measured by mistake.
claim_port() {
    local tries=0
    while port_open "$NEXT_PORT"; do
        ((++tries < 100)) || die "no free port found from $FIRST_PORT upwards"
        NEXT_PORT=$((NEXT_PORT + 1))
    done
    PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
}

# Start server $1 (output to $2) with $3 workers (default one) on the CPUs
# $4 (a taskset list, default SERVER_CPU) and wait until it accepts.
start_server() {
    local name=$1 log_file=$2 workers=${3:-1} cpus=${4:-$SERVER_CPU} tries=0
    claim_port
    # taskset and the environment assignment both exec, so $! is the server.
    SQUALL_WORKERS=$workers SQUALL_ADDR="127.0.0.1:$PORT" \
        taskset -c "$cpus" "${BINARY[$name]}" >"$log_file" 2>&1 &
    SERVER_PID=$!
    until port_open "$PORT"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=""
            die "$name exited before listening on 127.0.0.1:$PORT; its output: $(tail -n 20 "$log_file")"
        fi
        ((++tries < STARTUP_TRIES)) ||
            die "$name did not listen on 127.0.0.1:$PORT within $((STARTUP_TRIES / 10)) s (log: $log_file)"
        sleep 0.1
    done
}

# SIGTERM, a bounded wait, then SIGKILL.
stop_server() {
    local pid=$SERVER_PID tries=0
    [[ -n $pid ]] || return 0
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((tries++ < STOP_TRIES)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The usage text is the comment block at the top of the calling script.
usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

# shellcheck disable=SC2034 # ROUNDS, DURATION, ONLY and WRITE are read by the caller.
parse_args() {
    while (($#)); do
        case "$1" in
        --rounds)
            ROUNDS=${2:?--rounds needs a value}
            shift 2
            ;;
        --duration)
            DURATION=${2:?--duration needs a value}
            shift 2
            ;;
        --only)
            ONLY=${2:?--only needs a value}
            shift 2
            ;;
        --write)
            WRITE=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"
}

# SERVERS: the servers asked for, in the canonical order. (Not a command
# substitution, so that die() ends the script rather than a subshell.)
select_servers() {
    local name wanted
    SERVERS=()
    IFS=',' read -ra wanted <<<"${ONLY:-$(
        IFS=','
        echo "${ALL_SERVERS[*]}"
    )}"
    for name in "${wanted[@]}"; do
        [[ " ${ALL_SERVERS[*]} " == *" $name "* ]] ||
            die "unknown server '$name' (known: ${ALL_SERVERS[*]})"
    done
    for name in "${ALL_SERVERS[@]}"; do
        [[ " ${wanted[*]} " == *" $name "* ]] && SERVERS+=("$name")
    done
    ((${#SERVERS[@]})) || die "no server selected"
}
