"""llamactl's front door (gateway/http_protocol.py) against a stranger on the network (issue 27,
point 3): a head that never completes, a head too large, and more connections than allowed.
A real ``llamactl serve``; raw sockets where the wire matters."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import LlamactlProcess, llamactl_server, wait_until, write_config

HEADER_TIMEOUT = 1.5
MAX_CONNECTIONS = 12
API_HEAD = b"GET /api/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def _serve(tmp_path: Path, llama_server_bin: str,
           header_timeout: float) -> contextlib.AbstractContextManager[LlamactlProcess]:
    config = write_config(tmp_path / "config.yaml", {
        "backends": {"llama_cpp": {"command": llama_server_bin}},
        "rate_limit": {"enabled": False},
        "server": {"header_timeout": header_timeout, "max_connections": MAX_CONNECTIONS},
    })
    return llamactl_server(tmp_path / "data", config)


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with _serve(tmp_path, llama_server_bin, HEADER_TIMEOUT) as running:
        yield running


@pytest.fixture
def patient_server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    """One whose header timeout outlasts the test: idle connections stay until closed."""
    with _serve(tmp_path, llama_server_bin, 120) as running:
        yield running


def _connect(server: LlamactlProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _closed_by_server(sock: socket.socket) -> bytes:
    """What the server sent before it closed the connection (b"" for nothing)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _api_answers(server: LlamactlProcess) -> bool:
    return httpx.get(f"{server.url}/api/instances", timeout=5).status_code == 200


def test_slow_and_silent_heads_are_closed_at_the_header_timeout_while_the_api_answers(
    server: LlamactlProcess,
) -> None:
    silent = _connect(server)
    slow = _connect(server)
    began = time.monotonic()
    closed_at: float | None = None
    sent = 0
    while closed_at is None and time.monotonic() - began < HEADER_TIMEOUT * 4:
        try:  # a byte every 0.3 s: never a whole head
            slow.sendall(API_HEAD[sent:sent + 1])
            sent += 1
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic()
            break
        assert _api_answers(server)  # meanwhile, the API answers on other connections
        slow.settimeout(0.3)
        try:
            if slow.recv(1) == b"":
                closed_at = time.monotonic()
        except TimeoutError:
            pass
    assert closed_at is not None, "a head sent a byte at a time was never cut off"
    assert HEADER_TIMEOUT * 0.9 <= closed_at - began <= HEADER_TIMEOUT + 2
    assert sent < len(API_HEAD)
    assert _closed_by_server(silent) == b""  # sent nothing: closed too, with nothing said
    assert time.monotonic() - began <= HEADER_TIMEOUT * 4
    silent.close()
    slow.close()


def test_a_head_over_64_kib_is_answered_431(server: LlamactlProcess) -> None:
    for path in (b"/api/instances", b"/v1/models"):
        sock = _connect(server)
        filler = b"".join(b"x-filler-%d: %s\r\n" % (i, b"a" * 1000) for i in range(70))
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, filler))
        answer = _closed_by_server(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == "HEADERS_TOO_LARGE"
    assert _api_answers(server)


def test_connections_over_the_cap_are_answered_503_and_the_api_answers_once_they_close(
    patient_server: LlamactlProcess,
) -> None:
    server = patient_server
    held = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    # the server counts a connection once it has accepted it: the last one may still wait
    extra = wait_until(lambda: _refused_connection(server), 10, "a refused connection")
    answer = _closed_by_server(extra)
    extra.close()
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == "TOO_MANY_CONNECTIONS"
    for sock in held:
        sock.close()
    wait_until(lambda: _api_answers(server), 10, "the API to answer again")


def _refused_connection(server: LlamactlProcess) -> socket.socket | None:
    sock = _connect(server)
    sock.settimeout(0.5)
    try:
        first = sock.recv(12, socket.MSG_PEEK)
    except TimeoutError:
        sock.close()  # accepted and counted: not over the cap yet
        return None
    sock.settimeout(10)
    if first.startswith(b"HTTP/1.1 503"):
        return sock
    sock.close()
    return None


def test_a_connection_that_began_with_api_serves_v1_after_it(server: LlamactlProcess) -> None:
    """Handed to uvicorn at its first request, the connection still gets /v1 answered (through
    the app, gateway/outside.py), as the same client's next requests."""
    with server.client() as client:
        assert client.get("/api/instances").status_code == 200
        answer = client.get("/v1/models")
        assert answer.status_code == 200
        assert answer.json()["object"] == "list"
        assert client.post("/v1/completions", json={"model": "nope"}).json()["error"][
            "code"] == "model_not_found"
