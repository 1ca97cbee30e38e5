"""The events of ``/api/events`` (and ``/api/ws``), one model per type the server sends.

Every message is ``{"type", "timestamp", "data"}``; ``parse_event`` gives the model of its
type: ``InstanceStatusChanged``, ``InstanceStatsUpdated`` or ``SystemAlert``, each with a typed
``data``, and a plain ``Event`` (``data`` a dict) for a type this client does not know yet, so
that a newer server's events reach an older client instead of breaking its stream.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from llamactl.client._exceptions import ProtocolError
from llamactl.client._models import InstanceStats, InstanceStatus

__all__ = [
    "AlertData",
    "AnyEvent",
    "Event",
    "InstanceStatsUpdated",
    "InstanceStatusChanged",
    "RequestCompleted",
    "RequestData",
    "StatsData",
    "StatusChangeData",
    "SystemAlert",
    "parse_event",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class _Data(_Model):
    """An event's typed ``data``, still readable as the dict it was before it had types
    (``event.data["name"]``, ``event.data.get("instance")``, ``"instance" in event.data``), so
    that code written against the first client keeps working."""

    def __getitem__(self, key: str) -> Any:
        value = self.model_dump(mode="json").get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self.model_dump(mode="json").get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.model_dump(mode="json")

    def keys(self) -> list[str]:
        return list(self.model_dump(mode="json"))


_MISSING = object()


class _EventBase(_Model):
    type: str
    timestamp: datetime


class Event(_EventBase):
    """An event of a type this client has no model for: ``data`` as the server sent it."""

    data: dict[str, Any] = Field(default_factory=dict)


class StatusChangeData(_Data):
    name: str
    status: InstanceStatus
    previous_status: InstanceStatus


class InstanceStatusChanged(_EventBase):
    """An instance changed status (``data.name``, ``data.status``, ``data.previous_status``)."""

    type: Literal["instance_status_changed"]
    data: StatusChangeData


class StatsData(_Data):
    name: str
    stats: InstanceStats


class InstanceStatsUpdated(_EventBase):
    """A running instance's resource use, every ``events.stats_interval`` seconds."""

    type: Literal["instance_stats_updated"]
    data: StatsData


class AlertData(_Data):
    level: Literal["info", "warning", "error"]
    message: str
    instance: str | None = Field(default=None, description="None: about llamactl itself")


class SystemAlert(_EventBase):
    """Something an operator should hear of: a crash, a full disk, the database."""

    type: Literal["system_alert"]
    data: AlertData


class RequestData(_Data):
    """A request's record, as ``list_activity`` gives it (issue 30)."""

    id: str
    kind: str
    endpoint: str
    status: int
    model: str | None = None
    instance: str | None = None
    principal: dict[str, Any] = Field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float | None = None


class RequestCompleted(_EventBase):
    """A ``/v1`` or proxy request ended; ``data`` is its record."""

    type: Literal["request_completed"]
    data: RequestData


AnyEvent = InstanceStatusChanged | InstanceStatsUpdated | SystemAlert | RequestCompleted | Event
_BY_TYPE: dict[str, type[AnyEvent]] = {
    "instance_status_changed": InstanceStatusChanged,
    "instance_stats_updated": InstanceStatsUpdated,
    "system_alert": SystemAlert,
    "request_completed": RequestCompleted,
}
# Messages of the WebSocket feed itself, not events: answers to a client's own messages and
# its keep-alive. /api/events never sends them; ignored should one come.
CONTROL_TYPES = frozenset({"ping", "pong", "subscribed", "error"})


def parse_event(payload: str | bytes) -> AnyEvent | None:
    """The event in a message (None for a feed's own control message)."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    kind = document.get("type") if isinstance(document, dict) else None
    if not isinstance(kind, str):
        raise ProtocolError(f"not an event: {payload[:200]!r}")
    if kind in CONTROL_TYPES:
        return None
    try:
        return _BY_TYPE.get(kind, Event).model_validate(document)
    except pydantic.ValidationError:
        raise ProtocolError(f"not a {kind} event: {payload[:200]!r}") from None
