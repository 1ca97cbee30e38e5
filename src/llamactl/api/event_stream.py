"""One ``/api/ws`` client: the events of the shared ``EventHub``, filtered as it asked.

Server to client, every message is ``{"type", "timestamp", "data"}``: the hub's events
(``instance_status_changed``, ``instance_stats_updated``, ``system_alert``), and
``ping`` after ``events.ping_interval`` seconds without any message (browsers cannot see
WebSocket-level pings; uvicorn sends those too), ``pong``, ``subscribed`` and ``error``
answering the client's own messages.

Client to server (optional; anything else gets an ``error`` message, never a disconnect):
``{"type": "subscribe", "instances": ["a", "b"]}`` keeps only those instances' events
(``null`` or no ``instances``: all again; alerts about no instance always pass),
``{"type": "ping"}`` (answered ``pong``), ``{"type": "pong"}`` (ignored).

A client that reads too slowly makes its bounded queue overflow: the hub drops it without ever
waiting for it, and the connection is closed with 1013 (try again later) and the reason
"too slow: event queue overflowed". Three tasks per connection (send, read, overflow watch)
in one task group: whichever ends first ends the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from llamactl.config import EventsConfig
from llamactl.events import Event, EventHub, Subscription
from llamactl.monitoring.metrics import LlamactlMetrics

log = logging.getLogger(__name__)

TOO_SLOW_CODE = 1013
TOO_SLOW_REASON = "too slow: event queue overflowed"
# A slow client's close frame queues behind everything it has not read: do not wait forever.
CLOSE_TIMEOUT = 10.0


def control_message(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A message of the feed's own (ping, pong, subscribed, error), in the events' shape."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"type": kind, "timestamp": now, "data": data}


def encode(message: dict[str, Any]) -> str:
    """A message as the feed sends it: compact JSON on one line (``/api/events`` relies on
    it: one ``data:`` line per message)."""
    return json.dumps(message, separators=(",", ":"))


def is_wanted(event: Event, instances: frozenset[str] | None,
              types: frozenset[str] | None = None, only_user: str | None = None) -> bool:
    """Whether a client subscribed to ``instances`` and ``types`` (None: all) gets
    ``event``; a viewer (``only_user``) gets only its own requests' records."""
    if types is not None and event.type not in types:
        return False
    if only_user is not None and event.type == "request_completed" and \
            event.data.get("principal") != {"kind": "user", "name": only_user}:
        return False
    if instances is None:
        return True
    name = event.data.get("name" if event.type.startswith("instance_") else "instance")
    return name is None or name in instances


def types_of(text: str) -> frozenset[str] | None:
    """The ``types`` of a ``subscribe`` message (None: every type); ValueError if bad."""
    types = json.loads(text).get("types")
    if types is None:
        return None
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ValueError('"types" must be a list of event types, or null')
    return frozenset(types)


def parse_request(text: str) -> tuple[str, Any]:
    """A client message -> ``(type, instances)``; ValueError says what is wrong with it."""
    try:
        request = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("message is not JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("type"), str):
        raise ValueError('message must be an object with a "type"')
    kind: str = request["type"]
    instances = request.get("instances")
    if kind == "subscribe" and instances is not None and (
        not isinstance(instances, list) or not all(isinstance(n, str) for n in instances)
    ):
        raise ValueError('"instances" must be a list of instance names, or null')
    if kind not in ("subscribe", "ping", "pong"):
        raise ValueError(f'unknown message type "{kind}"')
    return kind, instances


class EventStream:
    def __init__(self, websocket: WebSocket, hub: EventHub, config: EventsConfig,
                 metrics: LlamactlMetrics):
        self._ws = websocket
        self._hub = hub
        self._config = config
        self._metrics = metrics
        self.instances: frozenset[str] | None = None  # the subscription filter
        self.types: frozenset[str] | None = None
        self.only_user: str | None = None  # a viewer's: only its own request records
        self._last_sent = 0.0  # loop time of the last message sent

    async def serve(self) -> None:
        await self._ws.accept()
        subscription = self._hub.subscribe(self._config.queue_size)
        self._metrics.websocket_opened()
        try:
            await self._run(subscription)
        finally:
            subscription.close()
            self._metrics.websocket_closed()

    async def _run(self, subscription: Subscription) -> None:
        self._last_sent = asyncio.get_running_loop().time()
        # A task group (as starlette's own streaming does): its tasks end with it, and it
        # ends as one of them does, however the connection goes away or is cancelled.
        async with anyio.create_task_group() as group:

            async def until_done(part: Callable[[], Awaitable[object]]) -> None:
                try:
                    await part()
                except WebSocketDisconnect:
                    pass  # the client went away: the end of this feed, not a failure
                finally:
                    group.cancel_scope.cancel()

            group.start_soon(until_done, lambda: self._send_events(subscription))
            group.start_soon(until_done, self._read_requests)
            group.start_soon(until_done, subscription.dropped.wait)
        if subscription.overflowed:
            await self._drop_slow_client()

    async def _drop_slow_client(self) -> None:
        self._metrics.websocket_dropped()
        log.warning("dropping a WebSocket client: %s", TOO_SLOW_REASON)
        # Sending the close waits until the client has read what is queued before it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(TOO_SLOW_CODE, TOO_SLOW_REASON),
                                   CLOSE_TIMEOUT)

    async def _send_events(self, subscription: Subscription) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = self._last_sent + self._config.ping_interval - loop.time()
            if wait <= 0:
                await self._send(control_message("ping", {}))
                continue
            try:
                event = await asyncio.wait_for(subscription.queue.get(), wait)
            except TimeoutError:
                continue
            if is_wanted(event, self.instances, self.types, self.only_user):
                await self._send(event.to_json())

    async def _read_requests(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            reply = self._answer(text)
            if reply is not None:
                await self._send(reply)

    def _answer(self, text: str) -> dict[str, Any] | None:
        try:
            kind, instances = parse_request(text)
            types = types_of(text) if kind == "subscribe" else None
        except ValueError as exc:
            return control_message("error", {"message": str(exc)})
        if kind == "subscribe":
            self.instances = None if instances is None else frozenset(instances)
            self.types = types
            shown = None if self.instances is None else sorted(self.instances)
            return control_message("subscribed", {"instances": shown})
        if kind == "ping":
            return control_message("pong", {})
        return None  # a pong

    async def _send(self, message: dict[str, Any]) -> None:
        await self._ws.send_text(encode(message))
        self._last_sent = asyncio.get_running_loop().time()
