"""Backends in Docker containers (backends/docker.py builds their command lines): stop,
adoption and the strays at boot, all by the container's name.

The ``docker run`` process stands for its container: it runs attached (its output is the
instance's log, it exits when the container does), in its own process group as every process
llamactl starts. Signalling it would stop nothing, so a stop is ``docker stop -t <grace>
<name>`` and a kill ``docker rm -f <name>`` followed by SIGKILL to the docker command's group.
These helper commands run in their own groups too, writing to the instance's log, and are
reaped by ``wait`` once the container is gone. Adoption asks docker whether the container
runs; when the docker command that started it is gone (killed with llamactl), ``docker logs
--follow`` takes its place: it writes the log on and exits when the container does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from llamactl.backends import BACKENDS
from llamactl.backends.base import Backend, BackendNotFound
from llamactl.backends.docker import (
    Container,
    container_name,
    docker_command,
    docker_environment,
    docker_settings,
    list_labelled,
    runs_in_docker,
)
from llamactl.config import BackendsConfig
from llamactl.instances.models import InstanceRecord
from llamactl.supervisor.host import BackendProcess, LocalProcess, ProcessHost, SpawnRequest
from llamactl.supervisor.process import ProcessHandle, SpawnError

log = logging.getLogger(__name__)

# How long a docker query (inspect, ps, rm) may take at boot before it counts as failed.
QUERY_SECONDS = 20.0
# How long a finished stop may wait for its docker stop/rm commands before they are killed.
HELPER_SECONDS = 10.0


class ContainerProcess(LocalProcess):
    """A container seen as a ``BackendProcess``: the pid is its docker command's (a local
    process, whose pid, start time and command it reports as LocalProcess does; its stats
    are that command's too, not the container's)."""

    def __init__(self, handle: ProcessHandle, container: Container,
                 env: Mapping[str, str], log_path: Path):
        super().__init__(handle)  # the docker run (or, after adoption, docker logs) process
        self.container = container
        self.env = dict(env)
        self.log_path = log_path
        self._helpers: list[ProcessHandle] = []  # docker stop and rm, reaped by wait()

    @classmethod
    def spawn(cls, request: SpawnRequest, container: Container) -> ContainerProcess:
        handle = ProcessHandle.spawn(request.argv, request.env, request.log_path)
        return cls(handle, container, request.env, request.log_path)

    def signal_group(self, signum: signal.Signals, grace: float = 0.0) -> None:
        """SIGTERM: ``docker stop -t grace``. SIGKILL: ``docker rm -f``, and the docker
        command's own group killed, so that nothing of it is left either way."""
        if signum == signal.SIGTERM:
            self._run(self.container.stop(grace))
            return
        self._run(self.container.remove())
        self.handle.signal_group(signal.SIGKILL)

    async def wait(self) -> int | None:
        code = await self.handle.wait()
        # The container is gone with its docker command: reap the stop/rm commands run for it.
        helpers, self._helpers = self._helpers, []
        for helper in helpers:
            try:
                await asyncio.wait_for(helper.wait(), HELPER_SECONDS)
            except TimeoutError:
                helper.signal_group(signal.SIGKILL)
                await helper.wait()
        return code

    def _run(self, argv: list[str]) -> None:
        try:
            self._helpers.append(ProcessHandle.spawn(argv, self.env, self.log_path))
        except SpawnError as exc:
            log.error("cannot run %s for %s: %s", argv[0], self.container.name, exc)


def adopt_process(host: ProcessHost, backend: Backend, record: InstanceRecord,
                  log_path: Path, recorded: tuple[int, float, list[str]]
                  ) -> BackendProcess | None:
    """The instance's recorded process (pid, start time, argv): by pid on its host, or for a
    container by its name."""
    try:
        container = backend.container(record)  # the docker command, resolved
    except BackendNotFound as exc:
        log.warning("cannot adopt %s: %s", record.name, exc)
        return None
    if container is None:
        return host.adopt(record.name, *recorded)
    return adopt_container(container, backend.env(record), log_path, recorded)


def adopt_container(container: Container, env: Mapping[str, str], log_path: Path,
                    recorded: tuple[int, float, list[str]]) -> ContainerProcess | None:
    """The instance's container if it still runs, by name, with the recorded docker command
    (pid, start time, argv), or ``docker logs --follow`` in its place when that is gone."""
    handle = ProcessHandle.adopt(*recorded)
    if not _is_running(container, env):
        if handle is not None:  # a docker command whose container is gone: end it too
            handle.signal_group(signal.SIGKILL)
        return None
    if handle is None:
        try:
            handle = ProcessHandle.spawn(container.follow_logs(int(time.time())), env, log_path)
        except SpawnError as exc:
            log.error("cannot follow the log of container %s: %s", container.name, exc)
            return None
    return ContainerProcess(handle, container, env, log_path)


def _is_running(container: Container, env: Mapping[str, str]) -> bool:
    answer = _query(container.inspect_running(), env)
    return answer is not None and answer.strip() == "true"


def remove_stray_containers(backends: BackendsConfig,
                            instances: list[tuple[InstanceRecord, bool]]) -> list[str]:
    """Remove the containers labelled ``llamactl.instance`` that are not the container of an
    instance (record, whether its process runs) running in Docker; their names. Only when
    some backend or instance runs in Docker: another llamactl's containers are none of ours
    to look at otherwise."""
    in_docker = [(record, running) for record, running in instances
                 if runs_in_docker(record, backends)]
    if not in_docker and not any(docker_settings(name, backends).enabled
                                 for name in BACKENDS):
        return []
    try:
        docker = docker_command(backends)
    except BackendNotFound as exc:
        log.warning("not looking for stray containers: %s", exc)
        return []
    keep = {container_name(record.name) for record, running in in_docker if running}
    return remove_strays(docker, docker_environment(), keep)


def remove_strays(docker: list[str], env: Mapping[str, str], keep: set[str]) -> list[str]:
    """Remove (``docker rm -f``) every container with llamactl's label whose name is not in
    ``keep``; the names removed. Nothing when docker cannot be asked."""
    listed = _query(list_labelled(docker), env)
    removed = []
    for name in (listed or "").split():
        if name not in keep and _query([*docker, "rm", "-f", name], env) is not None:
            removed.append(name)
    return removed


def _query(argv: list[str], env: Mapping[str, str]) -> str | None:
    """A docker command's output, run to its end (boot only, before the loop serves), or
    None when it fails: then it is logged and treated as 'no such container'."""
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, text=True,
                              timeout=QUERY_SECONDS, start_new_session=True, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", " ".join(argv[-3:]), exc)
        return None
    if done.returncode != 0:
        log.info("%s: %s", " ".join(argv[-3:]), done.stderr.strip()[:500])
        return None
    return done.stdout
