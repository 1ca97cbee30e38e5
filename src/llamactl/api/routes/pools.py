"""``/api/pools``: the replica pools (issue 32), their members and the requests waiting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from llamactl.api.deps import ManagerDep
from llamactl.api.schemas import ERROR_RESPONSES
from llamactl.instances.models import Status
from llamactl.security.roles import role_route

router = APIRouter(prefix="/pools", tags=["pools"], responses=ERROR_RESPONSES)


class PoolMember(BaseModel):
    name: str
    status: Status
    node: str | None = Field(description="the Ray node's id it runs on; null when local")
    in_flight: int = Field(description="requests it is answering now")
    slots: int = Field(description="requests it serves at once (its parallel, else 4)")
    sleeping: bool = Field(description="asleep (sleep_after): its process runs, its model "
                                       "is unloaded until the next request")


class Pool(BaseModel):
    name: str
    min_running: int = Field(description="members kept running (pools.<name>.min_running)")
    waiting: int = Field(description="requests waiting for a member's free slot")
    members: list[PoolMember]


class PoolList(BaseModel):
    pools: list[Pool]


@router.get("", response_model=PoolList, summary="List replica pools and their members",
            openapi_extra=role_route("viewer"))
async def list_pools(manager: ManagerDep) -> dict[str, Any]:
    pools = manager.pools
    return {"pools": [pools.describe(name) for name in sorted(pools.names())]}
