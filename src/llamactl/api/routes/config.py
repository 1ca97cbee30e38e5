"""``/api/config``: the effective configuration (secrets hidden) and partial updates of the
config file. A router of its own, so that the role it needs is declared in one place."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from llamactl.api.deps import ServicesDep
from llamactl.api.system_schemas import (
    CONFIG_PATCH_EXAMPLES,
    ConfigDocument,
    ConfigUpdated,
    error_responses,
)
from llamactl.security.roles import role_route

router = APIRouter(prefix="/config", tags=["config"])


@router.get("", response_model=ConfigDocument, summary="Get the effective configuration",
            responses=error_responses(401, 403, 429, 500))
async def get_config(services: ServicesDep) -> JSONResponse:
    return JSONResponse(services.config_editor.effective())


@router.put(
    "", response_model=ConfigUpdated, summary="Update the configuration file (admin)",
    description="A partial document, merged into the config file: mappings key by key, "
                "lists and values replaced. Validated whole (400 VALIDATION_ERROR, file "
                "untouched), the old file kept as `<file>.bak`, written atomically. A secret "
                "sent as `\"***\"` keeps its value. Takes effect at the next restart.",
    responses=error_responses(400, 401, 403, 409, 429, 500),
    openapi_extra=role_route("admin"),
)
async def update_config(
    services: ServicesDep,
    patch: Annotated[dict[str, Any], Body(examples=CONFIG_PATCH_EXAMPLES)],
) -> JSONResponse:
    config = await services.config_editor.update(patch)
    return JSONResponse(
        {"message": "Configuration updated", "restart_required": True, "config": config}
    )
