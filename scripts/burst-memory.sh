#!/usr/bin/env bash
# Whether hello gives memory back after bursts: builds the release example, then runs
# scripts/burst_memory.py against it (RSS before, at the peak and 30 s after each burst
# sequence; exit 1 when the settled RSS is above twice the idle RSS). Arguments go to the
# Python script, e.g.:
#
#   bash scripts/burst-memory.sh --rounds 2
#   bash scripts/burst-memory.sh --ping-flood 1000000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --locked --example hello
exec python3 scripts/burst_memory.py "${CARGO_TARGET_DIR:-target}/release/examples/hello" "$@"
