"""WebSocket clients of ``/api/ws`` for the tests: one that reads everything in the background,
and one that never reads (to be dropped as too slow)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.helpers import POLL, STATUS_TIMEOUT

Message = dict[str, Any]


class ReceivedMessages:
    """Messages a background reader appends to, and a wait for one of them."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, after: int = 0,
        timeout: float = STATUS_TIMEOUT, what: str = "",
    ) -> tuple[int, Message]:
        """The first message from index ``after`` on that satisfies ``predicate``, and its
        index."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(after, len(self.messages)):
                if predicate(self.messages[index]):
                    return index, self.messages[index]
            if time.monotonic() > deadline:
                raise AssertionError(f"no message {what or predicate} in {self.messages[-20:]}")
            await asyncio.sleep(POLL)


class FeedClient(ReceivedMessages):
    """Keeps every message the server sends, read by a background task."""

    def __init__(self, connection: ClientConnection):
        super().__init__()
        self.connection = connection
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.connection:
                self.messages.append(json.loads(raw))

    async def send(self, message: Any) -> None:
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def close(self) -> None:
        await self.connection.close()
        await self._reader


@contextlib.asynccontextmanager
async def feed(url: str) -> AsyncIterator[FeedClient]:
    """A reading client of ``{url}/api/ws`` (url: the server's ``http://host:port``)."""
    async with connect(url.replace("http://", "ws://") + "/api/ws") as connection:
        client = FeedClient(connection)
        try:
            yield client
        finally:
            await client.close()


def status_change(name: str, status: str) -> Callable[[Message], bool]:
    return lambda m: (m["type"] == "instance_status_changed" and m["data"]["name"] == name
                      and m["data"]["status"] == status)


def stats_of(name: str) -> Callable[[Message], bool]:
    return lambda m: m["type"] == "instance_stats_updated" and m["data"]["name"] == name


class StalledClient:
    """A client that completes the handshake and then does not read at all, like a peer stuck
    behind a dead link. Its receive buffer is tiny, so the server's writes back up quickly;
    ``flood_pings`` makes the server queue WebSocket pongs that nobody reads."""

    def __init__(self, port: int):
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/api/ws"))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)

    async def handshake(self) -> None:
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        loop = asyncio.get_running_loop()
        while not any(isinstance(e, Response) for e in self.protocol.events_received()):
            self.protocol.receive_data(await loop.sock_recv(self.sock, 4096))
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc

    async def flood_pings(self, count: int) -> None:
        for _ in range(count):
            self.protocol.send_ping(b"x" * 125)  # control frames carry at most 125 bytes
        await self._flush()

    async def read_until_closed(self, timeout: float = STATUS_TIMEOUT) -> tuple[int, str]:
        """Read everything queued for it; the close frame's code and reason."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while self.protocol.close_rcvd is None:
            if time.monotonic() > deadline:
                raise AssertionError("the server never closed the stalled client")
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), timeout)
            if not data:
                break
            self.protocol.receive_data(data)
            self.protocol.events_received()
        assert self.protocol.close_rcvd is not None, "connection ended without a close frame"
        return self.protocol.close_rcvd.code, self.protocol.close_rcvd.reason

    async def _flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        if data:
            await asyncio.get_running_loop().sock_sendall(self.sock, data)

    def close(self) -> None:
        self.sock.close()
