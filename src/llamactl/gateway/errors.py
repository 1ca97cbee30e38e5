"""Errors on ``/v1`` in OpenAI's envelope, so OpenAI clients raise and show them; on
Anthropic's routes (``/v1/messages*``) in Anthropic's, so its SDK raises its own typed errors
(the status codes are the same in both)."""

from __future__ import annotations

import json

from llamactl.errors import (
    CapacityExhausted,
    InstanceNotRunning,
    InsufficientMemory,
    LlamactlError,
    ModelNotFound,
    StartFailed,
    TokenExpired,
    Unauthorized,
)
from llamactl.security.origin import Refusal


class GatewayError(Exception):
    def __init__(
        self, status: int, message: str, type_: str, code: str,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.headers = headers or {}

    def body(self) -> bytes:
        return json.dumps({"error": {"message": self.message, "type": self.type,
                                     "param": None, "code": self.code}}).encode()

    def anthropic_body(self) -> bytes:
        """Anthropic's envelope: ``{"type": "error", "error": {"type", "message"}}``."""
        return json.dumps({"type": "error", "error": {
            "type": anthropic_type(self.status), "message": self.message}}).encode()

    def body_for(self, path: str) -> bytes:
        """The envelope the route's clients read: Anthropic's on /v1/messages*."""
        return self.anthropic_body() if path.startswith(ANTHROPIC_PREFIX) else self.body()


ANTHROPIC_PREFIX = "/v1/messages"
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
                    429: "rate_limit_error", 503: "overloaded_error"}


def anthropic_type(status: int) -> str:
    """Anthropic's error type for a status: its SDK picks its exception by the status alone,
    and shows the type."""
    found = _ANTHROPIC_TYPES.get(status)
    if found is not None:
        return found
    return "api_error" if status >= 500 else "invalid_request_error"


START_FAILED_MESSAGE = ("The model could not be started; its last_error and logs in "
                        "llamactl's API say why")


def model_not_found(model: str) -> GatewayError:
    return GatewayError(404, f"The model '{model}' does not exist", "invalid_request_error",
                        "model_not_found")


def wait_timeout(max_wait: float) -> GatewayError:
    """A request that waited gateway.max_wait for its model (a start, room, a pool's slot)."""
    return GatewayError(503, f"The request waited {max_wait:g} s (gateway.max_wait) for its "
                        "model and was not served", "server_error", "timeout")


def wait_failed(error: Exception, max_wait: float) -> GatewayError:
    """What a request that waited for its model is answered when the wait ends in error."""
    if isinstance(error, TimeoutError):
        return wait_timeout(max_wait)
    if isinstance(error, LlamactlError):
        return from_domain(error)
    return GatewayError(500, "Internal error", "server_error", "internal_error")


def gateway_refusal(refusal: Refusal) -> GatewayError:
    """The Origin and Host rules' 403 (security/origin.py): code ``forbidden_origin`` or
    ``forbidden_host``; 400 ``invalid_request`` for two Host headers."""
    if refusal is Refusal.DUPLICATE_HOST:
        return GatewayError(400, f"{refusal.message}: {refusal.details}",
                            "invalid_request_error", "invalid_request")
    return GatewayError(403, f"{refusal.message}: {refusal.details}", "permission_error",
                        refusal.value.lower())


def from_domain(error: LlamactlError) -> GatewayError:
    """llamactl's own errors, as an OpenAI client expects to see them."""
    if isinstance(error, TokenExpired | Unauthorized):
        return GatewayError(401, error.message, "authentication_error", "invalid_api_key")
    # Issue 27: a failed start's reason and the backend's last log lines hold absolute paths
    # and its whole command line, and any inference key may ask. They stay for /api callers
    # with a role (the instance's last_error and logs, a start's 502).
    if isinstance(error, StartFailed):
        return GatewayError(503, START_FAILED_MESSAGE, "server_error", "model_start_failed")
    if isinstance(error, ModelNotFound):
        return GatewayError(400, "The model's file is missing where it was to run",
                            "invalid_request_error", "model_not_found")
    if isinstance(error, CapacityExhausted):
        return GatewayError(503, f"{error.message} ({error.details})", "server_error",
                            "capacity_exhausted", dict(error.headers or {}))
    if isinstance(error, InstanceNotRunning):
        return GatewayError(503, error.message, "server_error", "model_not_running")
    if isinstance(error, InsufficientMemory):  # issue 20: too big for the memory budget
        return GatewayError(503, f"{error.message} ({error.details})", "server_error",
                            "insufficient_memory")
    if error.status_code == 404:
        return GatewayError(404, error.message, "invalid_request_error", "model_not_found")
    return GatewayError(error.status_code, error.message,
                        "invalid_request_error" if error.status_code < 500 else "server_error",
                        error.code.lower())
