#!/usr/bin/env python3
"""Server memory per idle keep-alive connection.

Starts a server binary with one worker, opens N connections and sends one request on each,
then reads every answer (so many requests are in flight at once), then leaves them idle and reports the growth of the server's resident set
per connection. Kernel socket buffers are not in the resident set; this measures what the
server process itself keeps for a connection it is not using.

    cargo build --release --example hello
    python3 scripts/idle_memory.py target/release/examples/hello --connections 5000

Any server that honours SQUALL_ADDR and SQUALL_WORKERS works (the peers in perf/peers too).
"""

import argparse
import os
import socket
import subprocess
import sys
import time


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--path", default="/plaintext")
    args = parser.parse_args()
    if args.connections > 15000:
        parser.error("one process may hold at most 20,000 descriptors; use at most 15000")

    env = dict(os.environ, SQUALL_ADDR=f"127.0.0.1:{args.port}", SQUALL_WORKERS="1")
    server = subprocess.Popen(
        ["taskset", "-c", "0", args.binary], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(args.port, 10)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        request = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        conns = []
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", args.port))
            s.sendall(request)
            conns.append(s)
        for s in conns:
            s.settimeout(5)
            if not s.recv(65536).startswith(b"HTTP/1.1 200"):
                raise RuntimeError("a request was not answered with 200")
        time.sleep(2)  # let the server settle: every connection idle, buffers back in pools
        after = rss_kib(server.pid)
        per_conn = (after - before) * 1024 / args.connections
        print(f"{os.path.basename(args.binary)}: {args.connections} idle keep-alive connections, "
              f"RSS {before} KiB -> {after} KiB, {per_conn:.0f} bytes per connection")
        for s in conns:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
