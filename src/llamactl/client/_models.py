"""Typed answers: pydantic models matching the contract's JSON.

Every model keeps fields it does not know (``extra="allow"``): a newer server that adds a field
must not break an older client, and ``model_dump(mode="json")`` gives back what the server sent.
Statuses and levels are plain strings for the same reason; the values the contract fixes are
listed in the field descriptions. Timestamps are parsed into aware UTC datetimes.
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
    "Model",
    "OperationResult",
    "Resources",
    "SystemInfo",
    "SystemStatus",
    "Token",
]


InstanceStatus = Literal["stopped", "starting", "running", "stopping", "restarting", "failed"]


class _Model(BaseModel):
    # Schemas are built on first use, not at import: the command line pays only for the
    # models it reads (bench/cli_startup.py).
    model_config = ConfigDict(extra="allow", defer_build=True)


class InstanceStats(_Model):
    memory_usage: int = Field(default=0, description="bytes")
    cpu_usage: float = Field(default=0.0, description="percent of one core")
    uptime: int = Field(default=0, description="seconds")


class MemoryEstimate(_Model):
    """Bytes an instance is expected to hold; vram None where it cannot be known."""

    ram: int
    vram: int | None = None


class Instance(_Model):
    name: str
    status: str = Field(description="stopped, starting, running, stopping, restarting, failed")
    model_path: str
    port: int
    pid: int | None = None
    backend: str = "llama_cpp"
    options: dict[str, Any] = Field(default_factory=dict)
    stats: InstanceStats = Field(default_factory=InstanceStats)
    auto_restart: bool | None = None
    max_restarts: int | None = None
    restart_delay: float | None = None
    on_demand_start: bool | None = None
    idle_timeout: float | None = Field(default=None, description="minutes; 0 = never")
    group: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    extra_args: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list, description="more names in /v1's model")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Ray resources it needs (cluster.engine: ray)")
    node: dict[str, str] | None = Field(
        default=None, description="{id, address} while placed on a Ray node")
    restart_count: int = 0
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime | None = None
    memory_estimate: MemoryEstimate | None = None


class InstanceUpdated(_Model):
    """The answer to an update: the instance as it now is, and whether it needs a restart
    for the change to take effect (a running instance keeps its old settings)."""

    message: str
    instance: Instance
    restart_required: bool = False


class OperationResult(_Model):
    """The answer to start, stop and restart."""

    message: str
    status: str


class BatchFailure(_Model):
    name: str
    error: str


class BatchResult(_Model):
    """start-all fills ``started``, stop-all ``stopped``."""

    message: str
    started: list[str] = Field(default_factory=list)
    stopped: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    failed: list[BatchFailure] = Field(default_factory=list)


class HealthChecks(_Model):
    process: str = Field(description="running, stopped, exited")
    port: str = Field(description="open, closed")
    response: str = Field(description="ok, loading, error, timeout, skipped")


class Health(_Model):
    status: str = Field(description="healthy, unhealthy, starting, stopped")
    checks: HealthChecks
    last_check: datetime


class LogEntry(_Model):
    timestamp: datetime
    level: str = Field(description="debug, info, warn, error")
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
    available: bool = Field(default=True, description="false while database writes fail")
    error: str | None = Field(default=None, description="why they fail")
    pending_writes: int = Field(default=0, description="changes not yet written")


class NodeResources(_Model):
    total: dict[str, float] = Field(default_factory=dict)
    available: dict[str, float] = Field(default_factory=dict)


class ClusterNode(_Model):
    """A Ray node (cluster.engine: ray) and the instances placed on it."""

    id: str
    address: str
    alive: bool
    resources: NodeResources = Field(default_factory=NodeResources)
    instances: list[str] = Field(default_factory=list)


class SystemStatus(_Model):
    version: str
    uptime: int = Field(description="seconds since llamactl started")
    instances: InstanceCounts
    resources: Resources
    storage: Storage | None = None  # absent from servers before it was added
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
    build_time: datetime | None = None
    gpus: list[Gpu] | None = Field(default=None, description="NVIDIA GPUs, when readable")


class ConfigUpdated(_Model):
    message: str
    restart_required: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


class ImportedInstance(_Model):
    backend: str
    model_path: str
    port: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    extra_args: list[str] = Field(default_factory=list)


class ImportedCommand(_Model):
    """A command line read as an instance: ``instance`` with a name added is a valid
    ``create_instance``; ``ignored`` is what llamactl sets itself or could not use."""

    instance: ImportedInstance
    ignored: list[str] = Field(default_factory=list)


class Token(_Model):
    token: str
    expires_at: datetime


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
