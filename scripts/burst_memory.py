#!/usr/bin/env python3
"""Whether a server gives memory back after bursts of abusive or bursty traffic.

Starts a server binary (two workers by default), records its idle resident set, then runs a
burst sequence against it and reports the resident set before, at the peak, and SETTLE
seconds after the burst ended:

  1. 4 slow readers POST 1 MiB to /echo and read none of the 1 MiB answer;
  2. 2,000 connections send half a request head and hold it until the header timeout closes
     them;
  3. 1,000 connections POST 256 KiB to /echo, read the first bytes of the answer and reset
     (SO_LINGER 0), 100 at a time;
  4. the slow readers go.

With --ping-flood N, it floods one WebSocket on /ws with N pings of 125 bytes without reading
the pongs, reports the growth, then reads every pong (or the close frame).

    cargo build --release --example hello
    python3 scripts/burst_memory.py target/release/examples/hello --rounds 2
    python3 scripts/burst_memory.py target/release/examples/hello --ping-flood 1000000

Any server with hello's /echo and /ws routes that honours SQUALL_ADDR and SQUALL_WORKERS works.
"""

import argparse
import base64
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from idle_memory import rss_kib, wait_listening


class Sampler(threading.Thread):
    """The largest resident set seen, sampled every 50 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)

    def stop(self) -> int:
        self.running = False
        self.join()
        return max(self.peak, rss_kib(self.pid))


def post_echo(port: int, size: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST /echo HTTP/1.1\r\nHost: burst\r\nContent-Length: {size}\r\n\r\n"
    sock.sendall(head.encode() + b"x" * size)
    return sock


def slow_readers(port: int) -> list:
    readers = []
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", port))
        # A small receive window so the answer stays in the server, as a slow client's would.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        head = f"POST /echo HTTP/1.1\r\nHost: burst\r\nContent-Length: {1 << 20}\r\n\r\n"
        sock.sendall(head.encode() + b"x" * (1 << 20))
        readers.append(sock)
    return readers


def half_heads(port: int, count: int) -> None:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: burst\r\nX-Half: ")
        socks.append(sock)
    # Held until the server's header timeout answers 408 and closes each.
    for sock in socks:
        sock.settimeout(120)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        sock.close()


def resets(port: int, count: int, size: int) -> None:
    linger = struct.pack("ii", 1, 0)
    for start in range(0, count, 100):
        batch = [post_echo(port, size) for _ in range(min(100, count - start))]
        for sock in batch:
            sock.settimeout(10)
            try:
                sock.recv(1024)  # The answer has begun.
            except OSError:
                pass
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()


def burst(port: int) -> None:
    readers = slow_readers(port)
    half_heads(port, 2000)
    resets(port, 1000, 256 << 10)
    for sock in readers:
        sock.close()


def websocket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: burst\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise RuntimeError(f"closed during the handshake: {head!r}")
        head += byte
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"upgrade refused: {head!r}")
    return sock


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    return bytes(data)


def ping_flood(pid: int, port: int, pings: int) -> None:
    sock = websocket(port)
    ping = bytes([0x89, 0x80 | 125, 0, 0, 0, 0]) + b"p" * 125  # Masked with a zero key.
    before = rss_kib(pid)
    sent = [0]

    def send() -> None:
        batch = ping * 500
        left = pings
        try:
            while left > 0:
                n = min(500, left)
                sock.sendall(batch[: n * len(ping)])
                left -= n
                sent[0] += n
        except OSError:
            pass

    sampler = Sampler(pid)
    sampler.start()
    writer = threading.Thread(target=send, daemon=True)
    writer.start()
    last, since = -1, time.monotonic()
    while writer.is_alive():
        time.sleep(0.05)
        if sent[0] != last:
            last, since = sent[0], time.monotonic()
        elif time.monotonic() - since > 1.0:
            break  # Held back: the server stopped reading.
    held = sampler.stop()
    print(
        f"ping flood: {pings} pings, {sent[0]} written before the pongs were read; "
        f"RSS {before} KiB before, {held} KiB at the peak while unread"
    )
    pongs, close = 0, None
    sock.settimeout(60)
    while pongs < pings:
        op, length = read_exact(sock, 2)
        length &= 0x7F
        if length == 126:
            length = struct.unpack("!H", read_exact(sock, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", read_exact(sock, 8))[0]
        payload = read_exact(sock, length)
        if op & 0x0F == 0xA:
            pongs += 1
        elif op & 0x0F == 0x8:
            close = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            break
    writer.join()
    sock.close()
    time.sleep(1)
    print(f"ping flood: {pongs} pongs read, close code {close}; RSS after {rss_kib(pid)} KiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="burst sequences to run")
    parser.add_argument("--settle", type=float, default=30, help="seconds to wait after")
    parser.add_argument("--ping-flood", type=int, default=0, metavar="N")
    args = parser.parse_args()

    env = dict(os.environ, SQUALL_ADDR=f"127.0.0.1:{args.port}", SQUALL_WORKERS=str(args.workers))
    server = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_listening(args.port, 10)
        time.sleep(1)
        idle = rss_kib(server.pid)
        print(f"idle: {idle} KiB")
        if args.ping_flood:
            ping_flood(server.pid, args.port, args.ping_flood)
            return 0
        worst = 0
        for round_ in range(1, args.rounds + 1):
            before = rss_kib(server.pid)
            sampler = Sampler(server.pid)
            sampler.start()
            started = time.monotonic()
            burst(args.port)
            peak = sampler.stop()
            took = time.monotonic() - started
            time.sleep(args.settle)
            after = rss_kib(server.pid)
            worst = max(worst, after)
            print(
                f"round {round_}: RSS {before} KiB before, {peak} KiB at the peak "
                f"(burst took {took:.1f} s), {after} KiB {args.settle:.0f} s after "
                f"({after / idle:.2f}x idle)"
            )
        verdict = "within" if worst <= 2 * idle else "NOT within"
        print(f"worst settled RSS {worst} KiB: {verdict} 2x the idle {idle} KiB")
        return 0 if worst <= 2 * idle else 1
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
