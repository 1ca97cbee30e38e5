"""The Python client for llamactl's REST API: ``Client`` (blocking) and ``AsyncClient``.

>>> from llamactl import Client
>>> client = Client("http://localhost:8080")
>>> instances = client.list_instances()

It imports nothing from the server side of the package (no FastAPI, no uvicorn), so it is
cheap to import and works against a llamactl running anywhere. ``AsyncClient`` and the event streams
(asyncio, the WebSocket client) are imported when first named.
"""

from typing import TYPE_CHECKING, Any

from llamactl._version import __version__
from llamactl.client._activity_models import (
    ActivityGroup,
    ActivityPage,
    ActivityPrincipal,
    ActivityRecord,
    QuotaUsage,
)
from llamactl.client._client import Client
from llamactl.client._event_models import (
    AlertData,
    AnyEvent,
    Event,
    InstanceStatsUpdated,
    InstanceStatusChanged,
    RequestCompleted,
    RequestData,
    StatsData,
    StatusChangeData,
    SystemAlert,
)
from llamactl.client._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    LlamactlError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StartFailedError,
)
from llamactl.client._exceptions import (
    ConnectionError as ConnectionError,
)
from llamactl.client._exceptions import (
    TimeoutError as TimeoutError,
)
from llamactl.client._exceptions import (
    ValidationError as ValidationError,
)
from llamactl.client._library import LibraryModel, ModelSource, ModelSplit, PullFile, PullJob
from llamactl.client._models import (
    ActivityStatus,
    APIKey,
    BatchFailure,
    BatchResult,
    ClusterNode,
    ConfigUpdated,
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
    InstanceHistory,
    InstancePull,
    InstanceStats,
    InstanceStatus,
    InstanceUpdated,
    KeyCreated,
    LogEntry,
    LogLevel,
    MemoryAmounts,
    MemoryClaimed,
    MemoryEstimate,
    MemoryStatus,
    Model,
    NodeResources,
    OperationResult,
    QuotaLimits,
    Resources,
    StatsSample,
    Storage,
    SystemInfo,
    SystemStatus,
    Token,
)
from llamactl.client._pool_models import Pool, PoolMember
from llamactl.client._raw import RawResponse
from llamactl.client._streaming import AsyncLogStream, LogStream

if TYPE_CHECKING:
    from llamactl.client._async_client import AsyncClient
    from llamactl.client._async_events import AsyncEventStream
    from llamactl.client._events import EventStream

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIKey",
    "APITimeoutError",
    "ActivityGroup",
    "ActivityPage",
    "ActivityPrincipal",
    "ActivityRecord",
    "ActivityStatus",
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
    "InstanceHistory",
    "InstancePull",
    "InstanceStats",
    "InstanceStatsUpdated",
    "InstanceStatus",
    "InstanceStatusChanged",
    "InstanceUpdated",
    "KeyCreated",
    "LibraryModel",
    "LlamactlError",
    "LogEntry",
    "LogLevel",
    "LogStream",
    "MemoryAmounts",
    "MemoryClaimed",
    "MemoryEstimate",
    "MemoryStatus",
    "Model",
    "ModelSource",
    "ModelSplit",
    "NodeResources",
    "NotFoundError",
    "OperationResult",
    "PermissionDeniedError",
    "Pool",
    "PoolMember",
    "ProtocolError",
    "PullFile",
    "PullJob",
    "QuotaLimits",
    "QuotaUsage",
    "RateLimitError",
    "RawResponse",
    "RequestCompleted",
    "RequestData",
    "Resources",
    "ServerError",
    "StartFailedError",
    "StatsData",
    "StatsSample",
    "StatusChangeData",
    "Storage",
    "SystemAlert",
    "SystemInfo",
    "SystemStatus",
    "Token",
    "__version__",
]
# Earlier names, still importable by name; kept out of __all__ because they shadow the
# builtins (ConnectionError, TimeoutError) and pydantic's ValidationError.
ALIASES = ("ConnectionError", "TimeoutError", "ValidationError")

# Clients, streams and exceptions report the public module, as httpx's do: tracebacks say
# ``llamactl.client.NotFoundError``, not ``llamactl.client._exceptions.NotFoundError``.
# (Not the pydantic models: pydantic resolves their annotations through their module.)
for _public in (Client, AsyncLogStream, LogStream,
                APIConnectionError, APIError, APITimeoutError, AuthenticationError,
                BadRequestError, ConflictError, LlamactlError, NotFoundError,
                PermissionDeniedError, ProtocolError, RateLimitError, ServerError,
                StartFailedError):
    _public.__module__ = "llamactl.client"
del _public

# Imported when first named: the blocking client and the command line never need them.
_LAZY = {
    "AsyncClient": "llamactl.client._async_client",
    "AsyncEventStream": "llamactl.client._async_events",
    "EventStream": "llamactl.client._events",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'llamactl.client' has no attribute {name!r}")
    import importlib

    public = getattr(importlib.import_module(_LAZY[name]), name)
    public.__module__ = "llamactl.client"
    globals()[name] = public  # once is enough
    return public
