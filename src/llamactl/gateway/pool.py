"""The gateway's connections to its backends: plain HTTP/1.1 keep-alive, parsed with httptools.

Not aiohttp, not httpx. bench/gateway.py measured the client's cost per request against a
backend that answers at once: httpx fell below 200 requests/s at 64 concurrent requests, aiohttp
kept ~1,800 but spent about half of llamactl's ~500 us of CPU per request in its own request
and response machinery. A connection here is an asyncio protocol that writes the request in
one call and reports the answer's head, body pieces and end to whoever holds it, from the
same callback that read them: no task, no future, no stream object per request.

Connections to one backend are capped: llama-server serves HTTP from a small thread pool
(``--threads-http``, by default its slot count + 2 or the cores - 1, whichever is more) and
ties a thread to a keep-alive connection while it lives, so a pool as big as the clients'
concurrency took every thread, /health went unanswered and the liveness check killed a
healthy, busy server (bench/gateway.py). The cap is the backend's slot count (``--parallel``)
or 4, llama-server's default, whichever is more: more connections than slots only queue
inside llama-server. Requests beyond the cap wait here, first come first served, for the next
free connection.

Two lanes per backend. ``work`` (the /v1 gateway) has the cap above. ``operator`` (the
operator proxy, ``/api/instances/{name}/proxy/...``) has one connection of its own beyond it,
so that an operator looking at ``/slots``, ``/props`` or ``/metrics`` of a busy instance is
answered at once instead of queueing behind the very generations being looked at. One: with
llama-server's HTTP threads at slots + 2, the other spare thread stays for the liveness check.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Literal, Protocol

import httptools

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # where local backends listen; on Ray, each lease names its node
# Connections to one backend with no --parallel of its own (see above): llama-server's default
# four slots do the work anyway; requests beyond them wait here instead of inside it.
CONNECTIONS_PER_BACKEND = 4
CONNECT_TIMEOUT_SECONDS = 5.0
# llama-server (cpp-httplib) closes a keep-alive connection idle for 5 s: let it go first.
IDLE_SECONDS = 4.0
OPERATOR_CONNECTIONS = 1  # the operator lane's own connections per backend (see above)

Lane = Literal["work", "operator"]


class Framing:
    """How an answer's body ends."""

    LENGTH = "length"  # Content-Length
    CHUNKED = "chunked"  # Transfer-Encoding: chunked
    CLOSE = "close"  # when the backend closes the connection
    NONE = "none"  # no body (204, 304)


class AnswerSink(Protocol):
    """Who holds a connection: told of the answer as it is read."""

    def on_head(self, status: int, headers: list[tuple[bytes, bytes]], framing: str,
                event_stream: bool) -> None: ...

    def on_body(self, chunk: bytes) -> None: ...

    def flush(self) -> None:
        """Everything read so far has been reported: pass it on (one write, not one per
        piece of one read)."""

    def on_end(self) -> None: ...

    def on_lost(self, connection: BackendConnection, error: str) -> None: ...


class ConnectionWaiter(Protocol):
    """Who asked the pool for a connection."""

    def on_connection(self, connection: BackendConnection) -> None: ...

    def on_connect_failed(self, error: str) -> None: ...


