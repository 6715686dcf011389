#!/usr/bin/env bash
# The seccomp profile, enforced: hello (plain and TLS), chat, static_files and techempower
# start and serve under a filter built from deploy/seccomp/squall.json through libseccomp,
# as a container runtime would apply it; under the same filter refusing io_uring_setup,
# hello exits non-zero naming the cause and pointing at deploy/ and the README. Also checks
# the profile is what scripts/seccomp/profile.py makes of deploy/seccomp/traced.txt, and
# that deploy/seccomp/merge.py adds the io_uring calls to a profile without them.
#
#   bash scripts/seccomp/test.sh
#
# Installs Debian's python3-seccomp with apt-get when /usr/bin/python3 cannot import it;
# where that cannot be done it skips, unless SQUALL_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/ci.sh
source scripts/lib/ci.sh

readonly OUT=target/seccomp-test
readonly PROFILE=deploy/seccomp/squall.json
readonly PY=/usr/bin/python3

python3 scripts/seccomp/profile.py --check

if ! "$PY" -c 'import seccomp' 2>/dev/null; then
    command -v apt-get >/dev/null || unavailable "python3-seccomp is missing and apt-get is not here to install it"
    ((EUID == 0)) || unavailable "python3-seccomp is missing and installing it with apt-get needs root"
    log "installing Debian's python3-seccomp with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-seccomp >/dev/null; } ||
        unavailable "apt-get could not install python3-seccomp"
fi

rm -rf "$OUT" && mkdir -p "$OUT"
cargo build --locked --examples
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

FILTERED_PID=""
stop_filtered() {
    [[ -n $FILTERED_PID ]] || return 0
    kill -TERM "$FILTERED_PID" 2>/dev/null || true
    wait "$FILTERED_PID" || die "the filtered server exited with status $? on SIGTERM"
    FILTERED_PID=""
}
trap 'kill -KILL "$FILTERED_PID" 2>/dev/null || true' EXIT

# Runs examples/$1 on port $2 under the profile with the environment in the rest of the
# arguments, drives it through what it serves, and stops it.
serve_filtered() {
    local name=$1 port=$2 scheme=http
    shift 2
    [[ " $* " == *SQUALL_TLS_CERT* ]] && scheme=https
    env SQUALL_ADDR="127.0.0.1:$port" SQUALL_WORKERS=2 "$@" \
        "$PY" scripts/seccomp/run-filtered.py "$PROFILE" -- "target/debug/examples/$name" \
        >"$OUT/$name-$port.log" 2>&1 &
    FILTERED_PID=$!
    for _ in $(seq 200); do
        port_open "$port" && break
        kill -0 "$FILTERED_PID" 2>/dev/null || die "$name exited under the filter: $(tail -n 5 "$OUT/$name-$port.log")"
        sleep 0.1
    done
    python3 scripts/seccomp/exercise.py "$name" "$scheme://127.0.0.1:$port" ||
        die "$name under the filter: $(tail -n 5 "$OUT/$name-$port.log")"
    stop_filtered
}

bash scripts/setup-db.sh >/dev/null
serve_filtered hello 18701
serve_filtered hello 18702 SQUALL_TLS_CERT="$OUT/cert.pem" SQUALL_TLS_KEY="$OUT/key.pem"
serve_filtered chat 18703 CHAT_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
serve_filtered static_files 18704 SQUALL_STATIC_DIR=. SQUALL_STATIC_COMPRESSION=on
serve_filtered techempower 18705

# Without io_uring: one clear message, a non-zero exit.
status=0
SQUALL_ADDR=127.0.0.1:18706 "$PY" scripts/seccomp/run-filtered.py "$PROFILE" --deny io_uring_setup \
    -- target/debug/examples/hello >"$OUT/denied.log" 2>&1 || status=$?
((status != 0)) || die "hello started although io_uring_setup was refused"
if ! grep -q "deploy/" "$OUT/denied.log" || ! grep -q "README" "$OUT/denied.log"; then
    die "the io_uring error does not point at deploy/ and the README: $(cat "$OUT/denied.log")"
fi

# With accept4 refused, a waiting connection makes every accept fail at once: the core must
# log it, back off instead of spinning, and still stop on SIGTERM.
SQUALL_ADDR=127.0.0.1:18707 SQUALL_WORKERS=1 "$PY" scripts/seccomp/run-filtered.py "$PROFILE" \
    --deny accept4 -- target/debug/examples/hello >"$OUT/no-accept.log" 2>&1 &
FILTERED_PID=$!
for _ in $(seq 100); do port_open 18707 && break; sleep 0.1; done
sleep 1
grep -q "cannot accept connections" "$OUT/no-accept.log" ||
    die "refused accepts were not reported: $(tail -n 5 "$OUT/no-accept.log")"
kill -TERM "$FILTERED_PID"
for _ in $(seq 50); do kill -0 "$FILTERED_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$FILTERED_PID" 2>/dev/null; then
    die "with accepts refused, SIGTERM did not stop the server within 5 s"
fi
FILTERED_PID=""

# merge.py: a profile without io_uring gets it; one with it is left alone.
printf '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}' >"$OUT/base.json"
python3 deploy/seccomp/merge.py "$OUT/base.json" >"$OUT/merged.json"
python3 - "$OUT/merged.json" <<'PYEOF'
import json, sys
rules = json.load(open(sys.argv[1]))["syscalls"]
names = {n for r in rules for n in r["names"]}
assert {"read", "io_uring_setup", "io_uring_enter", "io_uring_register"} <= names, names
PYEOF
log "seccomp: every example served under $PROFILE; without io_uring_setup the error is clear"
