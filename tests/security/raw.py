"""Requests written by hand on a socket: what no HTTP client lets a test do (a WebSocket
handshake whose answer is read as HTTP, a body that never arrives)."""

from __future__ import annotations

import json
import socket
from typing import Any

READ_TIMEOUT = 30.0  # generous: a refused request is answered at once


class RawAnswer:
    def __init__(self, head: bytes, body: bytes):
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {name.strip().lower(): value.strip() for name, _, value in
                        (line.partition(":") for line in lines[1:] if line)}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def send_head(port: int, head: str, read_timeout: float = READ_TIMEOUT) -> RawAnswer:
    """Send a request's head (and nothing more), read the answer's head and the body its
    Content-Length announces (or what comes until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before an answer: {data!r}")
            data += chunk
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        answer = RawAnswer(head_bytes, b"")
        length = int(answer.headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        answer.body = body[:length]
        return answer


def websocket_handshake(port: int, path: str, headers: dict[str, str] | None = None,
                        host: str | None = None) -> RawAnswer:
    """A WebSocket upgrade request; 101 when the server accepts it."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
             "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return send_head(port, "\r\n".join(lines) + "\r\n\r\n")
