"""The client commands (``llamactl instances|system|config|login``) as a user runs them:
subprocesses against a real ``llamactl serve`` with real llama-servers."""

from __future__ import annotations

import json
import os
import pty
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from llamactl.cli import SUBCOMMANDS, main
from llamactl.cli.common import parse_pairs
from tests.support.clients import PASSWORDS, auth_section, cli, cli_env, running_server
from tests.support.helpers import STATUS_TIMEOUT, LlamactlProcess

pytestmark = [pytest.mark.llama,
              pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]
CLIENT_COMMANDS = ("instances", "system", "config", "login", "logout", "events", "complete",
                   "models", "run")


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin) as process:
        yield process


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The CLI's config dir (XDG_CONFIG_HOME), where login saves the token."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def read_lines_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Lines of a running command's stdout, until one holds ``marker``."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + STATUS_TIMEOUT
    while not any(marker in line for line in seen):
        seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
    return seen


def test_walk_through(server: LlamactlProcess, model: Path, home: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, url=server.url, home=home)

    created = json.loads(ok(run("instances", "create", "walk", "--model", str(model),
                                "--option", "context_size=256", "--option", "flash_attn=off",
                                "-o", "json")))
    assert created["status"] == "stopped"
    assert created["options"] == {"context_size": 256, "flash_attn": "off"}
    assert [i["name"] for i in json.loads(ok(run("instances", "list", "-o", "json")))] == ["walk"]
    assert ok(run("instances", "list")).splitlines()[1].split()[:2] == ["walk", "stopped"]

    follower = subprocess.Popen(
        [sys.executable, "-m", "llamactl", "instances", "logs", "walk", "-f", "-n", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(server.url, home))
    try:
        assert follower.stderr is not None
        assert "following the logs of walk" in follower.stderr.readline()  # connected
        assert ok(run("instances", "start", "walk", "--wait")).strip() == "walk is running"
        followed = read_lines_until(follower, "listening")
    finally:
        follower.terminate()
        follower.communicate(timeout=10)  # waits, and closes its pipes (else ResourceWarning)
    assert "INFO  starting:" in followed[0]

    logged = ok(run("instances", "logs", "walk", "-n", "3", "-o", "json")).splitlines()
    assert len(logged) == 3
    assert all(json.loads(line)["level"] for line in logged)
    assert json.loads(ok(run("instances", "health", "walk", "-o", "json")))["status"] == "healthy"
    assert json.loads(ok(run("instances", "get", "walk", "-o", "json")))["pid"] is not None
    assert "status         running" in ok(run("instances", "get", "walk"))
    assert ok(run("instances", "stop", "walk")).strip() == "walk is stopped"
    assert ok(run("instances", "delete", "walk")).strip() == "deleted walk"

    missing = run("instances", "get", "walk")
    assert missing.returncode == 3  # not found
    assert missing.stderr == "llamactl: error: Instance 'walk' not found (INSTANCE_NOT_FOUND)\n"


def test_batch_update_restart_and_errors(server: LlamactlProcess, model: Path,
                                         home: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, url=server.url, home=home)

    ok(run("instances", "create", "b", "--model", str(model), "--set", "auto_restart=false"))
    updated = json.loads(ok(run("instances", "update", "b", "--option", "threads=2",
                                "-o", "json")))
    assert updated["instance"]["options"] == {"threads": 2}
    assert updated["instance"]["auto_restart"] is False
    assert json.loads(ok(run("instances", "start-all", "-o", "json")))["started"] == ["b"]
    assert ok(run("instances", "restart", "b", "--wait")).strip() == "b is running"
    assert ok(run("instances", "stop-all")).startswith("stopping: b")
    refused = run("instances", "create", "b", "--model", str(model))
    assert refused.returncode == 4  # conflict
    assert "(INSTANCE_EXISTS)" in refused.stderr
    invalid = run("instances", "update", "b", "--option", "threads=four")
    assert invalid.returncode == 1
    assert "(VALIDATION_ERROR)" in invalid.stderr
    assert "options.threads" in invalid.stderr
    unreachable = cli("instances", "list", url="http://127.0.0.1:9", home=home)
    assert unreachable.returncode == 5
    assert unreachable.stderr.startswith("llamactl: error: cannot reach llamactl at ")


def test_system_and_config(server: LlamactlProcess, home: Path) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return cli(*args, url=server.url, home=home, stdin=stdin)

    assert json.loads(ok(run("system", "status", "-o", "json")))["instances"]["total"] == 0
    assert json.loads(ok(run("system", "info", "-o", "json")))["arch"] in ("amd64", "arm64")
    assert "uptime" in ok(run("system", "status"))
    assert json.loads(ok(run("config", "get", "-o", "json")))["rate_limit"]["enabled"] is False
    assert ok(run("config", "get", "rate_limit.enabled")).strip() == "false"
    ok(run("config", "set", "instances.idle_timeout=9", "rate_limit: {regular_per_minute: 50}"))
    ok(run("config", "set", "-f", "-", stdin='{"instances": {"max_restarts": 4}}'))
    written = server.config.read_text()
    assert "idle_timeout: 9" in written
    assert "regular_per_minute: 50" in written
    assert "max_restarts: 4" in written
    assert run("config", "set").returncode == 2
    bad = run("config", "set", "instances.max_restarts=lots")
    assert bad.returncode == 1
    assert "(VALIDATION_ERROR)" in bad.stderr


def test_output_json_before_or_after_the_command(server: LlamactlProcess, model: Path,
                                                 home: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, url=server.url, home=home)

    ok(run("instances", "create", "o", "--model", str(model)))
    after = json.loads(ok(run("instances", "list", "-o", "json")))
    for before in (("-o", "json"), ("--output", "json"), ("--output=json",)):
        assert json.loads(ok(run(*before, "instances", "list"))) == after
    assert json.loads(ok(run("-o", "json", "instances", "get", "o")))["name"] == "o"
    assert json.loads(ok(run("-o", "json", "system", "status")))["instances"]["total"] == 1
    assert json.loads(ok(run("-o", "json", "config", "get", "instances.port_range")))
    # The command's own -o wins over the one before it.
    assert ok(run("-o", "json", "instances", "list", "-o", "table")).startswith("NAME")
    assert ok(run("-o", "table", "config", "get", "rate_limit.enabled")).strip() == "false"


def test_a_missing_config_key_is_an_error_not_a_usage_error(server: LlamactlProcess,
                                                             home: Path) -> None:
    missing = cli("config", "get", "nosuch.key", url=server.url, home=home)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "llamactl: error: no key 'nosuch.key' in the configuration"


def test_a_relative_model_path_is_the_callers(server: LlamactlProcess, model: Path,
                                              home: Path) -> None:
    """``instances create --model tiny.gguf`` typed in the model's folder means that file,
    not one in the server's working directory."""
    created = json.loads(ok(cli("instances", "create", "rel", "--model", model.name, "-o",
                                "json", url=server.url, home=home, cwd=model.parent)))
    assert created["model_path"] == str(model)
    updated = json.loads(ok(cli("instances", "update", "rel", "--model", f"./{model.name}",
                                "-o", "json", url=server.url, home=home, cwd=model.parent)))
    assert updated["instance"]["model_path"] == str(model)


def test_login_saves_a_token_that_later_commands_use(
    tmp_path: Path, llama_server_bin: str, home: Path
) -> None:
    ttl = 30  # seconds: CLI commands take seconds each on a busy machine
    with running_server(tmp_path, llama_server_bin, auth=auth_section(token_ttl=ttl)) as server:
        def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return cli(*args, url=server.url, home=home, stdin=stdin)

        anonymous = run("instances", "list")
        assert anonymous.returncode == 1
        assert "(UNAUTHORIZED)" in anonymous.stderr
        assert "llamactl login" in anonymous.stderr
        assert "logged in" in ok(run("login", "-u", "admin", "--password-stdin",
                                     stdin=PASSWORDS["admin"] + "\n"))
        logged_in_at = time.monotonic()
        saved = home / "llamactl" / "token.json"  # under XDG_CONFIG_HOME
        assert oct(saved.stat().st_mode & 0o777) == "0o600"
        first = json.loads(saved.read_text())["tokens"][server.url]["token"]
        assert json.loads(ok(run("instances", "list", "-o", "json"))) == []
        # Into the last half of the token's life: the next command refreshes it, and saves
        # the new one.
        time.sleep(max(0.0, logged_in_at + ttl / 2 + 0.5 - time.monotonic()))
        assert json.loads(ok(run("system", "info", "-o", "json")))["cpu_count"] >= 1
        assert json.loads(saved.read_text())["tokens"][server.url]["token"] != first
        ok(run("logout"))
        assert run("instances", "list").returncode == 1


def test_start_wait_shows_a_spinner_on_a_terminal(
    server: LlamactlProcess, model: Path, home: Path
) -> None:
    ok(cli("instances", "create", "s", "--model", str(model), url=server.url, home=home))
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "llamactl", "instances", "start", "s", "--wait"],
            stdout=subprocess.PIPE, stderr=terminal, text=True, env=cli_env(server.url, home))
        stdout, _ = process.communicate(timeout=STATUS_TIMEOUT)
        os.close(terminal)
        shown = read_all(controller)
    finally:
        os.close(controller)
    assert stdout.strip() == "s is running"
    assert "⠋ starting s (0s)" in shown
    ok(cli("instances", "stop", "s", url=server.url, home=home))


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _commands(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_the_top_level_help_lists_each_command_with_its_own_summary() -> None:
    """``llamactl --help`` lists the subcommands without importing them (cli.SUBCOMMANDS):
    each summary there must be how the command's own help begins."""
    ctx = click.Context(main)
    for name, (_, summary) in SUBCOMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.help is not None
        assert " ".join(command.help.split()).startswith(summary.rstrip(".")), name
    listed = CliRunner().invoke(main, ["--help"]).output
    assert all(name in listed for name in ("serve", *SUBCOMMANDS))


def test_every_client_command_has_help_with_examples() -> None:
    runner = CliRunner()
    paths = [p for p in _commands(main, ()) if p[0] in CLIENT_COMMANDS]
    # 9 entries, 13 instance commands, 2 system, 2 config, 3 models
    assert len(paths) == 29
    for path in paths:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Examples:" in result.output, path


def test_option_values_are_json_when_they_parse() -> None:
    assert parse_pairs(["threads=4", "flash_attn=on", "mlock=true", "alias=7b", "x=null",
                        "lora=[\"a.gguf\"]", "text=a=b"], "--option") == {
        "threads": 4, "flash_attn": "on", "mlock": True, "alias": "7b", "x": None,
        "lora": ["a.gguf"], "text": "a=b"}
    with pytest.raises(click.BadParameter):
        parse_pairs(["novalue"], "--option")


def test_import_creates_an_instance_from_a_command_line(server: LlamactlProcess, model: Path,
                                                         home: Path) -> None:
    imported = cli("instances", "import", "imp", "-o", "json", "--", "llama-server",
                   "-m", str(model), "-c", "512", "-t", "1", "--host", "0.0.0.0",
                   url=server.url, home=home)
    instance = json.loads(ok(imported))
    assert instance["options"] == {"context_size": 512, "threads": 1}
    assert instance["model_path"] == str(model)
    assert "ignored (llamactl sets it or cannot use it): --host" in imported.stderr
    refused = cli("instances", "import", "bad", "--", "vllm", "serve", "x",
                  url=server.url, home=home)
    assert refused.returncode == 1
    assert "is not a llama_cpp command" in refused.stderr
