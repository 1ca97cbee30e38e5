"""llamactl's front door: the asyncio protocol that accepts every connection on its port.

It parses each request head with httptools and serves ``/v1`` itself: the parsed request goes
to a gateway Exchange (gateway/exchange.py) as a ``Front``, with no ASGI scope, task or
middleware stack per inference request (ASGI cost five times what a plain reverse proxy does:
bench/gateway.py). Any other request (``/api``, the dashboard, a WebSocket upgrade, a CORS
preflight) is uvicorn's: its connection is handed over at a request boundary
(gateway/handover.py, the one seam) with the bytes read so far, and is uvicorn's from then on.

What a server owes its connections is here too: keep-alive, pipelining, flow control both
ways, ``Expect: 100-continue``, graceful shutdown (uvicorn's Server calls ``shutdown()`` on all
of ``server_state.connections``), and the limits a stranger must not get past (issue 27): a
head whole within ``server.header_timeout`` and 64 KiB (431), the keep-alive timeout, and 503
beyond ``server.max_connections``; for /api too, up to its handover.

Handing over replays bytes exactly as the client sent them. httptools gives no offsets, so a
read's ``/v1`` requests are admitted only once the read is parsed: if a non-``/v1`` head
turns up in the same read, none of them has started and the read is replayed whole (uvicorn
then answers those ``/v1`` requests through the app, gateway/outside.py). The one case with
no exact boundary (a read that begins inside a body and ends with another request's head)
ends the connection after the answers under way, as RFC 9112 lets a server do.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, ClassVar
from urllib.parse import unquote

import httptools

from llamactl.gateway.exchange import Exchange
from llamactl.gateway.front_parts import (
    BAD_REQUEST,
    HEAD_TOO_LARGE,
    MAX_HEAD_BYTES,
    TOO_MANY_CONNECTIONS,
    FrontLimits,
    V1Request,
    started_gateway,
    v1_target,
)
from llamactl.gateway.handover import hand_over
from llamactl.gateway.multipart import is_multipart
from llamactl.gateway.routing import MAX_BODY_BYTES, body_too_large
from llamactl.gateway.service import Gateway

LINGER_SECONDS = 1.0  # a refused client's bytes are read and dropped this long, then closed
_HANDOVER, _TOO_LARGE = "handover", "too large"


def front_protocol(app: Any, limits: FrontLimits) -> type[FrontProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for ``app``, whose
    ``state.services.gateway`` serves ``/v1`` once the lifespan has started."""
    return type("LlamactlFront", (FrontProtocol,), {"app": app, "limits": limits,
                                                    "gateway": None})


class _Stop(Exception):
    """Raised in a parser callback to stop parsing this read (why: ``FrontProtocol._stop``)."""


