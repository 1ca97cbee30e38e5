"""Typed answers: pydantic models matching the contract's JSON.

Each model is its schema in the server's ``/openapi.json``, exactly (tests/test_client_types.py
walks them): the same fields, required where the server always sends them (never Optional
then), ``int`` where the server sends integers, and the statuses and levels the contract fixes
as ``Literal``. Every model keeps fields it does not know (``extra="allow"``): a newer server
that adds a field must not break an older client, and ``model_dump(mode="json")`` gives back
what the server sent. Timestamps are parsed into aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "APIKey",
    "BatchFailure",
    "BatchResult",
    "ConfigUpdated",
    "Gpu",
    "Health",
    "HealthChecks",
    "HealthStatus",
    "ImportedCommand",
    "ImportedInstance",
    "Instance",
    "InstanceChanges",
    "InstanceCounts",
    "InstanceFields",
    "InstanceStats",
    "InstanceStatus",
    "InstanceUpdated",
    "KeyCreated",
    "LogEntry",
    "LogLevel",
    "Model",
    "NodeResources",
    "OperationResult",
    "Resources",
    "Storage",
    "SystemInfo",
    "SystemStatus",
    "Token",
]


InstanceStatus = Literal["stopped", "starting", "running", "stopping", "restarting", "failed"]
HealthStatus = Literal["healthy", "unhealthy", "starting", "stopped"]
LogLevel = Literal["debug", "info", "warn", "error"]


class _Model(BaseModel):
    # Schemas are built on first use, not at import: the command line pays only for the
    # models it reads (bench/cli_startup.py).
    model_config = ConfigDict(extra="allow", defer_build=True)


class InstanceStats(_Model):
    memory_usage: int = Field(description="bytes")
    cpu_usage: float = Field(description="percent of one core")
    uptime: int = Field(description="seconds")


class MemoryEstimate(_Model):
    """Bytes an instance is expected to hold; None where it cannot be known (vLLM's RAM)."""

    ram: int | None
    vram: int | None


class InstancePull(_Model):
    """The pull an instance created from a model not yet on disk waits for."""

    id: str
    status: str
    bytes_done: int
    bytes_total: int
    error: str | None
# What an instance can be asked through /v1 (``capabilities`` of Instance and Model).
Capability = Literal["completion", "chat", "embedding", "rerank", "vision", "audio", "tools"]


class Instance(_Model):
    name: str
    status: InstanceStatus
    model_path: str
    port: int
    pid: int | None
    backend: str = "llama_cpp"
    options: dict[str, Any]
    stats: InstanceStats
    auto_restart: bool
    max_restarts: int
    restart_delay: float = Field(description="seconds")
    on_demand_start: bool
    idle_timeout: float = Field(description="minutes; 0 = never")
    group: str | None
    environment: dict[str, str]
    extra_args: list[str]
    aliases: list[str] = Field(description="more names in /v1's model")
    resources: dict[str, float] = Field(description="Ray resources it needs (cluster.engine: ray)")
    docker: bool | None = Field(description=(
        "in a Docker container (true), on the host (false), or as the backend's "
        "docker.enabled says (None)"))
    pool: str | None = Field(description="the replica pool it serves; None: none")
    sleep_after: float | None = Field(description="seconds idle before it sleeps; None: never")
    sleeping: bool = Field(description="its model is unloaded until the next request")
    node: dict[str, str] | None = Field(description="{id, address} while placed on a Ray node")
    restart_count: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    memory_estimate: MemoryEstimate | None
    context_length: int | None = Field(description=(
        "tokens: its context_size, else the model's trained context; None: unknown"))
    capabilities: list[Capability] = Field(description="what /v1 may ask of it")
    pull: InstancePull | None = Field(default=None, description=(
        "created from a model not yet on disk: its pull, until the file is there"))


class InstanceUpdated(_Model):
    """The answer to an update: the instance as it now is, and whether it needs a restart
    for the change to take effect (a running instance keeps its old settings)."""

    message: str
    instance: Instance
    restart_required: bool = False


class OperationResult(_Model):
    """The answer to start, stop and restart."""

    message: str
    status: InstanceStatus


class BatchFailure(_Model):
    name: str
    error: str


class BatchResult(_Model):
    """start-all fills ``started``, stop-all ``stopped``."""

    message: str
    started: list[str] = Field(default_factory=list)
    stopped: list[str] = Field(default_factory=list)
    skipped: list[str]
    failed: list[BatchFailure]


class HealthChecks(_Model):
    process: Literal["running", "stopped", "exited"]
    port: Literal["open", "closed"]
    response: Literal["ok", "loading", "error", "timeout", "skipped"]


class Health(_Model):
    status: HealthStatus
    checks: HealthChecks
    last_check: datetime


class StatsSample(_Model):
    time: datetime
    memory_usage: int  # bytes
    cpu_usage: float  # percent of one core


class InstanceHistory(_Model):
    """``GET /api/instances/{name}/history``: the last hour of stats, oldest first (in the
    server's memory: empty after it restarts)."""
    name: str
    interval: float
    samples: list[StatsSample]


class LogEntry(_Model):
    timestamp: datetime
    level: LogLevel
    message: str


class InstanceCounts(_Model):
    total: int
    running: int
    stopped: int
    starting: int
    stopping: int
    restarting: int
    failed: int


class Resources(_Model):
    cpu_usage: float = Field(description="percent")
    memory_usage: int = Field(description="bytes")
    memory_total: int = Field(description="bytes")
    disk_usage: float = Field(description="percent")


class Storage(_Model):
    available: bool = Field(description="false while database writes fail")
    error: str | None = Field(description="why they fail")
    pending_writes: int = Field(description="changes not yet written")


class NodeResources(_Model):
    total: dict[str, float]
    available: dict[str, float]


class ClusterNode(_Model):
    """A Ray node (cluster.engine: ray) and the instances placed on it."""

    id: str
    address: str
    alive: bool
    resources: NodeResources
    instances: list[str]


class MemoryAmounts(_Model):
    ram: int | None = Field(description="bytes; None: not limited")
    vram: int | None = Field(description="bytes; None: not limited")


class MemoryClaimed(_Model):
    ram: int = Field(description="bytes")
    vram: int = Field(description="bytes")


class MemoryStatus(_Model):
    """The memory budget, what instances claim against it, and what is free (bytes)."""

    budget: MemoryAmounts
    claimed: MemoryClaimed
    free: MemoryAmounts


class ActivityStatus(_Model):
    enabled: bool = Field(description="whether requests are kept on record")
    pending: int = Field(description="records kept in memory, not yet written")
    dropped: int = Field(description="records lost to a burst the database could not take")
    written: int = Field(description="records written since llamactl started")
    error: str | None = Field(description="why the last write of records failed, while "
                                          "it fails")


class SystemStatus(_Model):
    version: str
    uptime: int = Field(description="seconds since llamactl started")
    instances: InstanceCounts
    resources: Resources
    storage: Storage
    memory: MemoryStatus
    activity: ActivityStatus | None = None  # the request ledger (issue 30)
    nodes: list[ClusterNode] | None = None  # cluster.engine: ray only


class Gpu(_Model):
    name: str
    memory_total: int = Field(description="bytes")
    memory_used: int = Field(description="bytes")
    utilization: float = Field(description="percent")


class SystemInfo(_Model):
    hostname: str
    os: str
    arch: str = Field(description="amd64, arm64, ...")
    cpu_count: int
    memory_total: int = Field(description="bytes")
    version: str
    build_time: datetime
    gpus: list[Gpu] | None = Field(default=None, description="NVIDIA GPUs, when readable")


class ConfigUpdated(_Model):
    message: str
    restart_required: bool
    config: dict[str, Any] = Field(description="the config document, as get_config()'s")


class ImportedInstance(_Model):
    backend: str
    model_path: str
    port: int | None
    options: dict[str, Any]
    extra_args: list[str]


class ImportedCommand(_Model):
    """A command line read as an instance: ``instance`` with a name added is a valid
    ``create_instance``; ``ignored`` is what llamactl sets itself or could not use."""

    instance: ImportedInstance
    ignored: list[str]


class Token(_Model):
    token: str
    expires_at: datetime


class QuotaLimits(_Model):
    """How much a key or user may ask of /v1; None: no limit on that window."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None


class APIKey(_Model):
    """An inference API key of the /v1 gateway, as ``list_keys`` describes it: never the key
    itself, which only ``create_key``'s answer holds."""

    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    instances: list[str] | None = Field(description="the instances it may use; None: all")
    created_at: datetime
    expires_at: datetime | None = Field(description="None: never")
    last_used_at: datetime | None = Field(description="None: not used yet")
    limits: QuotaLimits | None = Field(default=None, description="quotas; None: none")
    priority: int = 0


class KeyCreated(_Model):
    """``create_key``'s answer: ``key`` is the key itself, shown this once and never again."""

    message: str
    key: str
    info: APIKey


class Model(_Model):
    """An entry of ``/v1/models``: an instance the caller may use through the gateway."""

    id: str = Field(description="the instance's name")
    object: str
    created: int = Field(description="Unix seconds")
    owned_by: str
    status: str
    aliases: list[str]
    context_length: int | None = Field(description=(
        "tokens: the instance's context_size, else the model's trained context; None: "
        "unknown"))
    capabilities: list[Capability] = Field(description=(
        "what the gateway may ask of it (a route needing another is refused: 400 "
        "unsupported_capability)"))
    members: list[str] | None = Field(default=None, description=(
        "a replica pool's members (the entry is a pool); None: an instance"))


class InstanceFields(TypedDict, total=False):
    """Optional fields of a new instance (keyword arguments of ``create_instance``); left
    out, the server assigns a port and applies the config's lifecycle defaults."""

    port: int
    options: dict[str, Any]
    backend: str
    auto_restart: bool
    max_restarts: int
    restart_delay: float
    on_demand_start: bool
    idle_timeout: float
    group: str | None
    environment: dict[str, str]
    extra_args: list[str]
    aliases: list[str]
    docker: bool | None  # run in Docker; None: the backend's docker.enabled
    pool: str | None  # the replica pool it serves
    sleep_after: float | None  # seconds idle before it sleeps


class InstanceChanges(TypedDict, total=False):
    """Keyword arguments of ``update_instance``: only the fields given are sent. ``options``
    is merged key by key (a key set to None is removed); a lifecycle field set to None
    returns to the config's default."""

    model_path: str
    port: int
    options: dict[str, Any]
    backend: str
    auto_restart: bool | None
    max_restarts: int | None
    restart_delay: float | None
    on_demand_start: bool | None
    idle_timeout: float | None
    group: str | None
    environment: dict[str, str] | None
    extra_args: list[str] | None
    aliases: list[str] | None
    docker: bool | None
    pool: str | None
    sleep_after: float | None
