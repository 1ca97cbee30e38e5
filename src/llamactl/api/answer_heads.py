"""The one way an ASGI middleware of llamactl changes the head of an answer (its status line
and headers), for HTTP answers and for a refused WebSocket handshake's alike."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ANSWER_STARTS = ("http.response.start", "websocket.http.response.start")


def changing_heads(send: Send, change: Callable[[Message], Message]) -> Send:
    """``send``, with every answer's start message passed through ``change`` first."""

    async def sending(message: Message) -> None:
        if message["type"] in ANSWER_STARTS:
            message = change(message)
        await send(message)

    return sending


class HeadChanger:
    """An ASGI middleware that changes the head of every HTTP answer (and of a refused
    WebSocket handshake) and nothing else; a subclass says how, per request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, changing_heads(send, self.change_for(scope)))

    def change_for(self, scope: Scope) -> Callable[[Message], Message]:
        raise NotImplementedError