class FrontProtocol(asyncio.Protocol):
    app: ClassVar[Any] = None
    limits: ClassVar[FrontLimits]
    gateway: ClassVar[Gateway | None] = None  # found once the app has started

    transport: asyncio.Transport

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._config, self._server_state, self._app_state = config, server_state, app_state
        self._loop = _loop or asyncio.get_running_loop()
        self._keep_alive_timeout = float(config.timeout_keep_alive)
        self._parser = httptools.HttpRequestParser(self)
        self._scheme = "http"
        self.client: Any = None
        # the request being read
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0  # of the head's parsed parts
        self._head_read = 0  # bytes read while the head was incomplete
        self._expect = self._upload = False  # Expect: 100-continue; a multipart body
        self._reading: V1Request | None = None
        self._in_head = True  # from a request's first byte (or the connection's start) on
        self._in_message = False
        self._head_started = 0.0
        self._completed_in_read = False
        self._fresh: list[V1Request] = []  # /v1 requests of this read, not yet admitted
        # the bytes of the oldest request not yet admitted, from its first one: a handover's
        self._replay: list[bytes] | None = None
        self._stop = ""
        # the answers
        self._current: V1Request | None = None
        self._queue: collections.deque[V1Request] = collections.deque()
        self._idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._handover_waiting = False
        self._refused = False  # answered and closing: whatever comes is dropped
        self._shutting_down = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername")  # for the activity ledger
        if transport.get_extra_info("sslcontext") is not None:
            self._scheme = "https"
        connections = self._server_state.connections
        if len(connections) >= self.limits.max_connections:
            self._refuse(TOO_MANY_CONNECTIONS)  # never counted: the API keeps its room
            return
        connections.add(self)
        self._head_started = self._loop.time()
        self._timer = self._loop.call_later(self.limits.header_timeout, self._on_timer)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._handover_waiting:
            if self._replay is not None:
                self._replay.append(data)
            return
        if not self._in_message:
            self._replay = [data]  # a request begins at this read's first byte
        elif self._in_head and self._replay is not None:
            self._replay.append(data)
        else:
            self._replay = None  # this read begins inside a body
        self._completed_in_read = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._parser_stopped()
            return
        if self._fresh:
            self._admit_fresh()
        if self._in_head and self._in_message:
            self._head_read += len(data)
            if self._head_read > MAX_HEAD_BYTES:
                self._refuse(HEAD_TOO_LARGE)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)
        self._cancel_timer()
        self._queue.clear()
        current, self._current = self._current, None
        if current is not None:
            current.exchange.client_gone()

    def pause_writing(self) -> None:
        if self._current is not None:
            self._current.exchange.pause_answer()  # a slow client slows the backend down

    def resume_writing(self) -> None:
        if self._current is not None:
            self._current.exchange.resume_answer()

    def shutdown(self) -> None:
        """uvicorn's Server is shutting down: finish the answer under way, close the rest."""
        self._shutting_down = True
        if self._current is None:
            self.transport.close()
        else:
            self._current.keep_alive = False

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.transport.is_closing():
            raise _Stop
        self._in_message = True
        if not self._in_head:
            self._in_head = True
            self._head_started = now = self._loop.time()
            self._wake_by(now + self.limits.header_timeout)
        self._url = b""
        self._headers = []
        self._head_size = self._head_read = 0
        self._expect = self._upload = False
        if self._completed_in_read and not self._fresh:
            self._replay = None  # what came before it in this read is under way already

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        elif name == b"content-type" and is_multipart(value):
            self._upload = True  # its body streams to the backend (gateway/upload.py)
        self._headers.append((name, value))
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD_BYTES:
            self._stop = _TOO_LARGE
            raise _Stop

    def on_headers_complete(self) -> None:
        self._in_head = False
        target = v1_target(self._url)
        gateway = None if target is None else self._gateway_for_request()
        if target is None or gateway is None:
            self._stop = _HANDOVER
            raise _Stop
        parser = self._parser
        version = parser.get_http_version()
        request = V1Request(self, version != "1.0" and parser.should_keep_alive(), self._expect,
                            self._upload)
        path = target[1].decode("ascii")
        if "%" in path:
            path = unquote(path)
        request.exchange = Exchange(gateway, request, parser.get_method().decode("ascii"),
                                    target[0], path, self._headers, http11=version == "1.1",
                                    scheme=self._scheme)
        self._reading = request
        self._fresh.append(request)

    def on_body(self, body: bytes) -> None:
        request = self._reading
        if request is None or request.too_large:
            return
        size = request.size + len(body)
        if size > MAX_BODY_BYTES:
            request.too_large = True
            request.body.clear()
            if request is self._current:
                request.exchange.fail(body_too_large(), reusable=False)
            return
        request.size = size
        if request.upload and (request is self._current or request.exchange.finished):
            request.exchange.upload_piece(body)  # on to the backend as it comes
        else:
            request.body.append(body)  # no pause at a high-water mark: the limit bounds it

    def on_message_complete(self) -> None:
        self._in_message = False
        self._completed_in_read = True
        request, self._reading = self._reading, None
        if request is None:
            return
        request.complete = True
        if request is self._current and not request.too_large:
            request.body_complete()

    # requests and answers
    def _admit_fresh(self) -> None:
        """The /v1 requests whose heads this read completed, in order: begun, or queued
        behind the answer under way (pipelining); reading pauses while some wait."""
        self._replay = None  # a request still being read began after these; else not needed
        for request in self._fresh:
            if self.transport.is_closing():
                break
            if self._current is None:
                self._begin(request)
            else:
                self._queue.append(request)
                self.hold_reading(True)
        self._fresh.clear()

    def _begin(self, request: V1Request) -> None:
        self._current = request
        if request.exchange.admit():  # else refused on its head: answered, body never read
            request.begin_body()

    def request_finished(self, request: V1Request, reusable: bool) -> None:
        if self._current is request:
            self._current = None
        self._server_state.total_requests += 1
        transport = self.transport
        if not (reusable and request.keep_alive) or self._shutting_down:
            if self._in_message and request is self._reading:
                self._refuse(b"")  # its body still comes: a close now would reset the answer
            else:
                transport.close()
            return
        if transport.is_closing():
            return
        if self._queue:
            waiting = self._queue.popleft()
            if not self._queue:
                self.hold_reading(False)
            self._begin(waiting)
            return
        if self._handover_waiting:
            self._hand_over()
            return
        if not self._in_message:  # a head under way keeps its own clock
            self._idle_since = self._loop.time()
            self._wake_by(self._idle_since + self._keep_alive_timeout)

    # the connection's clock: one timer, which looks at the state when it fires
    def _on_timer(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._refused:
            self.transport.close()
            return
        if self._in_head:
            deadline = self._head_started + self.limits.header_timeout
        elif (self._current is not None or self._in_message or self._queue
              or self._handover_waiting):
            return  # an answer under way: its end sets the clock again
        else:
            deadline = self._idle_since + self._keep_alive_timeout
        if self._loop.time() >= deadline:
            self.transport.close()
        else:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _wake_by(self, deadline: float) -> None:
        """Have the timer fire by ``deadline`` (most calls find it set early enough)."""
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ends: a handover, a refusal
    def _parser_stopped(self) -> None:
        why, self._stop = self._stop, ""
        self._fresh.clear()  # not begun: replayed to uvicorn, or never answered
        if why == _HANDOVER:
            self._hand_over_when_free()
        elif self.transport.is_closing():
            return
        elif self._current is not None:
            self.transport.close()  # no room for an error answer amid another answer
        else:
            self._refuse(HEAD_TOO_LARGE if why == _TOO_LARGE else BAD_REQUEST)

    def _hand_over_when_free(self) -> None:
        if self._replay is None:  # no exact boundary to hand over at: see the docstring
            if self._current is None:
                self.transport.close()
            else:
                self._shutting_down = True  # close once the answer under way is out
            return
        self._handover_waiting = True
        if self._current is None and not self._queue:
            self._hand_over()
        else:
            self.hold_reading(True)

    def _hand_over(self) -> None:
        self._cancel_timer()
        self._server_state.connections.discard(self)
        replay = b"".join(self._replay or ())
        self._replay = None
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        hand_over(self.transport, self._config, self._server_state, self._app_state, replay)

    def _refuse(self, answer: bytes) -> None:
        """Answer and close; what the client still sends meanwhile is read and dropped, so
        that closing does not reset the connection before the answer is read."""
        self._refused = True
        self._cancel_timer()
        transport = self.transport
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = self._loop.call_later(LINGER_SECONDS, self._on_timer)

    # helpers
    def hold_reading(self, held: bool) -> None:
        """Pause (True) or resume reading: requests wait behind an answer (pipelining), or
        a form upload waits for its backend (gateway/upload.py)."""
        if held != self._paused:
            self._paused = held
            self.transport.pause_reading() if held else self.transport.resume_reading()

    def _gateway_for_request(self) -> Gateway | None:
        """The gateway, if the /v1 request whose head was just parsed is one for it."""
        parser = self._parser
        if parser.should_upgrade():
            return None
        gateway = self.gateway
        if gateway is None:  # once found, it lasts as long as the server
            gateway = type(self).gateway = started_gateway(self.app)
            if gateway is None:
                return None  # not started: the app's own /v1 answer says so
        if gateway.cors_enabled and parser.get_method() == b"OPTIONS" and any(
            name == b"access-control-request-method" for name, _ in self._headers
        ):
            return None  # a CORS preflight: the app's CORS middleware answers those
        limit = self._config.limit_concurrency
        state = self._server_state
        if limit is not None and (len(state.connections) >= limit or len(state.tasks) >= limit):
            return None  # uvicorn's limit_concurrency: its 503
        return gateway
