#!/usr/bin/env bash
# The examples in a real browser (playwright-core driving Debian's headless Chromium): builds
# and starts examples/chat with two workers for tests/browser/chat.test.mjs, the same over
# HTTPS and wss:// (a CA made here, trusted through an NSS database of the browser's own),
# examples/blog (on the PostgreSQL of DATABASE_URL) for tests/browser/blog.test.mjs, and
# examples/service for tests/browser/cors.test.mjs (calls from pages of other origins).
#
#   bash scripts/browser-test.sh                          # build and start the examples
#   CHAT_URL=http://127.0.0.1:8080 BLOG_URL=http://127.0.0.1:8081 \
#     SERVICE_URL=http://127.0.0.1:8082 bash scripts/browser-test.sh
#                                                         # test servers already running
#
# Installs what it needs: Chromium with apt-get when /usr/bin/chromium is missing, NSS's
# certutil (libnss3-tools) likewise, and playwright-core with npm ci when
# tests/browser/node_modules is. When that cannot be done
# (no node, no apt-get, no registry) it skips with exit 0, unless SQUALL_REQUIRE_SERVICES=1,
# which makes it a failure. CHROMIUM_PATH overrides /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/ci.sh
source scripts/lib/ci.sh

readonly OUT=target/browser-test
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
export CHROMIUM_PATH

case ${1:-} in
-h | --help)
    usage
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

if ! command -v certutil >/dev/null; then
    command -v apt-get >/dev/null || unavailable "certutil is missing and apt-get is not here to install it"
    ((EUID == 0)) || unavailable "certutil is missing and installing it with apt-get needs root"
    log "installing Debian's libnss3-tools (certutil) with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnss3-tools >/dev/null; } ||
        unavailable "apt-get could not install libnss3-tools"
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
if [[ -z ${CHAT_URL:-} || -z ${BLOG_URL:-} || -z ${SERVICE_URL:-} ]]; then
    log "building examples/chat, examples/blog and examples/service (release)"
    cargo build --locked --release --example chat --example blog --example service
fi

# A CA and a certificate for localhost it signs (ECDSA P-256), in $OUT/tls, and an NSS
# database trusting the CA under $OUT/tls/home, the HOME the browser is started with: Chromium
# on Linux takes its trusted roots from ~/.pki/nssdb.
make_test_pki() {
    local dir=$OUT/tls
    rm -rf "$dir" && mkdir -p "$dir/home/.pki/nssdb"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=squall browser-test CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
    certutil -d "sql:$dir/home/.pki/nssdb" -N --empty-password
    certutil -d "sql:$dir/home/.pki/nssdb" -A -n squall-test-ca -t C,, -i "$dir/ca.pem"
}

# Runs tests/browser/$1.test.mjs against $2, or against examples/$4 (default: $1) started
# here with two workers (so that tabs land on both cores) when $2 is empty; over HTTPS when
# $3 is "tls".
run_suite() {
    local name=$1 url=$2 tls=${3:-} example=${4:-$1}
    if [[ -z $url ]]; then
        # A port the kernel says is free now; the server binds it a moment later.
        local port
        port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
        if [[ $tls == tls ]]; then
            SQUALL_TLS_CERT=$OUT/tls/server.pem SQUALL_TLS_KEY=$OUT/tls/server.key \
                start_example "$example" "$port" 2 "$OUT/$name-tls.log"
            url=https://localhost:$port
        else
            start_example "$example" "$port" 2 "$OUT/$name.log"
            url=http://127.0.0.1:$port
        fi
    fi
    log "$name browser tests against $url"
    # The outer limit only catches a wedged node or browser; each test has its own timeout.
    local browser_home=""
    [[ $tls == tls ]] && browser_home=$PWD/$OUT/tls/home
    if ! (cd tests/browser && BASE_URL=$url BROWSER_HOME=$browser_home timeout 300 node --test --test-reporter=spec "$name.test.mjs"); then
        if [[ -n $SERVER_PID ]]; then
            echo "$name server log ($OUT/$name.log), last lines:" >&2
            tail -n 20 "$OUT/$name.log" >&2
        fi
        die "$name browser tests failed"
    fi
    stop_server
    SERVER_PID=""
}

run_suite chat "${CHAT_URL:-}"
if [[ -z ${CHAT_URL:-} ]]; then
    make_test_pki
    run_suite chat "" tls
fi
run_suite blog "${BLOG_URL:-}"
# The origin the service allows: a free port, where tests/browser/cors.test.mjs serves the
# calling page.
if [[ -z ${CORS_ALLOWED_ORIGIN:-} ]]; then
    CORS_ALLOWED_ORIGIN=http://localhost:$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
fi
export CORS_ALLOWED_ORIGIN SERVICE_CORS_ORIGIN=$CORS_ALLOWED_ORIGIN
run_suite cors "${SERVICE_URL:-}" "" service
