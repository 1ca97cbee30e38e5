"""Request bodies for creating and updating instances, validated strictly.

Strict types: ``"4"`` is not a thread count and ``1`` is not ``true``. Unknown fields are
refused rather than ignored, so a misspelt field is an error the user sees.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticKnownError, core_schema

from llamactl.backends import backend_named, backend_names
from llamactl.instances.models import NAME_PATTERN, RESERVED_NAMES


class _RegisteredBackend:
    """A backend's name, checked against the registry (backends/__init__.py) when a request
    is read, and listed from it in the OpenAPI document: what ``Literal[...]`` of the names
    would say, without a list here to keep in step."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_registered,
                                                            core_schema.str_schema())

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        return {"enum": backend_names(), "type": "string"}


def _registered(name: str) -> str:
    names = backend_names()
    if name not in names:
        quoted = [repr(known) for known in names]
        expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1
                               else quoted)
        raise PydanticKnownError("literal_error", {"expected": expected})
    return name


# The backends an instance may name: those registered (backends/__init__.py).
BackendName = Annotated[str, _RegisteredBackend()]
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LifecycleFields(_Body):
    auto_restart: bool | None = None
    max_restarts: int | None = Field(default=None, ge=0, le=1000)
    restart_delay: float | None = Field(default=None, ge=0, le=3600)
    on_demand_start: bool | None = None
    idle_timeout: float | None = Field(default=None, ge=0, description="minutes; 0 = never")
    group: str | None = Field(default=None, pattern=GROUP_PATTERN)
    environment: dict[str, str] | None = None
    extra_args: list[str] | None = None
    aliases: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, description="other names the /v1 gateway routes to this instance",
        examples=[["gpt-3.5-turbo"]])
    resources: dict[Annotated[str, Field(min_length=1, max_length=128)],
                    Annotated[float, Field(ge=0)]] | None = Field(
        default=None, description=("Ray resources the instance needs where it runs "
                                   "(cluster.engine: ray): GPU, CPU, memory in bytes, or custom"),
        examples=[{"GPU": 1}])
    docker: bool | None = Field(default=None, description=(
        "run in a Docker container (true) or on this host (false); null: the backend's "
        "backends.<name>.docker.enabled"))
    pool: str | None = Field(default=None, pattern=NAME_PATTERN, description=(
        "the replica pool it serves (a name, never an instance's): /v1 requests naming the "
        "pool go to one of its running members; null: none"), examples=["chat"])
    sleep_after: float | None = Field(default=None, ge=1, le=30 * 86400, description=(
        "seconds without requests before its server unloads the model and sleeps, its "
        "process kept (llama.cpp's --sleep-idle-seconds; vLLM's sleep mode, which llamactl "
        "drives); the next request wakes it; mlx_lm cannot sleep; null: never"),
        examples=[300])

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, item in (value or {}).items():
            if not _ENV_NAME.match(key):
                raise ValueError(f"'{key}' is not a valid environment variable name")
            if "\x00" in item:
                raise ValueError(f"the value of '{key}' holds a NUL byte")
        return value

    @field_validator("extra_args")
    @classmethod
    def _args(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any("\x00" in arg for arg in value):
            raise ValueError("arguments may not hold NUL bytes")
        return value


class InstanceCreate(LifecycleFields):
    name: str = Field(pattern=NAME_PATTERN, examples=["my-instance"])
    model_path: str | None = Field(default=None, min_length=1,
                                   examples=["/path/to/model.gguf"])
    model: str | None = Field(default=None, min_length=1, max_length=500, description=(
        "instead of model_path (issue 33): a model's id (GET /api/models), or "
        "<user>/<repo>[:<quant>], pulled from the Hub first when not on disk"),
        examples=["ggml-org/gemma-3-270m-it-GGUF:Q8_0"])
    port: int | None = Field(default=None, ge=1024, le=65535, examples=[8081])
    backend: BackendName = "llama_cpp"
    options: dict[str, Any] = Field(
        default_factory=dict, examples=[{"threads": 4, "context_size": 2048, "gpu_layers": 0}]
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"'{value}' is reserved (POST /api/instances/{value})")
        return value

    @model_validator(mode="after")
    def _can_sleep(self) -> InstanceCreate:
        if self.sleep_after is not None and backend_named(self.backend).sleep_mode == "none":
            raise ValueError(f"sleep_after: the {self.backend} backend cannot sleep")
        return self


class InstanceUpdate(LifecycleFields):
    name: str | None = None  # accepted only when it does not change
    model_path: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1024, le=65535)
    backend: BackendName | None = None
    options: dict[str, Any] | None = Field(
        default=None, examples=[{"threads": 8, "context_size": 4096}],
        description="merged key by key into the current options; a key set to null is removed",
    )


class StopBody(_Body):
    force: bool = False
    timeout: float | None = Field(default=None, ge=0, le=3600)
