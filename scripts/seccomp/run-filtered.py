#!/usr/bin/env python3
"""Runs a command under a seccomp filter built from an OCI/Docker profile, through
libseccomp (Debian's python3-seccomp): the profile's unconditional allow rules are allowed,
everything else fails with the profile's errno, as a container runtime would enforce it.

    /usr/bin/python3 scripts/seccomp/run-filtered.py deploy/seccomp/squall.json -- CMD ARGS...
    ... --deny io_uring_setup -- CMD     # the same, refusing one more call

Only what this needs of the format: defaultAction SCMP_ACT_ERRNO, allow rules without args.
"""

import errno
import json
import os
import sys

import seccomp


def main() -> None:
    args = sys.argv[1:]
    if "--" not in args or not args:
        sys.exit(__doc__)
    split = args.index("--")
    options, command = args[:split], args[split + 1:]
    profile_path, deny = options[0], set()
    rest = options[1:]
    while rest:
        if rest[0] == "--deny" and len(rest) > 1:
            deny.add(rest[1])
            rest = rest[2:]
        else:
            sys.exit(f"unknown option {rest[0]}")
    with open(profile_path) as handle:
        profile = json.load(handle)
    if profile.get("defaultAction") != "SCMP_ACT_ERRNO":
        sys.exit("only profiles whose defaultAction is SCMP_ACT_ERRNO are supported")
    filt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(profile.get("defaultErrnoRet", errno.EPERM)))
    for rule in profile.get("syscalls", []):
        if rule.get("action") != "SCMP_ACT_ALLOW" or rule.get("args"):
            continue
        for name in rule.get("names", []):
            if name in deny:
                continue
            try:
                filt.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError) as error:
                print(f"run-filtered: skipping {name}: {error}", file=sys.stderr)
    filt.load()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
