"""Test helpers: ports, polling, and a real ``llamactl serve`` in a subprocess."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

# Named timeouts (seconds): generous, because CI shares two cores with a compiler at times.
SERVER_START_TIMEOUT = 60.0  # a hang guard: ~1 s quiet, over 20 s at a load of 10
STATUS_TIMEOUT = 30.0
POLL = 0.05

# Each test run starts at its own block (by pid), so that two runs on one machine (two
# checkouts, or a developer's run beside CI's) do not hand their instances the same ports.
_port_blocks = itertools.count(os.getpid() % 2000)
# Below Linux's ephemeral range (32768 and up): a port there can be taken between the check and
# the backend's bind by any client connection's local end (a fresh-clone CI lost a start so).
PORT_FLOOR, PORT_CEILING = 21000, 32000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_block(size: int = 10) -> tuple[int, int]:
    """A range of ports for one test's instances, different from every other test's."""
    while True:
        low = PORT_FLOOR + (next(_port_blocks) * size) % (PORT_CEILING - PORT_FLOOR)
        high = low + size - 1
        if all(_bindable(p) for p in range(low, high + 1)):
            return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(
    predicate: Callable[[], Any], timeout: float = STATUS_TIMEOUT, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(POLL)


def write_unloadable_model(path: Path) -> Path:
    """A GGUF file whose header is whole (create accepts it) but that llama-server cannot
    load: no metadata, so no architecture ("unknown model architecture: ''")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    return path


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def backend_config(path: Path, command: str | list[str], **instances: Any) -> Path:
    """A config file for a real ``llamactl serve``: this backend command, a port block of the
    test's own, and these ``instances`` settings."""
    low, high = port_block()
    return write_config(path, {
        "backends": {"llama_cpp": {"command": command}},
        "instances": {"port_range": [low, high], **instances},
    })


class LlamactlProcess:
    """A real ``llamactl serve`` subprocess."""

    def __init__(self, data_dir: Path, config: Path, port: int,
                 python: str | Path = sys.executable):
        self.data_dir, self.config, self.port = data_dir, config, port
        self.python = python  # another venv's, to run llamactl as a user installed it
        self.url = f"http://127.0.0.1:{port}"
        self.log = data_dir.parent / f"llamactl-{port}.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LlamactlProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.python), "-m", "llamactl", "serve", "--port", str(self.port),
                 "--config", str(self.config), "--data-dir", str(self.data_dir)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        wait_until(self._ready, SERVER_START_TIMEOUT, f"llamactl on {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"llamactl exited: {self.log.read_text()[-3000:]}")
        try:
            # 401 is an answer too: a server with auth on is up.
            return httpx.get(f"{self.url}/api/instances", timeout=1).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 60) -> None:
        """SIGTERM, and wait for a clean exit: uvicorn re-raises the signal once it has shut
        down gracefully, so the exit status is -SIGTERM, and the output says it finished."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        assert code in (0, -signal.SIGTERM), f"llamactl exited with {code}"
        assert "Finished server process" in self.log.read_text()


@contextlib.contextmanager
def llamactl_server(data_dir: Path, config: Path) -> Iterator[LlamactlProcess]:
    server = LlamactlProcess(data_dir, config, free_port())
    try:
        yield server.start()  # inside the try: a server that never got ready is stopped too
    finally:
        if server.process is not None and server.process.poll() is None:
            if sys.exc_info()[0] is None:
                server.terminate()  # and check that it shut down cleanly
            else:
                server.process.kill()
                server.process.wait(30)


def processes_under(root: Path) -> list[psutil.Process]:
    """Processes whose command line mentions a path under root: everything a test started."""
    found = []
    needle = str(root).rstrip("/")
    inside = needle + "/"
    ours = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # exited; only its parent's wait() is missing
        if process.pid in ours:
            continue  # pytest itself (and what runs it) when its --basetemp names the root
        # As a path: /tmp/pt-a must not match another run's /tmp/pt-ab.
        if any(inside in part or part.endswith(needle)
               for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


async def wait_instance(
    client: httpx.AsyncClient, name: str, predicate: Callable[[dict[str, Any]], bool],
    timeout: float = STATUS_TIMEOUT, what: str = "",
) -> dict[str, Any]:
    """Poll GET /api/instances/{name} until predicate(instance) holds."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        instance: dict[str, Any] = (await client.get(f"/api/instances/{name}")).json()
        if predicate(instance):
            return instance
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never became {what or predicate}: {instance}")
        await asyncio.sleep(POLL)


async def wait_status(
    client: httpx.AsyncClient, name: str, *statuses: str, timeout: float = STATUS_TIMEOUT
) -> dict[str, Any]:
    """Poll GET /api/instances/{name} until its status is one of ``statuses``."""
    return await wait_instance(
        client, name, lambda i: i.get("status") in statuses, timeout, " or ".join(statuses)
    )


def backends_under(root: Path) -> list[psutil.Process]:
    """Backend processes (real or fake) started for models under root."""
    return [p for p in processes_under(root) if "serve" not in p.info["cmdline"]]
