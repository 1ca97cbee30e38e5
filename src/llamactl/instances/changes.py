"""What the supervisor is asked to create or change, as plain data.

The API validates requests with its own schemas (api/instance_requests.py) and hands the
supervisor these: the manager never sees a request body, so the API's shapes can change
without touching it, and other callers (tests, tools) need no web layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NewInstance:
    name: str
    model_path: str
    port: int | None = None  # None: the next free port of instances.port_range
    backend: str = "llama_cpp"
    options: dict[str, Any] = field(default_factory=dict)  # checked by the backend's table
    auto_restart: bool | None = None  # None: the config's default, for each lifecycle field
    max_restarts: int | None = None
    restart_delay: float | None = None
    on_demand_start: bool | None = None
    idle_timeout: float | None = None
    group: str | None = None
    environment: dict[str, str] | None = None
    extra_args: list[str] | None = None
    aliases: list[str] | None = None
    resources: dict[str, float] | None = None  # Ray resources (cluster.engine: ray)
    docker: bool | None = None  # None: the backend's docker.enabled


@dataclass(frozen=True)
class InstanceChanges:
    """An update: only the fields named in ``given`` change (a given None resets a lifecycle
    field to the config's default; an option set to None is removed)."""

    given: frozenset[str]
    name: str | None = None
    model_path: str | None = None
    port: int | None = None
    backend: str | None = None
    options: dict[str, Any] | None = None
    auto_restart: bool | None = None
    max_restarts: int | None = None
    restart_delay: float | None = None
    on_demand_start: bool | None = None
    idle_timeout: float | None = None
    group: str | None = None
    environment: dict[str, str] | None = None
    extra_args: list[str] | None = None
    aliases: list[str] | None = None
    resources: dict[str, float] | None = None
    docker: bool | None = None
