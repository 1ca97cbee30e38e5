"""Helpers for the client and CLI tests: a real ``llamactl serve`` configured for them."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from llamactl.security.passwords import hash_password
from tests.support.helpers import LlamactlProcess, free_port, port_block, write_config

PASSWORDS = {"admin": "admin-password", "op": "operator-password", "view": "viewer-password"}
ROLES = {"admin": "admin", "op": "operator", "view": "viewer"}
AUTH_SECRET = "client-tests-secret-" + "x" * 40
CLI_TIMEOUT = 120.0


def server_document(llama_server_bin: str, **sections: Any) -> dict[str, Any]:
    """A config for one test's server: the real llama-server, its own ports, no rate limits
    unless ``sections`` say otherwise."""
    low, high = port_block()
    return {
        "backends": {"llama_cpp": {"command": llama_server_bin}},
        "instances": {"port_range": [low, high]},
        "rate_limit": {"enabled": False},
        **sections,
    }


@functools.cache
def password_hash(user: str) -> str:
    return hash_password(PASSWORDS[user])  # argon2 is slow on purpose: once per session


def auth_section(token_ttl: int = 3600) -> dict[str, Any]:
    """Auth on, with an admin, an operator and a viewer (PASSWORDS)."""
    return {"enabled": True, "secret": AUTH_SECRET, "token_ttl": token_ttl, "users": [
        {"username": name, "password_hash": password_hash(name), "role": role}
        for name, role in ROLES.items()
    ]}


class ServerProcess(LlamactlProcess):
    """``LlamactlProcess`` that also counts a 401 as up (auth on), and that is stopped even
    when it never became ready."""

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"llamactl exited: {self.log.read_text()[-3000:]}")
        try:
            status = httpx.get(f"{self.url}/api/instances", timeout=1).status_code
        except httpx.HTTPError:
            return False
        return status in (200, 401)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()


@contextlib.contextmanager
def running_server(tmp_path: Path, llama_server_bin: str,
                   **sections: Any) -> Iterator[ServerProcess]:
    """A real ``llamactl serve`` for one test, stopped (and waited for) at the end."""
    config = write_config(tmp_path / "config.yaml", server_document(llama_server_bin, **sections))
    server = ServerProcess(tmp_path / "data", config, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def cli(*args: str, url: str, home: Path, stdin: str = "",
        timeout: float = CLI_TIMEOUT, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``llamactl ARGS`` against ``url``, with its own config dir (for the saved token)."""
    return subprocess.run([sys.executable, "-m", "llamactl", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout,
                          env=cli_env(url, home), cwd=cwd)


def cli_env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMACTL_")}
    return {**env, "LLAMACTL_URL": url, "XDG_CONFIG_HOME": str(home)}
