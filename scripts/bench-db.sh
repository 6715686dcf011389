#!/usr/bin/env bash
# Side-by-side database benchmark: squall's `techempower` example against the
# actix-web + tokio-postgres peer (perf/peers/actix-db) on the five TechEmpower
# database tests, the same single pinned core, the same load generator,
# measured as throughput and as app-server CPU time per request.
#
# Usage: scripts/bench-db.sh [--rounds N] [--duration SECS] [--only a,b] [--write]
#
#   --rounds N       rounds per server (default 3); medians are taken over them
#   --duration SECS  length of each measured wrk run (default 10)
#   --only a,b       run only these servers (squall, actix-db)
#   --write          also put the table into BENCHMARKS.md between the
#                    <!-- bench-db:start --> and <!-- bench-db:end --> markers
#
# It first runs scripts/setup-db.sh (DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/test). Every server runs with one worker
# on CPU 0 and wrk runs on CPU 1; PostgreSQL is not pinned and shares both
# CPUs, so requests/s depends on it too. The CPU per request reported is the
# app server's process alone (utime+stime from /proc/PID/stat); PostgreSQL's
# is shown beside it when its processes are visible on this machine. Raw
# output goes to perf/runs/<timestamp>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
readonly PEERS_DIR="$ROOT/perf/peers"

# The exact invocation, for the report.
set_invocation scripts/bench-db.sh "$@"
readonly INVOCATION

# Fixed parameters of the comparison.
readonly ALL_SERVERS=(squall actix-db)
readonly CASES=(db queries fortunes updates cached-queries)
declare -rA CASE_PATH=(
    [db]="/db"
    [queries]="/queries?queries=20"
    [fortunes]="/fortunes"
    [updates]="/updates?queries=20"
    [cached-queries]="/cached-queries?count=100"
)
readonly SERVER_CPU=0
readonly CLIENT_CPU=1
readonly CONNECTIONS=256
readonly WARMUP_SECS=2
readonly STARTUP_TRIES=100 # x 0.1 s: how long a server gets to start listening
readonly STOP_TRIES=50     # x 0.1 s: how long a server gets to exit on SIGTERM
readonly FIRST_PORT=18080
# The issue's targets, printed beside the medians: squall's CPU per request at
# most this times the peer's, and its requests/s at least the peer's.
readonly TARGET_CPU_RATIO=0.70
readonly TARGET_RPS_RATIO=1.00
readonly PEER=actix-db # the server squall is held against in the summary

ROUNDS=3
DURATION=10
ONLY=""
WRITE=0

SERVER_PID=""   # the server currently running, for the exit trap
NEXT_PORT=$FIRST_PORT

# Every server talks to PostgreSQL in the clear: the peers connect without TLS, and squall's
# default sslmode, libpq's `prefer`, would encrypt against a server with ssl = on.
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
if [[ $DATABASE_URL != *sslmode=* ]]; then
    if [[ $DATABASE_URL == *\?* ]]; then DATABASE_URL+="&sslmode=disable"; else DATABASE_URL+="?sslmode=disable"; fi
fi
export DATABASE_URL
declare -A BINARY=() # server name -> executable

setup_db() {
    log "preparing the database (scripts/setup-db.sh)"
    bash "$ROOT/scripts/setup-db.sh" >"$RUN_DIR/setup-db.log" 2>&1 ||
        die "scripts/setup-db.sh failed: $(tail -n 5 "$RUN_DIR/setup-db.log")"
    tail -n 1 "$RUN_DIR/setup-db.log" >&2
}

# One request per case before any load: a server answering errors would
# otherwise look fast. Failures are warned about (and wrk counts them too).
check_endpoints() {
    local name=$1 case out status ctype
    for case in "${CASES[@]}"; do
        out="$RUN_DIR/$name-check-$case.txt"
        if ! curl -sS -m 10 -o /dev/null -D "$out" "http://127.0.0.1:$PORT${CASE_PATH[$case]}" 2>"$out.err"; then
            warn "$name ${CASE_PATH[$case]}: request failed: $(cat "$out.err")"
            continue
        fi
        status=$(awk 'NR == 1 { print $2 }' "$out")
        ctype=$(awk -F': *' 'tolower($1) == "content-type" { sub(/\r$/, "", $2); print $2 }' "$out")
        [[ $status == 200 ]] || warn "$name ${CASE_PATH[$case]}: status $status (see $out)"
        [[ -n $ctype ]] || warn "$name ${CASE_PATH[$case]}: no Content-Type (see $out)"
    done
}

