"""``/v1`` served at the HTTP layer, beside ASGI rather than through it.

uvicorn's httptools protocol parses every request on llamactl's port. For a ``/v1`` request
this subclass builds a small request record of its own (a ``GatewayCycle``) and hands the
parsed request to a gateway Exchange instead of starting an ASGI task: no ASGI scope, task,
receive/send messages or middleware stack per inference request, which cost five times what
a plain reverse proxy does (bench/gateway.py; ASGI's ``send`` path alone was 15 % of
llamactl's CPU under load). Everything else, ``/api`` and WebSocket upgrades included, goes
through uvicorn and the FastAPI app unchanged, on the same connection if need be.

uvicorn's per-connection machinery is reused as is: keep-alive and its timer, pipelining
(a GatewayCycle waits in uvicorn's pipeline like any other request), flow control and graceful
shutdown, which look only at the attributes a GatewayCycle shares with uvicorn's own
RequestResponseCycle. The overridden methods are where uvicorn itself creates, feeds and
starts a request; uvicorn is pinned to the minor release they were written against
(pyproject.toml).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from llamactl.gateway.exchange import Exchange
from llamactl.gateway.routing import MAX_BODY_BYTES, body_too_large
from llamactl.gateway.service import Gateway


def gateway_protocol(app: Any) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for ``app``, whose
    ``state.services.gateway`` serves ``/v1`` once the lifespan has started."""
    return type("LlamactlHttpProtocol", (GatewayHttpProtocol,), {"llamactl_app": app})


def _v1_target(url: bytes) -> tuple[bytes, bytes] | None:
    """The raw path and query of a request target under /v1; None for any other."""
    if url.startswith(b"/v1"):
        raw_path, _, query = url.partition(b"?")
    elif url.startswith(b"http"):  # absolute-form, as a proxy may send it
        parsed = httptools.parse_url(url)
        raw_path, query = parsed.path or b"", parsed.query or b""
    else:
        return None
    return (raw_path, query) if raw_path == b"/v1" or raw_path.startswith(b"/v1/") else None


class _NoEvent:
    """uvicorn sets a cycle's ``message_event`` to wake its ASGI task; a gateway request
    has none to wake."""

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class GatewayCycle:
    """One /v1 request on a connection, as uvicorn's protocol code sees a request, and the
    client's side of its exchange (gateway.exchange.Front)."""

    __slots__ = ("body", "disconnected", "exchange", "keep_alive", "message_event",
                 "more_body", "protocol", "response_complete", "waiting_for_100_continue")

    def __init__(self, protocol: GatewayHttpProtocol, keep_alive: bool,
                 expect_100_continue: bool):
        self.protocol = protocol
        self.keep_alive = keep_alive  # a shutdown sets it false
        self.waiting_for_100_continue = expect_100_continue
        self.disconnected = False
        self.response_complete = False
        self.more_body = True
        self.body = bytearray()
        self.message_event = _NO_EVENT
        self.exchange: Exchange | None = None

    def write(self, data: bytes) -> None:
        if not self.disconnected:
            self.protocol.transport.write(data)

    def finish(self, *, reusable: bool) -> None:
        self.protocol.exchange_finished(self, reusable=reusable)


