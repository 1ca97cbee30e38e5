"""How the settings are built: defaults < the YAML file < ``LLAMACTL_*`` environment <
command-line flags, each key validated by the settings model (settings.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from llamactl.config.settings import Settings, default_config_path
from llamactl.errors import StartupError


class LoadedSettings(BaseModel):
    """Settings plus where they came from (the config file may not exist yet)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: Settings
    config_path: Path
    config_file_exists: bool


# The environment variables that set a key (the configuration reference lists them).
ENV_KEYS: dict[str, tuple[str, ...]] = {
    "LLAMACTL_HOST": ("server", "host"),
    "LLAMACTL_PORT": ("server", "port"),
    "LLAMACTL_DATA_DIR": ("data_dir",),
}


def load_settings(
    *,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Build Settings: defaults < config file < environment < ``overrides`` (command-line flags).

    ``overrides`` uses dotted keys (``{"server.port": 9000}``); None values are ignored.
    """
    env = os.environ if environ is None else environ
    explicit = config_path or (Path(env["LLAMACTL_CONFIG"]) if env.get("LLAMACTL_CONFIG") else None)
    path = (explicit or default_config_path()).expanduser()
    document: dict[str, Any] = {}
    exists = path.is_file()
    if explicit is not None and not exists:
        raise StartupError(f"config file {path} does not exist")
    if exists:
        document = read_config_file(path)
    for variable, keys in ENV_KEYS.items():
        if env.get(variable):
            _set_path(document, keys, env[variable])
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(document, tuple(dotted.split(".")), value)
    try:
        settings = Settings.model_validate(document)
    except ValidationError as exc:
        raise StartupError(f"invalid configuration ({path}):\n{format_validation(exc)}") from None
    return LoadedSettings(settings=settings, config_path=path, config_file_exists=exists)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StartupError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StartupError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise StartupError(f"config file {path} must hold a mapping at the top level")
    return loaded


def _set_path(document: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = document
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def format_validation(exc: ValidationError) -> str:
    """One line per problem: ``dotted.path: message``."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"{where}: {error['msg']}")
    return "\n".join(lines)
