#!/usr/bin/env python3
"""Drives one of squall's examples through what it serves, so that a system-call trace (or a
seccomp filter) sees every kind of work: requests with and without bodies, keep-alive,
WebSockets, static files, database pages. Exits non-zero on the first wrong answer.

    python3 scripts/seccomp/exercise.py hello http://127.0.0.1:8080
    python3 scripts/seccomp/exercise.py hello https://127.0.0.1:8443   # TLS, unverified

Examples: hello, chat, static_files, techempower, blog.
"""

import base64
import os
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE


def fetch(base, path, data=None, expect=200, headers=None):
    request = urllib.request.Request(base + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=CONTEXT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    if status != expect:
        sys.exit(f"{path}: status {status}, expected {expect}: {body[:200]!r}")
    return body


def websocket_echo(base, path, message=b"hello"):
    """One masked text frame out, its echo (or any frame) back, then a close."""
    url = urllib.parse.urlsplit(base)
    raw = socket.create_connection((url.hostname, url.port), timeout=10)
    stream = CONTEXT.wrap_socket(raw, server_hostname=url.hostname) if url.scheme == "https" else raw
    key = base64.b64encode(os.urandom(16)).decode()
    stream.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = stream.recv(4096)
        if not chunk:
            sys.exit(f"{path}: closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit(f"{path}: {head.splitlines()[0]!r}")
    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(message))
    stream.sendall(bytes([0x81, 0x80 | len(message)]) + mask + payload)
    answer = head.split(b"\r\n\r\n", 1)[1]
    while len(answer) < 2:
        answer += stream.recv(4096)
    stream.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"\x03\xe8")))
    try:
        while stream.recv(4096):
            pass
    except OSError:
        pass
    stream.close()


def hello(base):
    assert fetch(base, "/plaintext") == b"Hello, World!"
    fetch(base, "/json")
    assert len(fetch(base, "/mib")) == 1 << 20
    assert fetch(base, "/echo", data=b"x" * 300_000) == b"x" * 300_000
    fetch(base, "/missing", expect=404)
    websocket_echo(base, "/ws")
    websocket_echo(base, "/broadcast")


def chat(base):
    fetch(base, "/")
    fetch(base, "/rooms/lobby")
    websocket_echo(base, "/rooms/lobby/ws")


def static_files(base):
    fetch(base, "/static/README.md")
    fetch(base, "/static/README.md", headers={"Accept-Encoding": "gzip, br"})
    fetch(base, "/static/README.md", headers={"Range": "bytes=0-99"}, expect=206)
    fetch(base, "/static/no-such-file", expect=404)


def techempower(base):
    for path in ["/plaintext", "/json", "/db", "/queries?queries=5", "/fortunes",
                 "/updates?queries=3", "/cached-queries?count=4"]:
        fetch(base, path)


def blog(base):
    fetch(base, "/")
    fetch(base, "/signup")
    fetch(base, "/login")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    name, base = sys.argv[1], sys.argv[2].rstrip("/")
    {"hello": hello, "chat": chat, "static_files": static_files,
     "techempower": techempower, "blog": blog}[name](base)
    print(f"{name}: ok")


if __name__ == "__main__":
    main()
