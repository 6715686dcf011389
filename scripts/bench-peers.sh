#!/usr/bin/env bash
# Side-by-side benchmark of squall's `hello` example against peer servers
# (perf/peers/*): the same two endpoints, the same single pinned core, the same
# load generator, measured as throughput and as server CPU time per request.
#
# Usage: scripts/bench-peers.sh [--rounds N] [--duration SECS] [--only a,b] [--write]
#                               [--baseline BINARY]
#
#   --rounds N       rounds per server (default 5); medians are taken over them
#   --duration SECS  length of each measured wrk run (default 15)
#   --only a,b       run only these servers (squall, may_minihttp, actix, hyper)
#   --write          also put the table into BENCHMARKS.md between the
#                    <!-- bench-peers:start --> and <!-- bench-peers:end --> markers
#   --baseline BIN   also run BIN (an earlier build of hello) as "squall-baseline", in
#                    the same alternating rounds: before/after figures for a change
#
# Every server runs with one worker on CPU 0 and wrk runs on CPU 1, so the
# two never compete for a core. Raw output goes to perf/runs/<timestamp>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
readonly PEERS_DIR="$ROOT/perf/peers"
readonly PIPELINE_LUA="scripts/wrk/pipeline.lua" # relative to ROOT, where wrk runs

# The exact invocation, for the report.
set_invocation scripts/bench-peers.sh "$@"
readonly INVOCATION

# Fixed parameters of the comparison.
readonly ALL_SERVERS=(squall may_minihttp actix hyper)
readonly SERVER_CPU=0
readonly CLIENT_CPU=1
readonly CONNECTIONS=256
readonly PIPELINE_DEPTH=16
readonly WARMUP_SECS=2
readonly STARTUP_TRIES=100 # x 0.1 s: how long a server gets to start listening
readonly STOP_TRIES=50     # x 0.1 s: how long a server gets to exit on SIGTERM
readonly FIRST_PORT=18080

ROUNDS=5
DURATION=15
ONLY=""
WRITE=0

SERVER_PID=""   # the server currently running, for the exit trap
NEXT_PORT=$FIRST_PORT
declare -A BINARY=() # server name -> executable

# The client CPU's busy share over a run says whether wrk itself was the
# bottleneck (or whether something else was running there).
client_cpu_ticks() { cpu_busy_ticks "$CLIENT_CPU"; }

# wrk's command line for a case, as an array in WRK_CMD.
wrk_command() {
    local case=$1 secs=$2 port=$3
    WRK_CMD=(taskset -c "$CLIENT_CPU" wrk -t1 "-c$CONNECTIONS" "-d${secs}s")
    case $case in
    # No --latency here: wrk times a pipelined batch as one request, so its
    # latency figures would mean nothing.
    plaintext) WRK_CMD+=(-s "$PIPELINE_LUA" "http://127.0.0.1:$port/plaintext" -- "$PIPELINE_DEPTH") ;;
    json) WRK_CMD+=(--latency "http://127.0.0.1:$port/json") ;;
    *) die "unknown case $case" ;;
    esac
}

# One measured run: CPU ticks around wrk, then one line of results.tsv.
measure() {
    local name=$1 case=$2 round=$3 out before after requests rps errors c_before c_after t0 t1 us
    out="$RUN_DIR/$name-$case-r$round.txt"
    wrk_command "$case" "$DURATION" "$PORT"
    c_before=$(client_cpu_ticks)
    before=$(cpu_ticks "$SERVER_PID")
    t0=$EPOCHREALTIME
    run_wrk "$out" "$DURATION"
    t1=$EPOCHREALTIME
    after=$(cpu_ticks "$SERVER_PID")
    c_after=$(client_cpu_ticks)
    requests=$(awk '/ requests in /{print $1; exit}' "$out")
    rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$out")
    [[ -n $requests && -n $rps ]] || die "could not parse wrk output $out"
    # Socket errors and non-2xx answers would make the figures meaningless.
    errors=$(awk '/^ *Socket errors:/{gsub(/[^0-9 ]/,""); for(i=1;i<=NF;i++) s+=$i}
                  /^ *Non-2xx or 3xx responses:/{s+=$NF} END{print s+0}' "$out")
    ((errors == 0)) || warn "$name $case round $round: $errors errors (see $out)"
    us=$(record_result "$name" "$case" "$round" "$rps" "$requests" "$((after - before))" \
        "$t0" "$t1" "$errors" "$c_before" "$c_after")
    printf '    %-13s %-9s %12.0f req/s %8.3f us CPU/req\n' "$name" "$case" "$rps" "$us" >&2
}

bench_one() {
    local name=$1 round=$2
    warn_if_busy
    start_server "$name" "$RUN_DIR/$name-r$round.log"
    log "round $round: $name (pid $SERVER_PID, 127.0.0.1:$PORT)"
    warm_up_and_measure "$name" "$round" plaintext json
    stop_server
}

# The markdown report: the table, then how it was produced.
report() {
    cpu_table case 0 plaintext json
    echo
    echo "squall ÷ this below 1.00 means squall spends less CPU per request than that server."
    echo "CPU is the server's utime+stime over the wrk run (all threads); server CPU % is of its one core."
    echo "wrk CPU % near 100 means the single wrk thread, not the server, limited req/s; CPU/req still holds."
    echo
    echo "Command: \`$INVOCATION\` ($ROUNDS round(s) of ${DURATION}s per case, ${WARMUP_SECS}s warm-up per case)"
    echo
    wrk_command plaintext "$DURATION" PORT
    echo "- server: \`SQUALL_WORKERS=1 SQUALL_ADDR=127.0.0.1:PORT taskset -c $SERVER_CPU <binary>\`"
    echo "- plaintext: \`${WRK_CMD[*]}\`"
    wrk_command json "$DURATION" PORT
    echo "- json: \`${WRK_CMD[*]}\`"
}

main() {
    local args=() baseline=""
    while (($#)); do
        if [[ $1 == --baseline ]]; then
            baseline=${2:?--baseline needs a binary}
            [[ -x $baseline ]] || die "--baseline $baseline is not an executable"
            shift 2
        else
            args+=("$1")
            shift
        fi
    done
    parse_args "${args[@]}"
    require_machine
    select_servers

    new_run_dir ""
    CLK_TCK=$(getconf CLK_TCK)
    printf 'server\tcase\tround\treq_per_s\trequests\tserver_cpu_us\tcpu_us_per_req\tserver_cpu_pct\terrors\twrk_cpu_pct\n' \
        >"$RUN_DIR/results.tsv"
    trap stop_server EXIT
    trap 'exit 130' INT TERM

    ensure_wrk
    build_servers hello "${SERVERS[@]}"
    if [[ -n $baseline ]]; then
        BINARY[squall-baseline]=$baseline
        SERVERS+=(squall-baseline)
        READY+=(squall-baseline)
    fi
    log "servers: ${READY[*]}; $ROUNDS round(s) x ${DURATION}s; raw output in $RUN_DIR"

    run_rounds bench_one "${READY[@]}"

    report >"$RUN_DIR/report.md"
    cat "$RUN_DIR/report.md"
    ((WRITE == 0)) || write_benchmarks bench-peers
}

main "$@"
