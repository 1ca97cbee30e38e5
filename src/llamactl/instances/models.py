"""What llamactl keeps about an instance: the user's spec and the supervisor's runtime state."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

# An option's value as a backend's option table checked it (backends/*/options.py).
OptionValue = int | float | bool | str | list[str]


Status = Literal["stopped", "starting", "running", "stopping", "restarting", "failed"]
STATUSES: tuple[Status, ...] = (
    "stopped", "starting", "running", "stopping", "restarting", "failed",
)
# Statuses in which a process of ours may exist and must be watched or adopted.
ACTIVE_STATUSES: frozenset[Status] = frozenset({"starting", "running", "stopping", "restarting"})

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
# The batch operations' paths (POST /api/instances/start-all): an instance of that name could
# be created but never reached by GET, PUT or DELETE /api/instances/{name} without making
# those paths two resources at once (api/paths.py).
RESERVED_NAMES = frozenset({"start-all", "stop-all"})


def utc_now() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=8192)
def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as the contract fixes. Cached: listing a thousand
    instances formats two thousand timestamps that rarely change, and strftime is slow."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_api_key() -> str:
    return "llamactl-" + secrets.token_urlsafe(32)


class Counted:
    """Every attribute set on one of these (an instance's spec, runtime, record, a process's
    stats) counts as a change: the instance list's bytes are kept until the count moves
    (api/views.py), so that listing a thousand unchanged instances costs no walk over them.
    A set is counted whether or not the value differs: a stale list is never served."""

    changes: ClassVar[int] = 0

    def __setattr__(self, name: str, value: Any) -> None:
        Counted.changes += 1
        object.__setattr__(self, name, value)


@dataclass
class InstanceSpec(Counted):
    """The part of an instance a user sets. Lifecycle fields left as None follow the config."""

    name: str
    model_path: str
    port: int
    backend: str = "llama_cpp"
    options: dict[str, OptionValue] = field(default_factory=dict)
    auto_restart: bool | None = None
    max_restarts: int | None = None
    restart_delay: float | None = None
    on_demand_start: bool | None = None
    idle_timeout: float | None = None
    group: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    # Ray resources the backend needs where it runs (cluster.engine: ray); kept, unused, locally.
    resources: dict[str, float] = field(default_factory=dict)
    # Run in a Docker container (backends/docker.py); None: backends.<name>.docker.enabled.
    docker: bool | None = None
    # The replica pool it serves (issue 32): /v1 requests naming the pool go to a member.
    pool: str | None = None
    # Seconds idle before its server unloads its model and sleeps (its process stays); the
    # next request wakes it (llama-server's --sleep-idle-seconds). None: never.
    sleep_after: float | None = None


@dataclass
class RuntimeState(Counted):
    """What the supervisor knows of the process; persisted so it survives llamactl restarts."""

    status: Status = "stopped"
    pid: int | None = None
    pid_start_time: float | None = None  # psutil create_time(): pid reuse detection
    command: list[str] | None = None  # the argv launched, compared at adoption
    started_at: datetime | None = None
    restart_count: int = 0
    last_error: str | None = None
    serving_port: int | None = None  # the port of the running process, if any
    # Issue 33: the pull the instance waits for (created from a model not yet on disk), so
    # that a restart of llamactl links the instance to the resumed pull again.
    pull_id: str | None = None
    # Where the backend runs: {"id": Ray node id, "address": host it listens on}; None when
    # local or not placed. Not stored: found again from the named actor at adoption.
    node: dict[str, str] | None = None
    # Its server sleeps (sleep_after): as its /props last said. Not stored.
    sleeping: bool = False


@dataclass
class InstanceRecord(Counted):
    spec: InstanceSpec
    runtime: RuntimeState = field(default_factory=RuntimeState)
    api_key: str = field(default_factory=new_api_key)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    @property
    def name(self) -> str:
        return self.spec.name
