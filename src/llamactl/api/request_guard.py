"""The ASGI side of security/origin.py's rules, and the headers every answer carries.

RequestGuard runs before anything else of the app (outermost but for SecurityHeaders): a
request it refuses never reaches auth, rate limits, a route or a WebSocket's accept. /v1 is
served before ASGI (gateway/http_protocol.py) and asks the same rules in gateway/exchange.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.api.answer_heads import HeadChanger
from llamactl.api.errors import error_document
from llamactl.gateway.errors import gateway_refusal
from llamactl.security.origin import OriginPolicy, Refusal, RequestHead, decide

NOSNIFF = (b"x-content-type-options", b"nosniff")
# HTML answers (/docs, the dashboard to come): no framing (clickjacking), no script or style
# from elsewhere, no inline script, nothing sent anywhere but here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_HTML_HEADERS = ((b"x-frame-options", b"DENY"),
                 (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def request_head(scope: Scope) -> RequestHead:
    """What the rules read, from an ASGI scope (http or websocket)."""
    scheme = str(scope.get("scheme") or "http")
    websocket = scope["type"] == "websocket"
    return RequestHead.parse(_HTTP_SCHEME.get(scheme, scheme),
                             "GET" if websocket else scope["method"], scope["path"],
                             scope["headers"], websocket=websocket)


def refusal_body(refusal: Refusal, path: str) -> bytes:
    """The contract's error shape; OpenAI's envelope under /v1 (Anthropic's on its routes)."""
    if path == "/v1" or path.startswith("/v1/"):
        return gateway_refusal(refusal).body_for(path)
    return json.dumps(error_document(refusal.message, refusal.value, refusal.details)).encode()


class RequestGuard:
    def __init__(self, app: ASGIApp, policy: OriginPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = decide(self.policy, request_head(scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        body = refusal_body(refusal, scope["path"])
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": refusal.status,
                        "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            # Refused before the handshake, with an HTTP answer (uvicorn's denial extension).
            await send({"type": "websocket.http.response.start", "status": refusal.status,
                        "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.message})


class SecurityHeaders(HeadChanger):
    """``X-Content-Type-Options: nosniff`` on every answer (errors and refusals too); on HTML
    answers also ``X-Frame-Options: DENY`` and a restrictive Content-Security-Policy."""

    def change_for(self, scope: Scope) -> Callable[[Message], Message]:
        return _secured


def _secured(message: Message) -> Message:
    return {**message, "headers": with_security_headers(message.get("headers", []))}


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    added = [NOSNIFF]
    for name, value in headers:
        if name.lower() == b"content-type" and value.lower().startswith(b"text/html"):
            added.extend(_HTML_HEADERS)
    taken = {name for name, _ in added}
    return [*(h for h in headers if h[0].lower() not in taken), *added]
