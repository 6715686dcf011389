#!/usr/bin/env python3
"""Server memory per idle keep-alive connection.

Starts a server binary with one worker, opens N connections and sends one request on each,
then reads every answer (so many requests are in flight at once), then leaves them idle and reports the growth of the server's resident set
per connection. Kernel socket buffers are not in the resident set; this measures what the
server process itself keeps for a connection it is not using.

    cargo build --release --example hello
    python3 scripts/idle_memory.py target/release/examples/hello --connections 5000
    python3 scripts/idle_memory.py target/release/examples/hello --connections 10000 --tls

Any server that honours SQUALL_ADDR and SQUALL_WORKERS works (the peers in perf/peers too,
perf/peers/nginx/nginx-peer.sh included: the resident set is that of the server and its child
processes). With --tls the server gets a fresh ECDSA P-256 certificate through
SQUALL_TLS_CERT and SQUALL_TLS_KEY, and each connection is TLS 1.3 (no verification, no
session resumption).
"""

import argparse
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (nginx's workers under its master)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # Field 4 (ppid) follows the command name, which may hold spaces.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def tree_rss_kib(pid: int) -> int:
    """RSS of pid and its descendants; a zombie child (no VmRSS) counts as nothing."""
    total = rss_kib(pid)
    for child in children(pid):
        try:
            total += tree_rss_kib(child)
        except (OSError, RuntimeError):
            pass
    return total


def make_certificate(directory: str) -> tuple[str, str]:
    """A self-signed ECDSA P-256 certificate and its key, as PEM files in directory."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def client_context() -> ssl.SSLContext:
    """TLS 1.3 without verification: the server's memory is measured, not its certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


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
    parser.add_argument("--tls", action="store_true", help="TLS 1.3 connections (https)")
    args = parser.parse_args()
    if args.connections > 15000:
        parser.error("one process may hold at most 20,000 descriptors; use at most 15000")

    scratch = tempfile.TemporaryDirectory(prefix="idle-memory-")
    env = dict(os.environ, SQUALL_ADDR=f"127.0.0.1:{args.port}", SQUALL_WORKERS="1",
               SQUALL_NGINX_DIR=os.path.join(scratch.name, "nginx"))
    context = None
    if args.tls:
        env["SQUALL_TLS_CERT"], env["SQUALL_TLS_KEY"] = make_certificate(scratch.name)
        context = client_context()
        # nginx's workers may run as another user and must reach its files in here.
        os.chmod(scratch.name, 0o711)

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", args.port))
        return context.wrap_socket(s, server_hostname="localhost") if context else s

    server = subprocess.Popen(
        ["taskset", "-c", "0", args.binary], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(args.port, 10)
        request = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        if context:
            # One TLS connection first: what a server sets up lazily for its first handshake
            # (its crypto library, ticket keys) is not a cost per connection.
            with connect() as s:
                s.sendall(request)
                s.recv(65536)
        time.sleep(0.5)
        before = tree_rss_kib(server.pid)
        conns = []
        for _ in range(args.connections):
            s = connect()
            s.sendall(request)
            conns.append(s)
        for s in conns:
            s.settimeout(5)
            if not s.recv(65536).startswith(b"HTTP/1.1 200"):
                raise RuntimeError("a request was not answered with 200")
        time.sleep(2)  # let the server settle: every connection idle, buffers back in pools
        after = tree_rss_kib(server.pid)
        per_conn = (after - before) * 1024 / args.connections
        kind = "TLS 1.3 " if context else ""
        print(f"{os.path.basename(args.binary)}: {args.connections} idle {kind}keep-alive "
              f"connections, RSS {before} KiB -> {after} KiB, {per_conn:.0f} bytes "
              f"({per_conn / 1024:.1f} KiB) per connection")
        for s in conns:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
