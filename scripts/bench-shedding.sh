#!/usr/bin/env bash
# Load shedding under overload: examples/service's `/api/work` (about 0.2 ms of CPU per
# request) on one core, driven in open loop at twice the capacity measured just before, with
# shedding off and on (`SERVICE_MAX_IN_FLIGHT`, `SERVICE_MAX_QUEUE_DELAY_MS`), alternating
# rounds.
#
#   scripts/bench-shedding.sh [--rounds N] [--duration SECS] [--limit N] [--delay MS] [--write]
#
#   --rounds N       rounds per setting (default 2)
#   --duration SECS  length of each overload run (default 30)
#   --limit N        requests in flight per core when shedding (default 32)
#   --delay MS       longest wait for the core when shedding, in ms (default 20)
#   --write          also put the table into BENCHMARKS.md between the
#                    <!-- bench-shedding:start --> and <!-- bench-shedding:end --> markers
#
# Per round: capacity (200s per second, closed loop, 64 connections, 5 s) and the unloaded
# p99 (open loop at half the capacity, 10 s), with shedding off; then the overload (open loop
# at twice that capacity, 512 connections) with shedding off and on, in alternating order. Reported: 200s per second against capacity, the p99 of the 200s against the
# unloaded p99, and how fast the 503s came. Server on CPU 0, squall-load on CPU 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
set_invocation scripts/bench-shedding.sh "$@"
readonly INVOCATION

readonly SERVER_CPU=0
readonly CLIENT_CPU=1
readonly STARTUP_TRIES=100
readonly STOP_TRIES=50
readonly FIRST_PORT=19080
readonly PATH_UNDER_TEST="/api/work?rounds=3"

ROUNDS=2
DURATION=30
LIMIT=32
DELAY_MS=20
WRITE=0
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --limit) LIMIT=$2; shift ;;
    --delay) DELAY_MS=$2; shift ;;
    --write) WRITE=1 ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

SERVER_PID=""
NEXT_PORT=$FIRST_PORT
declare -A BINARY=()
trap stop_server EXIT

cd "$ROOT"
log "building examples/service and squall-load (release)"
cargo build --locked --release --example service >/dev/null
cargo build --locked --release --manifest-path perf/squall-load/Cargo.toml >/dev/null
BINARY[service]=$ROOT/target/release/examples/service
readonly LOAD=$ROOT/perf/squall-load/target/release/squall-load
new_run_dir shedding-

# squall-load against the server on $PORT, JSON report to $1, then the remaining arguments.
load() {
    local report=$1
    shift
    taskset -c "$CLIENT_CPU" "$LOAD" -q --json "$report" "$@" \
        "http://127.0.0.1:$PORT$PATH_UNDER_TEST" >/dev/null 2>&1 || true
}

# Capacity (200s per second, closed loop) and the unloaded p99 (open loop at half of it),
# measured once per round with shedding off, into $dir/capacity.json and $dir/unloaded.json;
# prints the capacity.
baseline() {
    local dir=$1 capacity
    SERVICE_MAX_IN_FLIGHT=0 SERVICE_MAX_QUEUE_DELAY_MS=0 RUST_LOG=warn \
        start_server service "$dir/baseline-server.log"
    load "$dir/capacity.json" -c 64 -d 5s --warmup 1s
    capacity=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(int(r["statuses"].get("200", 0) / r["elapsed_s"]))' "$dir/capacity.json")
    load "$dir/unloaded.json" -c 64 -d 10s -r $((capacity / 2))
    stop_server
    echo "$capacity"
}

# The overload run of setting $1 (off or on) at twice capacity $2, reports under $3: prints
# a tab-separated result line.
overload() {
    local setting=$1 capacity=$2 dir=$3 in_flight=0 delay=0
    if [[ $setting == on ]]; then
        in_flight=$LIMIT
        delay=$DELAY_MS
    fi
    SERVICE_MAX_IN_FLIGHT=$in_flight SERVICE_MAX_QUEUE_DELAY_MS=$delay RUST_LOG=warn \
        start_server service "$dir/$setting-server.log"
    load "$dir/$setting.json" -c 512 -d "${DURATION}s" -r $((capacity * 2)) --timeout 30s
    stop_server
    python3 - "$setting" "$capacity" "$dir" <<'PY'
import json, sys
setting, capacity, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
unloaded = json.load(open(f"{d}/unloaded.json"))
over = json.load(open(f"{d}/{setting}.json"))
ok = over["statuses"].get("200", 0) / over["elapsed_s"]
shed = over["statuses"].get("503", 0) / over["elapsed_s"]
ok_p99 = (over.get("latency_2xx_us") or over["latency_us"])["p99"]
shed_p99 = (over.get("latency_non_2xx_us") or {}).get("p99", float("nan"))
print("\t".join(str(x) for x in [
    setting, capacity, round(unloaded["latency_us"]["p99"]), round(ok), round(100 * ok / capacity),
    round(ok_p99), round(ok_p99 / unloaded["latency_us"]["p99"], 1), round(shed),
    round(shed_p99) if shed else "-",
    # squall-load counts every non-2xx as an error; the 503s have their own columns.
    over["error_count"] - over["errors"].get("status_503", 0)]))
PY
}

results=$RUN_DIR/results.tsv
: >"$results"
for round in $(seq "$ROUNDS"); do
    dir=$RUN_DIR/round-$round
    mkdir -p "$dir"
    log "round $round: capacity and unloaded latency (shedding off)"
    capacity=$(baseline "$dir")
    order=(off on)
    ((round % 2)) || order=(on off)
    for setting in "${order[@]}"; do
        log "round $round: twice capacity ($((capacity * 2)) req/s), shedding $setting"
        overload "$setting" "$capacity" "$dir" | tee -a "$results" >&2
    done
done

table=$RUN_DIR/table.md
python3 - "$results" "$LIMIT" "$DURATION" "$DELAY_MS" >"$table" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]) if line.strip()]
limit, duration = sys.argv[2], sys.argv[3]
print("| shedding | capacity (req/s) | unloaded p99 (µs) | 200s/s at 2× | of capacity | p99 of 200s (µs) | × unloaded p99 | 503s/s | p99 of 503s (µs) | other errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for setting in ["off", "on"]:
    mine = [r for r in rows if r[0] == setting]
    def med(i):
        values = [float(r[i]) for r in mine if r[i] not in ("-", "nan")]
        return statistics.median(values) if values else float("nan")
    label = "off" if setting == "off" else f"on (max_in_flight {limit}, max_queue_delay {sys.argv[4]} ms)"
    shed = "-" if setting == "off" else f"{med(8):,.0f}"
    print(f"| {label} | {med(1):,.0f} | {med(2):,.0f} | {med(3):,.0f} | {med(4):.0f}% | {med(5):,.0f} | {med(6):.1f} | {med(7):,.0f} | {shed} | {med(9):.0f} |")
print()
print(f"Medians of {len(rows)//2} round(s) per setting, {duration} s of overload each; raw reports under perf/runs/.")
PY
echo "Command: \`$INVOCATION\`" >>"$table"
cat "$table"
if ((WRITE)); then
    cp "$table" "$RUN_DIR/report.md"
    write_benchmarks bench-shedding
fi
