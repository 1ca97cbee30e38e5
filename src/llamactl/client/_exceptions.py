"""The client's exceptions: one tree, so ``except LlamactlError`` catches everything it raises.

Our exception hierarchy::

    LlamactlError
    ├── APIError                   the server answered an error: status_code, code, details
    │   ├── BadRequestError        400 (VALIDATION_ERROR, INVALID_JSON, MODEL_NOT_FOUND, ...)
    │   ├── AuthenticationError    401 (UNAUTHORIZED, TOKEN_EXPIRED, INVALID_CREDENTIALS)
    │   ├── PermissionDeniedError  403 (FORBIDDEN)
    │   ├── NotFoundError          404 (INSTANCE_NOT_FOUND, NOT_FOUND)
    │   ├── ConflictError          409 (INSTANCE_EXISTS, INSTANCE_RUNNING, PORT_CONFLICT, ...)
    │   ├── RateLimitError         429 (RATE_LIMITED), with retry_after
    │   └── ServerError            5xx
    │       └── StartFailedError   502 START_FAILED: details hold the backend's last log lines
    ├── APIConnectionError         the server cannot be reached (also a builtin ConnectionError)
    │   └── APITimeoutError        no answer in time (also a builtin TimeoutError)
    └── ProtocolError              an answer that is not the contract's shape

This tree is the client's own: the server's ``llamactl.errors`` is a different module that the
client never imports. Errors of the libraries below (httpx, pydantic) are mapped to
these at the boundary, so callers never need to import those libraries to handle failures.

The older names stay as aliases: ``ValidationError`` (= ``BadRequestError``; not in
``__all__``, so ``import *`` does not shadow pydantic's), ``ConnectionError`` and
``TimeoutError`` (also kept out of ``__all__``, so they do not shadow the builtins).

Every exception pickles (multiprocessing, task queues): ``response`` is dropped on the way,
``headers``, ``request_id`` and the rest are kept.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "LlamactlError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "StartFailedError",
]


class LlamactlError(Exception):
    """Base of everything the client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own pickling calls cls(*args), which keyword-only fields break; the
        # httpx response (sockets, a stream) does not travel.
        state = {k: v for k, v in self.__dict__.items() if k != "response"}
        return (_rebuild, (type(self), self.message, state))


def _rebuild(cls: type[LlamactlError], message: str,
             state: dict[str, Any]) -> LlamactlError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    error.__dict__.setdefault("response", None)
    return error


class APIError(LlamactlError):
    """The server answered with the contract's ``{"error", "code", "details"}``."""

    def __init__(
        self, message: str, *, status_code: int, code: str, details: Any = None,
        headers: Mapping[str, str] | None = None, response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.details = details
        import httpx  # the client's own dependency; here only for its case-insensitive map

        # The answer's headers, case-insensitive as HTTP's are.
        self.headers: httpx.Headers = (response.headers if response is not None
                                       else httpx.Headers(dict(headers or {})))
        self.response = response
        self.request_id: str | None = self.headers.get("x-request-id")

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status_code})"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.message!r}, status_code={self.status_code}, "
                f"code={self.code!r})")


class BadRequestError(APIError):
    """400: the request was refused as invalid; ``details`` names the field."""


ValidationError = BadRequestError


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
        headers: Mapping[str, str] | None = None, retry_after: float | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, details=details,
                         headers=headers, response=response)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server (or a backend behind it) failed."""


class StartFailedError(ServerError):
    """A start waited for (``wait=True``) ended in ``failed``: ``details`` says why."""


class APIConnectionError(LlamactlError, builtins.ConnectionError):
    """The server could not be reached, or the connection dropped mid-answer (also a
    builtin ``ConnectionError``)."""


class APITimeoutError(APIConnectionError, builtins.TimeoutError):
    """The server did not answer within the timeout (also a builtin ``TimeoutError``)."""


# The names of earlier releases; not in __all__, since they shadow the builtins.
ConnectionError = APIConnectionError
TimeoutError = APITimeoutError


class ProtocolError(LlamactlError):
    """The server answered something that is not the contract's shape (wrong server?)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
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
