"""Where backend processes run: the seam between an instance's owner and its process.

An owner asks its context's ``ProcessHost`` to spawn a backend (argv, env, log file, the Ray
resources it needs) and gets a ``BackendProcess``: a pid (once placed), a wait for its exit,
a signal to its whole process group, and the node it runs on. ``LocalHost`` is this machine
(supervisor/process.py); ``llamactl.cluster.ray_host.RayHost`` places backends on Ray nodes.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llamactl.backends.base import MemoryEstimate
from llamactl.supervisor.process import ProcessHandle

LOCAL_ADDRESS = "127.0.0.1"  # where a local backend listens (each backend's --host)


class PlacementError(Exception):
    """The backend could not be placed or started on a node; the message says why."""

    def __init__(self, message: str, *, model_missing: bool = False):
        super().__init__(message)
        self.model_missing = model_missing


@dataclass(frozen=True)
class SpawnRequest:
    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    resources: Mapping[str, float] = field(default_factory=dict)
    model_path: str = ""
    port: int = 0  # where the backend will listen (a node checks it is free first)
    memory: MemoryEstimate | None = None  # what it will hold: a Ray node must have room
    # Ray nodes that hold other members of its replica pool (issue 32): placed on another
    # node when one can take it (spread), so that one node's loss leaves the pool serving.
    avoid_nodes: tuple[str, ...] = ()


class BackendProcess(Protocol):
    @property
    def pid(self) -> int | None: ...  # None until placed
    @property
    def start_time(self) -> float: ...
    @property
    def command(self) -> list[str]: ...
    @property
    def node(self) -> dict[str, str] | None: ...  # {"id", "address"} on a Ray node
    @property
    def address(self) -> str: ...  # the host the backend listens on
    @property
    def resources(self) -> Mapping[str, float]: ...  # what it asked its node for


    async def placed(self) -> None:
        """Return once the process runs somewhere; PlacementError when it cannot."""

    async def wait(self) -> int | None: ...
    # SIGTERM or SIGKILL; ``grace``: with SIGTERM, the seconds before SIGKILL follows.
    def signal_group(self, signum: signal.Signals, grace: float = 0.0) -> None: ...

    async def node_stats(self) -> dict[str, float] | None:
        """Memory and CPU measured where it runs; None: sample it here (psutil)."""


class ProcessHost(Protocol):
    local: bool  # backends run on this machine: local checks (model file, port) apply

    def spawn(self, request: SpawnRequest) -> BackendProcess: ...  # SpawnError
    def adopt(self, name: str, pid: int, start_time: float,
              command: list[str]) -> BackendProcess | None: ...
    def nodes(self) -> list[dict[str, Any]] | None: ...  # None: no cluster
    def end_strays(self) -> list[str]: ...  # after boot's adoptions: what nothing adopted
    def close(self) -> None: ...


class LocalProcess:
    """A ``ProcessHandle`` on this machine, seen as a ``BackendProcess``."""

    node = None
    address = LOCAL_ADDRESS
    resources: Mapping[str, float] = {}

    def __init__(self, handle: ProcessHandle):
        self.handle = handle

    @property
    def pid(self) -> int | None:
        return self.handle.pid

    @property
    def start_time(self) -> float:
        return self.handle.start_time

    @property
    def command(self) -> list[str]:
        return self.handle.command

    async def placed(self) -> None:
        return None

    async def wait(self) -> int | None:
        return await self.handle.wait()

    def signal_group(self, signum: signal.Signals, grace: float = 0.0) -> None:
        self.handle.signal_group(signum)

    async def node_stats(self) -> dict[str, float] | None:
        return None  # a local process: ProcessStats samples it with psutil


class LocalHost:
    """Today's behaviour: backends are children of llamactl on this machine."""

    local = True

    def spawn(self, request: SpawnRequest) -> BackendProcess:
        return LocalProcess(ProcessHandle.spawn(request.argv, request.env, request.log_path))

    def adopt(self, name: str, pid: int, start_time: float,
              command: list[str]) -> BackendProcess | None:
        handle = ProcessHandle.adopt(pid, start_time, command)
        return LocalProcess(handle) if handle is not None else None

    def nodes(self) -> list[dict[str, Any]] | None:
        return None

    def end_strays(self) -> list[str]:
        return []  # local children that were not adopted are left to the process table

    def close(self) -> None:
        return None
