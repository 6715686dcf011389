#!/usr/bin/env python3
"""Adds the io_uring calls squall needs (deploy/seccomp/io_uring.json) to a seccomp profile
you already use, such as your container runtime's default, and prints the result.

    python3 deploy/seccomp/merge.py /path/to/default.json > squall-runtime-default.json
    docker run --security-opt seccomp=squall-runtime-default.json ...

The input profile is otherwise unchanged: a rule allowing the three calls is appended,
unless the profile already allows all of them without conditions.
"""

import json
import sys
from pathlib import Path

DELTA = Path(__file__).resolve().parent / "io_uring.json"


def allowed_unconditionally(profile: dict) -> set:
    names = set()
    for rule in profile.get("syscalls", []):
        if rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args") and not rule.get("includes") and not rule.get("excludes"):
            names.update(rule.get("names", []))
    return names


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        profile = json.loads(Path(sys.argv[1]).read_text())
    except (OSError, ValueError) as error:
        sys.exit(f"{sys.argv[1]}: {error}")
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        sys.exit(f"{sys.argv[1]}: not a seccomp profile (no defaultAction)")
    delta = json.loads(DELTA.read_text())["syscalls"]
    wanted = {name for rule in delta for name in rule["names"]}
    if not wanted <= allowed_unconditionally(profile):
        profile.setdefault("syscalls", []).extend(delta)
    json.dump(profile, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
