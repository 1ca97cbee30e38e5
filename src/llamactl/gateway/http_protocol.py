"""``/v1`` served at the HTTP layer, beside ASGI rather than through it.

uvicorn's httptools protocol parses every request on llamactl's port. For a ``/v1`` request
this subclass hands the parsed request to a gateway Exchange instead of starting an ASGI task:
no scope, task, receive/send messages or middleware stack per inference request, which cost
five times what a plain reverse proxy does (bench/gateway.py; ASGI's ``send`` path alone was
15 % of llamactl's CPU under load). Everything else, ``/api`` and WebSocket upgrades included,
goes through uvicorn and the FastAPI app unchanged, on the same connection if need be.

uvicorn's own per-connection machinery is reused as is: the request-response cycle object
(keep-alive, pipelining, graceful shutdown) and its flow control. The overridden methods are
the places uvicorn itself starts and feeds a request; pinning uvicorn to a minor range
(pyproject.toml) keeps them what this relies on.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from llamactl.gateway.exchange import Exchange, Gateway
from llamactl.gateway.routing import MAX_BODY_BYTES, body_too_large

_DECIDED = "llamactl.gateway"  # in the scope: the Gateway serving this request, or None


def gateway_protocol(app: Any) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for ``app``, whose
    ``state.services.gateway`` serves ``/v1`` once the lifespan has started."""
    return type("LlamactlHttpProtocol", (GatewayHttpProtocol,), {"llamactl_app": app})


class _Client:
    """The client's side of one exchange (gateway.exchange.Front)."""

    __slots__ = ("_cycle", "_protocol")

    def __init__(self, protocol: GatewayHttpProtocol, cycle: RequestResponseCycle):
        self._protocol = protocol
        self._cycle = cycle

    @property
    def keep_alive(self) -> bool:
        return self._cycle.keep_alive

    def write(self, data: bytes) -> None:
        if not self._cycle.disconnected:
            self._protocol.transport.write(data)

    def finish(self, *, reusable: bool) -> None:
        self._protocol.exchange_finished(self._cycle, reusable=reusable)


class GatewayHttpProtocol(HttpToolsProtocol):
    llamactl_app: ClassVar[Any] = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._exchange: Exchange | None = None
        self._exchange_cycle: RequestResponseCycle | None = None
        self._gateway: Gateway | None = None  # once found: it lasts as long as the server

    # where uvicorn starts a request
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        gateway = self._gateway_for(cycle)
        if gateway is None:
            super()._start_asgi_task(cycle, app)
            return
        scope = cycle.scope
        query = scope["query_string"]
        target = scope["raw_path"] + (b"?" + query if query else b"")
        exchange = Exchange(gateway, _Client(self, cycle), scope["method"], target,
                            scope["path"], list(scope["headers"]),
                            http11=scope["http_version"] == "1.1")
        self._exchange, self._exchange_cycle = exchange, cycle
        if cycle.more_body and cycle.waiting_for_100_continue:
            cycle.waiting_for_100_continue = False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not cycle.more_body:
            exchange.start(bytes(cycle.body))

    # where uvicorn feeds a request's body
    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if self._upgrading() or cycle is None or self._gateway_for(cycle) is None:
            super().on_body(body)
            return
        if cycle.response_complete:
            return
        if len(cycle.body) + len(body) > MAX_BODY_BYTES:
            cycle.body = bytearray()
            if self._exchange is not None and self._exchange_cycle is cycle:
                self._exchange.fail(body_too_large(), reusable=False)
            else:
                self.transport.close()
            return
        cycle.body += body  # no pause at uvicorn's high-water mark: nobody reads it but us

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if self._upgrading() or cycle is None or self._gateway_for(cycle) is None:
            super().on_message_complete()
            return
        if cycle.response_complete:
            return
        cycle.more_body = False
        if self._exchange is not None and self._exchange_cycle is cycle:
            self._exchange.start(bytes(cycle.body))
        # else: a pipelined request; _start_asgi_task starts it when its turn comes

    # the connection
    def connection_lost(self, exc: Exception | None) -> None:
        exchange, self._exchange, self._exchange_cycle = self._exchange, None, None
        super().connection_lost(exc)
        if exchange is not None:
            exchange.client_gone()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._exchange is not None:
            self._exchange.pause_answer()  # a slow client slows the backend's answer down

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._exchange is not None:
            self._exchange.resume_answer()

    def exchange_finished(self, cycle: RequestResponseCycle, *, reusable: bool) -> None:
        if self._exchange_cycle is cycle:
            self._exchange, self._exchange_cycle = None, None
        cycle.response_complete = True
        if not (reusable and cycle.keep_alive):
            self.transport.close()
        self.on_response_complete()  # uvicorn's: keep-alive timer, the next pipelined request

    # helpers
    def _upgrading(self) -> bool:
        return bool(self.parser.should_upgrade()) and self._should_upgrade()

    def _gateway_for(self, cycle: RequestResponseCycle) -> Gateway | None:
        scope = cast(dict[str, Any], cycle.scope)
        path: str = scope["path"]
        if not (path == "/v1" or path.startswith("/v1/")):
            return None
        if _DECIDED not in scope:
            scope[_DECIDED] = self._decide(scope)
        gateway: Gateway | None = scope[_DECIDED]
        return gateway

    def _decide(self, scope: dict[str, Any]) -> Gateway | None:
        gateway = self._gateway
        if gateway is None:
            services = getattr(self.llamactl_app.state, "services", None)
            gateway = self._gateway = getattr(services, "gateway", None)
            if gateway is None:
                return None  # not started yet: the app's own /v1 answer says so
        if scope["method"] == "OPTIONS" and gateway.cors_enabled and any(
            name == b"access-control-request-method" for name, _ in scope["headers"]
        ):
            return None  # a CORS preflight: the app's CORS middleware answers those
        return gateway
