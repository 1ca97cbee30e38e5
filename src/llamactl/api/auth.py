"""The dependency every ``/api`` route gets from its router: who calls, and may they.

Applied to the whole ``/api`` router (only the login route lives outside it), so a new route
cannot forget it. A route declares the least role it needs with ``role_route(...)``; one that
declares none is open to viewers if it only reads and to admins otherwise.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from llamactl.api.errors import WebSocketRefused
from llamactl.errors import LlamactlError, Unauthorized
from llamactl.security.keys import KEY_PREFIX
from llamactl.security.roles import ROLE_KEY, Role, required_role
from llamactl.security.service import ANONYMOUS, AuthService, Principal
from llamactl.security.tokens import parse_bearer

# Where api/head_checks.py leaves the principal it found on the request's head.
PRINCIPAL_KEY = "llamactl.principal"


def bearer_token(conn: HTTPConnection) -> str | None:
    token = parse_bearer(conn.headers.get("authorization"))
    if token is not None:
        return token
    # Browsers cannot set headers on a WebSocket or an EventSource: those, and only those, may
    # pass ?token=. Anywhere else a token in the URL (kept in histories, proxy logs and
    # Referer headers) counts as no credential at all.
    if conn.scope["type"] == "websocket" or _is_event_stream(conn):
        return conn.query_params.get("token") or None
    return None


_EVENTS_PATH = "/api/events"
_LOGS_PATH = re.compile(r"^/api/instances/[^/]+/logs/?$")
_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})  # what the route's bool parses as true


def _is_event_stream(conn: HTTPConnection) -> bool:
    """A GET that answers an event stream: the events feed, or followed logs."""
    if conn.scope.get("method") != "GET":
        return False
    path: str = conn.scope["path"]
    if path.rstrip("/") == _EVENTS_PATH:
        return True
    follow = conn.query_params.get("follow", "").lower()
    return follow in _TRUE and _LOGS_PATH.match(path) is not None


def route_role(conn: HTTPConnection) -> Role:
    route = conn.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    declared: Role | None = extra.get(ROLE_KEY)
    return required_role(conn.scope.get("method", "GET"), declared)


async def authorize(conn: HTTPConnection) -> Principal:
    auth: AuthService = conn.app.state.services.auth
    if not auth.enabled:
        return ANONYMOUS
    principal = await _authorize(conn, auth)
    conn.scope.setdefault("state", {})["principal"] = principal  # for the audit log
    return principal


async def _authorize(conn: HTTPConnection, auth: AuthService) -> Principal:
    try:
        principal: Principal | None = conn.scope.get(PRINCIPAL_KEY)
        if principal is None:  # a WebSocket (HeadChecks sees HTTP requests only)
            token = bearer_token(conn)
            if token is None:
                raise Unauthorized("Missing bearer token")
            principal = auth.principal_for_token(token)
        auth.check_role(principal, route_role(conn))
    except LlamactlError as exc:
        if conn.scope["type"] == "websocket":
            raise WebSocketRefused(exc) from None
        raise
    return principal


async def authorize_scrape(conn: HTTPConnection) -> None:
    """``/metrics`` lives outside ``/api`` (where Prometheus looks) but is guarded the same
    when auth is on: any user's token, or an inference API key as a scrape token."""
    auth: AuthService = conn.app.state.services.auth
    if not auth.enabled:
        return
    token = bearer_token(conn)
    if token is None:
        raise Unauthorized("Missing bearer token")
    if token.startswith(KEY_PREFIX):
        if await auth.principal_for_new_key(token) is None:
            raise Unauthorized("Invalid API key")
        return
    auth.principal_for_token(token)


PrincipalDep = Annotated[Principal, Depends(authorize)]
