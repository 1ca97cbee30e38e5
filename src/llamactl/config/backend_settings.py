"""Settings per backend (``backends.<name>`` in the config): how llamactl runs each one.

Each backend declares its own settings model (a ``BackendSettings``) in its own module, and
the backends' registry (``backends/__init__.py``) hands it to ``register_backend_settings``
here. Why a registry, not the classes in this file: config is a lower layer than backends
(tests/test_layers.py), so it cannot import them; a backend is one module, so no file of
config may name one either. ``BackendsConfig`` is therefore assembled from the registry:
validating it (``Settings.model_validate``, ``PUT /api/config``) builds the model of every
backend registered at that time, and its JSON schema (the OpenAPI document, the generated
config reference) is that model's. Whoever validates settings imports ``llamactl.backends``
first (the app, ``llamactl serve`` and the user commands do); an empty registry is refused.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class _BackendCommandBase(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DockerConfig(_BackendCommandBase):
    """Running a backend's server in a container (``docker run``) instead of on this host."""

    enabled: bool = Field(default=False, description=(
        "Run this backend's instances in Docker containers (an instance's 'docker' field, "
        "when true or false, overrides this)."))
    image: str | None = Field(default=None, description=(
        "The image to run; its entrypoint must be the backend's server, which is given the "
        "backend's own flags. null: this backend cannot run in Docker."))
    args: list[str] = Field(default_factory=list, description=(
        "Extra 'docker run' arguments before the image, such as [--gpus, all]."))
    environment: dict[str, str] = Field(default_factory=dict, description=(
        "Variables set inside the container (passed as '-e NAME', the values through the "
        "docker command's environment, never on its command line)."))

    @model_validator(mode="after")
    def _image_when_enabled(self) -> DockerConfig:
        if self.enabled and not self.image:
            raise ValueError("docker.enabled needs docker.image (the image to run)")
        return self


class BackendSettings(_BackendCommandBase):
    """What every backend's settings hold: the program to run and how to run it in Docker.
    A backend's own model subclasses this with its defaults, descriptions and any more."""

    command: str | list[str]
    docker: DockerConfig

    @field_validator("command", check_fields=False)
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        empty = not value.strip() if isinstance(value, str) else not value
        if empty:
            raise ValueError("must name the program to run")
        return value


class BackendSection(NamedTuple):
    model: type[BackendSettings]
    description: str  # the section's line in the config reference


_SECTIONS: dict[str, BackendSection] = {}
_ASSEMBLED: dict[tuple[tuple[str, BackendSection], ...], type[BackendsConfig]] = {}


def register_backend_settings(name: str, model: type[BackendSettings],
                              description: str) -> None:
    """``backends.<name>`` is validated with ``model`` from now on."""
    _SECTIONS[name] = BackendSection(model, description)


def unregister_backend_settings(name: str) -> None:
    _SECTIONS.pop(name, None)


class BackendsConfig(_BackendCommandBase):
    """Settings per backend, by the name instances give in their ``backend`` field."""

    docker_command: str | list[str] = Field(default="docker", description=(
        "The docker command for backends run in containers: a name on PATH, a path, or an "
        "argv prefix (such as [sudo, docker])."))

    @field_validator("docker_command")
    @classmethod
    def _docker_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, str) and not value.strip()):
            raise ValueError("must name the docker program")
        return value

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        """``BackendsConfig(...)`` builds the assembled model (every registered backend)."""
        chosen = backends_config_model() if cls is BackendsConfig else cls
        return super().__new__(chosen)  # type: ignore[return-value]

    @model_validator(mode="wrap")
    @classmethod
    def _as_assembled(cls, data: Any, handler: ModelWrapValidatorHandler[BackendsConfig]
                      ) -> BackendsConfig:
        """Validated as the model of the backends registered now (a subclass of this one)."""
        if cls is not BackendsConfig:
            return handler(data)
        return backends_config_model().model_validate(data)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        if cls is BackendsConfig:
            return handler(backends_config_model().__pydantic_core_schema__)
        return handler(core_schema)

    def section(self, backend: str) -> BackendSettings:
        """``backends.<backend>``: the settings of that backend."""
        settings: BackendSettings = getattr(self, backend)
        return settings


def backends_config_model() -> type[BackendsConfig]:
    """``BackendsConfig`` with a field per registered backend (one class per set of them)."""
    if not _SECTIONS:
        raise RuntimeError("no backend is registered: import llamactl.backends before "
                           "validating settings")
    key = tuple(_SECTIONS.items())
    if key not in _ASSEMBLED:
        fields: dict[str, Any] = {
            name: (section.model, Field(default_factory=section.model,
                                        description=section.description))
            for name, section in _SECTIONS.items()}
        _ASSEMBLED[key] = create_model(
            "BackendsConfig", __base__=BackendsConfig, __module__=__name__,
            __doc__=BackendsConfig.__doc__, **fields)
    return _ASSEMBLED[key]


def default_backends() -> BackendsConfig:
    """Every registered backend's settings at their defaults."""
    return backends_config_model()()
