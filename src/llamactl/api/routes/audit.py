"""``GET /api/audit``: the audit log (issue 30), for admins: who changed what, and logins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from llamactl.activity.audit import AuditFilter
from llamactl.api.deps import ServicesDep
from llamactl.api.system_schemas import error_responses
from llamactl.errors import StorageUnavailable
from llamactl.security.roles import role_route

router = APIRouter(prefix="/audit", tags=["audit"],
                   responses=error_responses(400, 401, 403, 429, 500))
Text = Annotated[str | None, Query()]


class AuditPrincipal(BaseModel):
    kind: str = Field(description="user, key or anonymous")
    name: str | None


class AuditRecord(BaseModel):
    id: str
    time: str = Field(description="when the answer went (RFC 3339, UTC)")
    principal: AuditPrincipal
    action: str = Field(description='"<METHOD> <route template>"',
                        examples=["POST /api/instances/{name}/start"])
    target: str | None = Field(description="the instance or key named, if one was")
    status: int
    client: str | None


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next: str | None = Field(description="pass as before= for the next page; null: the last")


@router.get("", response_model=AuditPage, summary="The audit log, newest first",
            openapi_extra=role_route("admin"),
            description="Filters: `principal` (a user or key name), `action` (exactly, such "
                        "as `DELETE /api/instances/{name}`), `since`, `until` (RFC 3339), "
                        "`limit` (1 to 1000) and `before` (the previous page's `next`).")
async def list_audit(request: Request, services: ServicesDep, principal: Text = None,
                     action: Text = None, since: Text = None, until: Text = None,
                     limit: Text = None, before: Text = None) -> JSONResponse:
    if services.audit is None:
        raise StorageUnavailable("The audit log is not running")
    names = ("principal", "action", "since", "until", "limit", "before")
    query = AuditFilter.parse({name: request.query_params.get(name) for name in names})
    result: dict[str, Any] = await services.audit.page(query)
    return JSONResponse(result)
