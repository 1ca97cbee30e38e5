"""``GET /api/events``: the ``/api/ws`` feed as a server-sent event stream.

For clients that would rather read HTTP than speak WebSocket (``curl -N``, ``EventSource``,
the Go client). Each event of the shared ``EventHub`` is one ``data:`` line holding the same
JSON message as on the WebSocket (``{"type", "timestamp", "data"}``, formatted and filtered by
``api/event_stream.py``), followed by a blank line. A comment line ``: ping`` comes after
``KEEPALIVE_INTERVAL`` seconds without a message (or ``events.ping_interval``, the
WebSocket's, when shorter), so that proxies and clients see the stream alive.
``?instances=a,b`` keeps only those instances' events, as the WebSocket's ``subscribe``
does (alerts about no instance always pass). Auth is the ``/api`` router's; the token may
come as ``?token=`` since ``EventSource`` cannot set headers.

A client that reads too slowly makes its bounded hub queue overflow: the hub drops it without
ever waiting for it, and the stream ends (after a last comment saying why, if the client
takes it within ``CLOSE_TIMEOUT``; else the connection is closed under it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llamactl.api.auth import PrincipalDep
from llamactl.api.deps import ServicesDep
from llamactl.api.event_stream import CLOSE_TIMEOUT, TOO_SLOW_REASON, encode, is_wanted
from llamactl.api.system_schemas import error_responses
from llamactl.events import EventHub, Subscription

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])

KEEPALIVE_INTERVAL = 15.0
PING = b": ping\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def parse_instances(value: str | None) -> frozenset[str] | None:
    """``?instances=a,b`` -> the filter (None: every instance). Blanks are ignored, so an
    empty value keeps only the alerts about no instance, like ``subscribe`` with ``[]``."""
    if value is None:
        return None
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def sse_message(message: dict[str, object]) -> bytes:
    return f"data: {encode(message)}\n\n".encode()


class EventSourceResponse(Response):
    """The stream for one client; a raw ASGI response, so that it can end a send that a
    stalled client blocks (a generator under StreamingResponse could not be woken there)."""

    media_type = "text/event-stream"

    def __init__(self, hub: EventHub, queue_size: int, instances: frozenset[str] | None,
                 keepalive: float = KEEPALIVE_INTERVAL, close_timeout: float = CLOSE_TIMEOUT,
                 types: frozenset[str] | None = None, only_user: str | None = None):
        self.status_code = 200
        self.background = None
        self.init_headers(STREAM_HEADERS)
        self._hub = hub
        self._queue_size = queue_size
        self._instances = instances
        self._types, self._only_user = types, only_user
        self._keepalive = keepalive
        self._close_timeout = close_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Subscribed before the headers go out: a client that has its 200 misses nothing.
        subscription = self._hub.subscribe(self._queue_size)
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            disconnected = await self._run(subscription, receive, send)
            if subscription.overflowed:
                log.warning("dropping an event stream client: %s", TOO_SLOW_REASON)
                await self._end(send, f": {TOO_SLOW_REASON}\n\n".encode())
            elif not disconnected:
                await self._end(send, b"")
        finally:
            subscription.close()

    async def _run(self, subscription: Subscription, receive: Receive, send: Send) -> bool:
        """Send events until the client goes away (True) or the subscription is dropped."""
        gone = False
        # As in api/event_stream.py: whichever part ends first ends the others.
        async with anyio.create_task_group() as group:

            async def until_done(part: Callable[[], Awaitable[object]]) -> None:
                try:
                    await part()
                finally:
                    group.cancel_scope.cancel()

            async def until_disconnect() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True

            group.start_soon(until_done, lambda: self._send_events(subscription, send))
            group.start_soon(until_done, until_disconnect)
            group.start_soon(until_done, subscription.dropped.wait)
        return gone

    async def _send_events(self, subscription: Subscription, send: Send) -> None:
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while True:
            # Counted from the last message sent, not received: events filtered out do not
            # keep the stream looking alive.
            wait = last_sent + self._keepalive - loop.time()
            if wait <= 0:
                chunk = PING
            else:
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), wait)
                except TimeoutError:
                    continue
                if not is_wanted(event, self._instances, self._types, self._only_user):
                    continue
                chunk = sse_message(event.to_json())
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            last_sent = loop.time()

    async def _end(self, send: Send, last: bytes) -> None:
        # A stalled client's last bytes wait behind everything it has not read: bounded. If
        # they do not go, the server closes the connection of the response left unfinished.
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(
                send({"type": "http.response.body", "body": last, "more_body": False}),
                self._close_timeout)


@router.get(
    "/events", summary="Events as a server-sent event stream",
    description="The messages of `/api/ws`, one JSON message per `data:` line; `: ping` "
                "comments keep the stream alive. `?token=` may carry the JWT.",
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "an event stream"},
               **error_responses(401, 403, 429)},
)
async def events(
    services: ServicesDep, principal: PrincipalDep,
    instances: Annotated[str | None, Query(
        description="comma-separated instance names: only their events (and alerts about "
                    "no instance)")] = None,
    types: Annotated[str | None, Query(
        description="comma-separated event types (such as request_completed): only those")
    ] = None,
) -> Response:
    config = services.settings.events
    only_user = principal.name if principal.role == "viewer" else None
    return EventSourceResponse(services.events, config.queue_size, parse_instances(instances),
                               keepalive=min(KEEPALIVE_INTERVAL, config.ping_interval),
                               types=parse_instances(types), only_user=only_user)
