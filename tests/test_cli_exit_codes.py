"""Exit statuses scripts can rely on, and saved tokens keyed by the normalised URL.

The statuses of not found, conflict and unreachable against a real llamactl are in
test_cli_instances.py; here a real local HTTP server answers what a real llamactl answers
only by chance (a start-all with a failure in it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from llamactl.cli import main
from llamactl.cli.common import store_token, stored_token, token_key
from tests.test_client_unit import INSTANCE

BATCH = {"message": "done", "started": ["a"], "skipped": [],
         "failed": [{"name": "b", "error": "port 8081 in use"}]}


class BatchHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(BATCH).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def batch_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BatchHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("command", ["start-all", "stop-all"])
@pytest.mark.parametrize("output", ["table", "json"])
def test_a_batch_with_a_failure_exits_1(batch_server: str, command: str, output: str,
                                        tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["instances", command, "--url", batch_server,
                                       "-o", output],
                                env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert "port 8081 in use" in result.output


def test_usage_error_is_2() -> None:
    assert CliRunner().invoke(main, ["instances", "get"]).exit_code == 2


def test_tokens_are_keyed_by_the_normalised_url(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert token_key("localhost:8080") == "http://127.0.0.1:8080"
    assert token_key("http://127.0.0.1:8080/api/") == "http://127.0.0.1:8080"
    assert token_key("http://example.com:80") == "http://example.com"
    assert token_key("https://Example.com:443/") == "https://example.com"
    store_token("http://localhost:8080", "t1")
    assert stored_token("http://127.0.0.1:8080") == "t1"
    store_token("127.0.0.1:8080", None)
    assert stored_token("http://localhost:8080") is None


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert "_LLAMACTL_COMPLETE" in result.output
    assert CliRunner().invoke(main, ["completion", "tcsh"]).exit_code == 2


def test_completion_completes_subcommands() -> None:
    from click.shell_completion import ShellComplete

    names = [c.value for c in ShellComplete(main, {}, "llamactl", "_LLAMACTL_COMPLETE")
             .get_completions([], "inst")]
    assert names == ["instances"]


def test_system_status_counts_failed_instances() -> None:
    from llamactl.cli.system import counts_line
    from llamactl.client import InstanceCounts

    counts = InstanceCounts(total=4, running=1, stopped=1, starting=1, stopping=0,
                            restarting=0, failed=1)
    assert counts_line(counts) == "4 (1 running, 1 stopped, 1 failed, 1 starting)"


@pytest.mark.parametrize("command", ["start", "stop", "restart"])
def test_start_stop_and_restart_wait_the_same_way(command: str) -> None:
    from llamactl.cli.instances import instances

    sub = instances.commands[command]
    wait = next(p for p in sub.params if p.name == "wait")
    assert wait.default is True
    assert "--no-wait" in CliRunner().invoke(main, ["instances", command, "--help"]).output
    names = {p.name for p in sub.params}
    assert ("grace" in names) == (command == "stop")


def test_url_at_the_root_and_on_the_command(batch_server: str, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "LLAMACTL_URL": "http://127.0.0.1:9"}
    runner = CliRunner()
    at_root = runner.invoke(main, ["--url", batch_server, "instances", "start-all"], env=env)
    assert "port 8081 in use" in at_root.output  # the root's --url beat $LLAMACTL_URL
    own = runner.invoke(main, ["--url", "http://127.0.0.1:9", "instances", "start-all",
                               "--url", batch_server], env=env)
    assert "port 8081 in use" in own.output  # the command's own --url wins
    from_env = runner.invoke(main, ["instances", "start-all"],
                             env={**env, "LLAMACTL_URL": batch_server})
    assert "port 8081 in use" in from_env.output


def test_list_quiet_prints_names_only(tmp_path: Path) -> None:
    import http.server

    class Listing(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"instances": [{**INSTANCE, "name": n} for n in ("a", "b")]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Listing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        result = CliRunner().invoke(
            main, ["instances", "list", "-q", "--url", f"http://127.0.0.1:{httpd.server_address[1]}"],
            env={"XDG_CONFIG_HOME": str(tmp_path)})
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert result.exit_code == 0, result.output
    assert result.output == "a\nb\n"
