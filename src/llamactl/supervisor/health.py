"""Probing a backend's ``/health``: llama-server answers 503 while loading, 200 when ready."""

from __future__ import annotations

from typing import Literal

import httpx

Probe = Literal["ok", "loading", "error", "timeout", "closed"]

PROBE_TIMEOUT_SECONDS = 2.0


async def probe_health(
    client: httpx.AsyncClient, port: int, timeout: float = PROBE_TIMEOUT_SECONDS
) -> Probe:
    try:
        response = await client.get(f"http://127.0.0.1:{port}/health", timeout=timeout)
    except httpx.TimeoutException:
        return "timeout"
    except httpx.TransportError:
        return "closed"
    if response.status_code == 200:
        return "ok"
    if response.status_code == 503:
        return "loading"
    return "error"


async def health_report(
    client: httpx.AsyncClient, status: str, port: int, process_alive: bool
) -> dict[str, object]:
    """The contract's health answer, from a live check of process, port and /health."""
    from llamactl.instances.models import format_time, utc_now

    checked = format_time(utc_now())
    if status in ("stopped", "failed") and not process_alive:
        process = "exited" if status == "failed" else "stopped"
        checks = {"process": process, "port": "closed", "response": "skipped"}
        return {"status": "stopped", "checks": checks, "last_check": checked}
    result = await probe_health(client, port) if process_alive else "closed"
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
