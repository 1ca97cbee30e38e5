"""Issue 27, point 2: ``/api`` judges a request on its head. A stranger's body is never
read (401 before it is sent), an oversize body is refused at ``server.max_body_size`` (413
``PAYLOAD_TOO_LARGE``, declared or counted as it comes), and the same routes still take a
small body. Against the suite's real secured server (auth on, default 1 MiB limit)."""

from __future__ import annotations

import socket

from tests.security.conftest import Server
from tests.security.raw import RawAnswer, send_head

MIB = 2**20
QUICK = 10.0  # an answer on the head comes at once; before the fix it never came


def _head(server: Server, method: str, path: str, *extra: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
             "Content-Type: application/json", *extra]
    return "\r\n".join(lines) + "\r\n\r\n"


def _closed_after(sock: socket.socket) -> bool:
    """Whether the server ends the connection once it has answered (it reads no further):
    a close, or a reset when bytes we sent were left unread."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_a_stranger_s_64_mb_body_is_refused_before_it_is_sent(secured_server: Server) -> None:
    head = _head(secured_server, "POST", "/api/instances", f"Content-Length: {64 * MIB}")
    answer = send_head(secured_server.port, head, read_timeout=QUICK)  # not a byte of body
    assert answer.status == 401, answer.body
    assert answer.json()["code"] == "UNAUTHORIZED"
    assert answer.headers["connection"] == "close"


def test_a_bad_token_is_refused_on_the_head_too(secured_server: Server) -> None:
    head = _head(secured_server, "PUT", "/api/config", "Authorization: Bearer forged",
                 f"Content-Length: {64 * MIB}")
    answer = send_head(secured_server.port, head, read_timeout=QUICK)
    assert (answer.status, answer.json()["code"]) == (401, "UNAUTHORIZED")


def test_an_oversize_declared_body_is_413_before_it_is_sent(secured_server: Server) -> None:
    admin = f"Authorization: Bearer {secured_server.tokens['admin']}"
    head = _head(secured_server, "POST", "/api/keys", admin, f"Content-Length: {2 * MIB}")
    answer = send_head(secured_server.port, head, read_timeout=QUICK)
    assert answer.status == 413, answer.body
    assert set(answer.json()) == {"error", "code", "details"}
    assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_an_oversize_chunked_body_is_counted_and_refused(secured_server: Server) -> None:
    admin = f"Authorization: Bearer {secured_server.tokens['admin']}"
    head = _head(secured_server, "POST", "/api/keys", admin, "Transfer-Encoding: chunked")
    chunk = b"x" * (64 * 1024)
    with socket.create_connection(("127.0.0.1", secured_server.port), timeout=QUICK) as sock:
        sock.sendall(head.encode())
        for _ in range(MIB // len(chunk) + 1):  # one chunk past the limit, then nothing more
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        answer = RawAnswer(head_bytes, body)
        assert answer.status == 413, data[:500]
        assert answer.headers["connection"] == "close"
        assert _closed_after(sock)


def test_the_same_routes_take_a_small_body(secured_server: Server) -> None:
    with secured_server.client("admin") as admin:
        made = admin.post("/api/keys", json={"name": "head-checks-small"})
        assert made.status_code == 201, made.text
        chunked = admin.post("/api/keys", content=iter([b'{"name": ', b'"head-checks-chunked"}']))
        assert chunked.status_code == 201, chunked.text
        for name in ("head-checks-small", "head-checks-chunked"):
            assert admin.delete(f"/api/keys/{name}").status_code == 200
    with secured_server.client() as stranger:  # the one open route still reads its body
        login = stranger.post("/api/auth/login", json={"username": "view",
                                                        "password": "viewer-password"})
        assert login.status_code == 200, login.text
