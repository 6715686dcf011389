#!/usr/bin/env bash
# TLS side by side: squall's `hello` example (when it serves https) against the peers in
# perf/peers speaking TLS with the same rustls provider (actix-web with rustls, hyper per
# core with tokio-rustls, both rustls 0.23 on aws-lc-rs) and nginx (Debian's package) as the
# classic anchor. One worker on CPU 0, the load on CPU 1, alternating rounds, medians.
#
# Usage: scripts/bench-tls.sh [--rounds N] [--duration SECS] [--only a,b] [--write]
#
#   --rounds N       rounds per server (default 5); medians are taken over them
#   --duration SECS  length of each measured run (default 10)
#   --only a,b       run only these servers (squall, actix, hyper, nginx)
#   --write          also put the tables into BENCHMARKS.md between the
#                    <!-- bench-tls:start --> and <!-- bench-tls:end --> markers
#
# Cases, all against one ECDSA P-256 certificate made here with openssl:
#   handshake    a full TLS 1.3 handshake per request: perf/squall-load over https with
#                `Connection: close` and no session resumption, 32 connections
#   plain-cpr    the same without TLS (squall and hyper only): what a connection costs
#                without its handshake
#   json         /json over TLS keep-alive, 256 connections (squall-load)
#   json-h2load  the same with h2load --h1, a second tool checking the first
#   plaintext    /plaintext over TLS, 256 connections, 16 requests pipelined (squall-load)
#   mib          /mib, a 1 MiB body over TLS keep-alive, 16 connections (squall-load)
#
# Server CPU is utime+stime from /proc/PID/stat (nginx: master and worker) over the run.
# squall is measured only if its hello answers https with SQUALL_TLS_CERT/SQUALL_TLS_KEY
# set; otherwise a note says it was skipped. Raw output goes to perf/runs/tls-<timestamp>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
readonly PEERS_DIR="$ROOT/perf/peers"
readonly LOAD_DIR="$ROOT/perf/squall-load"
readonly LOAD="$LOAD_DIR/target/release/squall-load"
readonly NGINX_PEER="$PEERS_DIR/nginx/nginx-peer.sh"

set_invocation scripts/bench-tls.sh "$@"
readonly INVOCATION

# Fixed parameters of the comparison.
readonly ALL_SERVERS=(squall actix hyper nginx)
readonly TLS_CASES=(handshake json json-h2load plaintext mib)
readonly PLAIN_CPR_SERVERS=" squall hyper " # the plain connection-per-request case
readonly SERVER_CPU=0
readonly CLIENT_CPU=1
readonly HANDSHAKE_CONNECTIONS=32
readonly KEEPALIVE_CONNECTIONS=256
readonly PIPELINE_DEPTH=16
readonly MIB_CONNECTIONS=16
readonly MIB_PATH=/mib # 1 MiB body; squall's hello needs this route for the mib case
# Connection per request: the server closes each connection first, so its TIME_WAITs are
# on the server's side; several source addresses keep the client's ports plentiful anyway.
readonly SOURCES=127.0.0.2-127.0.0.9
readonly WARMUP_SECS=2
readonly STARTUP_TRIES=100 # x 0.1 s: how long a server gets to start listening
readonly STOP_TRIES=50     # x 0.1 s: how long a server gets to exit on SIGTERM
readonly FIRST_PORT=18443
# squall-load exits 1 when it counted errors; the figures say how many.
readonly LOAD_ERROR_STATUS=1

ROUNDS=5
DURATION=10
ONLY=""
WRITE=0

SERVER_PID=""
NEXT_PORT=$FIRST_PORT
TLS_DIR="" # the certificate, key and nginx's files; removed on exit
declare -A BINARY=()

cleanup() {
    stop_server
    [[ -z $TLS_DIR ]] || rm -rf "$TLS_DIR"
}

# An ECDSA P-256 self-signed certificate for 127.0.0.1 and localhost.
make_certificate() {
    TLS_DIR=$(mktemp -d -t bench-tls.XXXXXX)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" >"$RUN_DIR/openssl.log" 2>&1 ||
        die "openssl could not make a certificate (see $RUN_DIR/openssl.log)"
    # nginx's workers may run as another user (nginx's `user`, when started as root) and
    # must reach its files below this directory; the key stays readable by its owner alone.
    chmod 711 "$TLS_DIR"
    cp "$TLS_DIR/cert.pem" "$RUN_DIR/cert.pem"
}

# start_server with the certificate in the environment: the server speaks https.
start_tls_server() {
    SQUALL_TLS_CERT="$TLS_DIR/cert.pem" SQUALL_TLS_KEY="$TLS_DIR/key.pem" start_server "$@"
}

