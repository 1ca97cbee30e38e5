"""llamactl: create, run, watch and front llama.cpp model servers.

Importing ``llamactl`` gives the Python client only (``from llamactl import Client``); the
server (``llamactl.app``, FastAPI, uvicorn) is imported by ``llamactl serve``, never here.
The client itself (httpx, pydantic) is imported on first use of one of its names, so that
``llamactl.cli`` and ``llamactl.config`` do not pay for it.
"""

from typing import TYPE_CHECKING, Any

from llamactl._version import __version__

if TYPE_CHECKING:
    from llamactl.client import (
        AlertData,
        AnyEvent,
        APIConnectionError,
        APIError,
        APIKey,
        APITimeoutError,
        AsyncClient,
        AsyncEventStream,
        AsyncLogStream,
        AuthenticationError,
        BadRequestError,
        BatchFailure,
        BatchResult,
        Client,
        ClusterNode,
        ConfigUpdated,
        ConflictError,
        Event,
        EventStream,
        Gpu,
        Health,
        HealthChecks,
        HealthStatus,
        ImportedCommand,
        ImportedInstance,
        Instance,
        InstanceChanges,
        InstanceCounts,
        InstanceFields,
        InstanceStats,
        InstanceStatsUpdated,
        InstanceStatus,
        InstanceStatusChanged,
        InstanceUpdated,
        KeyCreated,
        LlamactlError,
        LogEntry,
        LogLevel,
        LogStream,
        MemoryAmounts,
        MemoryClaimed,
        MemoryEstimate,
        MemoryStatus,
        Model,
        NodeResources,
        NotFoundError,
        OperationResult,
        PermissionDeniedError,
        ProtocolError,
        RateLimitError,
        RawResponse,
        Resources,
        ServerError,
        StartFailedError,
        StatsData,
        StatusChangeData,
        Storage,
        SystemAlert,
        SystemInfo,
        SystemStatus,
        Token,
    )
    from llamactl.client import (
        ConnectionError as ConnectionError,
    )
    from llamactl.client import (
        TimeoutError as TimeoutError,
    )
    from llamactl.client import (
        ValidationError as ValidationError,
    )

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIKey",
    "APITimeoutError",
    "AlertData",
    "AnyEvent",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncLogStream",
    "AuthenticationError",
    "BadRequestError",
    "BatchFailure",
    "BatchResult",
    "Client",
    "ClusterNode",
    "ConfigUpdated",
    "ConflictError",
    "Event",
    "EventStream",
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
    "InstanceStatsUpdated",
    "InstanceStatus",
    "InstanceStatusChanged",
    "InstanceUpdated",
    "KeyCreated",
    "LlamactlError",
    "LogEntry",
    "LogLevel",
    "LogStream",
    "MemoryAmounts",
    "MemoryClaimed",
    "MemoryEstimate",
    "MemoryStatus",
    "Model",
    "NodeResources",
    "NotFoundError",
    "OperationResult",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RawResponse",
    "Resources",
    "ServerError",
    "StartFailedError",
    "StatsData",
    "StatusChangeData",
    "Storage",
    "SystemAlert",
    "SystemInfo",
    "SystemStatus",
    "Token",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in __all__ or name in ("ConnectionError", "TimeoutError", "ValidationError"):
        import llamactl.client

        return getattr(llamactl.client, name)
    raise AttributeError(f"module 'llamactl' has no attribute {name!r}")
