"""``/v1`` requests that reach the ASGI app: the gateway itself lives in the HTTP layer
(gateway/http_protocol.py), so these are the ones it left alone: a CORS preflight (answered by
the CORS middleware outside this one when CORS is on), or the app run by some other server
than ``llamactl serve``. They get an answer in OpenAI's envelope, never the app's 404."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from llamactl.gateway.errors import GatewayError

_UNSERVED = GatewayError(
    503, "The /v1 gateway is served by llamactl's own HTTP server: run `llamactl serve`",
    "server_error", "gateway_unavailable",
)


class GatewayOutside:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        body = _UNSERVED.body()
        await send({"type": "http.response.start", "status": _UNSERVED.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
