"""What every owner task shares: settings, the store, the event hub, the backend, HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llamactl.config import BackendsConfig, InstancesConfig
from llamactl.events import EventHub
from llamactl.instances.models import InstanceRecord
from llamactl.security.file_options import FilePolicy
from llamactl.store.instances import InstanceRepository
from llamactl.supervisor.host import LocalHost, ProcessHost
from llamactl.supervisor.memory import MemoryEstimator
from llamactl.supervisor.metrics import NoMetrics, SupervisorMetrics

# Crash restarts are counted until an instance has run this long without trouble.
STABLE_AFTER_SECONDS = 300.0


@dataclass
class OwnerContext:
    config: InstancesConfig
    backends: BackendsConfig  # how each backend runs: its command, Docker
    logs_dir: Path
    repository: InstanceRepository
    events: EventHub
    stable_after: float = STABLE_AFTER_SECONDS
    # Called when an instance may have freed capacity: it stopped, failed or became idle.
    on_capacity_change: Callable[[], None] = lambda: None
    # Called with the instance's name and new status whenever it changes (the pools).
    on_status_change: Callable[[str, str], None] = lambda name, status: None
    # The Ray nodes holding the other members of an instance's pool (placement spreads).
    pool_nodes: Callable[[str], tuple[str, ...]] = lambda name: ()
    metrics: SupervisorMetrics = field(default_factory=NoMetrics)  # launches, crashes, readiness
    # Where backends run: this machine, or Ray nodes (cluster.engine, issue 18).
    host: ProcessHost = field(default_factory=LocalHost)
    # Memory estimates (issue 20), one cache for the app: the API's instance JSON, the capacity
    # keeper and the Ray placement share it; the monitoring service tells it the GPUs.
    estimator: MemoryEstimator = field(default_factory=MemoryEstimator)
    # llamactl's own places, which no option may name (security/file_options.py).
    data_dir: Path | None = None
    config_path: Path | None = None

    @property
    def file_policy(self) -> FilePolicy:
        return FilePolicy(self.data_dir, self.config_path, self.config.model_dirs)

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"


@dataclass(frozen=True)
class Lifecycle:
    """An instance's lifecycle settings with the config's defaults filled in."""

    auto_restart: bool
    max_restarts: int
    restart_delay: float
    on_demand_start: bool
    idle_timeout: float  # minutes

    @classmethod
    def of(cls, record: InstanceRecord, config: InstancesConfig) -> Lifecycle:
        spec = record.spec
        return cls(
            auto_restart=config.auto_restart if spec.auto_restart is None else spec.auto_restart,
            max_restarts=config.max_restarts if spec.max_restarts is None else spec.max_restarts,
            restart_delay=(
                config.restart_delay if spec.restart_delay is None else spec.restart_delay
            ),
            on_demand_start=(
                config.on_demand_start if spec.on_demand_start is None else spec.on_demand_start
            ),
            idle_timeout=config.idle_timeout if spec.idle_timeout is None else spec.idle_timeout,
        )
