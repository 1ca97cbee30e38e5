"""The one place where errors become the contract's ``{"error", "code", "details"}`` answers.

Every 4xx and 5xx goes through here, FastAPI's own included: unknown routes, wrong methods,
bodies that are not JSON and failed validation (400, never FastAPI's 422 shape). Unexpected
exceptions are logged with their traceback and answered as a bare INTERNAL_ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, WebSocket, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from llamactl.errors import LlamactlError
from llamactl.instances.models import NAME_PATTERN

log = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def error_document(message: str, code: str, details: str | None = None) -> dict[str, Any]:
    """The contract's ``{"error", "code", "details"}``: every /api error is this document."""
    return {"error": message, "code": code, "details": details}


def error_response(
    status: int, code: str, message: str, details: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_document(message, code, details), status_code=status,
                        headers=headers)


class WebSocketRefused(Exception):
    """A WebSocket request refused before its handshake (auth): see ``_refuse_websocket``."""

    def __init__(self, error: LlamactlError):
        super().__init__(error.message)
        self.error = error


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WebSocketRefused, _refuse_websocket)  # type: ignore[arg-type]
    app.add_exception_handler(LlamactlError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _refuse_websocket(websocket: WebSocket, exc: WebSocketRefused) -> None:
    """The HTTP answer an /api route would give (401 or 403 in the contract's shape), where
    the server can send one instead of the handshake (uvicorn can: the ASGI denial-response
    extension); else a close with 1008 (policy violation) and the reason."""
    error = exc.error
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            error_response(error.status_code, error.code, error.message, error.details,
                           error.headers))
    else:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, error.message)


async def _domain_error(request: Request, exc: LlamactlError) -> JSONResponse:
    if exc.status_code >= 500:
        log.warning("%s %s: %s %s", request.method, request.url.path, exc.code, exc.message)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "INVALID_JSON", "Request body is not valid JSON",
                              _json_problem(errors))
    details = describe_errors(errors)
    return error_response(400, "VALIDATION_ERROR", f"Invalid request: {details.split('; ')[0]}",
                          details)


_PATTERNS_IN_WORDS = {
    NAME_PATTERN: "a name is 1 to 63 letters, digits, '.', '_' or '-', and starts with a "
                  "letter or a digit (no spaces)",
}


def describe_errors(errors: Sequence[Any]) -> str:
    """``field.path: message`` per problem, without the request's own wrapper names."""
    lines = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        where = ".".join(location) or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "string_pattern_mismatch":
            # A regular expression is no answer to a person who typed a space in a name.
            pattern = str((error.get("ctx") or {}).get("pattern"))
            message = _PATTERNS_IN_WORDS.get(pattern, message)
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def _json_problem(errors: Sequence[Any]) -> str:
    for error in errors:
        if error.get("type") == "json_invalid":
            ctx = error.get("ctx") or {}
            return str(ctx.get("error", "malformed JSON"))
    return "malformed JSON"


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "ERROR")
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope))
    return error_response(exc.status_code, code, message, None, headers or None)


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves on this request's path. Starlette's 405 names only the
    methods of the first route whose path matched, but each method of a path is a route of its
    own here (``GET /api/instances``, ``POST /api/instances``): its ``Allow`` said ``GET``.
    Asked through ``matches`` alone, which sees into included routers however FastAPI nests
    them."""
    return [method for method in _METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL
                   for route in routes)]


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "INTERNAL_ERROR", "Internal server error")
