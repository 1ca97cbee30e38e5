"""Settings: YAML file, then ``LLAMACTL_*`` environment, then command-line flags.

Settings are built once by ``load_settings`` and passed to whatever needs them; nothing here is
a module-level singleton. Every key is validated with the same models that ``PUT /api/config``
will use, and unknown keys are refused so a typo in the file is not silently ignored.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llamactl.errors import StartupError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list)  # empty: CORS off
    # Names a request's Host may carry (DNS rebinding): on a loopback listener, besides
    # localhost, 127.0.0.1 and [::1]; on any other, empty = any name. "*" = any name.
    allowed_hosts: list[str] = Field(default_factory=list)


class LlamaCppBackendConfig(_Strict):
    # A name on PATH, a path, or an argv prefix such as ["numactl", "-N0", "llama-server"].
    command: str | list[str] = "llama-server"

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        empty = not value.strip() if isinstance(value, str) else not value
        if empty:
            raise ValueError("must name a llama-server binary")
        return value


class BackendsConfig(_Strict):
    llama_cpp: LlamaCppBackendConfig = Field(default_factory=LlamaCppBackendConfig)


class InstancesConfig(_Strict):
    port_range: tuple[int, int] = (8100, 8999)
    # Defaults for the per-instance lifecycle fields an instance leaves out.
    auto_restart: bool = True
    max_restarts: int = Field(default=3, ge=0)
    restart_delay: float = Field(default=5.0, ge=0)
    on_demand_start: bool = True
    idle_timeout: float = Field(default=0, ge=0)  # minutes; fractions allowed
    # Supervision timings (seconds).
    load_timeout: float = Field(default=120.0, gt=0)  # stall timeout: reset by any child output
    stop_timeout: float = Field(default=30.0, ge=0)
    health_interval: float = Field(default=5.0, gt=0)
    health_failures: int = Field(default=3, ge=1)  # consecutive failed checks that count as a crash
    stats_interval: float = Field(default=5.0, gt=0)
    stop_on_shutdown: bool = True
    # Capacity: how many instances may hold a model at once, overall and per group. Starting
    # beyond a limit evicts the least recently used idle instance of that scope, or waits.
    max_running: int | None = Field(default=None, ge=1)
    group_limits: dict[str, int] = Field(default_factory=dict)
    queue_size: int = Field(default=100, ge=0)  # requests waiting for room, at most
    queue_timeout: float = Field(default=120.0, gt=0)  # seconds a request waits for room
    # Log files are rotated by size, keeping this many old files.
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024)
    log_backups: int = Field(default=3, ge=0)
    # Where model files may be (symlinks and ".." resolved); empty = anywhere.
    model_dirs: list[Path] = Field(default_factory=list)

    @field_validator("model_dirs")
    @classmethod
    def _absolute_dirs(cls, value: list[Path]) -> list[Path]:
        value = [path.expanduser() for path in value]
        if any(not path.is_absolute() for path in value):
            raise ValueError("must be absolute paths")
        return value

    @field_validator("port_range")
    @classmethod
    def _ordered_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not (1024 <= low <= high <= 65535):
            raise ValueError("must be [low, high] with 1024 <= low <= high <= 65535")
        return value


Role = Literal["admin", "operator", "viewer"]


class UserEntry(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password_hash: str = Field(min_length=1)
    role: Role = "viewer"


class AuthConfig(_Strict):
    enabled: bool | None = None  # None: on unless server.host is loopback
    users: list[UserEntry] = Field(default_factory=list)
    token_ttl: int = Field(default=86400, gt=0)
    secret: str | None = None


class RateLimitConfig(_Strict):
    # None: on when authentication is on. A newcomer exploring a loopback server (auth off)
    # should not meet 429s; a server that people log in to gets per-caller limits.
    enabled: bool | None = None
    regular_per_minute: int = Field(default=100, gt=0)
    intensive_per_minute: int = Field(default=10, gt=0)
    # Failed logins per client address per minute (brute force), whether or not the above is on.
    login_failures_per_minute: int = Field(default=10, gt=0)


class EventsConfig(_Strict):
    """The WebSocket event feed (``/api/ws``) and the host sampling behind its alerts."""

    # Seconds between instance_stats_updated messages, and between samples of the host.
    stats_interval: float = Field(default=5.0, gt=0)
    # Events that may wait for one WebSocket client; past that it is dropped as too slow.
    queue_size: int = Field(default=256, ge=1)
    # Seconds without any message to a client before it gets a {"type": "ping"} message.
    ping_interval: float = Field(default=20.0, gt=0)
    # A system_alert when the data dir's disk or the host's memory goes above these (percent).
    disk_alert_percent: float = Field(default=90.0, ge=0, le=100)
    memory_alert_percent: float = Field(default=95.0, ge=0, le=100)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "llamactl"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llamactl" / "config.yaml"


class Settings(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    data_dir: Path = Field(default_factory=default_data_dir)
    backends: BackendsConfig = Field(default_factory=BackendsConfig)
    instances: InstancesConfig = Field(default_factory=InstancesConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def auth_enabled(self) -> bool:
        if self.auth.enabled is not None:
            return self.auth.enabled
        return not is_loopback(self.server.host)

    @property
    def rate_limit_enabled(self) -> bool:
        if self.rate_limit.enabled is not None:
            return self.rate_limit.enabled
        return self.auth_enabled

    @property
    def database_path(self) -> Path:
        return self.data_dir / "llamactl.db"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def startup_problem(settings: Settings) -> str | None:
    """Why ``llamactl serve`` would refuse these settings, or None. Authentication on with
    nobody to log in is refused: never a silent random password."""
    if not settings.auth_enabled or settings.auth.users:
        return None
    why = (f"{settings.server.host} is not a loopback address, so authentication is on"
           if not is_loopback(settings.server.host) else "auth.enabled is true")
    return f"{why}, and no users are configured"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoadedSettings(BaseModel):
    """Settings plus where they came from (the config file may not exist yet)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: Settings
    config_path: Path
    config_file_exists: bool


_ENV_KEYS: dict[str, tuple[str, ...]] = {
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
    for variable, keys in _ENV_KEYS.items():
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
