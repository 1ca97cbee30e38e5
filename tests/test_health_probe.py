"""The health probe (supervisor/health.py) against small servers that answer each way a
backend can: the probe's outcome decides starting → running, and unhealthy → restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from llamactl.supervisor.health import probe_health

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(*lines: bytes) -> Handler:
    """Answers each request with the next of ``lines`` (a status line, or b"" to close)."""
    answers = iter(lines)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        answer = next(answers)
        if answer:
            writer.write(answer + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    return handle


async def serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def servers() -> AsyncIterator[list[asyncio.Server]]:
    started: list[asyncio.Server] = []
    yield started
    for server in started:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("answers", "paths", "outcome"), [
    ((b"HTTP/1.1 200 OK",), ("/health",), "ok"),
    ((b"HTTP/1.1 503 Service Unavailable",), ("/health",), "loading"),
    ((b"HTTP/1.1 500 Internal Server Error",), ("/health",), "error"),
    ((b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"), ("/health", "/v1/models"), "ok"),
    ((b"HTTP/1.1 404 Not Found",), ("/health",), "error"),
    ((b"SSH-2.0-OpenSSH_9.2",), ("/health",), "error"),
    ((b"",), ("/health",), "error"),  # closed without a word
])
async def test_each_answer_is_read_as_what_it_means(
    servers: list[asyncio.Server], answers: tuple[bytes, ...], paths: tuple[str, ...],
    outcome: str,
) -> None:
    server, port = await serve(answering(*answers))
    servers.append(server)
    assert await probe_health(port, timeout=5, paths=paths) == outcome


async def test_a_closed_port_and_a_silent_server(servers: list[asyncio.Server]) -> None:
    server, port = await serve(answering(b"HTTP/1.1 200 OK"))
    server.close()
    await server.wait_closed()
    assert await probe_health(port, timeout=5) == "closed"

    left = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # holds the connection, never answers, until the probe leaves
        writer.close()
        left.set()

    quiet, quiet_port = await serve(silent)
    servers.append(quiet)
    assert await probe_health(quiet_port, timeout=0.3) == "timeout"
    await asyncio.wait_for(left.wait(), 5)  # the probe closed its connection when it gave up