class GatewayHttpProtocol(HttpToolsProtocol):
    llamactl_app: ClassVar[Any] = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._current: GatewayCycle | None = None  # the /v1 request being answered
        self._gateway: Gateway | None = None  # once found: it lasts as long as the server
        self._idle_since = 0.0  # when the last byte came, or the last /v1 answer ended
        self._idle_check: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        # Idle means nothing received: a next request whose head is still arriving when the
        # timer fires is not idle (uvicorn's own timer is cancelled by any byte, too).
        self._idle_since = self.loop.time()
        super().data_received(data)

    # where uvicorn creates a request
    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; a /v1 request needs none, so that
        # waits until the head says which kind of request this is.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _build_scope(self) -> None:
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def on_headers_complete(self) -> None:
        target = _v1_target(self.url)
        gateway = None if target is None else self._gateway_for_request()
        if target is None or gateway is None or self._over_concurrency_limit():
            # uvicorn's own path; over the limit, that is its 503 (the same test, just below)
            self._build_scope()
            super().on_headers_complete()
            return
        raw_path, query = target
        parser = self.parser
        http_version = parser.get_http_version()
        cycle = GatewayCycle(self, http_version != "1.0" and parser.should_keep_alive(),
                             self.expect_100_continue)
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        cycle.exchange = Exchange(
            gateway, cycle, parser.get_method().decode("ascii"),
            raw_path + (b"?" + query if query else b""), path, self.headers,
            http11=http_version == "1.1", scheme=self.scheme or "http",
        )
        previous = self.cycle
        self.cycle = cycle  # type: ignore[assignment]  # uvicorn's code reads only shared parts
        if previous is None or previous.response_complete:
            self._begin(cycle)
        else:  # pipelined behind an answer still going out: uvicorn starts it after that
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if isinstance(cycle, GatewayCycle):  # a pipelined /v1 request's turn has come
            self._begin(cycle)
        else:
            super()._start_asgi_task(cycle, app)

    def _begin(self, cycle: GatewayCycle) -> None:
        self._current = cycle
        if cycle.exchange is not None and not cycle.exchange.admit():
            return  # refused on its head (origin, host, key): answered, body never read
        if cycle.more_body and cycle.waiting_for_100_continue:
            cycle.waiting_for_100_continue = False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not cycle.more_body and cycle.exchange is not None:
            cycle.exchange.start(bytes(cycle.body))

    # where uvicorn feeds a request's body
    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, GatewayCycle) or self._upgrading():
            super().on_body(body)
            return
        if cycle.response_complete:
            return
        if len(cycle.body) + len(body) > MAX_BODY_BYTES:
            cycle.body = bytearray()
            if cycle is self._current and cycle.exchange is not None:
                cycle.exchange.fail(body_too_large(), reusable=False)
            else:
                self.transport.close()
            return
        cycle.body += body  # no pause at uvicorn's high-water mark: nobody reads it but us

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if not isinstance(cycle, GatewayCycle) or self._upgrading():
            super().on_message_complete()
            return
        if cycle.response_complete or not cycle.more_body:
            return
        cycle.more_body = False
        if cycle is self._current and cycle.exchange is not None:
            cycle.exchange.start(bytes(cycle.body))
        # else: pipelined; _begin starts it when its turn comes

    # the connection
    def connection_lost(self, exc: Exception | None) -> None:
        current, self._current = self._current, None
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
        super().connection_lost(exc)
        if current is not None and current.exchange is not None:
            current.exchange.client_gone()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._current is not None and self._current.exchange is not None:
            self._current.exchange.pause_answer()  # a slow client slows the backend down

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._current is not None and self._current.exchange is not None:
            self._current.exchange.resume_answer()

    def exchange_finished(self, cycle: GatewayCycle, *, reusable: bool) -> None:
        if self._current is cycle:
            self._current = None
        cycle.response_complete = True
        cycle.exchange = None
        if not (reusable and cycle.keep_alive):
            self.transport.close()
        # What uvicorn's on_response_complete does, but for the keep-alive timeout: uvicorn
        # sets a timer after every answer and cancels it at the next request; one timer per
        # connection that looks at the time of the last answer when it fires costs less.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            waiting, app = self.pipeline.pop()
            self._start_asgi_task(waiting, app)
            return
        self._idle_since = self.loop.time()
        if self._idle_check is None:
            self._idle_check = self.loop.call_later(self.timeout_keep_alive, self._check_idle)

    def _check_idle(self) -> None:
        self._idle_check = None
        cycle = self.cycle
        if (self.transport.is_closing() or (cycle is not None and not cycle.response_complete)
                or self.timeout_keep_alive_task is not None):
            return  # closing; a request under way (its end sets this again); or uvicorn's
        idle = self.loop.time() - self._idle_since
        if idle >= self.timeout_keep_alive:
            self.transport.close()
        else:
            self._idle_check = self.loop.call_later(self.timeout_keep_alive - idle,
                                                    self._check_idle)

    # helpers
    def _over_concurrency_limit(self) -> bool:
        """uvicorn's ``limit_concurrency`` test. A /v1 request runs no task, but it holds its
        connection, so counting connections bounds the gateway's work as it does the app's."""
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def _upgrading(self) -> bool:
        return bool(self.parser.should_upgrade()) and self._should_upgrade()

    def _gateway_for_request(self) -> Gateway | None:
        """The gateway, if the /v1 request whose head was just parsed is one for it."""
        if self._upgrading():
            return None
        gateway = self._gateway
        if gateway is None:
            services = getattr(self.llamactl_app.state, "services", None)
            gateway = self._gateway = getattr(services, "gateway", None)
            if gateway is None:
                return None  # not started: the app's own /v1 answer says so
        if gateway.cors_enabled and self.parser.get_method() == b"OPTIONS" and any(
            name == b"access-control-request-method" for name, _ in self.headers
        ):
            return None  # a CORS preflight: the app's CORS middleware answers those
        return gateway
