"""ASGI middleware for ``/api``: JSON bodies and rate limits. Pure ASGI: they run on every
request, and BaseHTTPMiddleware would cost a task and a stream copy each time.

JsonBodies: every ``/api`` body is JSON whatever its Content-Type says. ``curl -d`` sends
``application/x-www-form-urlencoded`` unless told otherwise, and FastAPI would then refuse a
well-formed JSON body as "not an object"; reading it as JSON gives the user the right answer,
or INVALID_JSON when it really is not JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.api.errors import error_response
from llamactl.security.ratelimit import Decision, FixedWindowLimiter
from llamactl.security.tokens import bearer_in

_JSON = b"application/json"
INVALID_REQUEST = 400  # the status of every validation failure (the contract's, never 422)


class JsonBodies:
    def __init__(self, app: ASGIApp, prefix: str = "/api"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"].startswith(self.prefix)
        ):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            headers.append((b"content-type", _JSON))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


# Create, start, restart, start-all and stop-all: the resource-intensive operations.
_INTENSIVE = re.compile(
    r"^/api/instances(?:/(?:start-all|stop-all)|/[^/]+/(?:start|restart))?/?$"
)


def is_intensive(method: str, path: str) -> bool:
    return method == "POST" and _INTENSIVE.match(path) is not None


class RateLimits:
    """Per-caller limits on every ``/api`` request, with the three headers on every answer.

    The caller is the user of a valid token, else the client address. Refused requests get
    429 RATE_LIMITED with Retry-After and never reach the app.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/api"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        services = getattr(scope["app"].state, "services", None)
        limits: Limits | None = getattr(services, "limits", None)
        if limits is None:
            await self.app(scope, receive, send)
            return
        limiter, key = limits.charge_for(scope)
        decision = limiter.hit(key)
        if not decision.allowed:
            limits.on_refused()
            refusal = error_response(429, "RATE_LIMITED", "Rate limit exceeded",
                                     f"retry after {decision.retry_after} s", decision.headers())
            await refusal(scope, receive, send)
            return
        refundable = limiter is limits.intensive

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                settled = decision
                if refundable and message["status"] == INVALID_REQUEST:
                    # A create or start refused as invalid used nothing: a newcomer fixing a
                    # typo must not run out of the intensive quota.
                    settled = limiter.refund(key)
                message = {**message,
                           "headers": [*message.get("headers", []), *_encoded(settled)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _encoded(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]


class Limits:
    """The two limiters and how a request picks one and names its caller."""

    def __init__(
        self, regular: FixedWindowLimiter, intensive: FixedWindowLimiter,
        caller: Callable[[str | None], str | None],
        on_refused: Callable[[], None] = lambda: None,
    ):
        self.regular = regular
        self.intensive = intensive
        self._caller = caller
        self.on_refused = on_refused

    def charge_for(self, scope: Scope) -> tuple[FixedWindowLimiter, str]:
        """The limiter that counts this request, and the caller it is counted against."""
        token = bearer_in(scope["headers"])
        user = self._caller(token)
        client = scope.get("client")
        key = f"user:{user}" if user else f"addr:{client[0] if client else 'unknown'}"
        limiter = self.intensive if is_intensive(scope["method"], scope["path"]) else self.regular
        return limiter, key


class HeadAsGet:
    """``HEAD`` on any route that answers ``GET`` (``/api`` and the dashboard): the GET's
    status and headers, no body (RFC 9110, 9.3.2). FastAPI's routes answer GET only, so a
    HEAD was 405. The app runs the GET; this ends the answer after its head, so an endless
    stream (events, followed logs) ends too: the app then sees the client as gone. /v1 is
    the gateway's, which answers HEAD itself."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "HEAD"
                or scope["path"] == "/v1" or scope["path"].startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        ended = False

        async def head_only(message: Message) -> None:
            nonlocal ended
            if ended:
                return
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                ended = True

        await self.app({**scope, "method": "GET"}, receive, head_only)
