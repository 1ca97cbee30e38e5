"""What ``/api`` decides on a request's head, before anything reads its body.

FastAPI reads a route's whole body before its dependencies run: with ``authorize`` as a
dependency, a stranger's 64 MB body was read into memory before the 401. HeadChecks runs
first, on the head alone:

- a protected route with no valid credential is answered 401 at once (``Connection: close``:
  the body that may follow is never read);
- a body whose ``Content-Length`` is over the limit is answered 413 ``PAYLOAD_TOO_LARGE`` at
  once; a body without one (chunked) is counted as the app reads it, and the read that passes
  the limit raises the same 413 instead of returning the bytes.

The limit is ``server.max_body_size``; the instance proxy forwards inference requests
(images, long prompts) and takes what ``/v1`` takes.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.api.auth import PRINCIPAL_KEY, bearer_token
from llamactl.api.errors import error_response
from llamactl.errors import LlamactlError, Unauthorized
from llamactl.gateway.routing import MAX_BODY_BYTES

_PROXY = re.compile(r"^/api/instances/[^/]+/proxy(?:/|$)")
# The answer ends the connection: whatever of the body is still on its way is never read.
_CLOSE = {"Connection": "close"}


def body_limit(path: str, max_body_size: int) -> int:
    """The largest body a request to ``path`` may carry."""
    return MAX_BODY_BYTES if _PROXY.match(path) else max_body_size


def too_large(limit: int) -> HTTPException:
    """413, in the contract's shape through the app's HTTPException handler."""
    return HTTPException(413, f"Request body is larger than {limit} bytes", headers=_CLOSE)


class HeadChecks:
    def __init__(self, app: ASGIApp, *, max_body_size: int, public_paths: Collection[str],
                 prefix: str = "/api"):
        self.app = app
        self.max_body_size = max_body_size
        self.public_paths = frozenset(public_paths)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        refused = self._credential_refused(scope)
        if refused is not None:
            answer = error_response(refused.status_code, refused.code, refused.message,
                                    refused.details, {**(refused.headers or {}), **_CLOSE})
            await answer(scope, receive, send)
            return
        limit = body_limit(scope["path"], self.max_body_size)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = too_large(limit)
            answer = error_response(413, "PAYLOAD_TOO_LARGE", str(error.detail), None, _CLOSE)
            await answer(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)

    def _credential_refused(self, scope: Scope) -> LlamactlError | None:
        """Why the caller may not be here (no or a bad token), or None. The principal found
        is kept in the scope for ``authorize`` (it still checks the route's role)."""
        services = getattr(scope["app"].state, "services", None)
        auth = getattr(services, "auth", None)
        if auth is None or not auth.enabled or scope["path"] in self.public_paths:
            return None
        try:
            token = bearer_token(HTTPConnection(scope))
            if token is None:
                raise Unauthorized("Missing bearer token")
            scope[PRINCIPAL_KEY] = auth.principal_for_token(token)
        except LlamactlError as exc:
            return exc
        return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # uvicorn's parser refuses it before we are called
    return None


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive``, refusing (413) the message that takes the body past ``limit`` bytes."""
    read = 0

    async def counted_receive() -> Message:
        nonlocal read
        message = await receive()
        if message["type"] == "http.request":
            read += len(message.get("body", b""))
            if read > limit:
                raise too_large(limit)
        return message

    return counted_receive
