"""What a start checks before it launches anything, and the record it launches.

The create and the update checked the same things, but a symlink may have been retargeted
since, a file removed, the config changed, or another program taken the port: a start that
fails here fails with a clear ``last_error`` and leaves nothing running.
"""

from __future__ import annotations

import dataclasses
import os

from llamactl.backends.base import Backend
from llamactl.instances.model_paths import outside_model_dirs
from llamactl.instances.models import InstanceRecord
from llamactl.security.file_options import FilePolicy, launch_problem, with_instance_folders
from llamactl.supervisor.ports import port_is_free


class LaunchError(Exception):
    pass


def check_launchable(record: InstanceRecord, policy: FilePolicy, backend: Backend) -> None:
    """LaunchError saying why the instance cannot be launched on this host as it is."""
    path, files_only = record.spec.model_path, backend.model_files_only
    local = files_only or os.path.isabs(path)  # else a hub id the backend fetches itself
    outside = outside_model_dirs(path, policy.model_dirs) if local else None
    if outside is not None:  # a symlink retargeted since, or config
        raise LaunchError(outside)
    readable = os.access(path, os.R_OK) and (
        os.path.isfile(path) if files_only else os.path.exists(path))
    if local and not readable:
        raise LaunchError(f"model file {path} is missing or not readable")
    problem = launch_problem(backend.table, record.spec.options, policy)
    if problem is not None:  # issue 27: a file option retargeted into llamactl's own files
        raise LaunchError(problem)
    if not port_is_free(record.spec.port):
        raise LaunchError(f"port {record.spec.port} is in use by another process")


def launched_record(record: InstanceRecord, policy: FilePolicy,
                    backend: Backend) -> InstanceRecord:
    """The record as launched on this host: each per-instance folder that its options leave
    out (slot_save_path) filled in under the data dir, and made."""
    options = record.spec.options
    try:
        filled = with_instance_folders(backend.table, options, policy, record.name)
    except OSError as exc:
        raise LaunchError(f"cannot make the instance's folder: {exc.strerror}") from None
    if filled == options:
        return record
    return dataclasses.replace(record, spec=dataclasses.replace(record.spec, options=filled))
