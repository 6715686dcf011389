#!/usr/bin/env bash
# Restarts under load: examples/hello restarted several times while squall-load drives it in
# open loop with non-pipelined keep-alive requests, counting every request that did not get
# a 2xx: non-2xx answers, resets, timeouts and failed connects. A connection the old server
# closes after a response with `Connection: close` is reopened by squall-load and is no error.
#
#   scripts/restart-under-load.sh [--mode M] [--restarts N] [--rate R] [--connections C]
#                                 [--close-rate R] [--interval SECS] [--write]
#
#   --mode M         handoff: the new server takes the listening sockets over through
#                    SQUALL_HANDOFF and the old one drains (the default); reuseport: the new
#                    server starts beside the old one (SQUALL_PORT_SHARING=takeover), then
#                    the old one gets SIGTERM; both: one run of each, alternating
#   --restarts N     restarts per run (default 5)
#   --rate R         requests per second, in aggregate (default 20000)
#   --connections C  keep-alive connections (default 64)
#   --close-rate R   beside them, requests per second each on a new connection
#                    (`Connection: close`), which find the listeners' accept queues busy
#                    (default 1000; 0 for none)
#   --interval SECS  time between restarts (default 3)
#   --write          also put the table into BENCHMARKS.md between the
#                    <!-- restart-under-load:start --> and <!-- restart-under-load:end -->
#                    markers
#
# One worker per server, every server on CPU 0, squall-load on CPU 1. Exits non-zero if
# any request failed in handoff mode.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh"
set_invocation scripts/restart-under-load.sh "$@"
readonly INVOCATION

readonly SERVER_CPU=0
readonly CLIENT_CPU=1
readonly STARTUP_TRIES=100
readonly STOP_TRIES=100
readonly FIRST_PORT=19280

MODE=handoff
RESTARTS=5
RATE=20000
CONNECTIONS=64
INTERVAL=3
CLOSE_RATE=1000
WRITE=0
while (($#)); do
    case $1 in
    --mode) MODE=$2; shift ;;
    --restarts) RESTARTS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --interval) INTERVAL=$2; shift ;;
    --close-rate) CLOSE_RATE=$2; shift ;;
    --write) WRITE=1 ;;
    -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
case $MODE in
handoff) MODES=(handoff) ;;
reuseport) MODES=(reuseport) ;;
both) MODES=(handoff reuseport) ;;
*) die "--mode must be handoff, reuseport or both, not $MODE" ;;
esac

SERVER_PIDS=()
NEXT_PORT=$FIRST_PORT
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

cd "$ROOT"
log "building examples/hello and squall-load (release)"
cargo build --locked --release --example hello >/dev/null
cargo build --locked --release --manifest-path perf/squall-load/Cargo.toml >/dev/null
readonly HELLO=$ROOT/target/release/examples/hello
readonly LOAD=$ROOT/perf/squall-load/target/release/squall-load
new_run_dir restart-

# Starts generation $2 of the server in mode $1 on $PORT, logging under $3; sets STARTED.
start_generation() {
    local mode=$1 generation=$2 dir=$3 tries=0
    local -a settings=(SQUALL_WORKERS=1 "SQUALL_ADDR=127.0.0.1:$PORT" RUST_LOG=info)
    if [[ $mode == handoff ]]; then
        settings+=("SQUALL_HANDOFF=$dir/handoff.sock")
    elif ((generation > 0)); then
        settings+=(SQUALL_PORT_SHARING=takeover)
    fi
    env "${settings[@]}" taskset -c "$SERVER_CPU" "$HELLO" >"$dir/server-$generation.log" 2>&1 &
    STARTED=$!
    SERVER_PIDS+=("$STARTED")
    until grep -q "listening on" "$dir/server-$generation.log" 2>/dev/null; do
        kill -0 "$STARTED" 2>/dev/null ||
            die "server $generation exited before listening: $(tail -n 5 "$dir/server-$generation.log")"
        ((++tries < STARTUP_TRIES)) || die "server $generation did not listen within 10 s"
        sleep 0.1
    done
}

