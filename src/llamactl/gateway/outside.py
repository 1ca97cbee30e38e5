"""``/v1`` requests that reach the ASGI app, served by the same gateway Exchange.

The gateway lives in llamactl's front door (gateway/http_protocol.py), before ASGI. A ``/v1``
request reaches the app only on a connection the front has handed to uvicorn (one whose
client pipelined ``/api`` and ``/v1`` requests in one read), or when the app runs under some
other server. It is answered here, more slowly but alike: the exchange writes its answer as
HTTP bytes, which are parsed back into ASGI messages. A CORS preflight never gets here: the
CORS middleware outside this one answers it. Without a gateway (the app not started by
``running_services``) the answer is a 503 in OpenAI's envelope, never the app's 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httptools
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.gateway.errors import GatewayError
from llamactl.gateway.exchange import Exchange
from llamactl.gateway.multipart import is_multipart
from llamactl.gateway.routing import MAX_BODY_BYTES, body_too_large
from llamactl.gateway.service import Gateway

_UNSERVED = GatewayError(
    503, "The /v1 gateway is served by llamactl's own HTTP server: run `llamactl serve`",
    "server_error", "gateway_unavailable",
)
_HOP_BY_HOP = (b"connection", b"transfer-encoding", b"keep-alive")


class _AsgiFront:
    """The client's side of an exchange (gateway.exchange.Front), as ASGI messages."""

    keep_alive = True  # the connection is uvicorn's to keep or close

    def __init__(self, client: Any) -> None:
        self.client = client  # for the activity ledger (gateway/activity_tap.py)
        self.messages: asyncio.Queue[Message | None] = asyncio.Queue()
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []

    def write(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def finish(self, *, reusable: bool) -> None:
        self.messages.put_nowait(None)

    def hold_reading(self, held: bool) -> None:
        pass  # the body is read as _read_upload asks for it; ASGI pauses no socket for us

    # httptools callbacks, for the answer the exchange wrote
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name not in _HOP_BY_HOP:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.messages.put_nowait({"type": "http.response.start", "headers": self._headers,
                                  "status": self._parser.get_status_code()})

    def on_body(self, body: bytes) -> None:
        self.messages.put_nowait({"type": "http.response.body", "body": body,
                                  "more_body": True})


async def serve_over_asgi(gateway: Gateway, scope: Scope, receive: Receive,
                          send: Send) -> None:
    front = _AsgiFront(scope.get("client"))
    query = scope.get("query_string", b"")
    raw_path = scope.get("raw_path") or scope["path"].encode()
    headers = list(scope["headers"])
    named = scope.get("state", {}).get("request_id")  # the app's RequestIds chose it
    if named:  # the exchange's answer and its ledger record carry the same id
        headers = [h for h in headers if h[0] != b"x-request-id"]
        headers.append((b"x-request-id", named.encode("ascii")))
    exchange = Exchange(gateway, front, scope["method"], raw_path + b"?" + query if query
                        else raw_path, scope["path"], headers,
                        http11=scope.get("http_version") == "1.1",
                        scheme=scope.get("scheme", "http"))
    if exchange.admit() and await _read_body(exchange, receive):
        watch = asyncio.get_running_loop().create_task(_client_gone(exchange, front, receive))
    else:
        watch = None
    try:
        while (message := await front.messages.get()) is not None:
            await send(message)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        exchange.client_gone()  # a no-op once the answer is complete


async def _read_body(exchange: Exchange, receive: Receive) -> bool:
    """Read the body and start the exchange; False if it was over the limit (answered)."""
    upload = any(name == b"content-type" and is_multipart(value)
                 for name, value in exchange.headers)
    if upload:  # a form upload streams on as it is read (gateway/upload.py)
        exchange.begin_upload([], ended=False)
    body = bytearray()
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            exchange.client_gone()
            return False
        piece = message.get("body", b"")
        size += len(piece)
        if size > MAX_BODY_BYTES:
            exchange.fail(body_too_large(), reusable=False)
            return False
        if upload:
            exchange.upload_piece(piece)
        else:
            body += piece
        if not message.get("more_body", False):
            exchange.upload_end() if upload else exchange.start(bytes(body))
            return True


async def _client_gone(exchange: Exchange, front: _AsgiFront, receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    exchange.client_gone()
    front.messages.put_nowait(None)


class GatewayOutside:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        services: Any = getattr(scope["app"].state, "services", None)
        gateway = getattr(services, "gateway", None)
        if gateway is not None:
            await serve_over_asgi(gateway, scope, receive, send)
            return
        body = _UNSERVED.body_for(path)
        await send({"type": "http.response.start", "status": _UNSERVED.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
