# Shared by the side-by-side benchmark scripts (bench-peers.sh, bench-db.sh, bench-static.sh,
# bench-ws.sh), validate-load.sh and reproduce-benchmarks.sh:
# logging, wrk, ports, starting and stopping one pinned server, the arguments and --only,
# the run directory, the order of rounds, CPU time from /proc, the machine-busy check,
# medians and writing a report into BENCHMARKS.md. Sourced, not run, right after `set -euo pipefail`; it also turns on
# inherit_errexit and sets LC_ALL=C, which its helpers and the callers' printf and awk rely
# on. The caller defines ROOT, SERVER_CPU, FIRST_PORT, NEXT_PORT, STARTUP_TRIES, STOP_TRIES,
# the BINARY map and SERVER_PID, and, for argument parsing, the defaults of ROUNDS,
# DURATION, ONLY and WRITE (and ALL_SERVERS for select_servers).
# shellcheck shell=bash

shopt -s inherit_errexit # a failure inside $(...) stops the script too
export LC_ALL=C           # '.' as decimal point in printf, awk, sort and $EPOCHREALTIME

log() { printf '==> %s\n' "$*" >&2; }

warn() { printf 'warning: %s\n' "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Command $1 from Debian's package $2 (default $1); only touch apt when it is really missing.
ensure_tool() {
    local tool=$1 package=${2:-$1}
    command -v "$tool" >/dev/null && return
    log "$tool not found; installing $package with apt-get"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; }; then
        die "could not install $package"
    fi
}

ensure_wrk() { ensure_tool wrk; }

# Stops unless there are two CPUs (the server on SERVER_CPU, the load on CLIENT_CPU) and
# every command named in the arguments besides taskset is installed.
require_machine() {
    local cpus tool
    cpus=$(nproc --all)
    ((cpus >= 2)) || die "need at least 2 CPUs (server on $SERVER_CPU, load on $CLIENT_CPU); have $cpus"
    for tool in taskset "$@"; do
        command -v "$tool" >/dev/null || die "$tool is required"
    done
}

