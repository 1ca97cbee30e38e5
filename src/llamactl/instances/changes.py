"""What the supervisor is asked to create or change, as plain data.

The API validates requests with its own schemas (api/instance_requests.py) and hands the
supervisor these: the manager never sees a request body, so the API's shapes can change
without touching it, and other callers (tests, tools) need no web layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llamactl.instances.models import InstanceRecord


@dataclass(frozen=True, kw_only=True)
class _Settable:
    """The fields both a create and an update may set (one list, two uses). On a create a
    None lifecycle field takes the config's default; on an update a given None resets it."""

    port: int | None = None  # create: None is the next free port of instances.port_range
    auto_restart: bool | None = None
    max_restarts: int | None = None
    restart_delay: float | None = None
    on_demand_start: bool | None = None
    idle_timeout: float | None = None
    group: str | None = None
    environment: dict[str, str] | None = None
    extra_args: list[str] | None = None
    aliases: list[str] | None = None
    resources: dict[str, float] | None = None  # Ray resources (cluster.engine: ray)
    docker: bool | None = None  # create: None is the backend's docker.enabled
    pool: str | None = None  # the replica pool it serves (issue 32); None: none
    sleep_after: float | None = None  # seconds idle before it sleeps; None: never


@dataclass(frozen=True, kw_only=True)
class NewInstance(_Settable):
    name: str
    model_path: str
    backend: str = "llama_cpp"
    options: dict[str, Any] = field(default_factory=dict)  # checked by the backend's table


@dataclass(frozen=True, kw_only=True)
class InstanceChanges(_Settable):
    """An update: only the fields named in ``given`` change (an option set to None is
    removed)."""

    given: frozenset[str]
    name: str | None = None
    model_path: str | None = None
    backend: str | None = None
    options: dict[str, Any] | None = None

    def applier(self, options: dict[str, Any]) -> Callable[[InstanceRecord], None]:
        """What the update does to a record, ``options`` already merged and checked: applied
        to a copy first (written), then to the owner's own record."""

        def apply(record: InstanceRecord) -> None:
            spec = record.spec
            spec.options = options
            for key in ("model_path", "port", "backend", *_COPIED):
                if key in self.given:
                    setattr(spec, key, getattr(self, key))
            for key in _CONTAINERS:
                if key in self.given:
                    value = getattr(self, key)
                    setattr(spec, key, type(getattr(spec, key))(value or ()))

        return apply


_COPIED = ("auto_restart", "max_restarts", "restart_delay", "on_demand_start", "idle_timeout",
           "group", "docker", "pool", "sleep_after")
# Copied, never shared with the request: the record outlives it. None empties them.
_CONTAINERS = ("environment", "extra_args", "aliases", "resources")