class BackendConnection(asyncio.Protocol):
    """One keep-alive connection to a backend, reporting each answer to its holder."""

    def __init__(self, pool: BackendPool, key: tuple[str, int, Lane]):
        self.host, self.port, self.lane = key
        self.requests = 0  # sent on this connection: above 1, it is a reused one
        self.answered = False  # the current answer's head has been reported
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._sink: AnswerSink | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._ended = False
        self._keep_alive = True
        self._event_stream = False
        self._lost_reason: str | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._ended = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            sink, self._sink = self._sink, None
            self.abort()
            if sink is not None:
                sink.on_lost(self, f"unreadable answer: {exc}")
            return
        sink = self._sink
        if sink is None:
            return
        if self._ended:
            self._sink = None
            sink.on_end()  # the answer's last bytes go out first; then the bookkeeping
            self._pool.release(self, reusable=self._keep_alive, replace=self._event_stream)
        else:
            sink.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pool.forget(self)
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.on_lost(self, self._lost_reason or (
                str(exc) if exc else "the backend closed the connection"))

    # httptools callbacks: the head and body go to the holder at once (it only buffers them);
    # the end waits for feed_data to return, as the holder may then reuse the connection.
    def on_message_begin(self) -> None:
        self._headers = []
        self.answered = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        framing, self._event_stream = _describe(status, self._headers)
        # llama-server closes its connection after an event stream although it answers
        # keep-alive: reused, it would fail the next request (then retried on a new one).
        self._keep_alive = parser.should_keep_alive() and not self._event_stream
        self.answered = True
        if self._sink is not None:
            self._sink.on_head(status, self._headers, framing, self._event_stream)

    def on_body(self, body: bytes) -> None:
        if self._sink is not None:
            self._sink.on_body(body)

    def on_message_complete(self) -> None:
        self._ended = True

    # for the holder
    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, sink: AnswerSink, request: bytes) -> None:
        assert self._transport is not None
        self._sink = sink
        self.requests += 1
        self._transport.write(request)

    def send_more(self, data: bytes) -> None:
        """More of the request sent last (a form upload's body, as the client sends it)."""
        if self._transport is not None:
            self._transport.write(data)

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def shut(self, reason: str) -> None:
        """Drop the connection now and tell its holder why."""
        self._lost_reason = reason
        if self._transport is not None:
            self._transport.abort()

    def abort(self) -> None:
        """Drop the connection now, with whatever it was doing: for llama-server, closing it is
        what cancels a generation in progress."""
        self._sink = None
        if self._transport is not None:
            self._transport.abort()



def _describe(status: int, headers: list[tuple[bytes, bytes]]) -> tuple[str, bool]:
    """How the answer's body ends, and whether it is an event stream: one pass over its
    headers."""
    chunked = sized = event_stream = False
    for name, value in headers:
        if name == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
        elif name == b"content-length":
            sized = True
        elif name == b"content-type":
            event_stream = event_stream or value.startswith(b"text/event-stream")
    if status in (204, 304) or 100 <= status < 200:
        return Framing.NONE, event_stream
    if chunked:  # it wins over a Content-Length (RFC 9112, 6.3)
        return Framing.CHUNKED, event_stream
    return (Framing.LENGTH if sized else Framing.CLOSE), event_stream


class _Backend:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.idle: list[tuple[BackendConnection, float]] = []
        self.open = 0  # idle + busy + being opened
        self.waiters: collections.deque[tuple[ConnectionWaiter, bool]] = collections.deque()


