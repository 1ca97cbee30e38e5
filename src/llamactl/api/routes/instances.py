"""``/api/instances``: CRUD, lifecycle operations, health, logs, batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from llamactl.api.auth import PrincipalDep
from llamactl.api.compression import (
    GZIP_HEADERS,
    MINIMUM_SIZE,
    GzipMemo,
    accepts_gzip,
)
from llamactl.api.deps import ManagerDep, ServicesDep, SettingsDep
from llamactl.api.hidden import kept_args, kept_environment
from llamactl.api.instance_requests import InstanceCreate, InstanceUpdate, StopBody
from llamactl.api.model_refs import MODEL_PULL_ERRORS, check_one_model, model_path_for
from llamactl.api.paths import INSTANCE_PARAMETER as NAME
from llamactl.api.schemas import (
    ERROR_RESPONSES,
    ErrorBody,
    Health,
    InstanceCreated,
    InstanceList,
    InstanceUpdated,
    LogList,
    Message,
    OperationStarted,
    StartAllResult,
    StopAllResult,
)
from llamactl.api.schemas import Instance as InstanceModel
from llamactl.api.views import instance_json, instance_list_json
from llamactl.backends import backend_named
from llamactl.errors import LlamactlError
from llamactl.instances.changes import InstanceChanges, NewInstance
from llamactl.security.powers import check_powerful_fields
from llamactl.security.roles import allows, role_route
from llamactl.supervisor import logs
from llamactl.supervisor.health import health_report

router = APIRouter(prefix="/instances", tags=["instances"], responses=ERROR_RESPONSES)
OPERATOR = role_route("operator")

MAX_LOG_LINES = 100_000
_LIST_GZIP = (GzipMemo(), GzipMemo())  # the list's last compressed body, by secrets flag


def _json(content: Any, status: int = 200) -> Response:
    # orjson straight to bytes: FastAPI's encoder walks every value again, and json.dumps
    # alone took ~9 ms for a list of a thousand instances (bench/api.py).
    return Response(orjson.dumps(content), status, media_type="application/json")


def _admin(principal: PrincipalDep) -> bool:
    return allows(principal.role, "admin")


@router.get("", response_model=InstanceList, summary="List all instances")
async def list_instances(manager: ManagerDep, settings: SettingsDep,
                         principal: PrincipalDep, request: Request) -> Response:
    secrets = _admin(principal)
    body = instance_list_json(manager.owners(), settings.instances, secrets=secrets)
    if len(body) < MINIMUM_SIZE or not accepts_gzip(request.headers.raw):
        return Response(body, media_type="application/json")
    # Compressed here, once per change of the list's bytes (not by the middleware, per answer:
    # 568 KB for a thousand instances took longer to compress than to build).
    return Response(await _LIST_GZIP[secrets].compress(body), media_type="application/json",
                    headers=GZIP_HEADERS)


@router.post("", status_code=201, response_model=InstanceCreated, summary="Create an instance",
             openapi_extra=OPERATOR, responses=MODEL_PULL_ERRORS)
async def create_instance(
    body: InstanceCreate, services: ServicesDep, principal: PrincipalDep
) -> Response:
    manager, settings = services.manager, services.settings
    check_powerful_fields(principal, body)
    check_one_model(body.model_path, body.model)
    model_path, pull = body.model_path, None
    if body.model is not None:  # issue 33: a model of the library, or one to pull
        model_path, pull = await model_path_for(body.model, services)
    fields = body.model_dump(exclude={"model", "model_path"})
    try:
        owner = await manager.create(NewInstance(model_path=str(model_path), **fields),
                                     admin=_admin(principal), pull=pull)
    except LlamactlError:
        if pull is not None:  # nothing was created: nor is anything pulled for it
            await services.library.pulls.cancel(pull.id)
        raise
    return _json(
        {"message": "Instance created successfully",
         "instance": instance_json(owner, settings.instances, secrets=_admin(principal))},
        201,
    )


@router.post("/start-all", response_model=StartAllResult, summary="Start all stopped instances",
             openapi_extra=OPERATOR)
async def start_all(manager: ManagerDep) -> Response:
    result = await manager.start_all()
    return _json({"message": f"Started {len(result.done)} instance(s)", "started": result.done,
                  "skipped": result.skipped, "failed": result.failed})


@router.post("/stop-all", response_model=StopAllResult, summary="Stop all running instances",
             openapi_extra=OPERATOR)
async def stop_all(manager: ManagerDep) -> Response:
    result = await manager.stop_all()
    return _json({"message": f"Stopping {len(result.done)} instance(s)", "stopped": result.done,
                  "skipped": result.skipped, "failed": result.failed})


@router.get(f"/{NAME}", response_model=InstanceModel, summary="Get instance details")
async def get_instance(name: str, manager: ManagerDep, settings: SettingsDep,
                       principal: PrincipalDep) -> Response:
    return _json(instance_json(manager.owner(name), settings.instances,
                               secrets=_admin(principal)))


@router.put(f"/{NAME}", response_model=InstanceUpdated, summary="Update an instance",
            openapi_extra=OPERATOR)
async def update_instance(
    name: str, body: InstanceUpdate, manager: ManagerDep, settings: SettingsDep,
    principal: PrincipalDep,
    restart: Annotated[bool, Query(description="restart a running instance now")] = False,
) -> Response:
    current = manager.owner(name).record.spec
    if body.environment:  # a "***" read back keeps its value (api/hidden.py)
        body.environment = kept_environment(body.environment, current.environment)
    if body.extra_args:
        body.extra_args = kept_args(body.extra_args, current.extra_args)
    check_powerful_fields(principal, body, current)
    changes = InstanceChanges(given=frozenset(body.model_fields_set), **body.model_dump())
    restart_required = await manager.update(name, changes, restart=restart,
                                            admin=_admin(principal))
    answer: dict[str, Any] = {"message": "Instance updated successfully",
              "instance": instance_json(manager.owner(name), settings.instances,
                                        secrets=_admin(principal))}
    if restart_required:
        answer["restart_required"] = True
    return _json(answer)


@router.delete(f"/{NAME}", response_model=Message, summary="Delete a stopped instance",
               openapi_extra=OPERATOR)
async def delete_instance(name: str, manager: ManagerDep) -> Response:
    await manager.delete(name)
    return _json({"message": "Instance deleted successfully"})


@router.post(f"/{NAME}/start", response_model=OperationStarted, summary="Start an instance",
             openapi_extra=OPERATOR, responses={502: {
                 "model": ErrorBody, "description": "START_FAILED (with ?wait=true): it did "
                 "not start; details holds its last log lines"}})
async def start_instance(
    name: str, manager: ManagerDep,
    wait: Annotated[bool, Query(description="answer once running, or with the failure")] = False,
) -> Response:
    await manager.start(name, wait=wait)
    if wait:
        return _json({"message": "Instance started", "status": manager.owner(name).status})
    return _json({"message": "Instance start initiated", "status": "starting"})


@router.post(f"/{NAME}/stop", response_model=OperationStarted, summary="Stop an instance",
             openapi_extra=OPERATOR)
async def stop_instance(name: str, manager: ManagerDep, body: StopBody | None = None) -> Response:
    body = body or StopBody()
    await manager.stop(name, force=body.force, timeout=body.timeout)
    return _json({"message": "Instance stop initiated", "status": "stopping"})


@router.post(f"/{NAME}/restart", response_model=OperationStarted,
             summary="Restart an instance", openapi_extra=OPERATOR)
async def restart_instance(name: str, manager: ManagerDep) -> Response:
    await manager.restart(name)
    return _json({"message": "Instance restart initiated", "status": "restarting"})


@router.get(f"/{NAME}/health", response_model=Health, summary="Check instance health")
async def instance_health(name: str, manager: ManagerDep) -> Response:
    owner = manager.owner(name)
    alive = owner.pid is not None
    report = await health_report(owner.status, owner.port, alive,
                                 backend_named(owner.record.spec.backend).health_paths,
                                 host=owner.backend_host)
    return _json(report)


@router.get(
    f"/{NAME}/logs", response_model=LogList, summary="Get instance logs",
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "JSON, or with follow=true an event stream"}},
)
async def instance_logs(
    name: str, manager: ManagerDep, settings: SettingsDep, request: Request,
    lines: Annotated[int, Query(ge=0, le=MAX_LOG_LINES)] = 100,
    follow: bool = False,
    level: Annotated[logs.Level, Query(description="minimum level")] = "debug",
) -> Response:
    owner = manager.owner(name)
    backups = settings.instances.log_backups
    line_format = backend_named(owner.record.spec.backend).parse_log_line
    if not follow:
        # Reading back through rotated files can take a while: not on the event loop.
        entries = await asyncio.to_thread(partial(logs.read_tail, line_format=line_format),
                                          owner.log_path, lines, level, backups)
        return _json({"logs": [e.to_json() for e in entries]})

    start = await logs.follow_start(owner.log_path, lines, level, backups,
                                    line_format=line_format)

    async def stream() -> AsyncIterator[bytes]:
        stop = getattr(request.app.state, "closing", None)
        async for entry in logs.follow(owner.log_path, start, level, stop):
            if await request.is_disconnected():
                return
            yield f"data: {json.dumps(entry.to_json())}\n\n".encode()

    return StreamingResponse(
        stream(), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

