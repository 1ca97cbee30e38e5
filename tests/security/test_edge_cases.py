"""Issue 27, point 9, the smaller ones, each against a real llamactl: a newline in a request
path cannot forge a line of llamactl's log; a NUL in ``model_path`` is a 400, not a 500; two
``Host`` headers are a 400; a config write killed midway leaves no temp file past the next
start; ``HEAD`` on a ``GET`` route answers as the GET would, without a body."""

from __future__ import annotations

import time
from pathlib import Path

from tests.security.conftest import Server
from tests.security.raw import send_head
from tests.support.helpers import backend_config, llamactl_server

MARK = "FORGED-LINE-27"


def test_a_newline_in_a_path_cannot_forge_a_log_line(secured_server: Server) -> None:
    with secured_server.client() as stranger:
        for path in (f"/api/x%0a{MARK}%20admin%20logged%20in", f"/v1/x%0d%0a{MARK}%1b[2J"):
            assert stranger.get(path).status_code in (401, 404)
    log = secured_server.process.log
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and log.read_text().count(MARK) < 2:
        time.sleep(0.1)
    text = log.read_text()
    assert text.count(MARK) == 2, text[-2000:]
    assert not any(line.startswith(MARK) for line in text.splitlines())
    assert f"\\n{MARK}" in text
    assert f"\\r\\n{MARK}\\x1b[2J" in text
    assert "\x1b" not in text


def test_a_nul_in_model_path_is_a_400(secured_server: Server, models_dir: Path) -> None:
    with secured_server.client("op") as op:
        answer = op.post("/api/instances", json={"name": "nul-path",
                                                 "model_path": f"{models_dir}/tiny\u0000.gguf"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "VALIDATION_ERROR"
        assert op.get("/api/instances/nul-path").status_code == 404


def test_two_host_headers_are_a_400(secured_server: Server) -> None:
    admin = f"Authorization: Bearer {secured_server.tokens['admin']}"
    for path in ("/api/instances", "/v1/models"):
        head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{secured_server.port}\r\n"
                f"Host: rebound.example\r\n{admin}\r\n\r\n")
        answer = send_head(secured_server.port, head, read_timeout=10)
        assert answer.status == 400, (path, answer.body)


def test_head_answers_as_get_without_a_body(secured_server: Server) -> None:
    with secured_server.client("view") as viewer:
        for path in ("/api/instances", "/api/system/status", "/"):
            got, head = viewer.get(path), viewer.head(path)
            assert head.status_code == got.status_code == 200, (path, head.text)
            assert head.content == b""
            assert head.headers["content-type"] == got.headers["content-type"]
        started = time.monotonic()
        stream = viewer.head("/api/events")  # an endless stream's HEAD ends at its head
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert time.monotonic() - started < 10


def test_a_config_write_s_leftover_is_removed_at_start(tmp_path: Path,
                                                      llama_server_bin: str) -> None:
    config = backend_config(tmp_path / "config.yaml", llama_server_bin)
    leftover = tmp_path / ".config.yaml.k9_x2abc.tmp"  # as mkstemp names it: 8 characters
    leftover.write_text("server: {port: 1")  # half a document, as a kill -9 leaves it
    kept = [tmp_path / ".config.yaml.bak.tmp", tmp_path / "notes.tmp",
            tmp_path / ".other.yaml.k9_x2abc.tmp"]
    for path in kept:
        path.write_text("not ours")
    with llamactl_server(tmp_path / "data", config):
        assert not leftover.exists()
        assert all(path.exists() for path in kept)
