#!/usr/bin/env bash
# WebSocket benchmark: squall's `hello` example (GET /ws echo, GET /broadcast)
# against the tokio-tungstenite peer (perf/peers/tokio-tungstenite), driven by
# perf/squall-load's WebSocket modes (ws-echo, ws-idle, ws-subscribe); its JSON
# reports are read with jq.
#
# Usage: scripts/bench-ws.sh [--rounds N] [--duration SECS] [--only a,b]
#
#   --rounds N       rounds per server and mode (default 3); medians are taken over them
#   --duration SECS  length of each measured echo and broadcast run (default 10)
#   --only a,b       run only these modes: echo, idle, broadcast (default all three)
#
# Modes:
#   echo       each server with one worker on CPU 0, squall-load on CPU 1: 64
#              connections, 32-byte text messages, one in flight per connection
#              (send, wait for the echo, repeat); messages/s, latency, and the
#              server's CPU time per echoed message (utime+stime from /proc/PID/stat)
#   idle       each server with one worker on CPU 0: 10,000 open, silent
#              WebSockets; the server's resident set (VmRSS) before and after,
#              and the growth per connection
#   broadcast  squall only (the peer has no /broadcast), two workers on CPUs 0-1:
#              10,000 subscribers and one publisher sending 10 messages/s; every
#              subscriber must get every message; squall-load shares CPU 1 with
#              the second worker, so latencies include that contention
#
# Rounds alternate the order of the servers. Raw output goes to
# perf/runs/ws-<timestamp>/; the report is Markdown ready to paste into
# BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
readonly PEER_DIR="$ROOT/perf/peers/tokio-tungstenite"
readonly LOAD_DIR="$ROOT/perf/squall-load"
readonly LOAD="$LOAD_DIR/target/release/squall-load"

# The exact invocation, for the report.
set_invocation scripts/bench-ws.sh "$@"
readonly INVOCATION

# Fixed parameters of the comparison.
readonly ALL_MODES=(echo idle broadcast)
readonly SERVER_NAMES=(squall tokio-tungstenite)
readonly SERVER_CPU=0
readonly CLIENT_CPU=1
readonly ECHO_CONNECTIONS=64
readonly ECHO_SIZE=32
readonly ECHO_PIPELINE=1
readonly WARMUP_SECS=2
readonly IDLE_CONNECTIONS=10000
readonly IDLE_SETTLE_SECS=2  # after the last handshake, before reading VmRSS
readonly IDLE_HOLD_LIMIT=600 # squall-load lets go by itself after this, should the script die
readonly BROADCAST_WORKERS=2
readonly BROADCAST_CPUS=0,1
readonly BROADCAST_SUBSCRIBERS=10000
readonly BROADCAST_RATE=10 # messages per second
# Subscriptions may take effect a little after the handshake (on the other core, say): the
# first second's messages are a warm-up, delivered but not counted.
readonly BROADCAST_WARMUP_SECS=1
readonly BROADCAST_GRACE_SECS=3 # how long subscribers wait for late deliveries
readonly CONNECT_TIMEOUT_SECS=10 # per connection, TCP connect and handshake
readonly STARTUP_TRIES=100 # x 0.1 s: how long a server gets to start listening
readonly STOP_TRIES=50     # x 0.1 s: how long a server gets to exit on SIGTERM
readonly READY_TRIES=1200  # x 0.1 s: how long squall-load ws-idle gets to open its connections
readonly FIRST_PORT=18280

ROUNDS=3
DURATION=10
ONLY=""
WRITE=0

SERVER_PID=""  # the server currently running, for the exit trap
LOAD_PID=""    # a squall-load ws-idle running in the background, for the exit trap
NEXT_PORT=$FIRST_PORT
declare -A BINARY=()   # server name -> executable
declare -A SERVES=()   # "server mode" -> 1 when that server supports the mode
MODES=()

check_machine() {
    require_machine jq
    # Servers and squall-load inherit this; 10,000 connections need 10,000 descriptors on each side.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    local fds
    fds=$(ulimit -n)
    [[ $fds == unlimited ]] || ((fds >= BROADCAST_SUBSCRIBERS + 200)) ||
        die "ulimit -n is $fds; need at least $((BROADCAST_SUBSCRIBERS + 200)) descriptors"
}

