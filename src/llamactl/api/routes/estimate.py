"""``POST /api/backends/{backend}/estimate``: the memory a model file and options would take,
without an instance (issue 20), so a form can show it as the user types. It answers for the
backends that estimate from a model file (``Backend.unreadable_model`` is set)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from llamactl.api.deps import ServicesDep, SettingsDep
from llamactl.api.schemas import ERROR_RESPONSES, MemoryEstimateBody
from llamactl.backends import BACKENDS
from llamactl.errors import NotFound, ValidationFailed
from llamactl.instances.model_paths import check_model_path
from llamactl.instances.models import InstanceSpec
from llamactl.security.roles import role_route

router = APIRouter(prefix="/backends", tags=["backends"], responses=ERROR_RESPONSES)
# Operators: it reads a model file's header, as creating an instance does.
OPERATOR = role_route("operator")


class EstimateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model_path: str = Field(min_length=1, examples=["/models/gemma-3-270m-it-Q8_0.gguf"])
    options: dict[str, Any] = Field(default_factory=dict,
                                    examples=[{"context_size": 8192, "cache_type_k": "q8_0"}])


@router.post("/{backend}/estimate", response_model=MemoryEstimateBody, openapi_extra=OPERATOR,
             summary="Estimate the memory a model and options need")
async def estimate(backend: str, body: EstimateRequest, settings: SettingsDep,
                   services: ServicesDep) -> dict[str, Any]:
    chosen = BACKENDS.get(backend)
    if chosen is None or chosen.unreadable_model is None:
        estimating = [name for name, known in BACKENDS.items() if known.unreadable_model]
        raise NotFound(f"Backend '{backend}' not found", f"backends: {', '.join(estimating)}")
    # The directories an instance's model may come from (services.instances_config): the
    # library's folder too when model_dirs is set, or its models would get no estimate.
    allowed = settings.instances.model_dirs
    check_model_path(body.model_path, chosen.model_files_only,
                     [*allowed, settings.models_dir] if allowed else allowed)
    options = chosen.validate_options(body.options)
    spec = InstanceSpec(name="estimate", model_path=body.model_path, port=0, backend=backend,
                        options=options)
    result = services.manager.context.estimator.estimate(spec)
    if result is None:
        raise ValidationFailed(chosen.unreadable_model, f"model_path: {body.model_path}")
    return result.as_json()
