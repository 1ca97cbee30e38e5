"""One request to a backend through the gateway's pool, read as an async stream.

The ``/v1`` exchanges run from the connections' callbacks; an ASGI route (the operator proxy,
api/routes/proxy.py) wants to await an answer's head and iterate its body. This is that
adapter over the same upstream client: the same connections, the same stale-connection retry,
the same framing, with backpressure (reading from the backend pauses while the client has not
taken what was read) and cancellation (closing the call mid-answer drops the connection, which
is what stops llama-server's generation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from llamactl.gateway.pool import BackendConnection, BackendPool, Framing, Lane

log = logging.getLogger(__name__)

HIGH_WATER = 256 * 1024  # bytes read but not yet taken, past which reading pauses


class UpstreamError(Exception):
    """The backend could not be reached, or closed the connection before answering."""


# An answer's head: its status, its headers (lower-case names), whether it is an event stream.
Head = tuple[int, list[tuple[bytes, bytes]], bool]


class UpstreamCall:
    def __init__(self, pool: BackendPool, port: int, request: bytes, *,
                 slots: int | None = None, lane: Lane = "work", retries: int = 1,
                 host: str = "127.0.0.1"):
        self._pool, self._port, self._request, self._host = pool, port, request, host
        self._slots, self._lane, self._retries = slots, lane, retries
        self._connection: BackendConnection | None = None
        self._head: asyncio.Future[Head] = (
            asyncio.get_running_loop().create_future())
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._ended = False
        self._framing = Framing.LENGTH
        self._readable = asyncio.Event()
        self.closed = False

    async def answer(self) -> Head:
        """Send the request; the answer's status, headers (lower-case names) and whether it
        is an event stream. UpstreamError when there is none."""
        self._pool.checkout(self._port, self, slots=self._slots, lane=self._lane,
                            host=self._host)
        try:
            return await self._head
        except BaseException:
            self.close()
            raise

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it is read, until its end (or the backend's loss, logged)."""
        while True:
            if self._chunks:
                data = b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                if self._paused and self._connection is not None:
                    self._paused = False
                    self._connection.resume_reading()
                yield data
            elif self._ended:
                return
            else:
                self._readable.clear()
                await self._readable.wait()

    def close(self) -> None:
        """Done with it: an answer not read to its end is dropped with its connection."""
        if self.closed:
            return
        self.closed = True
        if not self._head.done():
            self._pool.cancel(self._port, self, self._lane, self._host)
        connection, self._connection = self._connection, None
        if connection is not None and not self._ended:
            connection.abort()  # the pool forgets it when it is lost

    # pool.ConnectionWaiter
    def on_connection(self, connection: BackendConnection) -> None:
        if self.closed:
            self._pool.release(connection, reusable=True)
            return
        self._connection = connection
        connection.send(self, self._request)

    def on_connect_failed(self, error: str) -> None:
        if not self._head.done():
            self._head.set_exception(UpstreamError(error))

    # pool.AnswerSink
    def on_head(self, status: int, headers: list[tuple[bytes, bytes]], framing: str,
                event_stream: bool) -> None:
        self._framing = framing
        if not self._head.done():
            self._head.set_result((status, list(headers), event_stream))

    def on_body(self, chunk: bytes) -> None:
        if chunk and not self.closed:
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            if self._buffered > HIGH_WATER and not self._paused and self._connection:
                self._paused = True
                self._connection.pause_reading()

    def flush(self) -> None:
        self._readable.set()

    def on_end(self) -> None:
        self._connection = None  # the pool takes it back
        self._ended = True
        self._readable.set()

    def on_lost(self, connection: BackendConnection, error: str) -> None:
        self._connection = None
        if self.closed:
            return
        if not self._head.done():
            if connection.requests > 1 and self._retries > 0:
                # A pooled keep-alive connection the backend closed as we reused it: the
                # request did not reach it, so sending it again on a new one is safe.
                self._retries -= 1
                self._pool.checkout(self._port, self, slots=self._slots, lane=self._lane,
                                    fresh=True, host=self._host)
                return
            self._head.set_exception(UpstreamError("it closed the connection"))
            return
        if self._framing != Framing.CLOSE:  # else closing is how the body ends
            log.warning("a backend on port %d ended its answer early: %s", self._port, error)
        self.on_end()
