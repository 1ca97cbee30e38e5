"""ASGI middleware for ``/api``.

JsonBodies: every ``/api`` body is JSON whatever its Content-Type says. ``curl -d`` sends
``application/x-www-form-urlencoded`` unless told otherwise, and FastAPI would then refuse a
well-formed JSON body as "not an object"; reading it as JSON gives the user the right answer,
or INVALID_JSON when it really is not JSON.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_JSON = b"application/json"


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
