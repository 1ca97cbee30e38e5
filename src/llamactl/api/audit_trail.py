"""The audit log's middleware (issue 30): every state-changing ``/api`` request, logins too.

Innermost but one (beside RequestMetrics), so that it sees the route the router matched and
the principal ``authorize`` found (api/auth.py keeps it in the scope's state); the login
route names the user it was asked for. Calls through the operator proxy are activity
records, not changes to llamactl: they are left out here.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.activity.audit import AuditLog
from llamactl.api.request_metrics import route_template

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditTrail:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in CHANGES
                or not scope["path"].startswith("/api/") or "/proxy/" in scope["path"]):
            await self.app(scope, receive, send)
            return
        status = 500

        async def keep_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, keep_status)
        finally:
            _record(scope, status)


def _record(scope: Scope, status: int) -> None:
    services = getattr(scope["app"].state, "services", None)
    log: AuditLog | None = getattr(services, "audit", None)
    if log is None:
        return
    state: dict[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    if principal is not None:
        who: tuple[str, str | None] = (
            principal.kind, principal.key.name if principal.key is not None
            else None if principal.kind == "anonymous" else principal.name)
    else:
        who = state.get("audit_principal") or ("anonymous", None)
    params = scope.get("path_params") or {}
    target = params.get("name")
    client = scope.get("client")
    log.add(who, f"{scope['method']} {route_template(scope)}",
            target if isinstance(target, str) else None, status,
            client[0] if client else None)
