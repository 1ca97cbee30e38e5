"""The one way an ASGI middleware of llamactl changes the head of an answer (its status line
and headers), for HTTP answers and for a refused WebSocket handshake's alike."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Send

ANSWER_STARTS = ("http.response.start", "websocket.http.response.start")


def changing_heads(send: Send, change: Callable[[Message], Message]) -> Send:
    """``send``, with every answer's start message passed through ``change`` first."""

    async def sending(message: Message) -> None:
        if message["type"] in ANSWER_STARTS:
            message = change(message)
        await send(message)

    return sending
