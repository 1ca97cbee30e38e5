"""``GET /api/auth/me``: who the token belongs to and the role it carries.

The dashboard shows only the buttons a role may use; a token does not carry its role (it is
looked up at each request, security/tokens.py), so a client asks here.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from llamactl.api.auth import PrincipalDep
from llamactl.api.schemas import ERROR_RESPONSES
from llamactl.security.roles import role_route

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class Me(BaseModel):
    username: str = Field(examples=["admin"])
    role: Literal["viewer", "operator", "admin"] = Field(examples=["admin"])
    kind: Literal["user", "key", "anonymous"] = Field(
        description="anonymous: authentication is off", examples=["user"])


@router.get("/me/usage", summary="The caller's own quota usage (issue 30)",
            openapi_extra=role_route("viewer"),
            description="`{limits, used, resets}`, as `GET /api/keys/{name}/usage` answers.")
async def my_usage(principal: PrincipalDep, request: Request) -> dict[str, Any]:
    auth = request.app.state.services.auth
    report: dict[str, Any] = auth.quotas.report(("user", principal.name),
                                                auth.limits_of(principal))
    return report


@router.get("/me", response_model=Me, summary="Who the caller is and its role",
            openapi_extra=role_route("viewer"))
async def me(principal: PrincipalDep) -> Me:
    return Me(username=principal.name, role=principal.role, kind=principal.kind)
