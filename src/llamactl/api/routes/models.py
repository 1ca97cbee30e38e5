"""``/api/models``: the model library (issue 33): the models on disk, pulls from the Hugging
Face Hub, deleting the library's own files."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from llamactl.api.deps import ServicesDep
from llamactl.api.model_schemas import ModelList, PullJobBody, PullList, PullRequest
from llamactl.api.paths import MODEL_PARAMETER
from llamactl.api.schemas import ERROR_RESPONSES, ErrorBody, Message
from llamactl.errors import Forbidden, ModelInUse, NotFound
from llamactl.library.catalog import ModelEntry
from llamactl.library.hub import PullSource
from llamactl.security.roles import role_route
from llamactl.supervisor.manager import InstanceManager

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)
OPERATOR, ADMIN = role_route("operator"), role_route("admin")
PULL_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "NOT_FOUND: no such repo, revision, file or "
                                             "quant on the Hub"},
    502: {"model": ErrorBody, "description": "HUB_UNAVAILABLE: the Hub did not answer"},
    507: {"model": ErrorBody, "description": "INSUFFICIENT_STORAGE: the files would not fit "
                                             "(details: the bytes needed and free)"}}


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


@router.get("", response_model=ModelList, summary="List the models on disk")
async def list_models(services: ServicesDep) -> Response:
    entries = await asyncio.to_thread(services.library.catalog.scan)
    users = instances_by_file(services.manager)
    has_gpu = services.manager.context.estimator.gpu_total is not None
    return _json({"models": [entry.as_json(users_of(entry, users), has_gpu=has_gpu)
                             for entry in entries]})


@router.post("/pull", status_code=202, response_model=PullJobBody, openapi_extra=OPERATOR,
             summary="Pull a model from the Hugging Face Hub", responses=PULL_ERRORS)
async def pull_model(body: PullRequest, services: ServicesDep) -> Response:
    source = PullSource.parse(body.source, body.repo, body.file, body.revision,
                              body.with_mmproj)
    job = await services.library.pulls.start(source)
    return _json(job.as_json(), 202)


@router.get("/pulls", response_model=PullList, summary="The pulls, running and recent")
async def list_pulls(services: ServicesDep) -> Response:
    return _json({"pulls": await services.library.pulls.listing()})


@router.get("/pulls/{pull_id}", response_model=PullJobBody, summary="One pull")
async def get_pull(pull_id: str, services: ServicesDep) -> Response:
    return _json(await services.library.pulls.job(pull_id))


@router.delete("/pulls/{pull_id}", response_model=PullJobBody, openapi_extra=OPERATOR,
               summary="Cancel a pull (its partial files stay, for a later pull to resume)")
async def cancel_pull(pull_id: str, services: ServicesDep) -> Response:
    return _json(await services.library.pulls.cancel(pull_id))


@router.delete(f"/{MODEL_PARAMETER}", response_model=Message, openapi_extra=ADMIN,
               summary="Delete a model of the library's own folder",
               responses={403: {"model": ErrorBody, "description": "FORBIDDEN: the file is "
                                "outside models.dir (llamactl never deletes your own files)"},
                          404: {"model": ErrorBody, "description": "NOT_FOUND"},
                          409: {"model": ErrorBody, "description": "MODEL_IN_USE"}})
async def delete_model(model_id: str, services: ServicesDep) -> Response:
    library = services.library
    entry = await asyncio.to_thread(library.catalog.find, model_id)
    if entry is None:
        raise NotFound(f"Model '{model_id}' not found", "GET /api/models lists the ids")
    if not entry.in_library:
        raise Forbidden(f"Model '{model_id}' is outside the library's folder",
                        f"only files under models.dir ({library.dir}) are deleted; "
                        "llamactl never deletes your own files")
    users = users_of(entry, instances_by_file(services.manager))
    if users:
        raise ModelInUse(f"Model '{model_id}' is used by {len(users)} instance(s)",
                         f"instances: {', '.join(users)}")
    await asyncio.to_thread(library.delete, entry)
    return _json({"message": "Model deleted successfully"})


def instances_by_file(manager: InstanceManager) -> dict[str, list[str]]:
    """Model path (normalised, as given) -> the instances that load it. Matched against a
    model's paths as found and as resolved, so a link to a model counts, without a realpath
    per instance on every listing."""
    users: dict[str, list[str]] = {}
    for owner in manager.owners():
        path = os.path.normpath(owner.record.spec.model_path)
        users.setdefault(path, []).append(owner.name)
    return users


def users_of(entry: ModelEntry, users: dict[str, list[str]]) -> list[str]:
    if not users:
        return []
    return sorted({name for path in entry.real_files for name in users.get(path, ())})
