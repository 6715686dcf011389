#!/usr/bin/env bash
# Every test, the way CI runs them: unit and property tests, loopback integration tests,
# doc tests, clippy with warnings as errors, the tests and clippy again for the core alone
# (--no-default-features), the deployment files under deploy/ (linted and schema-checked,
# not run) and the seccomp profile (enforced on the examples), then the WebSocket
# conformance suite (Autobahn, through kosoku) and the Chromium tests of the chat (over
# HTTP and HTTPS) and blog examples. Those install what they need (a virtualenv, Debian's
# chromium and certutil, playwright-core) and build release examples.
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

# The database tests read the TechEmpower tables; create them when PostgreSQL is up.
readonly DB_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
case ${SQUALL_REQUIRE_SERVICES:-} in 1 | true | yes) require_services=1 ;; *) require_services=0 ;; esac
if command -v pg_isready >/dev/null && pg_isready -q -d "$DB_URL"; then
    bash scripts/setup-db.sh
elif ((require_services)); then
    echo "error: PostgreSQL is not reachable at $DB_URL (or pg_isready is missing)," \
        "and SQUALL_REQUIRE_SERVICES=1 requires it" >&2
    exit 1
else
    echo "note: PostgreSQL is not reachable at $DB_URL; its tests will skip" >&2
fi

# Module layering (src/lib.rs, "Layout"): no forbidden dependency, no import cycle.
python3 scripts/check-layers.py
# --workspace: the socket layer (crates/squall-net) is a member with tests of its own.
cargo test --locked --workspace --all-targets
cargo test --locked --workspace --doc
cargo clippy --locked --workspace --all-targets -- -D warnings
# The codec and router benchmarks need the `internals` feature; lint them (and it) too.
cargo clippy --locked --all-targets --features internals -- -D warnings
# The core alone (no toolkit feature: src/lib.rs, "Cargo features") must build, lint clean
# and pass its tests; what needs a feature is gated out.
cargo clippy --locked --no-default-features --all-targets -- -D warnings
cargo test --locked --no-default-features --all-targets
cargo clippy --locked --manifest-path perf/squall-load/Cargo.toml --all-targets -- -D warnings
# Broken intra-doc links are documentation bugs too.
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps
# The load generator is its own crate (perf/squall-load); its parser and schedule tests and
# its loopback tests run here too, so the instrument the benchmarks rely on stays correct.
cargo test --locked --manifest-path perf/squall-load/Cargo.toml
# The Dockerfile, Kubernetes manifests and systemd units are checked, not run: no Docker
# engine or cluster here. Installs yamllint, kubernetes-validate and hadolint into a virtualenv.
bash scripts/validate-deploy.sh
# The seccomp allowlist (deploy/seccomp/squall.json) enforced through libseccomp on the
# examples, and the clear error without io_uring. Installs Debian's python3-seccomp.
bash scripts/seccomp/test.sh
bash scripts/autobahn.sh
bash scripts/browser-test.sh
