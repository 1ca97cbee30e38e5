"""``/api/system``: llamactl's status (version, uptime, instances, host resources) and the
host's facts. Both read what the background sampler last measured: no request waits."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from llamactl.api.deps import ServicesDep
from llamactl.api.system_schemas import SystemInfo, SystemStatus, error_responses
from llamactl.cluster.status import cluster_nodes

router = APIRouter(prefix="/system", tags=["system"],
                   responses=error_responses(401, 403, 429, 500))


@router.get("/status", response_model=SystemStatus, summary="Get system status and metrics")
async def system_status(services: ServicesDep) -> JSONResponse:
    status = services.monitoring.status()
    nodes = await cluster_nodes(services.manager)  # issue 18: under cluster.engine: ray
    if nodes is not None:
        status["nodes"] = nodes
    if services.ledger is not None:
        status["activity"] = services.ledger.status()
    return JSONResponse(status)


@router.get("/info", response_model=SystemInfo, summary="Get system information",
            description="Host facts and llamactl's version. `gpus` is present only when "
                        "NVIDIA GPUs can be read (NVML or nvidia-smi).")
async def system_info(services: ServicesDep) -> JSONResponse:
    return JSONResponse(services.monitoring.info())
