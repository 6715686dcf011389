#!/usr/bin/env bash
# Validates squall-load against wrk (Debian) and oha (crates.io) on the same server:
# examples/hello /plaintext, release build, one worker pinned to CPU 0, every load generator
# pinned to CPU 1, the same connection count. Three scenarios, tools alternated in each of
# ROUNDS rounds, medians reported:
#   closed   closed loop, maximum throughput          (squall-load, wrk, oha)
#   rate     open loop at RATE req/s, CO-corrected    (squall-load, oha --latency-correction)
#   overload open loop at OVERLOAD req/s              (squall-load, oha --latency-correction)
# Raw outputs go to perf/runs/validate-<time>/ (gitignored); the summary is printed and saved.
#
#   scripts/validate-load.sh                 # defaults below
#   ROUNDS=5 DURATION=20 CONNECTIONS=64 RATE=20000 OVERLOAD=400000 scripts/validate-load.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
RATE=${RATE:-20000}
OVERLOAD=${OVERLOAD:-400000}
PORT=${PORT:-18080}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROOT=$root
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
out="perf/runs/validate-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"

command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
command -v oha >/dev/null || { echo "oha missing: cargo install --locked oha --version 1.16.0" >&2; exit 1; }
cargo build --release --example hello
cargo build --release --manifest-path perf/squall-load/Cargo.toml
load=perf/squall-load/target/release/squall-load

# Other benchmarks on this 2-core machine would disturb the figures: wait for them.
wait_for_quiet() {
    while pgrep -x wrk >/dev/null || pgrep -x oha >/dev/null || pgrep -f 'bench-[a-z]' >/dev/null; do
        echo "another benchmark is running; waiting 30 s" >&2
        sleep 30
    done
}

# lib/bench.sh's start_server: one worker on SERVER_CPU, the first free port from PORT;
# it stops the script if hello exits or never listens.
declare -A BINARY=([hello]=target/release/examples/hello)
FIRST_PORT=$PORT NEXT_PORT=$PORT STARTUP_TRIES=100 STOP_TRIES=50 SERVER_PID=""
export RUST_LOG=warn
trap stop_server EXIT
start_server hello "$out/server.log"
url=http://127.0.0.1:$PORT/plaintext
# A short warm-up of the server (page faults, allocator) before the first measured run.
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null

run() { # tool scenario round
    local tool=$1 scenario=$2 round=$3 file="$out/$2-$1-$3"
    local rate=""
    case $scenario in
        rate) rate=$RATE ;;
        overload) rate=$OVERLOAD ;;
    esac
    wait_for_quiet
    case $tool in
        squall-load)
            taskset -c "$LOAD_CPU" "$load" -q -t 1 -c "$CONNECTIONS" -d "${DURATION}s" \
                ${rate:+-r "$rate"} --json "$file.json" "$url" >"$file.txt" 2>&1 || true ;;
        wrk)
            taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNECTIONS" -d "${DURATION}s" --latency \
                "$url" >"$file.txt" 2>&1 ;;
        oha)
            taskset -c "$LOAD_CPU" oha --no-tui --output-format json -z "${DURATION}s" \
                -c "$CONNECTIONS" ${rate:+-q "$rate" --latency-correction} \
                "$url" >"$file.json" 2>"$file.err" ;;
    esac
}

for round in $(seq "$ROUNDS"); do
    # Alternate the order so drift (thermal, neighbours) does not favour one tool.
    if (( round % 2 )); then closed=(squall-load wrk oha); paced=(squall-load oha)
    else closed=(oha wrk squall-load); paced=(oha squall-load); fi
    for tool in "${closed[@]}"; do run "$tool" closed "$round"; done
    for tool in "${paced[@]}"; do run "$tool" rate "$round"; done
    for tool in "${paced[@]}"; do run "$tool" overload "$round"; done
done

python3 - "$out" "$ROUNDS" <<'EOF' | tee "$out/summary.txt"
import json, re, statistics, sys, pathlib
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def wrk_unit(text):
    value, unit = float(re.match(r"[\d.]+", text).group()), re.sub(r"[\d.]+", "", text)
    return value * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

def read(tool, scenario, r):
    base = out / f"{scenario}-{tool}-{r}"
    if tool == "squall-load":
        j = json.loads(base.with_suffix(".json").read_text())
        return dict(rps=j["throughput"], p50=j["latency_us"]["p50"], p99=j["latency_us"]["p99"],
                    errors=j["error_count"])
    if tool == "oha":
        j = json.loads(base.with_suffix(".json").read_text())
        p = j["latencyPercentiles"]
        ok = sum(v for k, v in j.get("statusCodeDistribution", {}).items() if k.startswith("2"))
        # Requests cut off by the end of the run are not errors.
        errors = sum(n for k, n in j.get("errorDistribution", {}).items() if "deadline" not in k)
        return dict(rps=ok / j["summary"]["total"], p50=p["p50"] * 1e6, p99=p["p99"] * 1e6,
                    errors=errors)
    text = base.with_suffix(".txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    # Anchored: "97.99%" in the Stdev column must not pass for the 99th percentile.
    p50 = wrk_unit(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = wrk_unit(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    return dict(rps=rps, p50=p50, p99=p99, errors=errors)

print(f"medians of {rounds} rounds ({out})")
print(f"{'scenario':<9} {'tool':<12} {'req/s':>10} {'p50 us':>10} {'p99 us':>10} {'errors':>7}  per round req/s")
for scenario, tools in [("closed", ["squall-load", "wrk", "oha"]),
                        ("rate", ["squall-load", "oha"]), ("overload", ["squall-load", "oha"])]:
    medians = {}
    for tool in tools:
        runs = [read(tool, scenario, r) for r in range(1, rounds + 1)]
        m = {k: statistics.median(x[k] for x in runs) for k in ("rps", "p50", "p99")}
        m["errors"] = sum(x["errors"] for x in runs)
        medians[tool] = m
        per = " ".join(f"{x['rps']:.0f}" for x in runs)
        print(f"{scenario:<9} {tool:<12} {m['rps']:>10.0f} {m['p50']:>10.1f} {m['p99']:>10.1f} {m['errors']:>7}  {per}")
    ref = "wrk" if scenario == "closed" else "oha"
    s, o = medians["squall-load"], medians[ref]
    print(f"{'':<9} squall-load/{ref}: req/s {s['rps'] / o['rps']:.3f}, p50 {s['p50'] / o['p50']:.2f}, p99 {s['p99'] / o['p99']:.2f}")
EOF
