"""Instance JSON as the contract shapes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llamactl.config import InstancesConfig
from llamactl.instances.models import format_time
from llamactl.supervisor.context import Lifecycle
from llamactl.supervisor.owner import InstanceOwner


def instance_json(owner: InstanceOwner, config: InstancesConfig) -> dict[str, Any]:
    record = owner.record
    spec, runtime = record.spec, record.runtime
    life = Lifecycle.of(record, config)
    pid = owner.pid
    uptime = 0
    if pid is not None and runtime.started_at is not None:
        uptime = max(0, int((datetime.now(UTC) - runtime.started_at).total_seconds()))
    return {
        "name": spec.name,
        "status": runtime.status,
        "model_path": spec.model_path,
        "port": spec.port,
        "pid": pid,
        "backend": spec.backend,
        "options": spec.options,
        "stats": {
            "memory_usage": owner.stats.memory_usage if pid else 0,
            "cpu_usage": owner.stats.cpu_usage if pid else 0.0,
            "uptime": uptime,
        },
        "auto_restart": life.auto_restart,
        "max_restarts": life.max_restarts,
        "restart_delay": life.restart_delay,
        "on_demand_start": life.on_demand_start,
        "idle_timeout": life.idle_timeout,
        "group": spec.group,
        "environment": spec.environment,
        "extra_args": spec.extra_args,
        "aliases": spec.aliases,
        "restart_count": runtime.restart_count,
        "last_error": runtime.last_error,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
    }
