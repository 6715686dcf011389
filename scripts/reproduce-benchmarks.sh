#!/usr/bin/env bash
# Reproduces BENCHMARKS.md with one command: builds squall and every peer from crates.io,
# then runs each side-by-side script in turn, server on CPU 0 and load on CPU 1, rounds
# alternating the order of the servers, medians and ratios to each peer:
#
#   bench-peers.sh --write    plaintext (pipelined 16) and json against may_minihttp, actix-web, hyper
#   bench-db.sh --write       the five TechEmpower database tests against actix-db (when
#                             PostgreSQL answers at DATABASE_URL; skipped otherwise)
#   bench-static.sh --write   static files against actix-files
#   bench-ws.sh               WebSocket echo, idle and broadcast against tokio-tungstenite
#   bench-tls.sh --write      TLS handshakes, keep-alive, pipelining and 1 MiB against actix-web,
#                             hyper (both rustls on aws-lc-rs) and nginx
#   validate-load.sh          squall-load against wrk and oha
#   bench-c10k.py             10,000 connections at 20,000 req/s for 60 s
#
# Raw outputs go to perf/runs/, with `perf stat` counters of every measured server run of
# the wrk-driven scripts (peers, database, static files: task-clock, context switches,
# migrations, page faults, and cycles/instructions where the machine exposes them); the scripts with --write rewrite their tables in
# BENCHMARKS.md between their markers, the others print Markdown and save it beside the raw
# output. Nothing else may run on the machine meanwhile: the scripts warn when it is busy.
#
# Usage: scripts/reproduce-benchmarks.sh [--quick]
#
#   --quick   one round of 5 s per case and 2,000 connections for C10K: a smoke run of the
#             whole chain (about 10 minutes here) that leaves BENCHMARKS.md alone
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/bench.sh
source "$ROOT/scripts/lib/bench.sh" # usage, ensure_wrk

ROUNDS=(--rounds 5 --duration 10)
WRITE=(--write)
VALIDATE=(ROUNDS=3 DURATION=10)
C10K=(--duration 60)
if [[ ${1:-} == --quick ]]; then
    ROUNDS=(--rounds 1 --duration 5)
    WRITE=()
    VALIDATE=(ROUNDS=1 DURATION=5)
    C10K=(--duration 10 --connections 2000 --rate 4000)
elif [[ -n ${1:-} ]]; then
    usage
    exit 2
fi

step() { printf '\n=== %s\n' "$*" >&2; }

# The load generators the scripts need: wrk from Debian, oha from crates.io (the version
# the validation was written against; --locked keeps its dependencies buildable here).
ensure_wrk
command -v oha >/dev/null || cargo install --locked oha --version 1.16.0

step "peers: plaintext and json"
scripts/bench-peers.sh "${ROUNDS[@]}" "${WRITE[@]}"

if pg_isready -q -d "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}" 2>/dev/null; then
    step "database tests"
    scripts/bench-db.sh "${ROUNDS[@]}" "${WRITE[@]}"
else
    step "database tests skipped: PostgreSQL does not answer at ${DATABASE_URL:-127.0.0.1:5432}"
fi

step "static files"
scripts/bench-static.sh "${ROUNDS[@]}" "${WRITE[@]}"

step "WebSockets"
scripts/bench-ws.sh "${ROUNDS[@]}"

step "TLS"
scripts/bench-tls.sh "${ROUNDS[@]}" "${WRITE[@]}"

step "load generator validation"
env "${VALIDATE[@]}" scripts/validate-load.sh

step "C10K"
scripts/bench-c10k.py "${C10K[@]}"

step "done: tables with markers are rewritten in BENCHMARKS.md; the rest is printed above and saved under perf/runs/"