# Waits for process $1 to exit (SIGKILL after STOP_TRIES tenths of a second).
await_exit() {
    local pid=$1 tries=0
    while kill -0 "$pid" 2>/dev/null && ((tries++ < STOP_TRIES)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        warn "process $pid did not exit within $((STOP_TRIES / 10)) s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# One run of mode $1: prints a tab-separated result line.
run_mode() {
    local mode=$1 dir=$RUN_DIR/$1 duration old new generation
    mkdir -p "$dir"
    claim_port
    duration=$((INTERVAL * (RESTARTS + 1) + 2))
    start_generation "$mode" 0 "$dir"
    old=$STARTED
    taskset -c "$CLIENT_CPU" "$LOAD" -q --json "$dir/load.json" -c "$CONNECTIONS" \
        -r "$RATE" -d "${duration}s" --timeout 2s "http://127.0.0.1:$PORT/plaintext" \
        >"$dir/load.txt" 2>&1 &
    local -a load_pids=($!)
    if ((CLOSE_RATE > 0)); then
        taskset -c "$CLIENT_CPU" "$LOAD" -q --json "$dir/close.json" -c 16 -H "Connection: close" \
            -r "$CLOSE_RATE" -d "${duration}s" --timeout 2s "http://127.0.0.1:$PORT/plaintext" \
            >"$dir/close.txt" 2>&1 &
        load_pids+=($!)
    fi
    sleep "$INTERVAL"
    for generation in $(seq "$RESTARTS"); do
        log "$mode: restart $generation of $RESTARTS"
        start_generation "$mode" "$generation" "$dir"
        new=$STARTED
        # With a handoff the old server stops by itself once the new one is ready.
        [[ $mode == handoff ]] || kill -TERM "$old"
        await_exit "$old"
        grep -h "took over\|did not complete\|error" "$dir/server-$((generation - 1)).log" >&2 || true
        old=$new
        sleep "$INTERVAL"
    done
    wait "${load_pids[@]}" || true
    kill -TERM "$old" 2>/dev/null || true
    await_exit "$old"
    python3 - "$mode" "$RESTARTS" "$dir/load.json" "$dir/close.json" <<'PY'
import json, os, sys
mode, restarts = sys.argv[1], sys.argv[2]
for load, path in zip(["keep-alive", "connection per request"], sys.argv[3:]):
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    ok = sum(n for s, n in r["statuses"].items() if s.startswith("2"))
    non2xx = sum(n for s, n in r["statuses"].items() if not s.startswith("2"))
    e = r["errors"]
    print("\t".join(str(x) for x in [
        mode, load, restarts, round(ok / r["elapsed_s"]), ok, non2xx, e.get("reset", 0),
        e.get("timeout", 0), e.get("connect", 0), e.get("protocol", 0),
        round(r["latency_us"]["p99"]), round(r["latency_us"]["max"])]))
PY
}

results=$RUN_DIR/results.tsv
: >"$results"
for mode in "${MODES[@]}"; do
    log "mode $mode: $RESTARTS restarts, $RATE req/s over $CONNECTIONS keep-alive connections"
    run_mode "$mode" | tee -a "$results" >&2
done

table=$RUN_DIR/table.md
python3 - "$results" "$RATE" "$CONNECTIONS" "$INTERVAL" "$CLOSE_RATE" >"$table" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
rate, conns, interval, close_rate = sys.argv[2:6]
print("| restart | load | restarts | 2xx/s | 2xx | non-2xx | resets | timeouts | connect errors | protocol errors | p99 (µs) | max (µs) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
names = {"handoff": "handoff socket (`SQUALL_HANDOFF`)", "reuseport": "start beside, then SIGTERM (`SQUALL_PORT_SHARING=takeover`)"}
for r in rows:
    print(f"| {names[r[0]]} | {r[1]} | {r[2]} | {int(r[3]):,} | {int(r[4]):,} | {r[5]} | {r[6]} | {r[7]} | {r[8]} | {r[9]} | {int(r[10]):,} | {int(r[11]):,} |")
print()
print(f"Open loop at {int(rate):,} req/s over {conns} keep-alive connections and {int(close_rate):,} req/s "
      f"each on a new connection, a restart every {interval} s; hello with one worker per process "
      "on CPU 0, squall-load on CPU 1; raw reports under perf/runs/.")
PY
echo "Command: \`$INVOCATION\`" >>"$table"
cat "$table"
if ((WRITE)); then
    cp "$table" "$RUN_DIR/report.md"
    write_benchmarks restart-under-load
fi
# The handoff promise: nothing lost.
awk -F'\t' '$1 == "handoff" && ($6 + $7 + $8 + $9 + $10) > 0 { bad = 1 } END { exit bad }' "$results" ||
    die "requests failed during handoff restarts (see $RUN_DIR)"
