"""Probing a backend's ``/health``: llama-server answers 503 while loading, 200 when ready.

The probe is a bare HTTP/1.1 request on a fresh loopback connection rather than an HTTP
client library's: it runs every few seconds for every running instance, and httpx cost about
a millisecond of CPU each time, most of llamactl's cost of watching (bench/lifecycle.py).
A fresh connection also holds none of llama-server's few HTTP threads between probes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Probe = Literal["ok", "loading", "error", "timeout", "closed"]

PROBE_TIMEOUT_SECONDS = 2.0
_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def probe_health(port: int, timeout: float = PROBE_TIMEOUT_SECONDS,
                       host: str = "127.0.0.1") -> Probe:
    try:
        async with asyncio.timeout(timeout):
            return await _probe(port, host)
    except TimeoutError:
        return "timeout"


async def _probe(port: int, host: str = "127.0.0.1") -> Probe:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "closed"
    try:
        writer.write(_REQUEST)
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
    return "error"


async def health_report(status: str, port: int, process_alive: bool,
                        host: str = "127.0.0.1") -> dict[str, object]:
    """The contract's health answer, from a live check of process, port and /health."""
    from llamactl.instances.models import format_time, utc_now

    checked = format_time(utc_now())
    if status in ("stopped", "failed") and not process_alive:
        process = "exited" if status == "failed" else "stopped"
        checks = {"process": process, "port": "closed", "response": "skipped"}
        return {"status": "stopped", "checks": checks, "last_check": checked}
    result = await probe_health(port, host=host) if process_alive else "closed"
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
