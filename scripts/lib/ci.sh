# Shared by the CI checks that drive a release example in a real client (autobahn.sh,
# browser-test.sh): logging, the SQUALL_REQUIRE_SERVICES rule (a missing tool skips the
# check, or fails it when CI requires it), the usage text, and starting and stopping the
# example under test. Sourced, not run, from the repository root after
# `set -euo pipefail`; the caller's file name (autobahn.sh -> autobahn) heads its skip line.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

case ${SQUALL_REQUIRE_SERVICES:-} in 1 | true | yes) REQUIRE=1 ;; *) REQUIRE=0 ;; esac

# Missing tools end the run: a failure when CI requires them, a skip on a user's machine.
unavailable() {
    if ((REQUIRE)); then
        die "$* (SQUALL_REQUIRE_SERVICES=1 requires it)"
    fi
    echo "$(basename "$0" .sh): skipped: $*" >&2
    exit 0
}

# The usage text is the comment block at the top of the calling script.
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SERVER_PID="" # the example start_example launched, for the EXIT trap

# shellcheck disable=SC2317 # run by the EXIT trap, which shellcheck 0.9 does not follow
stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# Start the built target/release/examples/$1 on 127.0.0.1:$2 with $3 workers, output to
# $4, and wait up to 10 s until it accepts; the EXIT trap stops it.
start_example() {
    local name=$1 port=$2 workers=$3 log_file=$4
    trap stop_server EXIT
    SQUALL_ADDR=127.0.0.1:$port SQUALL_WORKERS=$workers RUST_LOG=${RUST_LOG:-warn} \
        "target/release/examples/$name" >"$log_file" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        port_open "$port" && break
        kill -0 "$SERVER_PID" 2>/dev/null ||
            die "$name exited before listening; its output: $(tail -n 20 "$log_file")"
        sleep 0.1
    done
    port_open "$port" || die "$name did not listen on 127.0.0.1:$port within 10 s"
}
