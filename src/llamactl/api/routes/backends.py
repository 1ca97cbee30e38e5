"""``/api/backends``: the backends an instance may name, their options, and importing a
command line as an instance (``parse-command``). Nothing here changes anything."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from llamactl.api.instance_requests import BackendName
from llamactl.api.schemas import ERROR_RESPONSES
from llamactl.backends import BACKENDS, backend_named
from llamactl.backends.command_import import import_command
from llamactl.security.roles import role_route

router = APIRouter(prefix="/backends", tags=["backends"], responses=ERROR_RESPONSES)


class OptionInfo(BaseModel):
    name: str = Field(description="the key in an instance's options")
    flag: str = Field(description="the backend's flag it becomes")
    type: Literal["int", "float", "bool", "str", "choice", "str_list"]
    choices: list[str] = Field(description="the values a choice takes")
    help: str
    minimum: float | None = Field(default=None, description="the least value a number takes")
    group: Literal["performance", "sampling", "context", "speculative", "multimodal",
                   "server"] = Field(description="where the dashboard's form shows it")
    default: int | float | bool | str | list[str] | None = Field(default=None, description=(
        "the backend's own default as its documentation states it (a value, or words such "
        "as \"auto\"), shown beside the field; null when unknown. Never sent by llamactl"))


class BackendInfo(BaseModel):
    name: str
    options: list[OptionInfo]


class BackendList(BaseModel):
    backends: list[BackendInfo]


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    command: str = Field(min_length=1, max_length=16384, examples=[
        "llama-server -m /models/x.gguf --port 8081 -c 4096 -ngl 99 --host 0.0.0.0"])


class ImportedInstance(BaseModel):
    backend: str
    model_path: str
    port: int | None
    options: dict[str, Any]
    extra_args: list[str]


class ImportedCommand(BaseModel):
    instance: ImportedInstance = Field(
        description="with a name added, a body for POST /api/instances")
    ignored: list[str] = Field(description="what llamactl sets itself, or could not use")


@router.get("", response_model=BackendList, summary="List backends and their options",
            openapi_extra=role_route("viewer"))
async def list_backends() -> dict[str, Any]:
    return {"backends": [
        {"name": name, "options": [
            {"name": spec.name, "flag": spec.flag, "type": spec.kind,
             "choices": list(spec.choices), "help": spec.help, "minimum": spec.minimum,
             "group": spec.group, "default": spec.default}
            for spec in backend.table.options]}
        for name, backend in BACKENDS.items()]}


@router.post("/{backend}/parse-command", response_model=ImportedCommand,
             summary="Read a command line as an instance", openapi_extra=role_route("operator"))
async def parse_command(backend: BackendName, body: CommandBody) -> dict[str, Any]:
    chosen = backend_named(backend)
    return import_command(body.command, backend, chosen.syntax, chosen.table).answer()
