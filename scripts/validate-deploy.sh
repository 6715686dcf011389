#!/usr/bin/env bash
# Checks the deployment files under deploy/ without running them (no Docker engine or
# cluster here): yamllint (strict, deploy/.yamllint) on every YAML file there,
# kubernetes-validate (strict, the Kubernetes version's schemas bundled in the package, no
# network) on deploy/kubernetes/, `systemd-analyze verify` on deploy/systemd/ when
# systemd-analyze exists, and hadolint on deploy/Dockerfile.
#
#   bash scripts/validate-deploy.sh
#
# The tools (tests/deploy/requirements.txt) are installed from PyPI into target/venv-deploy.
# When python3 or the tools cannot be had, the script skips with exit 0, unless
# SQUALL_REQUIRE_SERVICES=1, which makes it fail. KUBERNETES_VERSION: the version validated
# against (default 1.37.0; it must be one kubernetes-validate bundles).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/ci.sh
source scripts/lib/ci.sh

readonly REQUIREMENTS=tests/deploy/requirements.txt
readonly VENV=target/venv-deploy
readonly KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.37.0}

case ${1:-} in
"") ;;
-h | --help)
    usage
    exit 0
    ;;
*) die "unknown argument: $1 (see --help)" ;;
esac

command -v python3 >/dev/null || unavailable "python3 is not installed"
# The stamp records which requirements the virtualenv holds, so a changed pin reinstalls.
if ! cmp -s "$REQUIREMENTS" "$VENV/.deploy-requirements"; then
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating the virtualenv $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            unavailable "python3 cannot create a virtualenv (install python3-venv)"
        fi
    fi
    log "installing $(xargs <"$REQUIREMENTS") into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" ||
        unavailable "pip could not install $(xargs <"$REQUIREMENTS")"
    cp "$REQUIREMENTS" "$VENV/.deploy-requirements"
fi

log "yamllint deploy/"
"$VENV/bin/yamllint" --strict --config-file deploy/.yamllint deploy/

log "kubernetes-validate deploy/kubernetes/ (Kubernetes $KUBERNETES_VERSION)"
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" \
    deploy/kubernetes/*.yaml

log "hadolint deploy/Dockerfile"
"$VENV/bin/hadolint" deploy/Dockerfile

if ! command -v systemd-analyze >/dev/null; then
    echo "validate-deploy: systemd units not checked: systemd-analyze is not installed" >&2
    exit 0
fi
log "systemd-analyze verify deploy/systemd/"
# verify insists that ExecStart's program exists: check copies whose ExecStart names an
# empty stand-in. It reports unknown keys and bad values as warnings with exit status 0, so
# any output at all counts as a failure.
units=$(mktemp -d)
trap 'rm -rf "$units"' EXIT
cp deploy/systemd/squall.service deploy/systemd/squall.socket "$units/"
printf '#!/bin/sh\n' >"$units/service"
chmod +x "$units/service"
sed -i "s|^ExecStart=/usr/local/bin/service|ExecStart=$units/service|" "$units/squall.service"
grep -q "^ExecStart=$units/service\$" "$units/squall.service" ||
    die "deploy/systemd/squall.service: ExecStart is no longer /usr/local/bin/service; update this script"
if ! report=$(systemd-analyze verify "$units/squall.service" "$units/squall.socket" 2>&1) ||
    [[ -n $report ]]; then
    report=${report//"$units/"/deploy/systemd/}
    die "systemd-analyze verify: ${report:-failed with no output}"
fi
log "deploy/ is valid"
