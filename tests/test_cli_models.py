"""``llamactl models list|pull|rm`` and ``llamactl run`` (issue 33) against a real server and
the stand-in Hub: plain progress lines when not on a terminal, the model listed, deleted, and a
chat with a model pulled on the way."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.clients import cli, running_server
from tests.support.stand_in_hub import REPO, StandInHub

pytestmark = pytest.mark.llama


def test_models_pull_list_and_rm(tmp_path: Path, llama_server_bin: str,
                                 hub: StandInHub) -> None:
    home = tmp_path / "home"
    models = {"dir": str(tmp_path / "library"), "hub_url": hub.url}
    with running_server(tmp_path, llama_server_bin, models=models) as server:
        pulled = cli("models", "pull", f"{REPO}:Q8_0", url=server.url, home=home)
        assert pulled.returncode == 0, pulled.stderr
        assert f"{REPO}/tiny-Q8_0.gguf" in pulled.stdout
        assert "downloading" in pulled.stderr or "queued" in pulled.stderr  # plain lines
        listed = cli("models", "list", "-o", "json", url=server.url, home=home)
        assert [m["id"] for m in json.loads(listed.stdout)] == [f"{REPO}/tiny-Q8_0.gguf"]
        table = cli("models", "list", url=server.url, home=home)
        assert "F32" in table.stdout
        assert "ID" in table.stdout
        missing = cli("models", "pull", f"{REPO}:Q5_K_S", url=server.url, home=home)
        assert missing.returncode == 3, missing.stderr
        removed = cli("models", "rm", f"{REPO}/tiny-Q8_0.gguf", url=server.url, home=home)
        assert removed.returncode == 0, removed.stderr
        assert cli("models", "list", "-q", url=server.url, home=home).stdout == ""


def test_run_pulls_creates_starts_and_chats(tmp_path: Path, llama_server_bin: str,
                                            hub: StandInHub) -> None:
    home = tmp_path / "home"
    models = {"dir": str(tmp_path / "library"), "hub_url": hub.url}
    with running_server(tmp_path, llama_server_bin, models=models) as server:
        chat = cli("run", f"{REPO}:Q8_0", url=server.url, home=home, stdin="hello\nhi\n",
                   timeout=180)
        assert chat.returncode == 0, chat.stderr
        assert len(chat.stdout.strip().splitlines()) >= 1, "an answer a prompt"
        instances = httpx.get(f"{server.url}/api/instances").json()["instances"]
        assert [(i["name"], i["status"]) for i in instances] == [("tiny-Q8_0", "running")]
        again = cli("run", f"{REPO}:Q8_0", url=server.url, home=home, stdin="", timeout=60)
        assert again.returncode == 0, again.stderr
        assert len(httpx.get(f"{server.url}/api/instances").json()["instances"]) == 1
        httpx.post(f"{server.url}/api/instances/tiny-Q8_0/stop", timeout=60)