# Builds every server named after $1 before anything is measured, so compile load never
# overlaps a measurement: squall as its example $1 (release), the others with build_peer.
# squall's example may not build while the library is being worked on; that only drops
# squall from the run, while a peer that does not build stops the script. READY is left
# holding the servers that built, in order.
build_servers() {
    local example=$1 name target
    shift
    for name in "$@"; do
        if [[ $name != squall ]]; then
            build_peer "$name"
            continue
        fi
        log "building squall's $example example"
        if (cd "$ROOT" && cargo build --release --example "$example") >"$RUN_DIR/build-squall.log" 2>&1; then
            target=${CARGO_TARGET_DIR:-target}
            [[ $target == /* ]] || target="$ROOT/$target"
            BINARY[squall]="$target/release/examples/$example"
        else
            warn "squall's $example example did not build; skipping squall (see $RUN_DIR/build-squall.log)"
        fi
    done
    READY=()
    for name in "$@"; do
        [[ -n ${BINARY[$name]:-} ]] && READY+=("$name")
    done
    ((${#READY[@]})) || die "nothing to benchmark"
}

# Builds peer $1 from perf/peers/$1 (release) and records its binary in BINARY[$1]. The
# peer's build stays in its own target directory whatever CARGO_TARGET_DIR says; its output
# goes to $RUN_DIR/build-$1.log. Binaries are named peer-<name> with '_' as '-'.
build_peer() {
    local name=$1 dir="$PEERS_DIR/$1"
    log "building peer $name"
    cargo build --release --manifest-path "$dir/Cargo.toml" --target-dir "$dir/target" \
        >"$RUN_DIR/build-$name.log" 2>&1 ||
        die "peer $name did not build (see $RUN_DIR/build-$name.log)"
    BINARY[$name]="$dir/target/release/peer-${name//_/-}"
}

# Runs the wrk command the script built in WRK_CMD (its wrk_command) with output to $1; $2
# is the run's duration in seconds. wrk stops by itself; the timeout only guards a hang.
# Measured runs (not warm-ups) also get the server's perf counters beside $1. A caller
# whose load command is not wrk may set LOAD_ERROR_STATUS to an exit status that only says
# errors were counted (squall-load's 1); it reads them from the output and reports them.
# It returns when the load ends, without waiting for perf: perf takes a second or more to
# attach here, so it ends that much after the load, and a caller timing run_wrk would count
# that idle tail into the server's CPU %. wait_counters (before the next run, and in
# stop_server) lets perf finish.
run_wrk() {
    local status=0
    wait_counters
    [[ $1 == *-warmup.txt ]] || COUNTERS_PID=$(start_counters "${1%.txt}.perfstat" "$2")
    (cd "$ROOT" && timeout "$(($2 + 30))" "${WRK_CMD[@]}") >"$1" 2>&1 || status=$?
    ((status == 0 || status == ${LOAD_ERROR_STATUS:-0})) || die "the load failed (exit $status, output in $1)"
}

# Waits for the perf stat of the last measured run, if it is still counting. perf was
# started in a subshell, so it is not this shell's child to `wait` for.
COUNTERS_PID=""
wait_counters() {
    while [[ -n $COUNTERS_PID ]] && kill -0 "$COUNTERS_PID" 2>/dev/null; do sleep 0.1; done
    COUNTERS_PID=""
}

# perf stat of the running server ($SERVER_PID) for $2 seconds into file $1, in the
# background; prints perf's pid, or nothing where perf is missing or not allowed. Counters
# the machine lacks (cycles and instructions in many virtual machines) show as
# "<not supported>" in the file.
PERF_EVENTS=task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions
start_counters() {
    [[ ${PERF_STAT:-1} == 1 && -n ${SERVER_PID:-} ]] || return 0
    command -v perf >/dev/null || return 0
    perf stat -e "$PERF_EVENTS" -p "$SERVER_PID" -o "$1" -- sleep "$2" >/dev/null 2>&1 &
    echo $!
}

# One round against the started server $1 (round $2) over the cases that follow: each case
# warmed up first without being recorded (allocators, caches and pools settle), then each
# measured by the script's measure().
warm_up_and_measure() {
    local name=$1 round=$2 case
    shift 2
    for case in "$@"; do
        wrk_command "$case" "$WARMUP_SECS" "$PORT"
        run_wrk "$RUN_DIR/$name-$case-r$round-warmup.txt" "$WARMUP_SECS"
    done
    for case in "$@"; do
        measure "$name" "$case" "$round"
    done
}

# Median of column $3 of results.tsv over the rows for server $1, case $2.
median_of() {
    awk -F'\t' -v n="$1" -v c="$2" -v col="$3" '$1 == n && $2 == c { print $col }' \
        "$RUN_DIR/results.tsv" | median
}

# The side-by-side table from results.tsv, whose columns are 4 req/s, 7 µs CPU/req, 8 server
# CPU %, 9 errors, 10 wrk CPU % and 11 MB/s: a row per case and server, with squall's CPU per
# request divided by that server's. $1 heads the case column, $2 is 1 to show MB/s, and the
# cases follow.
cpu_table() {
    local label=$1 with_mbps=$2 name case rps us busy client ratio runs errs squall_us mbps=""
    shift 2
    if ((with_mbps)); then
        echo "| server | $label | req/s (median) | MB/s | µs CPU/req (median) | server CPU % | wrk CPU % | squall ÷ this (CPU/req) | runs | errors |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    else
        echo "| server | $label | req/s (median) | µs CPU/req (median) | server CPU % | wrk CPU % | squall ÷ this (CPU/req) | runs | errors |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    fi
    for case in "$@"; do
        squall_us=""
        [[ -n ${BINARY[squall]:-} ]] && squall_us=$(median_of squall "$case" 7)
        [[ $squall_us != nan ]] || squall_us="" # squall does not run this case
        for name in "${SERVERS[@]}"; do
            [[ -n ${BINARY[$name]:-} ]] || continue
            runs=$(awk -F'\t' -v n="$name" -v c="$case" '$1 == n && $2 == c' "$RUN_DIR/results.tsv" | wc -l)
            ((runs)) || continue # a case this server does not run
            rps=$(median_of "$name" "$case" 4)
            us=$(median_of "$name" "$case" 7)
            busy=$(median_of "$name" "$case" 8)
            client=$(median_of "$name" "$case" 10)
            ((with_mbps)) && mbps=$(printf '%.0f | ' "$(median_of "$name" "$case" 11)")
            errs=$(awk -F'\t' -v n="$name" -v c="$case" '$1 == n && $2 == c { s += $9 } END { print s + 0 }' "$RUN_DIR/results.tsv")
            if [[ -z $squall_us ]]; then
                ratio="n/a"
            elif [[ $name == squall ]]; then
                ratio="1.00"
            else
                ratio=$(awk -v a="$squall_us" -v b="$us" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / b }')
            fi
            printf '| %s | %s | %.0f | %s%.3f | %.0f | %.0f | %s | %d | %d |\n' \
                "$name" "$case" "$rps" "$mbps" "$us" "$busy" "$client" "$ratio" "$runs" "$errs"
        done
    done
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
    wait_counters
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((tries++ < STOP_TRIES)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The arguments as one command line, each quoted only when the shell needs it.
shell_words() {
    local arg line=$1
    shift
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_,./:=-]+$ ]]; then
            line+=" $arg"
        elif [[ $arg != *"'"* ]]; then
            line+=" '$arg'"
        else
            line+=" $(printf '%q' "$arg")"
        fi
    done
    echo "$line"
}

# INVOCATION: the command line for the report, script $1 and then its arguments.
# shellcheck disable=SC2034 # INVOCATION is read by the caller.
set_invocation() { INVOCATION=$(shell_words "$@"); }

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

# SELECTED: the $1s (servers, modes) that --only asked for, all of them by
# default, in the canonical order given by the rest of the arguments. (Not a
# command substitution, so that die() ends the script rather than a subshell.)
select_only() {
    local kind=$1 name wanted
    shift
    SELECTED=()
    IFS=',' read -ra wanted <<<"${ONLY:-$(
        IFS=','
        echo "$*"
    )}"
    for name in "${wanted[@]}"; do
        [[ " $* " == *" $name "* ]] || die "unknown $kind '$name' (known: $*)"
    done
    for name in "$@"; do
        [[ " ${wanted[*]} " == *" $name "* ]] && SELECTED+=("$name")
    done
    ((${#SELECTED[@]})) || die "no $kind selected"
}

# SERVERS: the servers asked for, in the canonical order.
# shellcheck disable=SC2034 # SERVERS is read by the caller.
select_servers() {
    select_only server "${ALL_SERVERS[@]}"
    SERVERS=("${SELECTED[@]}")
}

# RUN_DIR: a new directory perf/runs/$1<UTC timestamp> for this run's raw output
# ($1 a prefix, or empty); a suffix only if two runs start in the same second.
new_run_dir() {
    local prefix=$1 stamp n=1
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$ROOT/perf/runs"
    RUN_DIR="$ROOT/perf/runs/$prefix$stamp"
    until mkdir "$RUN_DIR" 2>/dev/null; do
        ((++n < 100)) || die "cannot create a run directory under $ROOT/perf/runs"
        RUN_DIR="$ROOT/perf/runs/$prefix$stamp-$n"
    done
}

# Calls `$1 NAME ROUND` for each round and each name after $1. Odd rounds go
# forward, even rounds backward, so no server is always first or last and slow
# drifts of the machine even out.
run_rounds() {
    local run=$1 round i name order
    shift
    local names=("$@")
    for ((round = 1; round <= ROUNDS; round++)); do
        order=()
        for ((i = 0; i < ${#names[@]}; i++)); do
            if ((round % 2)); then order+=("${names[i]}"); else order+=("${names[${#names[@]} - 1 - i]}"); fi
        done
        for name in "${order[@]}"; do
            "$run" "$name" "$round"
        done
    done
}

# Clock ticks of a whole process (every thread, including exited ones): utime +
# stime, or with $2 = user utime alone (the CPU spent in its own code and libraries,
# not in the kernel's work for it: system calls, and the TCP stack's softirqs that
# run while it does); 0 for a process that is gone.
proc_ticks() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    # Field 2 (comm) may contain spaces; everything after the last ')' is
    # fixed-format, starting with field 3, so utime (14) and stime (15) are
    # at indexes 11 and 12.
    read -ra fields <<<"${stat##*) }"
    if [[ ${2:-} == user ]]; then
        echo "${fields[11]}"
    else
        echo $((fields[11] + fields[12]))
    fi
}

# proc_ticks of the server $1, which must still be running.
cpu_ticks() {
    [[ -r /proc/$1/stat ]] || die "server (pid $1) is gone; see its log in $RUN_DIR"
    proc_ticks "$1"
}

# cpu_ticks of the server $1 and its child processes (nginx's workers under its master).
tree_ticks() {
    local total child
    total=$(cpu_ticks "$1")
    for child in $(pgrep -P "$1" || true); do
        total=$((total + $(proc_ticks "$child")))
    done
    echo "$total"
}

# One line of $RUN_DIR/results.tsv in the columns cpu_table reads: server $1, case $2, round
# $3, req/s $4, requests $5, server CPU ticks $6 over wall-clock $7..$8 ($EPOCHREALTIME
# values), errors $9, the client CPU's "busy total" ticks before ${10} and after ${11}, and
# MB/s ${12} if given. Prints the line's µs CPU/req.
record_result() {
    awk -v n="$1" -v c="$2" -v r="$3" -v rps="$4" -v req="$5" -v ticks="$6" -v hz="$CLK_TCK" \
        -v t0="$7" -v t1="$8" -v e="$9" -v cb="${10}" -v ca="${11}" -v mbps="${12:-}" \
        'BEGIN { us = ticks * 1e6 / hz
                 split(cb, b, " "); split(ca, a, " ")
                 client = (a[2] > b[2]) ? 100 * (a[1] - b[1]) / (a[2] - b[2]) : 0
                 printf "%s\t%s\t%s\t%.0f\t%d\t%.0f\t%.4f\t%.1f\t%d\t%.1f%s\n",
                        n, c, r, rps, req, us, (req > 0 ? us / req : 0), us / ((t1 - t0) * 1e4), e, client,
                        (mbps == "" ? "" : sprintf("\t%.1f", mbps)) }' >>"$RUN_DIR/results.tsv"
    tail -n 1 "$RUN_DIR/results.tsv" | cut -f7
}

# "busy total" ticks from /proc/stat for CPU $1, or for all CPUs if $1 is
# empty.
cpu_busy_ticks() {
    local label user nice system idle iowait irq softirq steal _
    while read -r label user nice system idle iowait irq softirq steal _; do
        if [[ $label == "cpu$1" ]]; then
            echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
            return
        fi
    done </proc/stat
    die "cpu$1 not found in /proc/stat"
}

# Anything else running (a build, a test suite) skews every figure; say so
# rather than report it silently.
warn_if_busy() {
    local before after busy
    before=$(cpu_busy_ticks "")
    sleep 1
    after=$(cpu_busy_ticks "")
    busy=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ")
        print (y[2] > x[2]) ? int(100 * (y[1] - x[1]) / (y[2] - x[2])) : 0 }')
    ((busy < 10)) || warn "the machine is ${busy}% busy with no server running; figures will be skewed"
}

# Median of the numbers on stdin (non-numbers such as "nan" are skipped).
median() {
    awk '$1 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/' | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "nan"
              else if (NR % 2) print v[(NR + 1) / 2]
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Replace what lies between `<!-- $1:start -->` and `<!-- $1:end -->` in BENCHMARKS.md with a
# dated machine line ($2 appended to it, if given) and $RUN_DIR/report.md; never create the
# markers.
write_benchmarks() {
    local marker=$1 extra=${2:-} file="$ROOT/BENCHMARKS.md" section
    local start="<!-- $marker:start -->" end="<!-- $marker:end -->"
    if [[ ! -f $file ]] || ! grep -qF "$start" "$file" || ! grep -qF "$end" "$file"; then
        echo "BENCHMARKS.md or its markers ($start / $end) are missing; not written." >&2
        return 0
    fi
    section="$RUN_DIR/section.md"
    {
        echo
        echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc --all) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), Linux $(uname -r)${extra}."
        echo
        cat "$RUN_DIR/report.md"
        echo
    } >"$section"
    awk -v start="$start" -v end="$end" -v section="$section" '
        index($0, start) { print; while ((getline line < section) > 0) print line; skip = 1; next }
        index($0, end)   { skip = 0 }
        !skip' "$file" >"$file.tmp"
    mv "$file.tmp" "$file"
    log "wrote the table into $file"
}