# The load command for a case, for $2 seconds against port $3, its JSON report (squall-load)
# to $4, as an array in WRK_CMD (the name lib/bench.sh's warm-up and run_wrk use).
wrk_command() {
    local case=$1 secs=$2 port=$3 json=${4:-$RUN_DIR/warmup.json} url="https://127.0.0.1:$3"
    WRK_CMD=(taskset -c "$CLIENT_CPU" "$LOAD" -q -d "${secs}s" --json "$json")
    case $case in
    handshake) WRK_CMD+=(-c "$HANDSHAKE_CONNECTIONS" --source-addrs "$SOURCES" -H 'Connection: close' "$url/plaintext") ;;
    plain-cpr) WRK_CMD+=(-c "$HANDSHAKE_CONNECTIONS" --source-addrs "$SOURCES" -H 'Connection: close' "http://127.0.0.1:$port/plaintext") ;;
    json) WRK_CMD+=(-c "$KEEPALIVE_CONNECTIONS" "$url/json") ;;
    json-h2load) WRK_CMD=(taskset -c "$CLIENT_CPU" h2load --h1 -t 1 -c "$KEEPALIVE_CONNECTIONS" -D "$secs" "$url/json") ;;
    plaintext) WRK_CMD+=(-c "$KEEPALIVE_CONNECTIONS" -p "$PIPELINE_DEPTH" "$url/plaintext") ;;
    mib) WRK_CMD+=(-c "$MIB_CONNECTIONS" "$url$MIB_PATH") ;;
    *) die "unknown case $case" ;;
    esac
}

# "req/s requests errors" from h2load's output $1: requests done; errors are failed,
# errored and timed-out requests and answers other than 2xx.
h2load_figures() {
    awk '/^finished in/ { rps = $4 }
         /^requests:/ { done = $6; bad = $10 + $12 + $14 }
         /^status codes:/ { ok = $3 }
         END { if (rps != "" && done != "") print rps, done, bad + done - ok }' "$1"
}

# One measured run: server CPU ticks around the load, then one line of results.tsv.
measure() {
    local name=$1 case=$2 round=$3 out json before after rps requests errors c_before c_after t0 t1 us mbps=""
    out="$RUN_DIR/$name-$case-r$round.txt"
    json="${out%.txt}.json"
    wrk_command "$case" "$DURATION" "$PORT" "$json"
    c_before=$(cpu_busy_ticks "$CLIENT_CPU")
    before=$(tree_ticks "$SERVER_PID")
    t0=$EPOCHREALTIME
    run_wrk "$out" "$DURATION"
    t1=$EPOCHREALTIME
    after=$(tree_ticks "$SERVER_PID")
    c_after=$(cpu_busy_ticks "$CLIENT_CPU")
    if [[ $case == json-h2load ]]; then
        read -r rps requests errors < <(h2load_figures "$out") || true
    else
        # `seen` counts every response of the process's life, as the CPU window does.
        read -r rps requests errors < <(jq -r '[.throughput, .seen, .error_count] | @tsv' "$json" 2>/dev/null) || true
    fi
    [[ -n ${rps:-} && -n ${requests:-} && -n ${errors:-} ]] || die "could not parse the load's output $out"
    ((errors == 0)) || warn "$name $case round $round: $errors errors (see $out)"
    [[ $case != mib ]] || mbps=$rps # one MiB per request: MiB/s
    us=$(record_result "$name" "$case" "$round" "$rps" "$requests" "$((after - before))" \
        "$t0" "$t1" "$errors" "$c_before" "$c_after" "$mbps")
    printf '    %-7s %-12s %10.0f req/s %9.2f us CPU/req\n' "$name" "$case" "$rps" "$us" >&2
}

bench_one() {
    local name=$1 round=$2 cases=() case
    for case in "${TLS_CASES[@]}"; do
        [[ $case == mib && $name == squall && $SQUALL_HAS_MIB == 0 ]] || cases+=("$case")
    done
    warn_if_busy
    start_tls_server "$name" "$RUN_DIR/$name-r$round.log"
    log "round $round: $name over TLS (pid $SERVER_PID, 127.0.0.1:$PORT)"
    warm_up_and_measure "$name" "$round" "${cases[@]}"
    stop_server
    [[ $PLAIN_CPR_SERVERS == *" $name "* ]] || return 0
    start_server "$name" "$RUN_DIR/$name-plain-r$round.log"
    log "round $round: $name plain (pid $SERVER_PID, 127.0.0.1:$PORT)"
    warm_up_and_measure "$name" "$round" plain-cpr
    stop_server
}

# One https request to path $1 of the running server, its output appended to file $2.
probe() {
    timeout 10 "$LOAD" -q -c 1 -n 1 --connect-timeout 2s --timeout 2s \
        "https://127.0.0.1:$PORT$1" >>"$2" 2>&1
}

# squall's hello (a build without TLS ignores the certificate and answers plain HTTP, which
# an https request detects) and whether it has the 1 MiB route: SQUALL_HAS_MIB.
SQUALL_HAS_MIB=0
squall_speaks_tls() {
    local status=0 out="$RUN_DIR/squall-probe.txt"
    start_tls_server squall "$RUN_DIR/squall-probe.log"
    probe /plaintext "$out" || status=$?
    if ((status == 0)) && probe "$MIB_PATH" "$out"; then SQUALL_HAS_MIB=1; fi
    stop_server
    return "$status"
}