# utime + stime summed over every process named postgres on this machine, as
# "pid:ticks" pairs, so that a backend born or gone during a run can be
# matched; empty when PostgreSQL runs elsewhere.
pg_snapshot() {
    local pid
    for pid in $(pgrep -x postgres || true); do
        printf '%s:%s ' "$pid" "$(proc_ticks "$pid")"
    done
}

# PostgreSQL ticks between two snapshots: the growth of each process alive at
# the end (a process born during the run counts from zero). Prints -1 when no
# postgres process was visible.
pg_ticks_between() {
    awk -v b="$1" -v a="$2" 'BEGIN {
        n = split(b, x, " "); for (i = 1; i <= n; i++) { split(x[i], p, ":"); before[p[1]] = p[2] }
        m = split(a, y, " "); if (m == 0) { print -1; exit }
        for (i = 1; i <= m; i++) { split(y[i], p, ":"); s += p[2] - (p[1] in before ? before[p[1]] : 0) }
        print s }'
}

# CPU seconds (user + system) of this shell's waited-for children, from the
# output of the `times` builtin saved in file $1 (its second line). Taken
# around run_wrk alone, the difference is wrk's own CPU time.
children_cpu_secs() {
    awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); sub(/s$/, "", t[2]); s += t[1] * 60 + t[2] }
                   printf "%.3f\n", s }' "$1"
}

# wrk's command line for a case, as an array in WRK_CMD: one request in
# flight per connection (no pipelining), latency percentiles on.
wrk_command() {
    local case=$1 secs=$2 port=$3
    [[ -n ${CASE_PATH[$case]:-} ]] || die "unknown case $case"
    WRK_CMD=(taskset -c "$CLIENT_CPU" wrk -t1 "-c$CONNECTIONS" "-d${secs}s" --latency
        "http://127.0.0.1:$port${CASE_PATH[$case]}")
}

# One measured run: CPU ticks around wrk, then one line of results.tsv.
measure() {
    local name=$1 case=$2 round=$3 out before after pg_before pg_after pg_ticks
    local requests rps errors p99 m_before m_after w_before w_after t0 t1 user_before user_after
    out="$RUN_DIR/$name-$case-r$round.txt"
    wrk_command "$case" "$DURATION" "$PORT"
    m_before=$(cpu_busy_ticks "")
    pg_before=$(pg_snapshot)
    before=$(cpu_ticks "$SERVER_PID")
    user_before=$(proc_ticks "$SERVER_PID" user)
    times >"$RUN_DIR/times.before" # a builtin: it must run in this shell, not in $(...)
    t0=$EPOCHREALTIME
    run_wrk "$out" "$DURATION"
    t1=$EPOCHREALTIME
    times >"$RUN_DIR/times.after"
    after=$(cpu_ticks "$SERVER_PID")
    user_after=$(proc_ticks "$SERVER_PID" user)
    pg_after=$(pg_snapshot)
    m_after=$(cpu_busy_ticks "")
    w_before=$(children_cpu_secs "$RUN_DIR/times.before")
    w_after=$(children_cpu_secs "$RUN_DIR/times.after")
    pg_ticks=$(pg_ticks_between "$pg_before" "$pg_after")
    requests=$(awk '/ requests in /{print $1; exit}' "$out")
    rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$out")
    [[ -n $requests && -n $rps ]] || die "could not parse wrk output $out"
    # 99th percentile latency in ms (wrk prints us, ms or s).
    p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
                             print (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v; exit }' "$out")
    # Socket errors (connect, read, write, timeout) and non-2xx/3xx answers.
    errors=$(awk '/^ *Socket errors:/{gsub(/[^0-9 ]/,""); for(i=1;i<=NF;i++) s+=$i}
                  /^ *Non-2xx or 3xx responses:/{s+=$NF} END{print s+0}' "$out")
    ((errors == 0)) || warn "$name $case round $round: $errors errors (see $out)"
    awk -v n="$name" -v c="$case" -v r="$round" -v rps="$rps" -v req="$requests" \
        -v ticks="$((after - before))" -v pg="$pg_ticks" -v hz="$CLK_TCK" -v t0="$t0" -v t1="$t1" \
        -v e="$errors" -v p99="${p99:-nan}" -v mb="$m_before" -v ma="$m_after" -v wb="$w_before" -v wa="$w_after" \
        -v uticks="$((user_after - user_before))" \
        'BEGIN { us = ticks * 1e6 / hz
                 pgus = (pg < 0 || req == 0) ? "nan" : sprintf("%.1f", pg * 1e6 / hz / req)
                 split(mb, b, " "); split(ma, a, " ")
                 machine = (a[2] > b[2]) ? 100 * (a[1] - b[1]) / (a[2] - b[2]) : 0
                 client = 100 * (wa - wb) / (t1 - t0)
                 user = (req > 0) ? uticks * 1e6 / hz / req : 0
                 printf "%s\t%s\t%s\t%.0f\t%d\t%.0f\t%.2f\t%.1f\t%d\t%.1f\t%s\t%s\t%.1f\t%.2f\n",
                        n, c, r, rps, req, us, (req > 0 ? us / req : 0), us / ((t1 - t0) * 1e4), e,
                        client, pgus, p99, machine, user }' \
        >>"$RUN_DIR/results.tsv"
    printf '    %-9s %-15s %9.0f req/s %9.2f us CPU/req (%.2f user)\n' "$name" "$case" "$rps" \
        "$(tail -n 1 "$RUN_DIR/results.tsv" | cut -f7)" "$(tail -n 1 "$RUN_DIR/results.tsv" | cut -f14)" >&2
}

