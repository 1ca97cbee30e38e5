"""The gateway's keep-alive timeout counts idleness from the last byte received, as uvicorn's
own does: a request whose head straddles the timeout is answered, not cut off. Before, it
counted from the last answer, and closed a connection whose next request was half sent."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import AppHarness

KEEP_ALIVE = 2.0  # seconds; the pauses below stay well inside it
REQUEST = b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return head


async def test_a_request_head_that_straddles_the_keep_alive_timeout_is_answered(
    make_settings: Any, make_app: Any
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True), timeout_keep_alive=KEEP_ALIVE)
    reader, writer = await asyncio.open_connection("127.0.0.1", app.client.base_url.port)
    writer.write(REQUEST)
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
    await asyncio.sleep(KEEP_ALIVE / 2)
    writer.write(REQUEST[:16])  # the next request's first bytes, before the timeout
    await asyncio.sleep(KEEP_ALIVE * 3 / 4)  # its end, after it
    writer.write(REQUEST[16:])
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
    writer.close()


async def test_an_idle_connection_is_still_closed(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True), timeout_keep_alive=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", app.client.base_url.port)
    writer.write(REQUEST)
    await _answer(reader)
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
    writer.close()


async def test_limit_concurrency_applies_to_the_gateway(make_settings: Any, make_app: Any) -> None:
    """uvicorn's limit_concurrency refused /api work over the limit with a 503, and /v1's
    never: the gateway runs no ASGI task for uvicorn to count."""
    app: AppHarness = await make_app(make_settings(fake=True), limit_concurrency=3)
    port = app.client.base_url.port
    first = await asyncio.open_connection("127.0.0.1", port)
    first[1].write(REQUEST)
    assert (await _answer(first[0])).startswith(b"HTTP/1.1 200 ")  # under the limit
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    await app.wait_for_connections(3)
    first[1].write(REQUEST)  # now three connections: at the limit
    assert (await _answer(first[0])).startswith(b"HTTP/1.1 503 ")
    for _reader, writer in [first, *held]:
        writer.close()
