"""The Python client for llamactl's REST API: ``Client`` (blocking) and ``AsyncClient``.

>>> from llamactl import Client
>>> client = Client("http://localhost:8080")
>>> instances = client.list_instances()

It imports nothing from the server side of the package (no FastAPI, no uvicorn), so it is
cheap to import and works against a llamactl running anywhere. ``AsyncClient`` and the event streams
(asyncio, the WebSocket client) are imported when first named.
"""

from typing import TYPE_CHECKING, Any

from llamactl.client._client import Client
from llamactl.client._exceptions import (
    APIError,
    AuthenticationError,
    ConflictError,
    ConnectionError,
    LlamactlError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StartFailedError,
    TimeoutError,
    ValidationError,
)
from llamactl.client._models import (
    BatchFailure,
    BatchResult,
    ConfigUpdated,
    Event,
    Gpu,
    Health,
    HealthChecks,
    Instance,
    InstanceChanges,
    InstanceCounts,
    InstanceFields,
    InstanceStats,
    InstanceUpdated,
    LogEntry,
    MemoryEstimate,
    OperationResult,
    Resources,
    SystemInfo,
    SystemStatus,
    Token,
)
from llamactl.client._streaming import AsyncLogStream, LogStream

if TYPE_CHECKING:
    from llamactl.client._async_client import AsyncClient
    from llamactl.client._async_events import AsyncEventStream
    from llamactl.client._events import EventStream

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

# Clients, streams and exceptions report the public module, as httpx's do: tracebacks say
# ``llamactl.client.NotFoundError``, not ``llamactl.client._exceptions.NotFoundError``.
# (Not the pydantic models: pydantic resolves their annotations through their module.)
for _public in (Client, AsyncLogStream, LogStream,
                APIError, AuthenticationError, ConflictError, ConnectionError, LlamactlError,
                NotFoundError, PermissionDeniedError, ProtocolError, RateLimitError, ServerError,
                StartFailedError, TimeoutError, ValidationError):
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
