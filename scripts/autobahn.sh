#!/usr/bin/env bash
# Autobahn WebSocket conformance: runs the Autobahn TestSuite cases through kosoku (all but
# the permessage-deflate groups 12.* and 13.*) against an echo endpoint, and compares each
# case's outcome with tests/autobahn/expected.json. Fails on any case whose outcome got
# worse or that went missing; prints the counts by outcome either way.
#
#   bash scripts/autobahn.sh                          # build examples/hello, test its /ws
#   bash scripts/autobahn.sh ws://127.0.0.1:9001/ws   # test a server that is already running
#   bash scripts/autobahn.sh --update [URL]           # rewrite expected.json (worst of 3 runs)
#
# kosoku (tests/autobahn/requirements.txt) is installed into target/venv. When python3 or
# kosoku cannot be had, the script skips with exit 0, unless SQUALL_REQUIRE_SERVICES=1,
# which makes it install python3 with apt-get or fail.
# AUTOBAHN_PARALLELISM: cases run at once (default 4). AUTOBAHN_TIMEOUT: seconds each of the
# two kosoku runs (9.* and the rest) may take (default 120; a healthy run takes about 5).
# kosoku's HTML reports are left in target/autobahn/report/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/ci.sh
source scripts/lib/ci.sh

readonly EXPECTED=tests/autobahn/expected.json
readonly REQUIREMENTS=tests/autobahn/requirements.txt
readonly VENV=target/venv
readonly OUT=target/autobahn

update=()
url=""
while (($#)); do
    case $1 in
    --update) update=(--update) ;;
    -h | --help)
        usage
        exit 0
        ;;
    ws://*) url=$1 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

# Debian ships python3's venv module separately, as python3-venv.
apt_install() {
    log "installing $* with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } ||
        die "apt-get could not install $*"
}
if ! command -v python3 >/dev/null; then
    ((REQUIRE)) || unavailable "python3 is not installed"
    apt_install python3 python3-venv
fi

# The stamp records which requirements the virtualenv holds, so a changed pin reinstalls.
if [[ ! -x $VENV/bin/kosoku ]] || ! cmp -s "$REQUIREMENTS" "$VENV/.autobahn-requirements"; then
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating the virtualenv $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            ((REQUIRE)) || unavailable "python3 cannot create a virtualenv (install python3-venv)"
            apt_install python3-venv
            python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
        fi
    fi
    log "installing kosoku into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" ||
        unavailable "pip could not install $(xargs <"$REQUIREMENTS")"
    cp "$REQUIREMENTS" "$VENV/.autobahn-requirements"
fi

mkdir -p "$OUT"
if [[ -z $url ]]; then
    log "building examples/hello (release)"
    cargo build --locked --release --example hello
    # The kernel picks a port that is free now; the server binds it a moment later.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # One worker: every case meets the same core, so results do not depend on scheduling.
    start_example hello "$port" 1 "$OUT/hello.log"
    url=ws://127.0.0.1:$port/ws
fi

status=0
"$VENV/bin/python" scripts/lib/autobahn.py "$url" "${update[@]}" \
    --expected "$EXPECTED" --outdir "$OUT" \
    --parallelism "${AUTOBAHN_PARALLELISM:-4}" --timeout "${AUTOBAHN_TIMEOUT:-120}" || status=$?
# A server that died under the fuzzer explains every verdict after it: say so plainly.
if [[ -n $SERVER_PID ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "error: hello exited during the run; its output ends with:" >&2
    tail -n 20 "$OUT/hello.log" >&2
    status=1
fi
exit "$status"
