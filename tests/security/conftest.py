"""Two real ``llamactl serve`` processes for the whole security suite, with the real
llama-server: ``open_server`` as a new user runs it (loopback, auth off: the install a web
page attacks), and ``secured_server`` with auth on, users of each role, ``instances.model_dirs``
and the token-signing secret in its environment (``LLAMACTL_AUTH_SECRET``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import PASSWORDS, ROLES, ServerProcess, password_hash
from tests.support.helpers import free_port, port_block, wait_until, write_config

AUTH_SECRET = "security-suite-secret-" + "s" * 40


@dataclass
class Server:
    process: ServerProcess
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)  # user -> a token of theirs

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, trust_env=False)


def _document(llama_server_bin: str, **sections: Any) -> dict[str, Any]:
    low, high = port_block()
    return {"backends": {"llama_cpp": {"command": llama_server_bin}},
            "instances": {"port_range": [low, high], **sections.pop("instances", {})},
            "rate_limit": {"enabled": False}, **sections}


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory,
                llama_server_bin: str) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("open")
    config = write_config(root / "config.yaml", _document(llama_server_bin))
    process = ServerProcess(root / "data", config, free_port())
    try:
        process.start()
        yield Server(process, root)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def secured_server(tmp_path_factory: pytest.TempPathFactory, llama_server_bin: str,
                   tiny_model_file: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("secured")
    models = root / "models"
    models.mkdir()
    shutil.copy(tiny_model_file, models / "tiny.gguf")  # a real file: links are followed
    users = [{"username": name, "password_hash": password_hash(name), "role": role}
             for name, role in ROLES.items()]
    config = write_config(root / "config.yaml", _document(
        llama_server_bin, auth={"enabled": True, "users": users},
        instances={"model_dirs": [str(models)]}))
    process = ServerProcess(root / "data", config, free_port())
    try:
        with pytest.MonkeyPatch.context() as env:  # what `llamactl serve` inherits
            env.setenv("LLAMACTL_AUTH_SECRET", AUTH_SECRET)
            env.setenv("LLAMACTL_SUITE_MARKER", "must-not-reach-backends")
            process.start()
        server = Server(process, root)
        with server.client() as client:
            for user, password in PASSWORDS.items():
                answer = client.post("/api/auth/login",
                                     json={"username": user, "password": password})
                assert answer.status_code == 200, answer.text
                server.tokens[user] = answer.json()["token"]
        yield server
    finally:
        process.stop()


@pytest.fixture(scope="session")
def models_dir(secured_server: Server) -> Path:
    """``instances.model_dirs`` of the secured server, holding ``tiny.gguf``."""
    return secured_server.root / "models"


@pytest.fixture
def cleanup(secured_server: Server) -> Iterator[list[str]]:
    """Names of instances a test created on the shared secured server: stopped and deleted
    after it, so that the next test finds the server as it was."""
    names: list[str] = []
    yield names
    with secured_server.client("admin") as admin:
        for name in names:
            admin.post(f"/api/instances/{name}/stop", json={"force": True})
            wait_until(lambda n=name: admin.get(f"/api/instances/{n}").json()["status"]
                       in ("stopped", "failed"), what=f"{name} stopped")
            assert admin.delete(f"/api/instances/{name}").status_code == 200
