"""``X-Request-ID`` on every answer of the ASGI app, and in the log line of every answer.

A caller's own id (a proxy's, a client's) is kept when it is a plain token, so that one id
follows a request through several logs; otherwise one is made. Clients hand it back on errors
(``APIError.request_id``), so a user's report names the log line to look for.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# A caller's id is echoed into our headers and logs: only short plain tokens are taken.
_ACCEPTED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

logger = logging.getLogger("llamactl.requests")


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == HEADER and _ACCEPTED.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestIds:
    """Outermost middleware: names the request, puts the name on the answer, logs the answer
    (errors at INFO, the rest at DEBUG, so that a busy server's log stays readable)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                headers.append((HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
                status = int(message.get("status", 0))
                logger.log(logging.INFO if status >= 400 else logging.DEBUG,
                           "%s %s -> %d request_id=%s", scope.get("method", "WS"),
                           scope.get("path", ""), status, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)
