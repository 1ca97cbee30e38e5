"""The OpenAPI document as the API really answers, held to it by schemathesis
(tests/test_openapi_contract.py): validation errors are 400 in the contract's error shape,
never FastAPI's 422; every answer that the middleware and the auth dependency can give is
documented on each operation they guard (401, 403, 429, 503, ...); and the /v1 gateway,
which is served in the HTTP layer before FastAPI, is described by hand
(api/openapi_gateway.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from llamactl.api.openapi_gateway import describe_gateway

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_RETRY_AFTER = {"Retry-After": {"description": "seconds until the window resets",
                                "schema": {"type": "integer"}}}

# What any /api operation may answer besides its own results, whoever its handler is.
_API_ERRORS: tuple[tuple[int, str], ...] = (
    (400, "VALIDATION_ERROR or INVALID_JSON"),
    (401, "UNAUTHORIZED or TOKEN_EXPIRED (when auth is on)"),
    (403, "FORBIDDEN: the caller's role is too low"),
    (429, "RATE_LIMITED (with Retry-After)"),
    (500, "INTERNAL_ERROR"),
    (503, "the service cannot answer now (STORAGE_UNAVAILABLE)"),
)
_LOGIN_ERRORS: tuple[tuple[int, str], ...] = (
    (400, "VALIDATION_ERROR or INVALID_JSON"),
    (401, "INVALID_CREDENTIALS: the same answer for a wrong user or password"),
    (429, "RATE_LIMITED: too many failed logins from this address (with Retry-After)"),
    (500, "INTERNAL_ERROR"),
    (503, "the service cannot answer now (STORAGE_UNAVAILABLE)"),
)
_METRICS_ERRORS: tuple[tuple[int, str], ...] = (
    (401, "UNAUTHORIZED (when auth is on): a user's token or an inference key"),
    (500, "INTERNAL_ERROR"),
)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            _replace_422(schema)
            _document_common_errors(schema)
            _describe_proxy(schema)
            describe_gateway(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _replace_422(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", _error("VALIDATION_ERROR or INVALID_JSON"))
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _error(description: str, status: int = 0) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description,
                              "content": {"application/json": {"schema": _ERROR_REF}}}
    if status == 429:
        answer["headers"] = _RETRY_AFTER
    return answer


def _document_common_errors(schema: dict[str, Any]) -> None:
    """The answers of the layers around the handlers, on every operation they guard: the rate
    limits (RateLimits), the auth dependency on the /api router, the contract's 404 for an
    unknown name, the error handlers' 500, storage that cannot be written (503), and a body
    over the limit (413, api/head_checks.py)."""
    for path, operations in schema.get("paths", {}).items():
        if path == "/api/auth/login":
            common = _LOGIN_ERRORS
        elif path.startswith("/api/"):
            common = _API_ERRORS
        elif path == "/metrics":
            common = _METRICS_ERRORS
        else:
            continue
        if "{name}" in path:
            common = (*common, (404, "INSTANCE_NOT_FOUND or NOT_FOUND: no such name"))
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in common:
                responses.setdefault(str(status), _error(description, status))
            if "429" in responses:
                responses["429"].setdefault("headers", _RETRY_AFTER)
            if "requestBody" in operation and path.startswith("/api/"):  # HeadChecks
                responses.setdefault("413", _error(
                    "PAYLOAD_TOO_LARGE: the body is over server.max_body_size"))


def _describe_proxy(schema: dict[str, Any]) -> None:
    """The operator proxy relays whatever the instance answers, any status and any body: a
    404 may be llamactl's INSTANCE_NOT_FOUND or llama-server's own "File Not Found"."""
    for operation in schema.get("paths", {}).get(
            "/api/instances/{name}/proxy/{path}", {}).values():
        responses = operation["responses"]
        responses.pop("200", None)
        responses["409"] = _error("INSTANCE_NOT_RUNNING")
        responses["502"] = _error("UPSTREAM_UNAVAILABLE: the instance did not answer")
        for answer in responses.values():
            answer.pop("content", None)
            answer["description"] += "; or the instance's own answer with this status"
        responses["default"] = {"description": "the instance's own answer, relayed as it is"}
