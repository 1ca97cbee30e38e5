"""A load run against a real llamactl: /v1 completions, concurrent event streams, WebSocket
clients that come and go; then llamactl's memory and file descriptors.

Shared by ``bench/load.py`` (the full run, figures in bench/README.md) and the test suite's
shorter run (tests/test_load.py). Loopback only, bounded in count and time. Needs aiohttp
(the ``dev`` extra).
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

COMPLETION: dict[str, Any] = {"prompt": "hello", "max_tokens": 4, "ignore_eos": True}
STREAM: dict[str, Any] = {"prompt": "hello", "max_tokens": 16, "ignore_eos": True,
                          "stream": True}
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_close=5)


@dataclass
class Shape:
    """How much load: counts, and how many at once."""

    completions: int = 10_000
    concurrency: int = 64
    streams: int = 100  # /v1 streaming completions, all at once ...
    event_clients: int = 100  # ... beside this many /api/events readers
    websockets: int = 100  # /api/ws clients opened together, then dropped


@dataclass
class Footprint:
    rss_mb: float
    fds: int

    @classmethod
    def of(cls, pid: int) -> Footprint:
        process = psutil.Process(pid)
        return cls(process.memory_info().rss / 2**20, process.num_fds())


@dataclass
class Outcome:
    """What one kind of client saw: successes, errors (first few kept), latencies (ms)."""

    ok: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(why)

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)

        def at(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies \
                else 0.0

        return {"ok": self.ok, "errors": self.error_count, "first_errors": self.errors,
                "p50_ms": at(0.5), "p99_ms": at(0.99),
                "mean_ms": statistics.fmean(latencies) if latencies else 0.0}


async def completions(session: aiohttp.ClientSession, url: str, models: list[str],
                      count: int, concurrency: int) -> Outcome:
    outcome = Outcome()
    next_index = iter(range(count))

    async def worker() -> None:
        for n in next_index:
            began = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/completions", timeout=REQUEST_TIMEOUT,
                                        json={"model": models[n % len(models)],
                                              **COMPLETION}) as answer:
                    await answer.read()
                    if answer.status != 200:
                        outcome.fail(f"completion: HTTP {answer.status}")
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome.fail(f"completion: {type(exc).__name__}: {exc}")
                continue
            outcome.ok += 1
            outcome.latencies_ms.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcome


async def one_stream(session: aiohttp.ClientSession, url: str, model: str,
                     outcome: Outcome) -> None:
    began = time.perf_counter()
    try:
        async with session.post(f"{url}/v1/completions", json={"model": model, **STREAM},
                                timeout=REQUEST_TIMEOUT) as answer:
            if answer.status != 200:
                outcome.fail(f"stream: HTTP {answer.status}")
                return
            last = b""
            async for line in answer.content:
                if line.startswith(b"data: "):
                    last = line.strip()
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome.fail(f"stream: {type(exc).__name__}: {exc}")
        return
    if last != b"data: [DONE]":
        outcome.fail(f"stream: ended with {last[:60]!r}")
        return
    outcome.ok += 1
    outcome.latencies_ms.append((time.perf_counter() - began) * 1000)


async def event_reader(session: aiohttp.ClientSession, url: str, until: asyncio.Event,
                       outcome: Outcome) -> None:
    """An /api/events client held open until ``until`` is set, then dropped."""
    try:
        async with session.get(f"{url}/api/events", timeout=REQUEST_TIMEOUT) as answer:
            kind = answer.headers.get("content-type", "")
            if answer.status != 200 or not kind.startswith("text/event-stream"):
                outcome.fail(f"events: HTTP {answer.status} {kind}")
                return
            reading = asyncio.ensure_future(answer.content.read(-1))
            await until.wait()
            reading.cancel()
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome.fail(f"events: {type(exc).__name__}: {exc}")
        return
    outcome.ok += 1


async def streams_and_event_readers(session: aiohttp.ClientSession, url: str,
                                    models: list[str], shape: Shape) -> tuple[Outcome, Outcome]:
    streams, readers = Outcome(), Outcome()
    done = asyncio.Event()
    reader_tasks = [asyncio.ensure_future(event_reader(session, url, done, readers))
                    for _ in range(shape.event_clients)]
    try:
        await asyncio.gather(*(one_stream(session, url, models[n % len(models)], streams)
                               for n in range(shape.streams)))
    finally:
        done.set()
        await asyncio.gather(*reader_tasks)
    return streams, readers


class Gate:
    """Opens once ``count`` clients have arrived (connected, or failed to)."""

    def __init__(self, count: int):
        self._left = count
        self.open = asyncio.Event()
        if count == 0:
            self.open.set()

    def arrive(self) -> None:
        self._left -= 1
        if self._left == 0:
            self.open.set()


async def closing_client(session: aiohttp.ClientSession, url: str, gate: Gate,
                         outcome: Outcome) -> None:
    """Connects to /api/ws, waits for the others, closes with a close frame."""
    try:
        ws = await session.ws_connect(f"{url}/api/ws", timeout=WS_TIMEOUT)
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome.fail(f"ws: {type(exc).__name__}: {exc}")
        gate.arrive()
        return
    gate.arrive()
    await gate.open.wait()
    await ws.close()
    outcome.ok += 1


async def dropping_client(url: str, gate: Gate, outcome: Outcome) -> None:
    """Completes the WebSocket handshake by hand, waits for the others, then drops the
    connection with no close frame, as a laptop going to sleep would."""
    split = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (f"GET /api/ws HTTP/1.1\r\nHost: {split.netloc}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n")
    try:
        reader, writer = await asyncio.open_connection(split.hostname, split.port)
        writer.write(handshake.encode())
        status = await reader.readline()
        while (await reader.readline()).strip():
            pass  # the rest of the 101's headers
    except OSError as exc:
        outcome.fail(f"ws: {exc}")
        gate.arrive()
        return
    gate.arrive()
    await gate.open.wait()
    writer.transport.abort()
    if status.split()[1:2] != [b"101"]:
        outcome.fail(f"ws: {status!r}")
        return
    outcome.ok += 1


async def websocket_clients(session: aiohttp.ClientSession, url: str, count: int) -> Outcome:
    """``count`` clients connect to /api/ws together; once all are in, half close cleanly
    and half drop their connections."""
    outcome = Outcome()
    gate = Gate(count)
    await asyncio.gather(*(closing_client(session, url, gate, outcome) if n % 2
                           else dropping_client(url, gate, outcome) for n in range(count)))
    return outcome


async def run_load(url: str, models: list[str], shape: Shape) -> dict[str, Any]:
    """Every kind of client, one after the other; the figures of each."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        done = await completions(session, url, models, shape.completions, shape.concurrency)
        completion_seconds = time.perf_counter() - began
        streams, readers = await streams_and_event_readers(session, url, models, shape)
        sockets = await websocket_clients(session, url, shape.websockets)
    return {
        "completions": {**done.summary(), "seconds": completion_seconds,
                        "per_second": done.ok / completion_seconds if completion_seconds else 0},
        "streams": streams.summary(),
        "event_readers": readers.summary(),
        "websockets": sockets.summary(),
    }


def total_errors(result: dict[str, Any]) -> int:
    return sum(int(part["errors"]) for part in result.values())
