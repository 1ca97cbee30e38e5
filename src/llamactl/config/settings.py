"""Settings: YAML file, then ``LLAMACTL_*`` environment, then command-line flags.

Settings are built once by ``load_settings`` and passed to whatever needs them; nothing here is
a module-level singleton. Every key is validated with the same models that ``PUT /api/config``
will use, and unknown keys are refused so a typo in the file is not silently ignored.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SerializeAsAny,
    field_validator,
)

from llamactl.config.backend_settings import BackendsConfig, default_backends
from llamactl.config.pool_settings import GatewayConfig, PoolsConfig, Strict
from llamactl.config.sizes import parse_size


class ServerConfig(Strict):
    """Where llamactl listens, and which browsers and host names it answers."""

    host: str = Field(default="127.0.0.1", description=(
        "Address to listen on. A non-loopback address turns authentication on by default."))
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port to listen on.")
    cors_origins: list[str] = Field(default_factory=list, description=(
        "Web origins allowed to call the API from a browser (CORS). Empty: CORS off."))
    allowed_hosts: list[str] = Field(default_factory=list, description=(
        "Names a request's Host header may carry (a DNS-rebinding defence). On a loopback "
        "listener, besides localhost, 127.0.0.1 and [::1]; on any other, empty means any "
        "name. \"*\" allows any name."))
    max_body_size: int = Field(default=2**20, gt=0, description=(
        "Largest request body /api accepts, in bytes (or a size such as \"4MiB\"); a larger "
        "one is answered 413 PAYLOAD_TOO_LARGE and read no further. The instance proxy "
        "(/api/instances/{name}/proxy/...) takes what /v1 takes (64 MiB)."))
    trusted_proxies: list[str] = Field(default_factory=list, description=(
        "Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto llamactl believes: the client address they name then counts for "
        "rate limits, logins and logs. Empty: none, every request is its peer's."))

    @field_validator("max_body_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"'{entry}' is not an IP address or a CIDR network") from None
        return value
    header_timeout: float = Field(default=10.0, gt=0, description=(
        "Seconds a connection has to send a request's whole head (the first, and each after "
        "a keep-alive pause); a slower one is closed."))
    max_connections: int = Field(default=1000, ge=1, description=(
        "Open client connections at most; beyond it a new connection is answered 503 and "
        "closed. Keep it under the process's file-descriptor limit (serve raises its soft "
        "limit to the hard one)."))


class MemoryBudgetConfig(Strict):
    """instances.memory_budget: bytes, or strings such as "12GiB"; null = not limited."""

    ram: int | None = Field(default=None, ge=0, description="Bytes of RAM; null = no limit.")
    vram: int | Literal["auto"] | None = Field(default=None, description=(
        "Bytes of GPU memory; auto = the GPUs' total from NVML less a reserve (unknown, so "
        "not limited, where NVML sees no GPU); null = no limit."))

    @field_validator("ram", "vram", mode="before")
    @classmethod
    def _sizes(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) and value != "auto" else value


class InstancesConfig(Strict):
    """Defaults for instances, supervision timings, capacity, logs and model locations."""

    port_range: tuple[int, int] = Field(default=(8100, 8999), description=(
        "Ports given to instances created without one: [low, high], inclusive."))
    # Defaults for the per-instance lifecycle fields an instance leaves out.
    auto_restart: bool = Field(default=True, description=(
        "Default for instances: restart a crashed instance (with backoff)."))
    max_restarts: int = Field(default=3, ge=0, description=(
        "Default for instances: crash restarts in a row before it is left failed."))
    restart_delay: float = Field(default=5.0, ge=0, description=(
        "Default for instances: seconds before the first crash restart, doubled after each."))
    on_demand_start: bool = Field(default=True, description=(
        "Default for instances: a /v1 request for a stopped instance starts it."))
    idle_timeout: float = Field(default=0, ge=0, description=(
        "Default for instances: minutes without /v1 or proxy requests before an instance is "
        "stopped; fractions allowed; 0 = never."))
    load_timeout: float = Field(default=120.0, gt=0, description=(
        "Seconds a starting instance may go without printing anything and without being "
        "ready before it counts as failed (a stall timeout: any output resets it)."))
    stop_timeout: float = Field(default=30.0, ge=0, description=(
        "Seconds between SIGTERM and SIGKILL when stopping an instance's process group."))
    health_interval: float = Field(default=5.0, gt=0, description=(
        "Seconds between liveness checks (GET /health) of a running instance."))
    health_failures: int = Field(default=3, ge=1, description=(
        "Failed liveness checks in a row that count as a crash."))
    stats_interval: float = Field(default=5.0, gt=0, description=(
        "Seconds between samples of each instance's memory and CPU."))
    stop_on_shutdown: bool = Field(default=True, description=(
        "Stop instances when llamactl shuts down. false: leave them running for the next "
        "llamactl to adopt."))
    # Capacity: starting beyond a limit evicts the least recently used idle instance of that
    # scope, or waits.
    max_running: int | None = Field(default=None, ge=1, description=(
        "Instances that may run at once; null = no limit. Starting beyond it evicts the least "
        "recently used idle instance, or waits for one to become idle."))
    group_limits: dict[str, int] = Field(default_factory=dict, description=(
        "Instances that may run at once per group, by group name."))
    memory_budget: MemoryBudgetConfig = Field(  # issue 20
        default_factory=lambda: MemoryBudgetConfig(), description=(
            "Memory instances may claim at once (estimate or measured use, the larger). A "
            "start beyond it evicts least recently used idle instances; an instance larger "
            "than the budget alone is refused with 409 INSUFFICIENT_MEMORY."))
    queue_size: int = Field(default=100, ge=0, description=(
        "Requests that may wait for room (capacity) at once; beyond it they get 503."))
    queue_timeout: float = Field(default=120.0, gt=0, description=(
        "Seconds a request may wait for room before it gets 503."))
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024, description=(
        "Size at which an instance's log file is rotated (copy and truncate)."))
    log_backups: int = Field(default=3, ge=0, description="Rotated log files kept per instance.")
    model_dirs: list[Path] = Field(default_factory=list, description=(
        "Absolute folders model files must be in (symlinks and .. resolved, checked at create "
        "and at each start); empty = anywhere."))

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


class QuotaLimits(Strict):
    """How much one API key or user may ask of /v1 (issue 30; tokens = prompt + completion).
    Minute windows slide over the last 60 s; day and month are calendar UTC."""

    requests_per_minute: int | None = Field(default=None, ge=1, description=(
        "Requests in any 60 s; null = no limit."))
    tokens_per_minute: int | None = Field(default=None, ge=1, description=(
        "Tokens in any 60 s; null = no limit."))
    tokens_per_day: int | None = Field(default=None, ge=1, description=(
        "Tokens in a calendar day (UTC); null = no limit."))
    tokens_per_month: int | None = Field(default=None, ge=1, description=(
        "Tokens in a calendar month (UTC); null = no limit."))


class UserEntry(Strict):
    """One llamactl user (``llamactl users add`` writes these)."""

    username: str = Field(min_length=1, max_length=64, description="The name to log in with.")
    password_hash: str = Field(min_length=1, description=(
        "An argon2 hash of the password (never the password itself)."))
    role: Role = Field(default="viewer", description="admin, operator or viewer.")
    limits: QuotaLimits | None = Field(default=None, description=(
        "This user's quotas on /v1; null = none."))
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000, description=(
        "Higher goes first wherever /v1 requests wait (a start, room, a pool's slot)."))


class AuthConfig(Strict):
    """Users, JWT tokens and the secret they are signed with."""

    enabled: bool | None = Field(default=None, description=(
        "Require a token on /api and a key or token on /v1. null = on unless server.host is "
        "a loopback address."))
    users: list[UserEntry] = Field(default_factory=list, description=(
        "The users who may log in; manage them with llamactl users."))
    token_ttl: int = Field(default=86400, gt=0, description="Seconds a login token is valid.")
    secret: str | None = Field(default=None, description=(
        "The key that signs tokens. null: the LLAMACTL_AUTH_SECRET environment variable, "
        "else a random secret kept in <data_dir>/auth_secret."))


class RateLimitConfig(Strict):
    """Per-caller request limits."""

    # None: on when authentication is on. A newcomer exploring a loopback server (auth off)
    # should not meet 429s; a server that people log in to gets per-caller limits.
    enabled: bool | None = Field(default=None, description=(
        "Per-caller limits on /api (not /v1). null = on when authentication is on."))
    regular_per_minute: int = Field(default=100, gt=0, description=(
        "Requests per minute per caller on regular routes."))
    intensive_per_minute: int = Field(default=10, gt=0, description=(
        "Requests per minute per caller on the intensive routes: create, start, restart, "
        "start-all and stop-all."))
    login_failures_per_minute: int = Field(default=10, gt=0, description=(
        "Failed logins per client address per minute (always on, whatever enabled says)."))


class EventsConfig(Strict):
    """The event feeds (``/api/ws``, ``/api/events``) and the host sampling behind alerts."""

    stats_interval: float = Field(default=5.0, gt=0, description=(
        "Seconds between instance_stats_updated messages, and between samples of the host."))
    queue_size: int = Field(default=256, ge=1, description=(
        "Events that may wait for one client; past that the client is dropped as too slow."))
    ping_interval: float = Field(default=20.0, gt=0, description=(
        "Seconds without any message to a client before it gets a {\"type\": \"ping\"}."))
    disk_alert_percent: float = Field(default=90.0, ge=0, le=100, description=(
        "Send a system_alert when the data dir's disk is fuller than this (percent)."))
    memory_alert_percent: float = Field(default=95.0, ge=0, le=100, description=(
        "Send a system_alert when the host's memory is fuller than this (percent)."))


class ActivityConfig(Strict):
    """The ledger of /v1 and proxy requests (``GET /api/activity``; docs/activity.md)."""

    enabled: bool = Field(default=True, description=(
        "Keep a record of every /v1 and proxy request (who, which model, tokens, speed)."))
    retention_days: float = Field(default=30, gt=0, description=(
        "Days a record is kept; older ones are pruned in the background."))
    max_records: int = Field(default=1_000_000, ge=1, description=(
        "Records kept at most; the oldest beyond are pruned in the background."))


class ClusterConfig(Strict):
    """Where backends run: this machine, or the nodes of a Ray cluster (docs/machines.md)."""

    engine: Literal["local", "ray"] = Field(default="local", description=(
        "local: backends run on this machine. ray: Ray places each backend on a node that has "
        "the instance's resources (needs the [ray] extra)."))
    address: str | None = Field(default=None, description=(
        "The Ray cluster to join: host:port of its head, or auto. null = auto."))
    namespace: str = Field(default="llamactl", min_length=1, description=(
        "The Ray namespace of llamactl's named actors (one per running instance)."))
    host: str | None = Field(default=None, description=(
        "The address backends listen on, on every node. null = the node's own address."))


class ModelsConfig(Strict):
    """The model library (issue 33): where pulled models land, and the Hub they come from."""

    dir: Path | None = Field(default=None, description=(
        "The library's own folder: pulled models land here, and only files here may be "
        "deleted through the API. null = <data_dir>/models."))
    hub_url: str | None = Field(default=None, min_length=1, description=(
        "The Hugging Face Hub (or a mirror speaking its protocol) models are pulled from. "
        "null = the HF_ENDPOINT environment variable, else https://huggingface.co."))
    hub_token: str | None = Field(default=None, description=(
        "A Hub access token for gated or private repos (a secret: never shown). null = the "
        "HF_TOKEN environment variable, if set."))

    @field_validator("dir")
    @classmethod
    def _absolute_dir(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "llamactl"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llamactl" / "config.yaml"


class Settings(Strict):
    """Everything ``llamactl serve`` reads from its config file."""

    server: ServerConfig = Field(default_factory=ServerConfig, description=(
        "Where llamactl listens, and which browsers and host names it answers."))
    data_dir: Path = Field(default_factory=default_data_dir, description=(
        "The SQLite database (llamactl.db), instance logs (logs/) and the auth secret. "
        "Default: $XDG_DATA_HOME/llamactl, else ~/.local/share/llamactl."))
    # SerializeAsAny: dumped as the assembled model (every backend's section), not the base
    backends: SerializeAsAny[BackendsConfig] = Field(default_factory=default_backends, description=(
        "Settings per backend."))
    instances: InstancesConfig = Field(default_factory=InstancesConfig, description=(
        "Defaults for instances, supervision, capacity, logs and model locations."))
    auth: AuthConfig = Field(default_factory=AuthConfig, description=(
        "Users, tokens and the secret they are signed with."))
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig, description=(
        "Per-caller request limits."))
    events: EventsConfig = Field(default_factory=EventsConfig, description=(
        "The event feeds and the host sampling behind alerts."))
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description=(
        "Where backends run: this machine (local) or a Ray cluster (ray)."))
    activity: ActivityConfig = Field(default_factory=ActivityConfig, description=(
        "The ledger of requests: whether it is kept, and for how long."))
    gateway: GatewayConfig = Field(default_factory=GatewayConfig, description=(
        "The /v1 gateway's waits."))
    pools: PoolsConfig = Field(default_factory=PoolsConfig, description=(
        "Replica pools: when they grow, and each pool's min_running, by pool name."))
    models: ModelsConfig = Field(default_factory=ModelsConfig, description=(
        "The model library: its folder and the Hub models are pulled from."))

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

    @property
    def models_dir(self) -> Path:
        return self.models.dir or self.data_dir / "models"


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
