"""What the owner checks before a launch, and the lifecycle's settings of an instance: the
parts of carrying out effects (owner_effects.py) that need no runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from llamactl.config import InstancesConfig
from llamactl.errors import (
    Conflict,
    InstanceAlreadyRunning,
    InstanceNotRunning,
    InstanceRunning,
    LlamactlError,
)
from llamactl.instances.model_paths import outside_model_dirs
from llamactl.instances.models import InstanceRecord
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor.context import Lifecycle
from llamactl.supervisor.ports import port_is_free


class LaunchError(Exception):
    pass


class InstanceStopping(InstanceNotRunning):
    """Not running yet again: wait until stopped, then start it anew."""


# The lifecycle's refusals, as the errors the API answers with.
REFUSALS: dict[t.RefusalKind, Callable[[str], LlamactlError]] = {
    "already_running": InstanceAlreadyRunning,
    "not_running": InstanceNotRunning,
    "stopping": InstanceStopping,
    "busy": lambda message: Conflict(message, code="INSTANCE_BUSY"),
    "running": InstanceRunning,
}


def policy_of(record: InstanceRecord, config: InstancesConfig) -> t.Policy:
    life = Lifecycle.of(record, config)
    return t.Policy(auto_restart=life.auto_restart, max_restarts=life.max_restarts,
                    restart_delay=life.restart_delay, stop_timeout=config.stop_timeout,
                    idle_minutes=life.idle_timeout)


def check_launchable(record: InstanceRecord, model_dirs: list[Path],
                      files_only: bool) -> None:
    path = record.spec.model_path
    local = files_only or os.path.isabs(path)  # else a hub id the backend fetches itself
    outside = outside_model_dirs(path, model_dirs) if local else None
    if outside is not None:  # a symlink retargeted since, or config
        raise LaunchError(outside)
    readable = os.access(path, os.R_OK) and (
        os.path.isfile(path) if files_only else os.path.exists(path))
    if local and not readable:
        raise LaunchError(f"model file {path} is missing or not readable")
    if not port_is_free(record.spec.port):
        raise LaunchError(f"port {record.spec.port} is in use by another process")
