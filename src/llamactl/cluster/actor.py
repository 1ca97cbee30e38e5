"""The Ray actor that hosts one instance's backend on a node (one detached, named actor per
running instance, so a restarted llamactl finds it again by name).

Runs inside a Ray worker on the node: it checks the model file there, starts the backend
through the shim (cluster/shim.py) in its own process group, reaps it, signals its group and
samples its resource use. Methods run on a small thread pool: ``wait`` blocks until the
backend exits while ``signal`` and ``stats`` still answer.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from typing import Any

import psutil

from llamactl.supervisor.ports import port_is_free

HOST_FLAG = "--host"
# A backend placed again after its node or worker was lost may land where the old one still
# holds the port for a moment (it dies with its worker, cluster/shim.py): wait that out rather
# than start a backend that cannot bind while the old one still answers health checks.
PORT_WAIT_SECONDS = 10.0
PORT_POLL_SECONDS = 0.1


class PortBusy(RuntimeError):
    """The instance's port stayed in use on the node."""


def wait_for_port(port: int, host: str, node_id: str,
                  timeout: float = PORT_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not port_is_free(port, host):
        if time.monotonic() > deadline:
            raise PortBusy(f"port {port} is in use on node {node_id} ({host})")
        time.sleep(PORT_POLL_SECONDS)


def listen_on(argv: list[str], host: str) -> list[str]:
    """argv with the backend's ``--host`` value replaced by the node's address."""
    out = list(argv)
    for index, arg in enumerate(out[:-1]):
        if arg == HOST_FLAG:
            out[index + 1] = host
    return out


class BackendActor:
    def __init__(self) -> None:
        self._pid: int | None = None
        self._code: int | None = None
        self._info: dict[str, Any] = {}
        self._exited = threading.Event()
        self._started = threading.Event()

    def start(self, argv: list[str], env: dict[str, str], log_path: str,
              model_path: str, host: str | None, port: int = 0) -> dict[str, Any]:
        """Start the backend; its pid, start time, command, node id and listening address."""
        ray: Any = importlib.import_module("ray")  # Ray's API is untyped: held as Any

        context = ray.get_runtime_context()
        node_id = context.get_node_id()
        address = host or ray.util.get_node_ip_address()
        # A failed start leaves wait() pending: the owner kills this actor on the error, so
        # the error, not an exit, is what it hears first.
        if model_path and not os.path.isfile(model_path):
            raise FileNotFoundError(f"model file {model_path} not found on node {node_id}")
        if port:
            wait_for_port(port, address, node_id)
        command = [sys.executable, "-m", "llamactl.cluster.shim", str(os.getpid()), "--",
                   *listen_on(argv, address)]
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        pid = os.posix_spawn(command[0], command, env, file_actions=actions, setsid=True)
        self._pid = pid
        start_time = 0.0
        with contextlib.suppress(psutil.Error):
            start_time = psutil.Process(pid).create_time()
        self._info = {"pid": pid, "start_time": start_time, "command": command,
                      "node": {"id": node_id, "address": address}}
        threading.Thread(target=self._reap, name="reaper", daemon=True).start()
        self._started.set()
        return self._info

    def _reap(self) -> None:
        assert self._pid is not None
        _, status = os.waitpid(self._pid, 0)
        self._code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, signal.SIGKILL)  # what the group left behind
        self._exited.set()

    def info(self) -> dict[str, Any]:
        """What ``start`` answered, and whether the backend still runs (for adoption)."""
        return {**self._info, "alive": self._pid is not None and not self._exited.is_set()}

    def wait(self) -> int | None:
        self._started.wait()
        self._exited.wait()
        return self._code

    def signal(self, signum: int) -> None:
        if self._pid is not None and not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signum)

    def stats(self) -> dict[str, float]:
        """RSS bytes and CPU percent of the backend's process tree, read on its node."""
        if self._pid is None or self._exited.is_set():
            return {"memory_usage": 0, "cpu_usage": 0.0}
        memory, cpu = 0, 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self._pid)
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    memory += process.memory_info().rss
                    cpu += process.cpu_percent(interval=0.1)
        return {"memory_usage": memory, "cpu_usage": round(cpu, 1)}
