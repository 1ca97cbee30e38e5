"""Domain errors, and the one table that turns them into the contract's HTTP answers.

Services raise these; the web layer maps them in one place (``api/errors.py``), so no route
builds an error body by hand and no error ever leaves as a stack trace.

    LlamactlError                     500 INTERNAL_ERROR
    ├── BadRequest                    400 (VALIDATION_ERROR, INVALID_JSON, MODEL_NOT_FOUND,
    │                                      MODEL_NOT_ALLOWED, MODEL_INVALID)
    ├── Unauthorized                  401 (UNAUTHORIZED, TOKEN_EXPIRED, INVALID_CREDENTIALS)
    ├── Forbidden                     403 FORBIDDEN
    ├── NotFound                      404 (NOT_FOUND, INSTANCE_NOT_FOUND)
    ├── Conflict                      409 (INSTANCE_EXISTS, PORT_CONFLICT, INSTANCE_RUNNING,
    │                                      INSTANCE_ALREADY_RUNNING, INSTANCE_NOT_RUNNING,
    │                                      NO_FREE_PORT, MODEL_IN_USE)
    ├── RateLimited                   429 RATE_LIMITED
    ├── StartFailed                   502 START_FAILED (details: the reason and last log lines)
    ├── HubUnavailable                502 HUB_UNAVAILABLE (a model pull's Hub did not answer)
    ├── InsufficientStorage           507 INSUFFICIENT_STORAGE (a pull would not fit)
    ├── CapacityExhausted             503 CAPACITY_EXHAUSTED (with Retry-After)
    ├── StorageUnavailable            503 STORAGE_UNAVAILABLE (the database cannot be written)
    └── StartupError                  not HTTP: ``llamactl serve`` cannot start
"""

from __future__ import annotations


class LlamactlError(Exception):
    """Base of every error llamactl reports on purpose."""

    status_code: int = 500
    code: str = "INTERNAL_ERROR"
    headers: dict[str, str] | None = None  # extra answer headers; never mutated

    def __init__(
        self, message: str, details: str | None = None, *, code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if headers is not None:
            self.headers = headers


class BadRequest(LlamactlError):
    status_code = 400
    code = "VALIDATION_ERROR"


class ValidationFailed(BadRequest):
    code = "VALIDATION_ERROR"


class ModelNotFound(BadRequest):
    code = "MODEL_NOT_FOUND"


class ModelNotAllowed(BadRequest):
    """A model path outside ``instances.model_dirs``."""

    code = "MODEL_NOT_ALLOWED"


class ModelInvalid(BadRequest):
    """A model file its backend cannot open: empty, text, truncated, an unsupported version."""

    code = "MODEL_INVALID"


class Unauthorized(LlamactlError):
    status_code = 401
    code = "UNAUTHORIZED"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 (read-only)


class TokenExpired(Unauthorized):
    code = "TOKEN_EXPIRED"


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"


class Forbidden(LlamactlError):
    status_code = 403
    code = "FORBIDDEN"


class RateLimited(LlamactlError):
    status_code = 429
    code = "RATE_LIMITED"


class NotFound(LlamactlError):
    status_code = 404
    code = "NOT_FOUND"


class InstanceNotFound(NotFound):
    code = "INSTANCE_NOT_FOUND"

    def __init__(self, name: str):
        super().__init__(f"Instance '{name}' not found")


class Conflict(LlamactlError):
    status_code = 409
    code = "CONFLICT"


class InstanceExists(Conflict):
    code = "INSTANCE_EXISTS"

    def __init__(self, name: str):
        super().__init__(f"Instance '{name}' already exists")


class PortConflict(Conflict):
    code = "PORT_CONFLICT"


class NoFreePort(Conflict):
    code = "NO_FREE_PORT"


class InstanceRunning(Conflict):
    code = "INSTANCE_RUNNING"


class InstanceAlreadyRunning(Conflict):
    code = "INSTANCE_ALREADY_RUNNING"


class InstanceNotRunning(Conflict):
    code = "INSTANCE_NOT_RUNNING"


class InsufficientMemory(Conflict):
    """The instance's memory estimate exceeds instances.memory_budget even with nothing else
    running (issue 20): waiting or evicting cannot help."""

    code = "INSUFFICIENT_MEMORY"


class ModelInUse(Conflict):
    """A model file an instance loads cannot be deleted (issue 33)."""

    code = "MODEL_IN_USE"


class InsufficientStorage(LlamactlError):
    """A pull that would not fit on the library's disk, refused before its first byte."""

    status_code = 507
    code = "INSUFFICIENT_STORAGE"


class HubUnavailable(LlamactlError):
    """The Hugging Face Hub (models.hub_url) refused or did not answer a pull's question."""

    status_code = 502
    code = "HUB_UNAVAILABLE"


class CapacityExhausted(LlamactlError):
    status_code = 503
    code = "CAPACITY_EXHAUSTED"


class StartFailed(LlamactlError):
    status_code = 502
    code = "START_FAILED"


class UpstreamUnavailable(LlamactlError):
    """The instance's own server did not answer (the instance proxy's 502)."""

    status_code = 502
    code = "UPSTREAM_UNAVAILABLE"


class StorageUnavailable(LlamactlError):
    """A request needs a database write and the database cannot take one (a full disk, a
    read-only file). What llamactl already did is kept in memory and written when it can."""

    status_code = 503
    code = "STORAGE_UNAVAILABLE"

    def __init__(self, reason: str):
        super().__init__(
            f"The database cannot be written: {reason}",
            "nothing was changed; llamactl keeps running instances under watch and writes "
            "pending changes once the database can take them; stop and force stop still work",
            headers={"Retry-After": "5"},
        )
        self.reason = reason


class StartupError(LlamactlError):
    """``llamactl serve`` cannot start: bad config, unusable data dir, corrupt database."""
