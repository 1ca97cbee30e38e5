"""``GET /api/instances/{name}/history``: an instance's memory and CPU over the last hour, as
published in ``instance_stats_updated`` (the dashboard's instance charts draw them, then add
each new event). Kept in memory by the monitoring layer: empty after llamactl restarts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from llamactl.api.deps import ManagerDep, ServicesDep
from llamactl.api.paths import INSTANCE_PARAMETER as NAME
from llamactl.api.schemas import ERROR_RESPONSES
from llamactl.security.roles import role_route

router = APIRouter(prefix="/instances", tags=["instances"], responses=ERROR_RESPONSES)


class HistorySample(BaseModel):
    time: str = Field(description="when it was published (RFC 3339, UTC)",
                      json_schema_extra={"format": "date-time"})
    memory_usage: int = Field(description="bytes: the process and its children")
    cpu_usage: float = Field(description="percent of one core")


class InstanceHistory(BaseModel):
    name: str
    interval: float = Field(description="seconds between samples (events.stats_interval)")
    samples: list[HistorySample] = Field(description=(
        "oldest first; one per instance_stats_updated while it ran, the last hour's only"))


@router.get(f"/{NAME}/history", response_model=InstanceHistory,
            summary="Get an instance's memory and CPU over the last hour",
            openapi_extra=role_route("viewer"))
async def instance_history(name: str, manager: ManagerDep,
                           services: ServicesDep) -> dict[str, Any]:
    manager.owner(name)  # 404 for an unknown instance
    history = services.monitoring.history
    return {"name": name, "interval": history.interval,
            "samples": [sample.to_json() for sample in history.samples(name)]}
