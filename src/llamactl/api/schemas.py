"""Answer models: they document the API (OpenAPI); routes return plain JSON for speed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from llamactl.instances.models import Status

# An RFC 3339 time, as the answers carry it (a string in the server's own format); the schema
# says it is a date-time, so that clients read one (tests/test_client_types.py).
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


Capability = Literal["completion", "chat", "embedding", "rerank", "vision", "audio", "tools"]


class InstanceStats(BaseModel):
    memory_usage: int = Field(description="bytes, RSS of the process tree")
    cpu_usage: float = Field(description="percent of one core")
    uptime: int = Field(description="seconds")


class MemoryEstimateBody(BaseModel):
    """What an instance is expected to hold, in bytes (issue 20). null: unknown (vLLM's RAM;
    its VRAM claim is gpu_memory_utilization of its GPUs, unknown without a readable GPU)."""

    ram: int | None = Field(examples=[4_500_000_000])
    vram: int | None = Field(examples=[0])


class InstancePull(BaseModel):
    id: str
    status: str = Field(description="queued, downloading, verifying, failed or cancelled")
    bytes_done: int
    bytes_total: int
    error: str | None


class Instance(BaseModel):
    name: str
    status: Status
    model_path: str
    port: int
    pid: int | None
    backend: str = "llama_cpp"
    options: dict[str, Any]
    stats: InstanceStats
    auto_restart: bool
    max_restarts: int
    restart_delay: float
    on_demand_start: bool
    idle_timeout: float
    group: str | None
    environment: dict[str, str]
    extra_args: list[str]
    aliases: list[str]
    resources: dict[str, float] = Field(description="Ray resources it needs (engine: ray)")
    docker: bool | None = Field(description=(
        "runs in a Docker container (true), on this host (false), or as its backend's "
        "backends.<name>.docker.enabled says (null)"))
    pool: str | None = Field(description=(
        "the replica pool it serves: /v1 requests naming the pool go to one of its members"))
    sleep_after: float | None = Field(description=(
        "seconds idle before its server sleeps (model unloaded, process kept); null: never"))
    sleeping: bool = Field(description=(
        "its server sleeps now: it claims its measured memory, and the next request wakes it"))
    node: dict[str, str] | None = Field(description="{id, address} while placed on a Ray node")
    restart_count: int
    last_error: str | None
    created_at: Timestamp = Field(examples=["2024-01-15T10:30:00Z"])
    updated_at: Timestamp = Field(examples=["2024-01-15T12:45:00Z"])
    memory_estimate: MemoryEstimateBody | None = Field(description=(
        "from the model file's GGUF header and the options; null where it cannot be known"))
    context_length: int | None = Field(description=(
        "tokens: the instance's context_size, else the model's trained context from its "
        "metadata; null where it cannot be known"), examples=[8192])
    capabilities: list[Capability] = Field(description=(
        "what it can be asked through /v1, from its options and its model's metadata; a "
        "route that needs another is refused with 400 unsupported_capability"),
        examples=[["completion", "chat", "tools"]])
    pull: InstancePull | None = Field(default=None, description=(
        "created from a model not yet on disk (issue 33): its pull, until the file is there"))


class InstanceList(BaseModel):
    instances: list[Instance]


class InstanceCreated(BaseModel):
    message: str = Field(examples=["Instance created successfully"])
    instance: Instance


class InstanceUpdated(BaseModel):
    message: str = Field(examples=["Instance updated successfully"])
    instance: Instance
    restart_required: bool = False


class Message(BaseModel):
    message: str


class OperationStarted(BaseModel):
    message: str = Field(examples=["Instance start initiated"])
    status: Status


class BatchFailure(BaseModel):
    name: str
    error: str


class StartAllResult(BaseModel):
    message: str
    started: list[str]
    skipped: list[str]
    failed: list[BatchFailure]


class StopAllResult(BaseModel):
    message: str
    stopped: list[str]
    skipped: list[str]
    failed: list[BatchFailure]


class HealthChecks(BaseModel):
    process: Literal["running", "stopped", "exited"]
    port: Literal["open", "closed"]
    response: Literal["ok", "loading", "error", "timeout", "skipped"]


class Health(BaseModel):
    status: Literal["healthy", "unhealthy", "starting", "stopped"]
    checks: HealthChecks
    last_check: Timestamp


class LogEntry(BaseModel):
    timestamp: Timestamp
    level: Literal["debug", "info", "warn", "error"]
    message: str


class LogList(BaseModel):
    logs: list[LogEntry]


class ErrorBody(BaseModel):
    error: str
    code: str
    details: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request: VALIDATION_ERROR, INVALID_JSON, MODEL_NOT_FOUND"),
        (404, "Not found: INSTANCE_NOT_FOUND"),
        (409, "Conflict"),
        (500, "INTERNAL_ERROR"),
        (503, "CAPACITY_EXHAUSTED, or STORAGE_UNAVAILABLE: the database cannot be written "
              "(Retry-After)"),
    )
}