# MODES: the modes asked for, in the canonical order.
select_modes() {
    select_only mode "${ALL_MODES[@]}"
    MODES=("${SELECTED[@]}")
}

# Build everything first so compile load never overlaps a measurement. The
# peer and squall-load must build; squall's example may not exist yet (or not
# serve WebSockets yet), which only drops it from the run.
build_all() {
    local dir name target
    for dir in "$PEER_DIR" "$LOAD_DIR"; do
        name=$(basename "$dir")
        log "building $name"
        # --target-dir keeps the build inside the crate whatever CARGO_TARGET_DIR says.
        cargo build --release --manifest-path "$dir/Cargo.toml" --target-dir "$dir/target" \
            >"$RUN_DIR/build-$name.log" 2>&1 || die "$name did not build (see $RUN_DIR/build-$name.log)"
    done
    BINARY[tokio-tungstenite]="$PEER_DIR/target/release/peer-tokio-tungstenite"
    SERVES["tokio-tungstenite echo"]=1
    SERVES["tokio-tungstenite idle"]=1

    log "building squall's hello example"
    if (cd "$ROOT" && cargo build --release --example hello) >"$RUN_DIR/build-squall.log" 2>&1; then
        target=${CARGO_TARGET_DIR:-target}
        [[ $target == /* ]] || target="$ROOT/$target"
        BINARY[squall]="$target/release/examples/hello"
        # The routes are string literals in the example; no route, no mode.
        if grep -q '"/ws"' "$ROOT/examples/hello.rs"; then
            SERVES["squall echo"]=1
            SERVES["squall idle"]=1
        else
            warn "examples/hello.rs has no /ws route; squall is left out of echo and idle"
        fi
        if grep -q '"/broadcast"' "$ROOT/examples/hello.rs"; then
            SERVES["squall broadcast"]=1
        else
            warn "examples/hello.rs has no /broadcast route; squall is left out of broadcast"
        fi
    else
        warn "squall's hello example did not build; skipping squall (see $RUN_DIR/build-squall.log)"
    fi
}

# The servers that take part in mode $1, in canonical order, into READY.
servers_for() {
    local name
    READY=()
    for name in "${SERVER_NAMES[@]}"; do
        [[ -n ${SERVES["$name $1"]:-} ]] && READY+=("$name")
    done
    return 0
}

# Percent busy between two cpu_busy_ticks samples.
busy_pct() {
    awk -v b="$1" -v a="$2" 'BEGIN { split(b, x, " "); split(a, y, " ")
        printf "%.1f\n", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'
}

# VmRSS of process $1 in KiB.
rss_kib() {
    local key value _
    while read -r key value _; do
        if [[ $key == VmRSS: ]]; then
            echo "$value"
            return
        fi
    done <"/proc/$1/status" || die "server (pid $1) is gone; see its log in $RUN_DIR"
    die "no VmRSS for pid $1"
}

# The value of key $1 in the line of file $2 that starts with $3 (squall-load's
# `ready connections=N connected=K` line).
field() {
    awk -v k="$1" -v p="$3" 'index($0, p) == 1 {
        for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$2"
}

# squall-load's command line for mode $1 against port $2, for $3 seconds (default
# DURATION), writing its JSON report to $4 if given, into LOAD_CMD.
load_command() {
    local mode=$1 port=$2 secs=${3:-$DURATION} json=${4:-} path=/ws
    LOAD_CMD=(taskset -c "$CLIENT_CPU" "$LOAD" -q)
    case $mode in
    echo)
        LOAD_CMD+=(--mode ws-echo -c "$ECHO_CONNECTIONS" -d "${secs}s" --size "$ECHO_SIZE"
            -p "$ECHO_PIPELINE")
        ;;
    idle)
        LOAD_CMD+=(--mode ws-idle -c "$IDLE_CONNECTIONS" -d "${IDLE_HOLD_LIMIT}s"
            --connect-timeout "${CONNECT_TIMEOUT_SECS}s")
        ;;
    broadcast)
        path=/broadcast
        LOAD_CMD+=(--mode ws-subscribe -c "$BROADCAST_SUBSCRIBERS" -r "$BROADCAST_RATE"
            -d "${secs}s" --warmup "${BROADCAST_WARMUP_SECS}s" --grace "${BROADCAST_GRACE_SECS}s"
            --connect-timeout "${CONNECT_TIMEOUT_SECS}s")
        ;;
    *) die "unknown mode $mode" ;;
    esac
    [[ -z $json ]] || LOAD_CMD+=(--json "$json")
    LOAD_CMD+=("ws://127.0.0.1:$port$path")
}

# Runs LOAD_CMD to completion within $3 seconds: its table in $1, its stderr in $1.err,
# its JSON report in $2. A non-zero exit (some connection or message failed) is returned
# for the caller to report; no JSON report at all stops the script.
run_load() {
    local out=$1 json=$2 limit=$3 status=0
    timeout "$limit" "${LOAD_CMD[@]}" >"$out" 2>"$out.err" </dev/null || status=$?
    [[ -s $json ]] || die "squall-load wrote no report (exit $status); see $out.err: $(tail -n 5 "$out.err")"
    return "$status"
}

stop_load() {
    local pid=$LOAD_PID
    [[ -n $pid ]] || return 0
    LOAD_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_load
    stop_server
}

# One measured echo run: server CPU ticks around squall-load, then one line of echo.tsv.
echo_measure() {
    local name=$1 round=$2 out json before after c_before c_after status=0
    out="$RUN_DIR/echo-$name-r$round.txt"
    json="${out%.txt}.json"
    load_command echo "$PORT" "$DURATION" "$json"
    c_before=$(cpu_busy_ticks "$CLIENT_CPU")
    before=$(cpu_ticks "$SERVER_PID")
    run_load "$out" "$json" "$((DURATION + 60))" || status=$?
    after=$(cpu_ticks "$SERVER_PID")
    c_after=$(cpu_busy_ticks "$CLIENT_CPU")
    ((status == 0)) || warn "$name echo round $round: squall-load exited $status (see $out)"
    local rate messages secs p50 p99 errors
    read -r rate messages secs p50 p99 errors < <(jq -r \
        '[.throughput, .completed, .elapsed_s, .latency_us.p50, .latency_us.p99, .error_count] | @tsv' "$json")
    [[ -n $rate && -n $messages && -n $secs && -n $errors ]] || die "could not parse squall-load's report $json"
    ((errors == 0)) || warn "$name echo round $round: $errors errors (see $out)"
    awk -v n="$name" -v r="$round" -v rate="$rate" -v m="$messages" -v secs="$secs" \
        -v ticks="$((after - before))" -v hz="$CLK_TCK" -v p50="$p50" -v p99="$p99" -v e="$errors" \
        -v client="$(busy_pct "$c_before" "$c_after")" \
        'BEGIN { us = ticks * 1e6 / hz
                 printf "%s\t%s\t%.0f\t%d\t%.0f\t%.3f\t%.1f\t%s\t%s\t%d\t%s\n",
                        n, r, rate, m, us, (m > 0 ? us / m : 0), us / (secs * 1e4), p50, p99, e, client }' \
        >>"$RUN_DIR/echo.tsv"
    printf '    %-17s %10.0f msg/s %8.3f us CPU/msg  p50 %s us  p99 %s us\n' "$name" "$rate" \
        "$(tail -n 1 "$RUN_DIR/echo.tsv" | cut -f6)" "$p50" "$p99" >&2
}

echo_round() {
    local name=$1 round=$2
    warn_if_busy
    start_server "$name" "$RUN_DIR/echo-$name-r$round.log"
    log "echo round $round: $name (pid $SERVER_PID, 127.0.0.1:$PORT)"
    # Warm-up: not recorded.
    load_command echo "$PORT" "$WARMUP_SECS" "$RUN_DIR/echo-$name-r$round-warmup.json"
    run_load "$RUN_DIR/echo-$name-r$round-warmup.txt" "$RUN_DIR/echo-$name-r$round-warmup.json" \
        "$((WARMUP_SECS + 60))" ||
        warn "$name echo warm-up: squall-load exited non-zero (see $RUN_DIR/echo-$name-r$round-warmup.txt)"
    echo_measure "$name" "$round"
    stop_server
}

# Idle memory: VmRSS before the connections and once they are all open and
# quiet. The connections stay open while the server's memory is read, so
# squall-load runs in the background until SIGTERM tells it to let go.
idle_round() {
    local name=$1 round=$2 out json before after total opened failed tries=0 status=0
    out="$RUN_DIR/idle-$name-r$round.txt"
    json="${out%.txt}.json"
    start_server "$name" "$RUN_DIR/idle-$name-r$round.log"
    log "idle round $round: $name (pid $SERVER_PID, 127.0.0.1:$PORT)"
    sleep 0.5 # let the server finish starting (first allocations, timers)
    before=$(rss_kib "$SERVER_PID")
    load_command idle "$PORT" "" "$json"
    # The file exists before the first grep below, whenever the background shell opens it.
    : >"$out"
    # taskset execs squall-load, so $! is squall-load itself.
    "${LOAD_CMD[@]}" >"$out" 2>"$out.err" </dev/null &
    LOAD_PID=$!
    until grep -q '^ready' "$out"; do
        kill -0 "$LOAD_PID" 2>/dev/null || {
            LOAD_PID=""
            die "squall-load ws-idle exited before its connections were ready: $(tail -n 5 "$out.err")"
        }
        ((++tries < READY_TRIES)) || die "squall-load ws-idle was not ready within $((READY_TRIES / 10)) s"
        sleep 0.1
    done
    total=$(field connections "$out" ready)
    opened=$(field connected "$out" ready)
    failed=$((total - opened))
    ((failed == 0)) || warn "$name idle round $round: $failed connections did not open (see $out)"
    # Let everything settle: every connection idle, buffers back in pools.
    sleep "$IDLE_SETTLE_SECS"
    after=$(rss_kib "$SERVER_PID")
    kill -TERM "$LOAD_PID"
    wait "$LOAD_PID" || status=$?
    LOAD_PID=""
    ((status == 0)) || warn "$name idle round $round: squall-load exited $status (see $out)"
    # Lost: open at the ready line but closed by the server before SIGTERM.
    local lost
    lost=$(jq -r '.connected - .held' "$json" 2>/dev/null || true)
    awk -v n="$name" -v r="$round" -v c="$opened" -v f="$failed" -v b="$before" -v a="$after" -v l="${lost:-?}" \
        'BEGIN { printf "%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t%s\n", n, r, c, f, b, a, (c > 0 ? (a - b) * 1024 / c : 0), l }' \
        >>"$RUN_DIR/idle.tsv"
    printf '    %-17s %d idle: VmRSS %d KiB -> %d KiB, %s bytes/connection\n' "$name" "$opened" \
        "$before" "$after" "$(tail -n 1 "$RUN_DIR/idle.tsv" | cut -f7)" >&2
    stop_server
}

broadcast_round() {
    local name=$1 round=$2 out json before after status=0
    out="$RUN_DIR/broadcast-$name-r$round.txt"
    json="${out%.txt}.json"
    warn_if_busy
    start_server "$name" "$RUN_DIR/broadcast-$name-r$round.log" "$BROADCAST_WORKERS" "$BROADCAST_CPUS"
    log "broadcast round $round: $name (pid $SERVER_PID, 127.0.0.1:$PORT, $BROADCAST_WORKERS workers)"
    load_command broadcast "$PORT" "$DURATION" "$json"
    before=$(cpu_ticks "$SERVER_PID")
    run_load "$out" "$json" "$((DURATION + 120))" || status=$?
    after=$(cpu_ticks "$SERVER_PID")
    ((status == 0)) || warn "$name broadcast round $round: squall-load exited $status (see $out)"
    # subscribers sent delivered expected missing p50_us p99_us max_us deliveries/s errors
    # client µs CPU/delivery, and every delivery of the run (warm-up and grace included),
    # which the CPU of both the client and the server is divided by.
    local line=() seen
    read -r -a line < <(jq -r '[.connected, .published, .completed, .expected_deliveries,
        (.expected_deliveries - .completed), .latency_us.p50, .latency_us.p99, .latency_us.max,
        .throughput, .error_count, (if .seen > 0 then .cpu_s * 1e6 / .seen else 0 end)] | @tsv' "$json")
    seen=$(jq -r .seen "$json")
    ((${#line[@]} == 11)) || die "could not parse squall-load's report $json"
    ((line[4] == 0)) || warn "$name broadcast round $round: ${line[4]} deliveries missing"
    # Server CPU per delivery, across both workers.
    local us_per
    us_per=$(awk -v t="$((after - before))" -v hz="$CLK_TCK" -v d="$seen" \
        'BEGIN { printf "%.3f", (d > 0 ? t * 1e6 / hz / d : 0) }')
    printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$(
        IFS=$'\t'
        echo "${line[*]}"
    )" "$us_per" >>"$RUN_DIR/broadcast.tsv"
    printf '    %-17s %s of %s delivered, %s missing, p50 %s us, p99 %s us, %s us CPU/delivery\n' "$name" \
        "${line[2]}" "${line[3]}" "${line[4]}" "${line[5]}" "${line[6]}" "$us_per" >&2
    stop_server
}

# Median of column $3 of file $2 over the rows for server $1.
median_of() {
    awk -F'\t' -v n="$1" -v col="$3" '$1 == n { print $col }' "$RUN_DIR/$2" | median
}

# Sum of column $3 of file $2 over the rows for server $1.
sum_of() {
    awk -F'\t' -v n="$1" -v col="$3" '$1 == n { s += $col } END { print s + 0 }' "$RUN_DIR/$2"
}

runs_of() {
    awk -F'\t' -v n="$1" '$1 == n' "$RUN_DIR/$2" | wc -l
}

# Every round of mode $1 (run_rounds alternates the order of the servers).
run_mode() {
    local mode=$1
    servers_for "$mode"
    if ((${#READY[@]} == 0)); then
        warn "no server supports $mode; skipped"
        return
    fi
    run_rounds "${mode}_round" "${READY[@]}"
}

report_echo() {
    local name rate us p50 p99 busy client ratio squall_us
    echo "| server | messages/s (median) | p50 µs | p99 µs | µs CPU/message (median) | server CPU % | squall-load CPU % | squall ÷ this (CPU/msg) | runs | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    squall_us=""
    [[ -n ${SERVES["squall echo"]:-} ]] && squall_us=$(median_of squall echo.tsv 6)
    servers_for echo
    for name in "${READY[@]}"; do
        rate=$(median_of "$name" echo.tsv 3)
        us=$(median_of "$name" echo.tsv 6)
        busy=$(median_of "$name" echo.tsv 7)
        p50=$(median_of "$name" echo.tsv 8)
        p99=$(median_of "$name" echo.tsv 9)
        client=$(median_of "$name" echo.tsv 11)
        if [[ -z $squall_us ]]; then
            ratio="n/a"
        elif [[ $name == squall ]]; then
            ratio="1.00"
        else
            ratio=$(awk -v a="$squall_us" -v b="$us" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
        fi
        printf '| %s | %.0f | %.1f | %.1f | %.3f | %.0f | %.0f | %s | %d | %d |\n' "$name" "$rate" "$p50" "$p99" \
            "$us" "$busy" "$client" "$ratio" "$(runs_of "$name" echo.tsv)" "$(sum_of "$name" echo.tsv 10)"
    done
    echo
    echo "Echo: $ECHO_CONNECTIONS connections, $ECHO_SIZE-byte text messages, $ECHO_PIPELINE in flight per connection;"
    echo "one worker on CPU $SERVER_CPU, squall-load (one executor) on CPU $CLIENT_CPU; ${DURATION}s per run after a ${WARMUP_SECS}s warm-up."
    echo "CPU is the server's utime+stime over the run; squall ÷ this below 1.00 means squall spends less per message."
    echo "squall-load CPU % near 100 means the client, not the server, limited messages/s; CPU/message still holds."
    load_command echo PORT
    echo "- \`SQUALL_WORKERS=1 SQUALL_ADDR=127.0.0.1:PORT taskset -c $SERVER_CPU <binary>\`; \`${LOAD_CMD[*]/#"$ROOT/"/}\`"
    echo
}

report_idle() {
    local name
    echo "| server | idle WebSockets | VmRSS before (KiB) | VmRSS after (KiB) | bytes per connection (median) | runs | failed | lost |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    servers_for idle
    for name in "${READY[@]}"; do
        printf '| %s | %d | %.0f | %.0f | %.0f | %d | %d | %d |\n' "$name" "$(median_of "$name" idle.tsv 3)" \
            "$(median_of "$name" idle.tsv 5)" "$(median_of "$name" idle.tsv 6)" "$(median_of "$name" idle.tsv 7)" \
            "$(runs_of "$name" idle.tsv)" "$(sum_of "$name" idle.tsv 4)" "$(sum_of "$name" idle.tsv 8)"
    done
    echo
    echo "Idle: one worker on CPU $SERVER_CPU; VmRSS read ${IDLE_SETTLE_SECS}s after the last handshake, with every connection open."
    echo "Kernel socket buffers are not in the resident set: this is what the server process keeps per connection."
    load_command idle PORT
    echo "- \`${LOAD_CMD[*]/#"$ROOT/"/}\`"
    echo
}

report_broadcast() {
    local name
    echo "| server | workers | subscribers | msgs/s published | sent | delivered | missing | p50 µs | p99 µs | max µs | deliveries/s | µs CPU/delivery | squall-load µs CPU/delivery | runs |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    servers_for broadcast
    for name in "${READY[@]}"; do
        printf '| %s | %d | %.0f | %s | %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %.3f | %.3f | %d |\n' "$name" \
            "$BROADCAST_WORKERS" "$(median_of "$name" broadcast.tsv 3)" "$BROADCAST_RATE" \
            "$(sum_of "$name" broadcast.tsv 4)" "$(sum_of "$name" broadcast.tsv 5)" \
            "$(sum_of "$name" broadcast.tsv 7)" "$(median_of "$name" broadcast.tsv 8)" \
            "$(median_of "$name" broadcast.tsv 9)" "$(median_of "$name" broadcast.tsv 10)" \
            "$(median_of "$name" broadcast.tsv 11)" "$(median_of "$name" broadcast.tsv 14)" \
            "$(median_of "$name" broadcast.tsv 13)" \
            "$(runs_of "$name" broadcast.tsv)"
    done
    echo
    echo "Broadcast: $BROADCAST_WORKERS workers on CPUs $BROADCAST_CPUS (squall-load shares CPU $CLIENT_CPU with the second);"
    echo "latency is receive time minus the publisher's scheduled send time; sent, delivered and missing count the"
    echo "${DURATION}s window after a ${BROADCAST_WARMUP_SECS}s warm-up and are summed over the runs, the rest are medians."
    echo "Server CPU is both workers' utime+stime over the whole squall-load run, handshakes included, divided by every"
    echo "delivery of the run (warm-up and grace included); squall-load's CPU per delivery is its own from the start line."
    echo "The spread of latencies is bounded below by the client: squall-load reads every delivery on its own socket, one"
    echo "after another, so a fan-out to all subscribers takes at least subscribers × its CPU per delivery to read."
    load_command broadcast PORT
    echo "- \`SQUALL_WORKERS=$BROADCAST_WORKERS SQUALL_ADDR=127.0.0.1:PORT taskset -c $BROADCAST_CPUS <binary>\`; \`${LOAD_CMD[*]/#"$ROOT/"/}\`"
    echo
}

report() {
    local mode
    for mode in "${MODES[@]}"; do
        servers_for "$mode"
        if ((${#READY[@]})); then "report_$mode"; fi
    done
    echo "Command: \`$INVOCATION\` ($ROUNDS round(s)), measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc --all) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), Linux $(uname -r)."
}

main() {
    parse_args "$@"
    ((WRITE == 0)) || die "--write is not supported here; paste the printed rows into BENCHMARKS.md"
    check_machine
    select_modes

    new_run_dir ws-
    CLK_TCK=$(getconf CLK_TCK)
    printf 'server\tround\tmsg_per_s\tmessages\tserver_cpu_us\tcpu_us_per_msg\tserver_cpu_pct\tp50_us\tp99_us\terrors\tclient_cpu_pct\n' \
        >"$RUN_DIR/echo.tsv"
    printf 'server\tround\tconnections\tfailed\trss_before_kib\trss_after_kib\tbytes_per_conn\tlost\n' \
        >"$RUN_DIR/idle.tsv"
    printf 'server\tround\tsubscribers\tsent\tdelivered\texpected\tmissing\tp50_us\tp99_us\tmax_us\trate_delivered\terrors\tclient_cpu_us_per_delivery\tcpu_us_per_delivery\n' \
        >"$RUN_DIR/broadcast.tsv"
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    build_all
    log "modes: ${MODES[*]}; $ROUNDS round(s); raw output in $RUN_DIR"
    local mode
    for mode in "${MODES[@]}"; do
        run_mode "$mode"
    done

    report >"$RUN_DIR/report.md"
    cat "$RUN_DIR/report.md"
}

main "$@"
