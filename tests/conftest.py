"""Fixtures: the real llama-server, the tiny model, llamactl in-process and as a real server.

Every test gets a leak check: no process whose command line mentions its tmp_path may outlive
it (models are linked into tmp_path so that backends' command lines mention it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from llamactl.app import begin_shutdown, create_app, server_config
from llamactl.backends.llama_cpp import packaged_binary
from llamactl.config import Settings
from llamactl.devtools.tiny_model import write_tiny_model
from tests.support.helpers import port_block, processes_under
from tests.support.stand_in_hub import StandInHub, tiny_repo

FAKE_BACKEND = Path(__file__).parent / "support" / "fake_backend.py"
LEAK_GRACE_SECONDS = 5.0


@pytest.fixture(scope="session")
def llama_server_bin() -> str:
    path = shutil.which("llama-server") or packaged_binary()
    if path is None:
        pytest.fail("no llama-server: run scripts/install-llama-server (the test command does)")
    return path


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny.gguf", seed=7)


@pytest.fixture
def model(tmp_path: Path, tiny_model_file: Path) -> Path:
    """The tiny model, linked under this test's tmp_path."""
    link = tmp_path / "models" / "tiny.gguf"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(tiny_model_file)
    return link


@pytest.fixture
def hub(tmp_path: Path, tiny_model_file: Path) -> Iterator[StandInHub]:
    """A stand-in Hugging Face Hub (tests/support/stand_in_hub.py) with the tiny repo."""
    stand_in = tiny_repo(StandInHub().start(), tmp_path / "hub", tiny_model_file)
    yield stand_in
    stand_in.stop()


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    """A file the fake backend is 'loading': it never reads it."""
    path = tmp_path / "models" / "fake.gguf"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))  # a whole header, no model
    return path


FAKE_COMMAND = [sys.executable, str(FAKE_BACKEND)]


@pytest.fixture
def make_settings(tmp_path: Path, llama_server_bin: str) -> Callable[..., Settings]:
    def build(
        *, fake: bool = False, sections: dict[str, Any] | None = None, **instances: Any
    ) -> Settings:
        """Settings for one test: its own data dir and ports; rate limits off unless
        ``sections`` (other top-level config sections) turn them on."""
        low, high = port_block()
        command: str | list[str] = FAKE_COMMAND if fake else llama_server_bin
        return Settings.model_validate({
            "data_dir": str(tmp_path / "data"),
            "backends": {"llama_cpp": {"command": command}},
            "instances": {"port_range": [low, high], **instances},
            "rate_limit": {"enabled": False},
            **(sections or {}),
        })

    return build


class _InProcessServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl-C stays pytest's


class AppHarness:
    """llamactl in-process: the real app, served by uvicorn as ``llamactl serve`` serves it
    (the /v1 gateway lives in its HTTP layer) on a free loopback port, in the test's loop."""

    def __init__(self, settings: Settings, config_path: Path | None = None,
                 **server_options: Any):
        self.settings = settings
        self.config_path = config_path
        self.server_options = server_options  # more of uvicorn.Config's, as serve could set
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self.client: httpx.AsyncClient

    async def up(self) -> AppHarness:
        app = create_app(self.settings, config_path=self.config_path)
        self.app = app
        self._server = _InProcessServer(server_config(app, "127.0.0.1", 0, log_config=None,
                                                      log_level="warning",
                                                      **self.server_options))
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._serving.done():
                self._serving.result()  # the startup's error
                raise RuntimeError("llamactl stopped during its startup")
            await asyncio.sleep(0.005)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                        trust_env=False)
        return self

    async def down(self) -> None:
        await self.client.aclose()
        assert self._server is not None
        assert self._serving is not None
        begin_shutdown(self.app)
        self._server.should_exit = True
        await self._serving

    async def restart(self) -> None:
        await self.down()
        await self.up()

    @property
    def manager(self) -> Any:
        return self.app.state.services.manager

    async def wait_for_connections(self, count: int, timeout: float = 10) -> None:
        """Until the server has accepted ``count`` connections: a client's connect returns
        when the kernel has queued it, before the server's accept loop has taken it."""
        assert self._server is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._server.server_state.connections) < count:
            assert asyncio.get_running_loop().time() < deadline, f"fewer than {count} accepted"
            await asyncio.sleep(0.005)


@pytest.fixture
async def make_app() -> AsyncIterator[Callable[[Settings], Any]]:
    harnesses: list[AppHarness] = []

    async def build(settings: Settings, config_path: Path | None = None,
                    **server_options: Any) -> AppHarness:
        harness = await AppHarness(settings, config_path, **server_options).up()
        harnesses.append(harness)
        return harness

    yield build
    for harness in harnesses:
        await harness.down()


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path) -> Iterator[None]:
    yield
    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    left = processes_under(tmp_path)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_under(tmp_path)
    for process in left:
        process.kill()
    assert not left, f"test left processes behind: {[p.info['cmdline'] for p in left]}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """At the very end: nothing any test started may still run (a second net under the
    per-test check, for processes started by session fixtures)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    left = processes_under(factory.getbasetemp())
    for process in left:
        process.kill()
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nprocesses left behind by the test session: {[p.info['cmdline'] for p in left]}")