bench_one() {
    local name=$1 round=$2
    warn_if_busy
    start_server "$name" "$RUN_DIR/$name-r$round.log"
    log "round $round: $name (pid $SERVER_PID, 127.0.0.1:$PORT)"
    check_endpoints "$name"
    warm_up_and_measure "$name" "$round" "${CASES[@]}"
    stop_server
}

# a / b to two decimals, or n/a.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 <= 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# "%.Nf" of a number, or n/a.
fmt() {
    awk -v f="$1" -v v="$2" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf f "\n", v }'
}

# The markdown report: the table, the summary against the targets, then how
# it was produced.
report() {
    local name case rps us user busy client machine pg p99 runs errs squall_rps squall_us rps_ratio cpu_ratio
    echo "| case | server | req/s (median) | app µs CPU/req (median) | of which user | app CPU % | PostgreSQL µs CPU/req | p99 latency ms | wrk CPU % | machine CPU % | squall ÷ this (req/s) | squall ÷ this (CPU/req) | runs | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for case in "${CASES[@]}"; do
        squall_rps=nan squall_us=nan
        if [[ -n ${BINARY[squall]:-} ]]; then
            squall_rps=$(median_of squall "$case" 4)
            squall_us=$(median_of squall "$case" 7)
        fi
        for name in "${SERVERS[@]}"; do
            [[ -n ${BINARY[$name]:-} ]] || continue
            rps=$(median_of "$name" "$case" 4)
            us=$(median_of "$name" "$case" 7)
            user=$(median_of "$name" "$case" 14)
            busy=$(median_of "$name" "$case" 8)
            client=$(median_of "$name" "$case" 10)
            machine=$(median_of "$name" "$case" 13)
            pg=$(median_of "$name" "$case" 11)
            p99=$(median_of "$name" "$case" 12)
            runs=$(awk -F'\t' -v n="$name" -v c="$case" '$1 == n && $2 == c' "$RUN_DIR/results.tsv" | wc -l)
            errs=$(awk -F'\t' -v n="$name" -v c="$case" '$1 == n && $2 == c { s += $9 } END { print s + 0 }' "$RUN_DIR/results.tsv")
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n' \
                "\`${CASE_PATH[$case]}\`" "$name" "$(fmt %.0f "$rps")" "$(fmt %.1f "$us")" "$(fmt %.1f "$user")" \
                "$(fmt %.0f "$busy")" "$(fmt %.1f "$pg")" "$(fmt %.1f "$p99")" "$(fmt %.0f "$client")" "$(fmt %.0f "$machine")" \
                "$(ratio "$squall_rps" "$rps")" "$(ratio "$squall_us" "$us")" "$runs" "$errs"
        done
    done
    echo
    if [[ -n ${BINARY[squall]:-} && -n ${BINARY[$PEER]:-} ]]; then
        echo "Against the targets (squall CPU/req ≤ ${TARGET_CPU_RATIO}× $PEER's, req/s ≥ ${TARGET_RPS_RATIO}× $PEER's):"
        echo
        echo "| case | squall ÷ $PEER (CPU/req) | CPU target | squall ÷ $PEER (req/s) | req/s target | squall ÷ $PEER (user CPU/req) |"
        echo "|---|---:|---|---:|---|---:|"
        for case in "${CASES[@]}"; do
            cpu_ratio=$(ratio "$(median_of squall "$case" 7)" "$(median_of "$PEER" "$case" 7)")
            user_ratio=$(ratio "$(median_of squall "$case" 14)" "$(median_of "$PEER" "$case" 14)")
            rps_ratio=$(ratio "$(median_of squall "$case" 4)" "$(median_of "$PEER" "$case" 4)")
            printf '| %s | %s | %s | %s | %s | %s |\n' "\`${CASE_PATH[$case]}\`" \
                "$cpu_ratio" "$(awk -v r="$cpu_ratio" -v t="$TARGET_CPU_RATIO" 'BEGIN { print (r == "n/a") ? "n/a" : (r + 0 <= t + 0) ? "met" : "missed" }')" \
                "$rps_ratio" "$(awk -v r="$rps_ratio" -v t="$TARGET_RPS_RATIO" 'BEGIN { print (r == "n/a") ? "n/a" : (r + 0 >= t + 0) ? "met" : "missed" }')" \
                "$user_ratio"
        done
        echo
    fi
    echo "App CPU is the server process's utime+stime over the wrk run (all its threads); \"of which user\""
    echo "is utime alone, the part spent in the server's own code and libraries rather than in the kernel"
    echo "(system calls, and the loopback TCP stack's softirqs that run in the sender's context). PostgreSQL's"
    echo "is the same summed over every local \`postgres\` process; app CPU % is of the server's one core."
    echo "PostgreSQL is not pinned: it shares CPU 0 with the server and CPU 1 with wrk, so req/s"
    echo "depends on it as much as on the server. wrk CPU % is wrk's own CPU time (100 = its one thread"
    echo "saturated); machine CPU % is both CPUs together (100 = nothing left idle for anyone)."
    echo "Errors are wrk's socket errors plus non-2xx/3xx answers."
    echo
    echo "Command: \`$INVOCATION\` ($ROUNDS round(s) of ${DURATION}s per case, ${WARMUP_SECS}s warm-up per case, server order alternating by round)"
    echo
    echo "- database: \`bash scripts/setup-db.sh\` (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)"
    echo "- squall: \`cargo build --release --example techempower\`, its default pool (SQUALL_PG_POOL_SIZE connections per core)"
    echo "- $PEER: \`perf/peers/$PEER\`, actix-web 4 with one tokio-postgres connection per worker"
    echo "- server: \`SQUALL_WORKERS=1 SQUALL_ADDR=127.0.0.1:PORT taskset -c $SERVER_CPU <binary>\`"
    wrk_command db "$DURATION" PORT
    echo "- load: \`${WRK_CMD[*]}\` and likewise for each path above"
}

main() {
    parse_args "$@"
    require_machine curl
    select_servers

    new_run_dir ""
    CLK_TCK=$(getconf CLK_TCK)
    printf 'server\tcase\tround\treq_per_s\trequests\tserver_cpu_us\tcpu_us_per_req\tserver_cpu_pct\terrors\twrk_cpu_pct\tpg_cpu_us_per_req\tp99_ms\tmachine_cpu_pct\tuser_cpu_us_per_req\n' \
        >"$RUN_DIR/results.tsv"
    trap stop_server EXIT
    trap 'exit 130' INT TERM

    ensure_wrk
    setup_db
    build_servers techempower "${SERVERS[@]}"
    log "servers: ${READY[*]}; $ROUNDS round(s) x ${#CASES[@]} cases x ${DURATION}s; raw output in $RUN_DIR"

    # The alternating order also evens out the drift of the tables, which
    # /updates keeps changing.
    run_rounds bench_one "${READY[@]}"

    report >"$RUN_DIR/report.md"
    cat "$RUN_DIR/report.md"
    ((WRITE == 0)) || write_benchmarks bench-db ", $(psql --version 2>/dev/null | head -n 1 || echo 'PostgreSQL')"
}

main "$@"
