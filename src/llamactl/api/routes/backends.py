"""``GET /api/backends``: each backend and its option table, read-only.

Clients that build forms (the dashboard) read the options, their types and limits from here
rather than keeping their own copy of the table.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from llamactl.api.schemas import ERROR_RESPONSES
from llamactl.instances.options import OPTIONS, Kind, OptionSpec
from llamactl.security.roles import role_route

router = APIRouter(prefix="/backends", tags=["backends"], responses=ERROR_RESPONSES)


class OptionInfo(BaseModel):
    name: str = Field(examples=["context_size"])
    flag: str = Field(examples=["--ctx-size"])
    type: Kind = Field(examples=["int"])
    help: str
    choices: list[str] = Field(default_factory=list, description="for type choice")
    minimum: float | None = None


class BackendInfo(BaseModel):
    name: Literal["llama_cpp"] = "llama_cpp"
    options: list[OptionInfo]


class BackendList(BaseModel):
    backends: list[BackendInfo]


def _option(spec: OptionSpec) -> OptionInfo:
    return OptionInfo(name=spec.name, flag=spec.flag, type=spec.kind, help=spec.help,
                      choices=list(spec.choices), minimum=spec.minimum)


@router.get("", response_model=BackendList, summary="List backends and their options",
            openapi_extra=role_route("viewer"))
async def list_backends() -> BackendList:
    return BackendList(backends=[BackendInfo(options=[_option(spec) for spec in OPTIONS])])
