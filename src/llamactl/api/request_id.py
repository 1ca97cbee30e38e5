"""``X-Request-ID`` on every answer of the ASGI app, and in the log line of every answer
(request_ids.py says how an id is chosen; the /v1 gateway does the same in its own layer)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Scope

from llamactl.api.answer_heads import HeadChanger
from llamactl.request_ids import HEADER, log_answer, request_id_from


def request_id_of(scope: Scope) -> str:
    return request_id_from(scope.get("headers", []))


class RequestIds(HeadChanger):
    """Outermost middleware: names the request, puts the name on the answer, logs the
    answer."""

    def change_for(self, scope: Scope) -> Callable[[Message], Message]:
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id

        def named(message: Message) -> Message:
            headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
            headers.append((HEADER, request_id.encode("ascii")))
            log_answer(scope.get("method", "WS"), scope.get("path", ""),
                       int(message.get("status", 0)), request_id)
            return {**message, "headers": headers}

        return named