class BackendPool:
    def __init__(self, per_backend: int, connect_timeout: float, idle_seconds: float):
        self.per_backend = per_backend
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self._backends: dict[tuple[str, int, Lane], _Backend] = {}
        self._connections: set[BackendConnection] = set()  # every open one, idle or busy
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def checkout(self, port: int, waiter: ConnectionWaiter, *, slots: int | None = None,
                 fresh: bool = False, lane: Lane = "work", host: str = HOST) -> None:
        """Hand ``waiter`` a connection to ``port``: at once when one is idle, else as soon as
        one is opened or given back. ``slots``: the backend's --parallel, if given. ``fresh``
        skips the idle ones (a retry after a reused connection turned out to be closed)."""
        if self._closed:
            waiter.on_connect_failed("llamactl is shutting down")
            return
        limit = self._limit(lane, slots)
        key = (host, port, lane)
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = _Backend(limit)
        else:
            backend.limit = limit  # the instance may have been restarted with other slots
        if backend.idle and not backend.waiters and not fresh:
            connection = self._take_idle(backend)  # the usual case, in as few steps as can be
            if connection is not None:
                waiter.on_connection(connection)
                return
        backend.waiters.append((waiter, fresh))
        self._dispatch(key, backend)

    def _limit(self, lane: Lane, slots: int | None) -> int:
        return OPERATOR_CONNECTIONS if lane == "operator" else max(self.per_backend, slots or 0)

    def idle_connections(self, port: int, lane: Lane = "work", host: str = HOST) -> int:
        """Open connections to ``port`` that no request holds."""
        backend = self._backends.get((host, port, lane))
        return sum(1 for c, _ in backend.idle if c.usable) if backend is not None else 0

    def cancel(self, port: int, waiter: ConnectionWaiter, lane: Lane = "work",
               host: str = HOST) -> None:
        """``waiter`` no longer wants a connection (its client left)."""
        backend = self._backends.get((host, port, lane))
        if backend is not None:
            for entry in backend.waiters:
                if entry[0] is waiter:
                    backend.waiters.remove(entry)
                    break

    def release(self, connection: BackendConnection, *, reusable: bool,
                replace: bool = False) -> None:
        """``connection`` is free again. Not ``reusable``: it is closed; ``replace`` then
        opens another one ahead of need (after an event stream, which llama-server ends by
        closing the connection: the next stream, often the same chat's next turn, then finds
        a connection ready rather than waits for one)."""
        key = (connection.host, connection.port, connection.lane)
        backend = self._backends.get(key)
        if backend is None:
            connection.abort()
            return
        if reusable and connection.usable and not self._closed:
            backend.idle.append((connection, time.monotonic()))
        else:
            connection.abort()  # connection_lost then forgets it
            # (the closed one still counts in ``open`` until then)
            if replace and not self._closed and backend.open <= backend.limit:
                backend.open += 1
                self._spawn_connect(key, _Spare(self))
        self._dispatch(key, backend)

    def forget(self, connection: BackendConnection) -> None:
        """A connection closed: it no longer counts against its backend's cap."""
        self._connections.discard(connection)
        key = (connection.host, connection.port, connection.lane)
        backend = self._backends.get(key)
        if backend is None:
            return
        for index, (idle, _since) in enumerate(backend.idle):
            if idle is connection:
                del backend.idle[index]
                break
        backend.open -= 1
        self._dispatch(key, backend)

    def _dispatch(self, key: tuple[str, int, Lane], backend: _Backend) -> None:
        while backend.waiters:
            waiter, fresh = backend.waiters[0]
            connection = None if fresh else self._take_idle(backend)
            if connection is None and backend.open >= backend.limit:
                if fresh and backend.idle:  # make room for the fresh one
                    backend.idle.pop(0)[0].abort()
                    continue
                return
            backend.waiters.popleft()
            if connection is None:
                backend.open += 1
                self._spawn_connect(key, waiter)
            else:
                waiter.on_connection(connection)
        if not backend.idle and backend.open <= 0:
            self._backends.pop(key, None)

    def _take_idle(self, backend: _Backend) -> BackendConnection | None:
        now = time.monotonic()
        while backend.idle:
            connection, since = backend.idle.pop()  # the most recently used: still warm
            if connection.usable and now - since < self.idle_seconds:
                return connection
            connection.abort()
        return None

    def _spawn_connect(self, key: tuple[str, int, Lane], waiter: ConnectionWaiter) -> None:
        task = asyncio.get_running_loop().create_task(self._connect(key, waiter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, key: tuple[str, int, Lane], waiter: ConnectionWaiter) -> None:
        loop = asyncio.get_running_loop()
        host, port, lane = key
        connection = BackendConnection(self, key)
        try:
            # asyncio.timeout, not wait_for: no task of its own to wrap the connect, nor the
            # extra turn of the loop that waking from it costs, before the request can go.
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: connection, host, port)
        except (OSError, TimeoutError) as exc:
            backend = self._backends.setdefault(key, _Backend(self._limit(lane, None)))
            backend.open -= 1
            waiter.on_connect_failed(str(exc) or type(exc).__name__)
            self._dispatch(key, backend)
            return
        except asyncio.CancelledError:
            if connection.usable:
                connection.abort()  # connection_lost forgets it
            else:
                self._backends.setdefault(key, _Backend(self._limit(lane, None))).open -= 1
            raise
        self._connections.add(connection)
        waiter.on_connection(connection)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for backend in list(self._backends.values()):
            waiters = list(backend.waiters)
            backend.waiters.clear()
            for waiter, _fresh in waiters:
                waiter.on_connect_failed("llamactl is shutting down")
        # Busy ones too: an answer still being relayed then ends (cleanly, for a stream)
        # instead of outliving llamactl's shutdown.
        for connection in list(self._connections):
            connection.shut("llamactl is shutting down")


class _Spare:
    """The waiter of a connection opened ahead of need: it goes to the pool's idle ones."""

    def __init__(self, pool: BackendPool):
        self._pool = pool

    def on_connection(self, connection: BackendConnection) -> None:
        self._pool.release(connection, reusable=True)

    def on_connect_failed(self, error: str) -> None:
        pass  # nobody waits for it; the next request will find out for itself


def new_backend_pool() -> BackendPool:
    return BackendPool(CONNECTIONS_PER_BACKEND, CONNECT_TIMEOUT_SECONDS, IDLE_SECONDS)
