"""The owner's helpers that watch a process and report back: readiness and liveness.

Each posts a notice into the owner's inbox and decides nothing itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor.health import probe_health
from llamactl.supervisor.messages import Noticed

Post = Callable[[Noticed], None]

# Readiness is polled fast at first (a small model is ready in tens of milliseconds, and the
# poll interval is start latency a user pays), then slower for big models.
READY_POLL_FIRST = 0.01
READY_POLL_MAX = 0.1  # a probe costs ~1 ms; a late notice costs the user up to this
READY_POLL_GROWTH = 1.25


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


async def watch_readiness(
    post: Post, generation: int, port: int, log_path: Path,
    stall_timeout: float, paths: tuple[str, ...], *, host: str = "127.0.0.1",
) -> None:
    """Ready when /health answers 200; failed when neither ready nor writing for stall_timeout."""
    delay = READY_POLL_FIRST
    last_size = _size(log_path)
    deadline = time.monotonic() + stall_timeout
    while True:
        if await probe_health(port, timeout=min(2.0, stall_timeout), paths=paths,
                              host=host) == "ok":
            post(Noticed(generation, t.Ready()))
            return
        size = _size(log_path)
        if size != last_size:  # the child is still busy: loading a big model is not a stall
            last_size = size
            deadline = time.monotonic() + stall_timeout
        if time.monotonic() > deadline:
            post(Noticed(generation, t.LoadFailed(
                f"not ready after {stall_timeout:g} s without output")))
            return
        await asyncio.sleep(delay)
        delay = min(delay * READY_POLL_GROWTH, READY_POLL_MAX)


async def watch_liveness(
    post: Post, generation: int, port: int, interval: float,
    failures_allowed: int, stable_after: float, paths: tuple[str, ...], *,
    host: str = "127.0.0.1",
) -> None:
    """Unhealthy after ``failures_allowed`` failed checks in a row; Stable once, after a while."""
    failures = 0
    began = time.monotonic()
    stable_sent = False
    # Instances started together would be probed together forever: spread the first probe.
    await asyncio.sleep(interval * random.random())  # noqa: S311 (not cryptography)
    while True:
        result = await probe_health(port, paths=paths, host=host)
        failures = 0 if result == "ok" else failures + 1
        if failures >= failures_allowed:
            post(Noticed(generation, t.Unhealthy(
                f"health check failed {failures} times in a row ({result})")))
            return
        if not stable_sent and time.monotonic() - began >= stable_after:
            post(Noticed(generation, t.Stable()))
            stable_sent = True
        await asyncio.sleep(interval)
