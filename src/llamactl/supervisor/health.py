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
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "closed"
    try:
        writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     % path.encode())
        status_line = await reader.readline()
    except OSError:
        return "error"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
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
