"""Typed events and their fan-out to subscribers, each with a bounded queue.

Publishing never blocks and never waits for a subscriber: a subscriber whose queue is full is
marked overflowed and dropped, so one slow WebSocket client cannot slow llamactl or the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

EventType = Literal["instance_status_changed", "instance_stats_updated", "system_alert",
                    "request_completed", "model_pull_progress"]
AlertLevel = Literal["info", "warning", "error"]

SUBSCRIBER_QUEUE_SIZE = 256


@dataclass(frozen=True)
class Event:
    type: EventType
    data: dict[str, Any]
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "timestamp": self.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "data": self.data,
        }


class Subscription:
    def __init__(self, hub: EventHub, maxsize: int):
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False
        # Set with ``overflowed``: wakes a reader that is stuck sending to a slow client.
        self.dropped = asyncio.Event()
        self._hub = hub

    def close(self) -> None:
        self._hub.unsubscribe(self)


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def subscribe(self, maxsize: int = SUBSCRIBER_QUEUE_SIZE) -> Subscription:
        subscription = Subscription(self, maxsize)
        if self._closed:
            subscription.dropped.set()
        else:
            self._subscribers.add(subscription)
        return subscription

    def close(self) -> None:
        """llamactl is shutting down: end every feed (not as overflowed), and any new one.
        Endless streams would otherwise hold the shutdown until uvicorn's timeout."""
        self._closed = True
        for subscription in self._subscribers:
            subscription.dropped.set()
        self._subscribers.clear()

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        for subscription in list(self._subscribers):
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscription.overflowed = True
                subscription.dropped.set()
                self._subscribers.discard(subscription)

    def status_changed(self, name: str, status: str, previous: str) -> None:
        self.publish(Event("instance_status_changed",
                           {"name": name, "status": status, "previous_status": previous}))

    def stats_updated(self, name: str, stats: dict[str, Any]) -> None:
        self.publish(Event("instance_stats_updated", {"name": name, "stats": stats}))

    def alert(self, level: AlertLevel, message: str, instance: str | None = None) -> None:
        data: dict[str, Any] = {"level": level, "message": message}
        if instance is not None:
            data["instance"] = instance
        self.publish(Event("system_alert", data))