build_load() {
    log "building squall-load"
    cargo build --release --manifest-path "$LOAD_DIR/Cargo.toml" --target-dir "$LOAD_DIR/target" \
        >"$RUN_DIR/build-squall-load.log" 2>&1 ||
        die "squall-load did not build (see $RUN_DIR/build-squall-load.log)"
}

report() {
    local case
    cpu_table case 0 handshake plain-cpr json json-h2load plaintext
    echo
    cpu_table case 1 mib
    echo
    echo "handshake and plain-cpr: one request per connection, so µs CPU/req is the server's CPU per connection (TLS: per full TLS 1.3 handshake, X25519, ECDSA P-256, no resumption)."
    echo "mib: one request is 1 MiB, so µs CPU/req is µs of server CPU per MiB and MB/s is MiB/s."
    echo "CPU is the server's utime+stime over the run (all threads; nginx's master and worker); server CPU % is of its one core."
    echo "wrk CPU % is the load generator's CPU (squall-load or h2load) on its core: near 100 means the client, not the server, limited req/s; CPU/req still holds."
    echo "json-h2load is the json case measured with h2load instead of squall-load, to check the one against the other."
    if [[ -n ${BINARY[squall]:-} && $SQUALL_HAS_MIB == 0 ]]; then
        SQUALL_NOTE="squall has no mib row: its hello example does not answer $MIB_PATH (a 1 MiB body) yet."
    fi
    if [[ -n ${SQUALL_NOTE:-} ]]; then
        echo
        echo "$SQUALL_NOTE"
    fi
    echo
    echo "Command: \`$INVOCATION\` ($ROUNDS round(s) of ${DURATION}s per case, ${WARMUP_SECS}s warm-up per case)"
    echo
    local nginx=""
    [[ -z ${BINARY[nginx]:-} ]] || nginx=" (nginx: \`perf/peers/nginx/nginx-peer.sh\`, $(nginx -v 2>&1 | sed 's/^nginx version: //'))"
    echo "- server: \`SQUALL_WORKERS=1 SQUALL_ADDR=127.0.0.1:PORT SQUALL_TLS_CERT=cert.pem SQUALL_TLS_KEY=key.pem taskset -c $SERVER_CPU <binary>\`$nginx"
    echo "- certificate: \`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 ...\` (ECDSA P-256)"
    for case in "${TLS_CASES[@]}" plain-cpr; do
        wrk_command "$case" "$DURATION" PORT report.json
        WRK_CMD=("${WRK_CMD[@]/#$ROOT\//}") # paths relative to the repository
        echo "- $case: \`$(shell_words "${WRK_CMD[@]}")\`"
    done
}

main() {
    parse_args "$@"
    require_machine openssl jq cargo pgrep
    select_servers
    ensure_tool h2load nghttp2-client
    if [[ " ${SERVERS[*]} " == *" nginx "* ]]; then
        command -v nginx >/dev/null || ensure_tool nginx nginx-light
    fi

    new_run_dir tls-
    CLK_TCK=$(getconf CLK_TCK)
    printf 'server\tcase\tround\treq_per_s\trequests\tserver_cpu_us\tcpu_us_per_req\tserver_cpu_pct\terrors\tload_cpu_pct\tmib_per_s\n' \
        >"$RUN_DIR/results.tsv"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    make_certificate
    export SQUALL_NGINX_DIR="$TLS_DIR/nginx"

    build_load
    local cargo_servers=() name
    for name in "${SERVERS[@]}"; do
        [[ $name == nginx ]] || cargo_servers+=("$name")
    done
    READY=()
    ((${#cargo_servers[@]} == 0)) || build_servers hello "${cargo_servers[@]}"
    if [[ -n ${BINARY[squall]:-} ]] && ! squall_speaks_tls; then
        SQUALL_NOTE="squall was skipped: its hello example did not answer https with SQUALL_TLS_CERT and SQUALL_TLS_KEY set (see squall-probe.txt in the run directory)."
        warn "${SQUALL_NOTE#squall was skipped: }; skipping squall"
        unset 'BINARY[squall]'
        READY=("${READY[@]:1}") # squall comes first in the canonical order
    fi
    if [[ " ${SERVERS[*]} " == *" nginx "* ]]; then
        BINARY[nginx]=$NGINX_PEER
        READY+=(nginx)
    fi
    ((${#READY[@]})) || die "nothing to benchmark"
    log "servers: ${READY[*]}; $ROUNDS round(s) x ${DURATION}s; raw output in $RUN_DIR"

    run_rounds bench_one "${READY[@]}"

    report >"$RUN_DIR/report.md"
    cat "$RUN_DIR/report.md"
    ((WRITE == 0)) || write_benchmarks bench-tls
}

main "$@"
