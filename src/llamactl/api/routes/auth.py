"""``/api/auth``: login (the one route that needs no token) and refresh."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from llamactl.api.auth import PrincipalDep
from llamactl.api.schemas import ERROR_RESPONSES, Timestamp
from llamactl.instances.models import format_time
from llamactl.security.roles import role_route
from llamactl.security.service import AuthService

public = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)
router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: str = Field(min_length=1, max_length=1024, examples=["password"])


class TokenAnswer(BaseModel):
    token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."])
    expires_at: Timestamp = Field(examples=["2024-01-16T14:30:00Z"])


def _auth(request: Request) -> AuthService:
    service: AuthService = request.app.state.services.auth
    return service


@public.post("/login", response_model=TokenAnswer, summary="Log in and get a JWT")
async def login(body: LoginBody, request: Request) -> TokenAnswer:
    client = request.client.host if request.client else "unknown"
    request.state.audit_principal = ("user", body.username[:64])  # api/audit_trail.py
    token, expires = await _auth(request).login(body.username, body.password, client)
    return TokenAnswer(token=token, expires_at=format_time(expires))


@router.post("/refresh", response_model=TokenAnswer, summary="Get a new token for a valid one",
             openapi_extra=role_route("viewer"))
async def refresh(principal: PrincipalDep, request: Request) -> TokenAnswer:
    token, expires = _auth(request).refresh(principal)
    return TokenAnswer(token=token, expires_at=format_time(expires))
