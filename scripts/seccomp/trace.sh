#!/usr/bin/env bash
# Finds the system calls squall makes: runs each example under strace -f with two workers,
# drives it through what it serves (scripts/seccomp/exercise.py; hello also over TLS, with a
# SIGHUP reload), stops it with SIGTERM, and writes the sorted union of the calls seen to
# deploy/seccomp/traced.txt. scripts/seccomp/profile.py turns that list into the profile.
#
#   bash scripts/seccomp/trace.sh          # needs PostgreSQL and Redis (as the tests do);
#                                          # installs strace with apt-get when missing
#
# Rerun it when squall's dependencies or the examples change, then regenerate the profile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/ci.sh
source scripts/lib/ci.sh

readonly OUT=target/seccomp-trace
if ! command -v strace >/dev/null; then
    log "installing Debian's strace with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; } ||
        die "strace is missing and apt-get could not install it"
fi
rm -rf "$OUT" && mkdir -p "$OUT"
cargo build --locked --examples
bash scripts/setup-db.sh >/dev/null

# A throwaway certificate for the TLS run.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

TRACED_PID=""
# Starts examples/$1 under strace on port $2, with the environment in the rest of the
# arguments, and waits until it listens.
start_traced() {
    local name=$1 port=$2
    shift 2
    env SQUALL_ADDR="127.0.0.1:$port" SQUALL_WORKERS=2 "$@" \
        strace -f -qq -o "$OUT/$name-$port.trace" "target/debug/examples/$name" \
        >"$OUT/$name-$port.log" 2>&1 &
    TRACED_PID=$!
    for _ in $(seq 200); do
        port_open "$port" && return 0
        sleep 0.1
    done
    die "$name did not listen on $port: $(tail -n 5 "$OUT/$name-$port.log")"
}

# SIGTERM to the traced server (strace passes it on), then waits for both to exit.
stop_traced() {
    pkill -TERM -P "$TRACED_PID" || true
    wait "$TRACED_PID" || true
}

exercise() { python3 scripts/seccomp/exercise.py "$@"; }

start_traced hello 18601
exercise hello http://127.0.0.1:18601
stop_traced

start_traced hello 18602 SQUALL_TLS_CERT="$OUT/cert.pem" SQUALL_TLS_KEY="$OUT/key.pem"
exercise hello https://127.0.0.1:18602
pkill -HUP -P "$TRACED_PID"
sleep 0.5
exercise hello https://127.0.0.1:18602
stop_traced

start_traced chat 18603 CHAT_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
exercise chat http://127.0.0.1:18603
stop_traced

start_traced static_files 18604 SQUALL_STATIC_DIR=. SQUALL_STATIC_COMPRESSION=on
exercise static_files http://127.0.0.1:18604
stop_traced

# PostgreSQL over TLS (sslmode=prefer against a server with ssl = on) and in the clear.
start_traced techempower 18605
exercise techempower http://127.0.0.1:18605
stop_traced
start_traced techempower 18606 DATABASE_URL="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
exercise techempower http://127.0.0.1:18606
stop_traced

start_traced blog 18607
exercise blog http://127.0.0.1:18607
stop_traced

# "123 name(args" and "123 <... name resumed>": the call's name either way.
sed -nE 's/^[0-9]+ +(<\.\.\. )?([a-z0-9_]+)(\(| resumed).*/\2/p' "$OUT"/*.trace |
    sort -u >deploy/seccomp/traced.txt
log "$(wc -l <deploy/seccomp/traced.txt) system calls in deploy/seccomp/traced.txt"
