#!/usr/bin/env bash
# Every test, the way CI runs them: unit and property tests, loopback integration tests,
# doc tests, then clippy with warnings as errors.
#
#   bash scripts/test.sh
#
# Tests that need PostgreSQL or Redis skip with a printed reason when the service is down,
# unless SQUALL_REQUIRE_SERVICES=1 (CI sets it), in which case they fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null; then
    echo "error: cargo is not installed; install Rust from https://rustup.rs first" >&2
    exit 1
fi

cargo test --locked --all-targets
cargo test --locked --doc
cargo clippy --locked --all-targets -- -D warnings
