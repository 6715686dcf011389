#!/usr/bin/env bash
# The chat example in a real browser: builds and starts examples/chat with two workers, then
# runs tests/browser/chat.test.mjs (playwright-core driving Debian's headless Chromium).
#
#   bash scripts/browser-test.sh                          # build and start examples/chat
#   BASE_URL=http://127.0.0.1:8080 bash scripts/browser-test.sh   # test a running server
#
# Installs what it needs: Chromium with apt-get when /usr/bin/chromium is missing, and
# playwright-core with npm ci when tests/browser/node_modules is. When that cannot be done
# (no node, no apt-get, no registry) it skips with exit 0, unless SQUALL_REQUIRE_SERVICES=1,
# which makes it a failure. CHROMIUM_PATH overrides /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly OUT=target/browser-test
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export CHROMIUM_PATH

log() { printf '==> %s\n' "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

case ${SQUALL_REQUIRE_SERVICES:-} in 1 | true | yes) require=1 ;; *) require=0 ;; esac

# Missing tools end the run: a failure when CI requires them, a skip on a user's machine.
unavailable() {
    if ((require)); then
        die "$* (SQUALL_REQUIRE_SERVICES=1 requires it)"
    fi
    echo "browser-test: skipped: $*" >&2
    exit 0
}

case ${1:-} in
-h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
"") ;;
*) die "unknown argument: $1 (see --help)" ;;
esac

if [[ ! -x $CHROMIUM_PATH ]]; then
    [[ $CHROMIUM_PATH == /usr/bin/chromium ]] || die "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable"
    command -v apt-get >/dev/null || unavailable "$CHROMIUM_PATH is missing and apt-get is not here to install it"
    ((EUID == 0)) || unavailable "$CHROMIUM_PATH is missing and installing it with apt-get needs root"
    log "installing Debian's chromium with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
        unavailable "apt-get could not install chromium"
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    unavailable "node and npm are not installed"
fi
# npm ci records what it installed in node_modules/.package-lock.json; a lock file changed
# since (a pull that bumps playwright-core) is newer than that record.
if [[ ! -d tests/browser/node_modules/playwright-core ||
    tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]]; then
    log "installing playwright-core (npm ci)"
    # playwright-core downloads no browser; the lock file pins it.
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) ||
        unavailable "npm ci could not install tests/browser's packages"
fi

mkdir -p "$OUT"
server_pid=""
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z ${BASE_URL:-} ]]; then
    log "building examples/chat (release)"
    cargo build --locked --release --example chat
    # A port the kernel says is free now; the server binds it a moment later.
    port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
    # Two workers, so that tabs land on both cores and broadcasts must cross between them.
    SQUALL_ADDR=127.0.0.1:$port SQUALL_WORKERS=2 RUST_LOG=${RUST_LOG:-warn} \
        target/release/examples/chat >"$OUT/chat.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port_open "$port" && break
        kill -0 "$server_pid" 2>/dev/null ||
            die "chat exited before listening; its output: $(tail -n 20 "$OUT/chat.log")"
        sleep 0.1
    done
    port_open "$port" || die "chat did not listen on 127.0.0.1:$port within 10 s"
    BASE_URL=http://127.0.0.1:$port
fi
export BASE_URL

log "browser tests against $BASE_URL"
# The outer limit only catches a wedged node or browser; each test has its own timeout.
if ! (cd tests/browser && timeout 300 node --test --test-reporter=spec chat.test.mjs); then
    if [[ -n $server_pid ]]; then
        echo "chat server log ($OUT/chat.log), last lines:" >&2
        tail -n 20 "$OUT/chat.log" >&2
    fi
    die "browser tests failed"
fi
