"""``/api/keys``: inference API keys for the /v1 gateway. Admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from llamactl.api.schemas import ERROR_RESPONSES, Timestamp
from llamactl.config import QuotaLimits
from llamactl.instances.models import NAME_PATTERN
from llamactl.security.key_cache import CachedKeys
from llamactl.security.roles import role_route

router = APIRouter(prefix="/keys", tags=["keys"], responses=ERROR_RESPONSES)
ADMIN = role_route("admin")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=NAME_PATTERN, examples=["my-app"])
    instances: list[str] | None = Field(
        default=None, description="instances the key may use; absent = all")
    # Not strict, unlike the rest: JSON has no datetime, so an RFC 3339 string must parse.
    expires_at: AwareDatetime | None = Field(
        default=None, strict=False, examples=["2030-01-01T00:00:00Z"],
        description="RFC 3339 with a zone; the key is refused on /v1 from then on")
    limits: QuotaLimits | None = Field(default=None, description="quotas on /v1; absent = none")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000,
                          description="higher goes first when pools queue")

    @field_validator("expires_at")
    @classmethod
    def _in_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value.astimezone(UTC).replace(microsecond=0) if value is not None else None


class KeyInfo(BaseModel):
    id: str
    name: str
    prefix: str
    instances: list[str] | None
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    limits: QuotaLimits | None = None
    priority: int = 0


class KeyUpdate(BaseModel):
    """What may change on a key; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)
    instances: list[str] | None = Field(default=None, description="null: every instance")
    limits: QuotaLimits | None = Field(default=None, description="null: no quotas")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)


class QuotaUsage(BaseModel):
    limits: dict[str, int | None] = Field(description="each window's limit; null: none")
    used: dict[str, int] = Field(description="what each window holds now")
    resets: dict[str, str] = Field(description="when each window frees (RFC 3339)",
                                   json_schema_extra={"additionalProperties": {
                                       "type": "string", "format": "date-time"}})


class KeyList(BaseModel):
    keys: list[KeyInfo]


class KeyCreated(BaseModel):
    message: str
    key: str = Field(description="the key itself: shown this once, never again")
    info: KeyInfo


def _keys(request: Request) -> CachedKeys:
    store: CachedKeys = request.app.state.services.auth.keys
    return store


@router.get("", response_model=KeyList, summary="List API keys", openapi_extra=ADMIN)
async def list_keys(request: Request) -> dict[str, Any]:
    return {"keys": [k.to_json() for k in await _keys(request).list()]}


@router.post("", status_code=201, response_model=KeyCreated, summary="Create an API key",
             openapi_extra=ADMIN)
async def create_key(body: KeyCreate, request: Request) -> JSONResponse:
    expires: datetime | None = body.expires_at
    key, plaintext = await _keys(request).create(
        body.name, body.instances, expires, priority=body.priority,
        limits=body.limits.model_dump(exclude_none=True) if body.limits else None)
    return JSONResponse({"message": "API key created; it is shown only now", "key": plaintext,
                         "info": key.to_json()}, status_code=201)


@router.put("/{name}", response_model=KeyInfo, summary="Change an API key's instances, quotas "
            "or priority", openapi_extra=ADMIN)
async def update_key(name: str, body: KeyUpdate, request: Request) -> dict[str, object]:
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        changes[field] = (value.model_dump(exclude_none=True) or None
                          if isinstance(value, QuotaLimits) else value)
    return (await _keys(request).update(name, changes)).to_json()


@router.get("/{name}/usage", response_model=QuotaUsage, summary="An API key's quota usage",
            openapi_extra=ADMIN)
async def key_usage(name: str, request: Request) -> dict[str, Any]:
    key = _keys(request).named(name)
    usage: dict[str, Any] = request.app.state.services.auth.quotas.report(
        ("key", key.name), key.limits)
    return usage


@router.delete("/{name}", summary="Revoke an API key", openapi_extra=ADMIN)
async def revoke_key(name: str, request: Request) -> dict[str, str]:
    await _keys(request).revoke(name)
    return {"message": "API key revoked"}
