"""``llamactl events`` and ``llamactl complete`` against a real llamactl with real
llama-servers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import cli, cli_env, running_server
from tests.support.helpers import LlamactlProcess
from tests.test_cli_instances import ok, read_lines_until

pytestmark = [pytest.mark.llama]


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin) as process:
        yield process


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_events_follow_the_named_instances(server: LlamactlProcess, model: Path,
                                           home: Path) -> None:
    def run(*args: str) -> str:
        return ok(cli(*args, url=server.url, home=home))

    for name in ("watched", "other"):
        run("instances", "create", name, "--model", str(model), "--option", "context_size=256")
    follower = subprocess.Popen(
        [sys.executable, "-m", "llamactl", "events", "watched", "-o", "json",
         "--type", "instance_status_changed"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(server.url, home))
    try:
        assert follower.stderr is not None
        assert "following the events of watched" in follower.stderr.readline()  # connected
        run("instances", "start", "other")
        run("instances", "start", "watched")
        lines = read_lines_until(follower, '"running"')
    finally:
        follower.terminate()
        follower.communicate(timeout=30)
        run("instances", "stop", "watched")
        run("instances", "stop", "other")
    events = [json.loads(line) for line in lines]
    assert {e["data"]["name"] for e in events} == {"watched"}
    assert {e["type"] for e in events} == {"instance_status_changed"}
    assert events[-1]["data"]["status"] == "running"


def test_complete_streams_through_v1(server: LlamactlProcess, model: Path, home: Path) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return cli(*args, url=server.url, home=home, stdin=stdin)

    ok(run("instances", "create", "talk", "--model", str(model), "--option",
           "context_size=256"))
    ok(run("instances", "start", "talk"))
    try:
        streamed = run("complete", "talk", "Hello", "--max-tokens", "4", "--temperature", "0")
        assert streamed.returncode == 0, streamed.stderr
        assert streamed.stdout.endswith("\n")
        whole = json.loads(ok(run("complete", "talk", "-", "--max-tokens", "4", "-o", "json",
                                  stdin="Hello")))
        assert whole["object"] == "text_completion"
        assert 1 <= whole["usage"]["completion_tokens"] <= 4
        missing = run("complete", "nobody", "Hello")
        assert missing.returncode == 3, missing.stderr
        assert "(model_not_found)" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        ok(run("instances", "stop", "talk"))


def test_the_shell_completes_instance_names_from_the_server(
    server: LlamactlProcess, model: Path, home: Path
) -> None:
    for name in ("alpha", "alpine", "beta"):
        ok(cli("instances", "create", name, "--model", str(model), url=server.url, home=home))

    def complete(words: str) -> list[str]:
        # What bash's completion function runs: the command, told the words so far.
        env = {**cli_env(server.url, home), "_LLAMACTL_COMPLETE": "bash_complete",
               "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        done = subprocess.run([str(Path(sys.executable).parent / "llamactl")], capture_output=True,
                              text=True, timeout=30, env=env)
        assert done.returncode == 0, done.stderr
        return sorted(line.split(",", 1)[1] for line in done.stdout.splitlines() if line)

    assert complete("llamactl instances start al") == ["alpha", "alpine"]
    assert complete("llamactl complete b") == ["beta"]
    env_url = cli_env("http://127.0.0.1:9", home)["LLAMACTL_URL"]  # nothing listens there
    assert complete(f"llamactl --url {env_url} instances stop a") == []
