#!/usr/bin/env python3
"""C10K and C100K: many keep-alive connections at a fixed aggregate request rate.

One process may hold at most 20,000 descriptors here, so above PER_PROCESS connections the
run is split: several `hello` servers (one worker each, all on SERVER_CPU) share one port
through SO_REUSEPORT, and several squall-load processes (all on LOAD_CPU) each open their
share of the connections from source addresses 127.0.0.2-9 (8 addresses x 28k ports). The
servers' resident memory is read before the connections open and once every connection is
established and idle between requests; CPU time is read over the measurement window.
squall-load's JSON reports carry their whole histograms, merged here into exact percentiles.

    scripts/bench-c10k.py                                  # 10,000 connections, 20,000 req/s, 60 s
    scripts/bench-c10k.py --connections 100000 --rate 20000 --duration 60

Raw outputs go to perf/runs/c10k-<time>/; the summary is printed and saved as summary.md.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where cargo puts squall's build (CARGO_TARGET_DIR, relative to the root, or target/);
# squall-load always builds into its own directory.
TARGET = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
HELLO = TARGET / "release/examples/hello"
LOAD_TARGET = ROOT / "perf/squall-load/target"
LOAD = LOAD_TARGET / "release/squall-load"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def build() -> None:
    subprocess.run(["cargo", "build", "--release", "--example", "hello"], cwd=ROOT, check=True)
    subprocess.run(
        [
            "cargo", "build", "--release",
            "--manifest-path", "perf/squall-load/Cargo.toml",
            "--target-dir", str(LOAD_TARGET),
        ],
        cwd=ROOT,
        check=True,
    )


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def percent(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def established(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def wait_listening(port: int, servers: list) -> None:
    import socket

    for _ in range(100):
        for server in servers:
            if server.poll() is not None:
                sys.exit(f"a server exited early; see its log (exit {server.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"no server listening on 127.0.0.1:{port}")


def percentile(buckets: list, total: int, p: float) -> float:
    """The value (ns) at percentile p of merged [value, count] buckets sorted by value."""
    want = max(1, math.ceil(total * p / 100))
    seen = 0
    for value, count in buckets:
        seen += count
        if seen >= want:
            return value
    return buckets[-1][0] if buckets else 0


def merge(reports: list) -> dict:
    counts: dict = {}
    for report in reports:
        for value, count in report["histogram_ns"]:
            counts[value] = counts.get(value, 0) + count
    buckets = sorted(counts.items())
    total = sum(c for _, c in buckets)
    errors: dict = {}
    for report in reports:
        for kind, n in report["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    return {
        "completed": sum(r["completed"] for r in reports),
        "throughput": sum(r["throughput"] for r in reports),
        "connected": sum(r["connected"] for r in reports),
        "errors": errors,
        "latency_ms": {
            name: percentile(buckets, total, p) / 1e6
            for name, p in [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100)]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=20_000, help="aggregate requests/s")
    parser.add_argument("--duration", type=int, default=60, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before measuring")
    parser.add_argument("--ramp", type=int, default=5_000, help="new connections/s in aggregate")
    parser.add_argument("--per-process", type=int, default=17_000, help="connections per process")
    parser.add_argument("--port", type=int, default=18970)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()

    if not args.no_build:
        build()
    processes = math.ceil(args.connections / args.per_process)
    # The kernel spreads connections over the servers by hash, so give them headroom.
    servers_n = processes if processes == 1 else processes + 1
    run = ROOT / "perf/runs" / time.strftime("c10k-%Y%m%dT%H%M%SZ", time.gmtime())
    run.mkdir(parents=True)
    env = dict(os.environ, SQUALL_ADDR=f"127.0.0.1:{args.port}", SQUALL_WORKERS="1", RUST_LOG="warn")
    servers = [
        subprocess.Popen(
            ["taskset", "-c", args.server_cpu, str(HELLO)],
            env=env,
            stdout=open(run / f"server-{i}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(servers_n)
    ]
    loads = []
    try:
        wait_listening(args.port, servers)
        time.sleep(1)
        rss_before = [rss_bytes(s.pid) for s in servers]
        ramp_s = args.connections / args.ramp
        for i in range(processes):
            share = args.connections // processes + (1 if i < args.connections % processes else 0)
            rate = args.rate * share / args.connections
            loads.append(
                subprocess.Popen(
                    [
                        "taskset", "-c", args.load_cpu, str(LOAD),
                        "-q", "-t", "1",
                        "-c", str(share),
                        "-r", str(round(rate)),
                        "--ramp", f"{args.ramp / processes:.0f}/s",
                        "--warmup", f"{args.warmup}s",
                        "-d", f"{args.duration}s",
                        "--json", str(run / f"load-{i}.json"),
                        f"http://127.0.0.1:{args.port}/plaintext",
                    ],
                    stdout=open(run / f"load-{i}.txt", "w"),
                    stderr=subprocess.STDOUT,
                )
            )
        # Every load process opens its share before any starts sending (its start line).
        time.sleep(ramp_s + 1)
        deadline = time.time() + 60
        while established(args.port) < args.connections and time.time() < deadline:
            time.sleep(0.5)
        open_now = established(args.port)
        time.sleep(args.warmup)
        ticks_before = [cpu_ticks(s.pid) for s in servers]
        load_ticks_before = [cpu_ticks(l.pid) for l in loads]
        window_start = time.time()
        rss_samples = []
        # The generators' CPU is sampled while all of them still run: they exit at the end
        # of their window, and their /proc entries go with them.
        load_sample = (window_start, sum(load_ticks_before))
        while any(l.poll() is None for l in loads) and time.time() < window_start + args.duration:
            rss_samples.append(sum(rss_bytes(s.pid) for s in servers))
            if all(l.poll() is None for l in loads):
                load_sample = (time.time(), sum(cpu_ticks(l.pid) for l in loads))
            time.sleep(1)
        window = time.time() - window_start
        ticks_after = [cpu_ticks(s.pid) for s in servers]
        for load in loads:
            load.wait(timeout=args.duration + 120)
    finally:
        for process in loads + servers:
            if process.poll() is None:
                process.terminate()
        for process in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    reports = [json.loads((run / f"load-{i}.json").read_text()) for i in range(processes)]
    merged = merge(reports)
    rss_growth = (max(rss_samples) if rss_samples else 0) - sum(rss_before)
    cpu_s = (sum(ticks_after) - sum(ticks_before)) / TICKS
    load_span = load_sample[0] - window_start
    load_cpu_s = (load_sample[1] - sum(load_ticks_before)) / TICKS
    served = args.rate * window
    summary = {
        "connections": args.connections,
        "established_before_measuring": open_now,
        "server_processes": servers_n,
        "load_processes": processes,
        "rate": args.rate,
        "duration_s": args.duration,
        **merged,
        "server_rss_growth_bytes_per_connection": rss_growth / args.connections,
        "server_cpu_us_per_request": cpu_s * 1e6 / served if served else None,
        # Of one CPU: the servers share SERVER_CPU and the generators LOAD_CPU, so near 100
        # says which side could not keep up.
        "server_cpu_percent": 100 * cpu_s / window if window else None,
        "load_cpu_percent": 100 * load_cpu_s / load_span if load_span > 0 else None,
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    lat = merged["latency_ms"]
    errors = sum(merged["errors"].values())
    lines = [
        f"| connections | established | processes (server/load) | requests | errors | p50 | p99 | p99.9 | max | server RSS growth per connection | server CPU per request | server / load CPU % |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {args.connections:,} | {open_now:,} | {servers_n}/{processes} | {merged['completed']:,} | {errors} "
        f"| {lat['p50']:.2f} ms | {lat['p99']:.2f} ms | {lat['p99.9']:.2f} ms | {lat['max']:.2f} ms "
        f"| {rss_growth / args.connections:,.0f} B | {summary['server_cpu_us_per_request']:.1f} µs "
        f"| {summary['server_cpu_percent']:.0f} / {percent(summary['load_cpu_percent'])} |",
    ]
    if merged["errors"]:
        lines.append(f"\nerrors by kind: {merged['errors']}")
    text = "\n".join(lines)
    (run / "summary.md").write_text(text + "\n")
    print(text)
    print(f"raw outputs: {run}")


if __name__ == "__main__":
    main()
