"""Answer models of ``/api/system/*`` and ``/api/config``, with the seed's examples: they
document the API (OpenAPI); the routes return plain JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llamactl.api.schemas import ErrorBody, Timestamp
from llamactl.config import Settings

_ERRORS = {
    400: "Bad request: VALIDATION_ERROR, INVALID_JSON",
    401: "UNAUTHORIZED or TOKEN_EXPIRED (when auth is on)",
    403: "FORBIDDEN: the caller's role is too low",
    409: "Conflict: CONFIG_FILE_UNKNOWN, CONFIG_FILE_INVALID",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


class InstanceCounts(BaseModel):
    total: int
    running: int
    stopped: int
    starting: int
    stopping: int
    restarting: int
    failed: int


class Resources(BaseModel):
    cpu_usage: float = Field(description="percent of the whole host")
    memory_usage: int = Field(description="bytes in use on the host (total - available)")
    memory_total: int = Field(description="bytes")
    disk_usage: float = Field(description="percent used of the data dir's file system")


class Storage(BaseModel):
    available: bool = Field(description="false while writes to the database fail")
    error: str | None = Field(description="why the last write failed, while it fails")
    pending_writes: int = Field(description="changes kept in memory, not yet written")


class ActivityStatus(BaseModel):
    enabled: bool = Field(description="whether requests are kept on record (activity.enabled)")
    pending: int = Field(description="records kept in memory, not yet written")
    dropped: int = Field(description="records lost to a burst the database could not take")
    written: int = Field(description="records written since llamactl started")
    error: str | None = Field(description="why the last write of records failed, while it "
                                          "fails")


class MemoryAmounts(BaseModel):
    ram: int | None = Field(description="bytes; null: not limited")
    vram: int | None = Field(description="bytes; null: not limited")


class MemoryClaimed(BaseModel):
    ram: int = Field(description="bytes")
    vram: int = Field(description="bytes")


class MemoryStatus(BaseModel):
    budget: MemoryAmounts = Field(description=(
        "instances.memory_budget in bytes (vram: auto resolved from the GPUs' memory)"))
    claimed: MemoryClaimed = Field(description=(
        "what instances holding memory claim, as the budget counts them: the larger of each "
        "one's estimate and its measured use"))
    free: MemoryAmounts = Field(description="budget less claimed; null where not limited")


class NodeResources(BaseModel):
    total: dict[str, float]
    available: dict[str, float]


class ClusterNode(BaseModel):
    id: str = Field(description="Ray node id")
    address: str
    alive: bool
    resources: NodeResources
    instances: list[str] = Field(description="instances placed on it")


class SystemStatus(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "version": "1.0.0", "uptime": 86400,
        "instances": {"total": 5, "running": 3, "stopped": 2, "starting": 0, "stopping": 0,
                      "restarting": 0, "failed": 0},
        "resources": {"cpu_usage": 45.2, "memory_usage": 8589934592,
                      "memory_total": 17179869184, "disk_usage": 75.5},
        "storage": {"available": True, "error": None, "pending_writes": 0},
        "memory": {"budget": {"ram": 12884901888, "vram": None},
                   "claimed": {"ram": 4563402752, "vram": 0},
                   "free": {"ram": 8321499136, "vram": None}},
    }]})

    version: str
    uptime: int = Field(description="seconds since llamactl started")
    instances: InstanceCounts
    resources: Resources
    storage: Storage
    memory: MemoryStatus
    nodes: list[ClusterNode] | None = Field(default=None, description=(
        "cluster.engine: ray only: the Ray cluster's nodes and the instances placed on each"))
    activity: ActivityStatus | None = Field(default=None, description=(
        "the ledger of requests (GET /api/activity): its backlog and what it dropped"))


class Gpu(BaseModel):
    name: str
    memory_total: int = Field(description="bytes")
    memory_used: int = Field(description="bytes")
    utilization: float = Field(description="percent")


class SystemInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "hostname": "server-01", "os": "linux", "arch": "amd64", "cpu_count": 8,
        "memory_total": 17179869184, "version": "1.0.0", "build_time": "2024-01-15T10:00:00Z",
    }]})

    hostname: str
    os: str = Field(examples=["linux"])
    arch: str = Field(examples=["amd64", "arm64"])
    cpu_count: int
    memory_total: int = Field(description="bytes")
    version: str
    build_time: Timestamp = Field(description="when this llamactl was installed (RFC 3339, UTC)")
    gpus: list[Gpu] | None = Field(
        default=None, description="NVIDIA GPUs; the key is absent when there are none")


_CONFIG_EXAMPLE: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 8080, "cors_origins": []},
    "data_dir": "/home/me/.local/share/llamactl",
    "instances": {"port_range": [8100, 8999], "auto_restart": True, "max_restarts": 3},
    "auth": {"enabled": None, "token_ttl": 86400, "secret": "***",
             "users": [{"username": "admin", "password_hash": "***", "role": "admin"}]},
    "events": {"stats_interval": 5.0, "queue_size": 256, "ping_interval": 20.0},
}


class ConfigDocument(Settings):
    """The configuration; every secret reads ``"***"``."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CONFIG_EXAMPLE]})


class ConfigUpdated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "message": "Configuration updated", "restart_required": True,
        "config": _CONFIG_EXAMPLE,
    }]})

    message: str = Field(examples=["Configuration updated"])
    restart_required: bool = Field(description="always true: a restart applies the file")
    config: ConfigDocument = Field(description="the configuration after a restart")


CONFIG_PATCH_EXAMPLES = [
    {"instances": {"max_restarts": 5, "restart_delay": 2}},
    {"rate_limit": {"regular_per_minute": 300}},
]
