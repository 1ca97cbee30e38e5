"""The Python client for llamactl's REST API: ``Client`` (blocking) and ``AsyncClient``.

>>> from llamactl import Client
>>> client = Client("http://localhost:8080")
>>> instances = client.list_instances()

It imports nothing from the server side of the package (no FastAPI, no uvicorn), so it is
cheap to import and works against a llamactl running anywhere.
"""

from llamactl.client._async_client import AsyncClient
from llamactl.client._client import Client
from llamactl.client._events import AsyncEventStream, EventStream
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
    OperationResult,
    Resources,
    SystemInfo,
    SystemStatus,
    Token,
)
from llamactl.client._streaming import AsyncLogStream, LogStream

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
for _public in (AsyncClient, Client, AsyncEventStream, AsyncLogStream, EventStream, LogStream,
                APIError, AuthenticationError, ConflictError, ConnectionError, LlamactlError,
                NotFoundError, PermissionDeniedError, ProtocolError, RateLimitError, ServerError,
                StartFailedError, TimeoutError, ValidationError):
    _public.__module__ = "llamactl.client"
del _public
