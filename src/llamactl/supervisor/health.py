"""Probing a backend's ``/health``: llama-server answers 503 while loading, 200 when ready.

The probe is a bare HTTP/1.1 request on a fresh loopback connection rather than an HTTP
client library's: it runs every few seconds for every running instance, and httpx cost about
a millisecond of CPU each time, most of llamactl's cost of watching (bench/lifecycle.py).
A fresh connection also holds none of llama-server's few HTTP threads between probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Literal

Probe = Literal["ok", "loading", "error", "timeout", "closed", "missing"]

PROBE_TIMEOUT_SECONDS = 2.0
HEALTH_PATHS = ("/health",)


async def probe_health(port: int, timeout: float = PROBE_TIMEOUT_SECONDS,
                       paths: tuple[str, ...] = HEALTH_PATHS,
                       host: str = "127.0.0.1") -> Probe:
    """The first of the backend's health paths that exists (a 404 moves on to the next)."""
    result: Probe = "missing"
    try:
        async with asyncio.timeout(timeout):
            for path in paths:
                result = await _probe(port, path, host)
                if result != "missing":
                    return result
    except TimeoutError:
        return "timeout"
    return "error" if result == "missing" else result


async def _probe(port: int, path: str, host: str = "127.0.0.1") -> Probe:
    request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode()
    try:
        status_line = await status_line_of(host, port, request)
    except OSError:
        return "closed"
    if status_line is None:
        return "error"
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return "error"
    if parts[1] == b"200":
        return "ok"
    if parts[1] == b"503":
        return "loading"
    return "missing" if parts[1] == b"404" else "error"


async def probe_sleeping(port: int, api_key: str, host: str = "127.0.0.1",
                         timeout: float = PROBE_TIMEOUT_SECONDS) -> bool | None:
    """Whether the llama-server sleeps (``/props``' ``is_sleeping``, build 11434 on); None:
    it did not say."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"GET /props HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
                             b"\r\nAuthorization: Bearer %s\r\n\r\n" % api_key.encode())
                answer = await reader.read(-1)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        return None
    try:
        sleeping = json.loads(body).get("is_sleeping")
    except (ValueError, AttributeError):
        return None
    return sleeping if isinstance(sleeping, bool) else None


async def status_line_of(host: str, port: int, request: bytes) -> bytes | None:
    """Send ``request`` (whole) on a fresh connection: the answer's status line, or None when
    none came (closed first, or not HTTP). OSError when it cannot connect."""
    loop = asyncio.get_running_loop()
    transport, reading = await loop.create_connection(
        lambda: _StatusLine(request, loop.create_future()), host, port)
    try:
        return await reading.line
    finally:
        transport.close()


class _StatusLine(asyncio.Protocol):
    """Sends the request, reads up to the status line's end, then is done. A bare protocol,
    not asyncio's streams: their reader, writer and close handshake were over half of the
    cost of watching twenty instances (py-spy, bench/lifecycle.py)."""

    def __init__(self, request: bytes, line: asyncio.Future[bytes | None]) -> None:
        self.request, self.line = request, line
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.received += data
        end = self.received.find(b"\r\n")
        if end >= 0 and not self.line.done():
            self.line.set_result(self.received[:end])
        elif len(self.received) > 8192 and not self.line.done():
            self.line.set_result(None)  # no status line in 8 KiB: not HTTP

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.line.done():
            self.line.set_result(None)  # closed (or reset) before a status line


async def health_report(status: str, port: int, process_alive: bool,
                        paths: tuple[str, ...] = HEALTH_PATHS,
                        host: str = "127.0.0.1") -> dict[str, object]:
    """The contract's health answer, from a live check of process, port and /health."""
    from llamactl.instances.models import format_time, utc_now

    checked = format_time(utc_now())
    if status in ("stopped", "failed") and not process_alive:
        process = "exited" if status == "failed" else "stopped"
        checks = {"process": process, "port": "closed", "response": "skipped"}
        return {"status": "stopped", "checks": checks, "last_check": checked}
    result = await probe_health(port, paths=paths, host=host) if process_alive else "closed"
    port_state = "closed" if result == "closed" else "open"
    response = "error" if result == "closed" else result
    if not process_alive:
        overall = "unhealthy"
    elif result == "ok":
        overall = "healthy"
    elif status in ("starting", "restarting") or result == "loading":
        overall = "starting"
    else:
        overall = "unhealthy"
    checks = {
        "process": "running" if process_alive else "exited",
        "port": port_state,
        "response": response,
    }
    return {"status": overall, "checks": checks, "last_check": checked}
