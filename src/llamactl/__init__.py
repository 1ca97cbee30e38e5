"""llamactl: create, run, watch and front llama.cpp model servers.

Importing ``llamactl`` gives the Python client only (``from llamactl import Client``); the
server (``llamactl.app``, FastAPI, uvicorn) is imported by ``llamactl serve``, never here.
The client itself (httpx, pydantic) is imported on first use of one of its names, so that
``llamactl.cli`` and ``llamactl.config`` do not pay for it.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llamactl.client import (
        APIError,
        AsyncClient,
        AsyncEventStream,
        AsyncLogStream,
        AuthenticationError,
        BatchFailure,
        BatchResult,
        Client,
        ConfigUpdated,
        ConflictError,
        ConnectionError,
        Event,
        EventStream,
        Gpu,
        Health,
        HealthChecks,
        Instance,
        InstanceChanges,
        InstanceCounts,
        InstanceFields,
        InstanceStats,
        InstanceUpdated,
        LlamactlError,
        LogEntry,
        LogStream,
        MemoryEstimate,
        NotFoundError,
        OperationResult,
        PermissionDeniedError,
        ProtocolError,
        RateLimitError,
        Resources,
        ServerError,
        StartFailedError,
        SystemInfo,
        SystemStatus,
        TimeoutError,
        Token,
        ValidationError,
    )

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncLogStream",
    "AuthenticationError",
    "BatchFailure",
    "BatchResult",
    "Client",
    "ConfigUpdated",
    "ConflictError",
    "ConnectionError",
    "Event",
    "EventStream",
    "Gpu",
    "Health",
    "HealthChecks",
    "Instance",
    "InstanceChanges",
    "InstanceCounts",
    "InstanceFields",
    "InstanceStats",
    "InstanceUpdated",
    "LlamactlError",
    "LogEntry",
    "LogStream",
    "MemoryEstimate",
    "NotFoundError",
    "OperationResult",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "Resources",
    "ServerError",
    "StartFailedError",
    "SystemInfo",
    "SystemStatus",
    "TimeoutError",
    "Token",
    "ValidationError",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import llamactl.client

        return getattr(llamactl.client, name)
    raise AttributeError(f"module 'llamactl' has no attribute {name!r}")
