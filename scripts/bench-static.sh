#!/usr/bin/env bash
# Side-by-side benchmark of squall's StaticFiles (examples/static_files.rs) against
# actix-files (perf/peers/actix-files): the same 1 KiB and 1 MiB files from the same
# directory, each server with one worker pinned to one core, measured as throughput and as
# server CPU time per request.
#
# Usage: scripts/bench-static.sh [--rounds N] [--duration SECS] [--only a,b] [--write]
#
#   --rounds N       rounds per server (default 5); medians are taken over them
#   --duration SECS  length of each measured wrk run (default 10)
#   --only a,b       run only these servers (squall, actix-files)
#   --write          also put the table into BENCHMARKS.md between the
#                    <!-- bench-static:start --> and <!-- bench-static:end --> markers
#
# Every server runs with one worker on CPU 0 and wrk runs on CPU 1; keep-alive, no
# pipelining. The files are random bytes (so nothing could compress them), written fresh
# into the run directory, and read once before measuring so both servers find them in the
# page cache. Raw output goes to perf/runs/static-<timestamp>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
readonly PEERS_DIR="$ROOT/perf/peers"

set_invocation scripts/bench-static.sh "$@"
readonly INVOCATION

readonly ALL_SERVERS=(squall actix-files)
readonly CASES=(1k 1m)
readonly SERVER_CPU=0
readonly CLIENT_CPU=1
# A 1 MiB response keeps a connection busy for long; 64 of them already keep the server's
# core saturated, and 256 would only queue more data in socket buffers.
readonly CONNECTIONS_1K=256
readonly CONNECTIONS_1M=64
readonly WARMUP_SECS=2
readonly STARTUP_TRIES=100 # x 0.1 s
readonly STOP_TRIES=50     # x 0.1 s
readonly FIRST_PORT=18280

ROUNDS=5
DURATION=10
ONLY=""
WRITE=0

SERVER_PID=""
NEXT_PORT=$FIRST_PORT
declare -A BINARY=()

# The served directory: 1k.bin and 1m.bin of random bytes.
make_files() {
    SQUALL_STATIC_DIR="$RUN_DIR/files"
    export SQUALL_STATIC_DIR
    mkdir -p "$SQUALL_STATIC_DIR"
    head -c 1024 /dev/urandom >"$SQUALL_STATIC_DIR/1k.bin"
    head -c 1048576 /dev/urandom >"$SQUALL_STATIC_DIR/1m.bin"
    cat "$SQUALL_STATIC_DIR"/*.bin >/dev/null
}

wrk_command() {
    local case=$1 secs=$2 port=$3 connections
    case $case in
    1k) connections=$CONNECTIONS_1K ;;
    1m) connections=$CONNECTIONS_1M ;;
    *) die "unknown case $case" ;;
    esac
    WRK_CMD=(taskset -c "$CLIENT_CPU" wrk -t1 "-c$connections" "-d${secs}s" --latency
        "http://127.0.0.1:$port/static/$case.bin")
}

# wrk's "Transfer/sec: 1.21GB" as MB/s.
transfer_mbps() {
    awk '/^Transfer\/sec:/ { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
         m = (u == "GB") ? 1024 : (u == "MB") ? 1 : (u == "KB") ? 1 / 1024 : 1 / 1048576
         printf "%.0f", v * m; exit }' "$1"
}

measure() {
    local name=$1 case=$2 round=$3 out before after requests rps errors c_before c_after t0 t1 mbps us
    out="$RUN_DIR/$name-$case-r$round.txt"
    wrk_command "$case" "$DURATION" "$PORT"
    c_before=$(cpu_busy_ticks "$CLIENT_CPU")
    before=$(cpu_ticks "$SERVER_PID")
    t0=$EPOCHREALTIME
    run_wrk "$out" "$DURATION"
    t1=$EPOCHREALTIME
    after=$(cpu_ticks "$SERVER_PID")
    c_after=$(cpu_busy_ticks "$CLIENT_CPU")
    requests=$(awk '/ requests in /{print $1; exit}' "$out")
    rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$out")
    [[ -n $requests && -n $rps ]] || die "could not parse wrk output $out"
    mbps=$(transfer_mbps "$out")
    errors=$(awk '/^ *Socket errors:/{gsub(/[^0-9 ]/,""); for(i=1;i<=NF;i++) s+=$i}
                  /^ *Non-2xx or 3xx responses:/{s+=$NF} END{print s+0}' "$out")
    ((errors == 0)) || warn "$name $case round $round: $errors errors (see $out)"
    us=$(record_result "$name" "$case" "$round" "$rps" "$requests" "$((after - before))" \
        "$t0" "$t1" "$errors" "$c_before" "$c_after" "$mbps")
    printf '    %-12s %-3s %10.0f req/s %9.2f us CPU/req %6s MB/s\n' "$name" "$case" "$rps" "$us" "$mbps" >&2
}

bench_one() {
    local name=$1 round=$2
    warn_if_busy
    start_server "$name" "$RUN_DIR/$name-r$round.log"
    log "round $round: $name (pid $SERVER_PID, 127.0.0.1:$PORT)"
    warm_up_and_measure "$name" "$round" "${CASES[@]}"
    stop_server
}

report() {
    cpu_table file 1 "${CASES[@]}"
    echo
    echo "squall ÷ this below 1.00 means squall spends less CPU per request than that server (the target is ≤ 0.70)."
    echo "CPU is the server's utime+stime over the wrk run (all threads, actix's blocking-I/O pool included); server CPU % is of its one core."
    echo
    echo "Command: \`$INVOCATION\` ($ROUNDS round(s) of ${DURATION}s per file, ${WARMUP_SECS}s warm-up per file)"
    echo
    echo "- server: \`SQUALL_WORKERS=1 SQUALL_ADDR=127.0.0.1:PORT SQUALL_STATIC_DIR=DIR taskset -c $SERVER_CPU <binary>\`"
    wrk_command 1k "$DURATION" PORT
    echo "- 1 KiB: \`${WRK_CMD[*]}\`"
    wrk_command 1m "$DURATION" PORT
    echo "- 1 MiB: \`${WRK_CMD[*]}\`"
}

main() {
    parse_args "$@"
    require_machine
    select_servers

    new_run_dir "static-"
    CLK_TCK=$(getconf CLK_TCK)
    printf 'server\tcase\tround\treq_per_s\trequests\tserver_cpu_us\tcpu_us_per_req\tserver_cpu_pct\terrors\twrk_cpu_pct\tmb_per_s\n' \
        >"$RUN_DIR/results.tsv"
    trap stop_server EXIT
    trap 'exit 130' INT TERM

    ensure_wrk
    build_servers static_files "${SERVERS[@]}"
    make_files
    log "servers: ${READY[*]}; $ROUNDS round(s) x ${DURATION}s; files in $SQUALL_STATIC_DIR; raw output in $RUN_DIR"

    run_rounds bench_one "${READY[@]}"

    report >"$RUN_DIR/report.md"
    cat "$RUN_DIR/report.md"
    ((WRITE == 0)) || write_benchmarks bench-static
}

main "$@"
