#!/usr/bin/env python3
"""Writes deploy/seccomp/squall.json, squall's seccomp allowlist in the OCI/Docker profile
format, from the calls traced in deploy/seccomp/traced.txt (scripts/seccomp/trace.sh) plus
the few below that the trace cannot reach but squall can make, each with its reason.

    python3 scripts/seccomp/profile.py            # rewrite the profile
    python3 scripts/seccomp/profile.py --check    # fail if the profile is out of date
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRACED = ROOT / "deploy/seccomp/traced.txt"
PROFILE = ROOT / "deploy/seccomp/squall.json"

# Calls on paths the examples do not take when traced, with why squall may make them.
UNTRACED = {
    "clock_gettime": "time, when the vDSO cannot answer (some hypervisor clocks)",
    "clock_getres": "time, likewise",
    "gettimeofday": "time, likewise",
    "clock_nanosleep": "std::thread::sleep on a blocking-pool thread (tasks::run_blocking)",
    "nanosleep": "sleeps, on older glibc",
    "sched_yield": "spinning locks in the standard library and crossbeam",
    "tgkill": "abort after a panic while panicking",
    "clone": "thread creation, where glibc falls back from clone3",
    "dup": "socket activation: a passed socket duplicated per core",
    "dup3": "likewise",
    "getpeername": "peer addresses of adopted or accepted sockets",
    "recvmsg": "sockets read with ancillary data (the resolver, libc)",
    "sendmmsg": "the glibc resolver sends its A and AAAA queries together",
    "ioctl": "the glibc resolver asks FIONREAD of its UDP socket",
    "uname": "glibc and the resolver",
    "readv": "vectored reads",
    "writev": "vectored writes (squall-net's poll_write_vectored)",
    "fstat": "file metadata, on older glibc",
    "epoll_pwait": "epoll waits, where glibc maps epoll_wait to it",
    "sysinfo": "glibc's sysconf(_SC_PHYS_PAGES) and friends",
    "fchmod": "a Unix socket's mode, set before it is bound (SQUALL_ADDR=unix:)",
    "chmod": "a Unix socket file's mode, set exactly after bind",
    "fchmodat": "likewise, where glibc maps chmod to it",
    "unlink": "a stale Unix socket file replaced, and ours removed at shutdown",
    "unlinkat": "likewise, where glibc maps unlink to it",
    "rename": "a Unix socket taken over (SQUALL_PORT_SHARING=takeover) by renaming",
    "renameat": "likewise, where glibc maps rename to it",
    "renameat2": "likewise",
}

ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def profile() -> str:
    traced = [line.strip() for line in TRACED.read_text().splitlines() if line.strip()]
    names = sorted(set(traced) | set(UNTRACED))
    document = {
        "comment": (
            "squall's seccomp allowlist: the system calls its examples made under strace "
            "(deploy/seccomp/traced.txt, scripts/seccomp/trace.sh) and the few listed in "
            "scripts/seccomp/profile.py that tracing cannot reach. Generated; edit those."
        ),
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": ARCHES[0], "subArchitectures": ARCHES[1:]}],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    return json.dumps(document, indent=2) + "\n"


def main() -> None:
    text = profile()
    if sys.argv[1:] == ["--check"]:
        if not PROFILE.exists() or PROFILE.read_text() != text:
            sys.exit(f"{PROFILE} is out of date: run python3 scripts/seccomp/profile.py")
        return
    PROFILE.write_text(text)
    print(f"wrote {PROFILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
