"""The command line's shared surface: --url/--token/-o on every command with one vocabulary
(table|json|yaml), colour only on a terminal and never with NO_COLOR, and keys/users saying
where they act (keys over the API with --url). Against real ``llamactl serve`` processes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
import yaml
from click.testing import CliRunner

from llamactl.cli import main
from tests.support.clients import PASSWORDS, auth_section, cli, cli_env, running_server
from tests.support.helpers import LlamactlProcess
from tests.test_cli_instances import _commands, ok, read_all

pytestmark = [pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]
NOT_CLIENTS = {"serve", "completion"}  # the server itself, and a shell script printer


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_every_command_takes_url_token_and_the_one_output_vocabulary() -> None:
    runner = CliRunner()
    commands = [p for p in _commands(main, ()) if p[0] not in NOT_CLIENTS]
    leaves = [p for p in commands if not isinstance(_command(p), click.Group)]
    assert {("events",), ("complete",), ("keys", "list"), ("users", "list")} <= set(leaves)
    for path in leaves:
        shown = runner.invoke(main, [*path, "--help"]).output
        assert "--url" in shown, path
        if path != ("run",):  # an interactive chat in the terminal: no data to format
            assert "-o, --output [table|json|yaml]" in shown, path
        if path not in (("logout",),):  # logout forgets a token: it takes none
            assert "--token" in shown, path
    root = runner.invoke(main, ["--help"]).output
    assert all(option in root for option in ("--url", "--token", "[table|json|yaml]"))


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin) as process:
        yield process


@pytest.mark.llama
def test_yaml_is_json_as_yaml_before_or_after_the_command(server: LlamactlProcess, model: Path,
                                                          home: Path) -> None:
    def run(*args: str) -> str:
        return ok(cli(*args, url=server.url, home=home))

    run("instances", "create", "y", "--model", str(model))
    for command in (("instances", "list"), ("instances", "get", "y"), ("system", "info"),
                    ("config", "get", "instances")):
        as_json = json.loads(run(*command, "-o", "json"))
        assert yaml.safe_load(run(*command, "-o", "yaml")) == as_json, command
        assert yaml.safe_load(run("-o", "yaml", *command)) == as_json, command
    deleted = yaml.safe_load(run("instances", "delete", "y", "-o", "yaml"))
    assert deleted == {"name": "y", "deleted": True}


def test_colour_only_on_a_terminal_and_never_with_no_color(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from llamactl.cli.output import colour_on, coloured

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_on(Terminal())
    assert not colour_on(io.StringIO())
    assert coloured("running", stream=Terminal()) == click.style("running", fg="green")
    assert coloured("running", stream=io.StringIO()) == "running"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_on(Terminal())
    assert coloured("failed", stream=Terminal()) == "failed"


@pytest.mark.llama
def test_a_terminal_gets_colour_a_pipe_and_no_color_do_not(server: LlamactlProcess,
                                                           model: Path, home: Path) -> None:
    ok(cli("instances", "create", "c", "--model", str(model), "--option", "context_size=256",
           url=server.url, home=home))
    ok(cli("instances", "start", "c", url=server.url, home=home))
    try:
        env = cli_env(server.url, home)
        env.pop("NO_COLOR", None)
        assert "\x1b[32mrunning" in _on_a_terminal(["instances", "list"], env)
        assert "\x1b[" not in _on_a_terminal(["instances", "list"], {**env, "NO_COLOR": "1"})
        piped = ok(cli("instances", "list", url=server.url, home=home))
        assert "running" in piped
        assert "\x1b[" not in piped
    finally:
        ok(cli("instances", "stop", "c", url=server.url, home=home))


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    import pty

    controller, terminal = pty.openpty()
    try:
        process = subprocess.run([sys.executable, "-m", "llamactl", *args], stdout=terminal,
                                 stderr=subprocess.PIPE, env=env, timeout=120, check=True)
        assert process.returncode == 0
        os.close(terminal)
        return read_all(controller)
    finally:
        os.close(controller)


def test_keys_over_the_api_with_url_and_locally_without(tmp_path: Path, llama_server_bin: str,
                                                        home: Path) -> None:
    with running_server(tmp_path, llama_server_bin, auth=auth_section()) as server:
        def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return cli(*args, url=server.url, home=home, stdin=stdin)

        ok(run("login", "-u", "admin", "--password-stdin", stdin=PASSWORDS["admin"] + "\n"))
        created = run("keys", "create", "remote-app", "--url", server.url)
        key = ok(created).strip()
        assert key.startswith("llk_")
        assert f"on the server at {server.url}" in created.stderr
        models = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert models.status_code == 200
        listed = json.loads(ok(run("--url", server.url, "keys", "list", "-o", "json")))
        assert [k["name"] for k in listed] == ["remote-app"]
        assert listed[0]["expired"] is False
        assert "key" not in listed[0]
        assert ok(run("keys", "list", "-q", "--url", server.url)) == "remote-app\n"
        assert ok(run("keys", "revoke", "remote-app", "--url", server.url)).startswith("revoked")
        again = run("keys", "revoke", "remote-app", "--url", server.url)
        assert again.returncode == 3
        assert "(KEY_NOT_FOUND)" in again.stderr
        viewer = run("keys", "list", "--url", server.url, "--token", "not-a-token")
        assert viewer.returncode == 1
        assert "(UNAUTHORIZED)" in viewer.stderr

        # Without --url, the local data dir ($LLAMACTL_URL alone does not send keys away).
        local = run("keys", "list", "--config", str(server.config), "--data-dir",
                    str(tmp_path / "elsewhere"))
        assert local.returncode == 0
        assert local.stdout == ""
        assert "in the local data dir" in local.stderr
        both = run("keys", "list", "--url", server.url, "--data-dir", str(tmp_path))
        assert both.returncode == 2
        assert "not both" in both.stderr


def test_users_say_they_edit_the_local_file_and_refuse_a_server(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMACTL_")}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llamactl", *args], input=stdin,
                              capture_output=True, text=True, timeout=120, env=env)

    added = run("users", "add", "ann", "--role", "operator", "--password-stdin", "--config",
                str(config), "-o", "json", stdin="long-enough-password\n")
    assert json.loads(ok(added)) == {"username": "ann", "role": "operator",
                                     "config": str(config)}
    listed = run("users", "list", "--config", str(config), "-o", "yaml")
    assert yaml.safe_load(ok(listed)) == [{"username": "ann", "role": "operator"}]
    assert f"in {config}" in listed.stderr
    assert ok(run("users", "list", "-q", "--config", str(config))) == "ann\n"
    for remote in (["users", "list", "--url", "http://127.0.0.1:9"],
                   ["--url", "http://127.0.0.1:9", "users", "list"]):
        refused = run(*remote, "--config", str(config))
        assert refused.returncode == 2
        assert "no users API" in refused.stderr
