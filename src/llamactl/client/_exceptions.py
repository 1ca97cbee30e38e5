"""The client's exceptions: one tree, so ``except LlamactlError`` catches everything it raises.

Our exception hierarchy::

    LlamactlError
    ├── APIError                   the server answered an error: status_code, code, details
    │   ├── ValidationError        400 (VALIDATION_ERROR, INVALID_JSON, MODEL_NOT_FOUND, ...)
    │   ├── AuthenticationError    401 (UNAUTHORIZED, TOKEN_EXPIRED, INVALID_CREDENTIALS)
    │   ├── PermissionDeniedError  403 (FORBIDDEN)
    │   ├── NotFoundError          404 (INSTANCE_NOT_FOUND, NOT_FOUND)
    │   ├── ConflictError          409 (INSTANCE_EXISTS, INSTANCE_RUNNING, PORT_CONFLICT, ...)
    │   ├── RateLimitError         429 (RATE_LIMITED), with retry_after
    │   └── ServerError            5xx
    │       └── StartFailedError   502 START_FAILED: details hold the backend's last log lines
    ├── ConnectionError            the server cannot be reached (also a builtin ConnectionError)
    ├── TimeoutError               no answer in time (also a builtin TimeoutError)
    └── ProtocolError              an answer that is not the contract's shape

This tree is the client's own: the server's ``llamactl.errors`` is a different module that the
client never imports. Errors of the libraries below (httpx, websockets, pydantic) are mapped to
these at the boundary, so callers never need to import those libraries to handle failures.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConflictError",
    "ConnectionError",
    "LlamactlError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "StartFailedError",
    "TimeoutError",
    "ValidationError",
]


class LlamactlError(Exception):
    """Base of everything the client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIError(LlamactlError):
    """The server answered with the contract's ``{"error", "code", "details"}``."""

    def __init__(
        self, message: str, *, status_code: int, code: str, details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.details = details
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status_code})"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.message!r}, status_code={self.status_code}, "
                f"code={self.code!r})")


class ValidationError(APIError):
    """400: the request was refused as invalid; ``details`` names the field."""


class AuthenticationError(APIError):
    """401: no token, a bad or expired one, or wrong credentials."""


class PermissionDeniedError(APIError):
    """403: the user's role is too low for the operation."""


class NotFoundError(APIError):
    """404: no such instance (or route)."""


class ConflictError(APIError):
    """409: the operation does not fit the current state (exists, running, port taken...)."""


class RateLimitError(APIError):
    """429: over the per-minute limit; ``retry_after`` is in seconds when the server said."""

    def __init__(
        self, message: str, *, status_code: int, code: str, details: Any = None,
        headers: dict[str, str] | None = None, retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, details=details,
                         headers=headers)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server (or a backend behind it) failed."""


class StartFailedError(ServerError):
    """A start waited for (``wait=True``) ended in ``failed``: ``details`` says why."""


class ConnectionError(LlamactlError, builtins.ConnectionError):
    """The server could not be reached, or the connection dropped mid-answer.

    Also a builtin ``ConnectionError``, so shadowing the builtin name by
    ``from llamactl import *`` changes nothing for code that catches it.
    """


class TimeoutError(LlamactlError, builtins.TimeoutError):
    """The server did not answer within the timeout (also a builtin ``TimeoutError``)."""


class ProtocolError(LlamactlError):
    """The server answered something that is not the contract's shape (wrong server?)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_class(status_code: int, code: str) -> type[APIError]:
    """The exception class for an error answer: by code where one is special, else status."""
    if code == "START_FAILED":
        return StartFailedError
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIError)
