"""Issue 27, point 7: a token in the URL counts only where a browser cannot send a header
(the WebSocket handshake, ``GET /api/events``, followed logs); and a forwarded address counts
only from ``server.trusted_proxies``, so a local client cannot rotate its address past the
failed-login limit. Real llamactl servers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.security.conftest import Server
from tests.security.raw import websocket_handshake
from tests.support.clients import auth_section, running_server


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/keys?follow=true"),
    ("POST", "/api/keys"),
    ("GET", "/api/instances?follow=true"),
    ("GET", "/api/instances"),
    ("POST", "/api/events"),
    ("GET", "/api/system/status?follow=1"),
])
def test_a_token_in_the_url_is_no_credential_elsewhere(secured_server: Server, method: str,
                                                        path: str) -> None:
    token = secured_server.tokens["admin"]
    separator = "&" if "?" in path else "?"
    with secured_server.client() as anonymous:
        answer = anonymous.request(method, f"{path}{separator}token={token}",
                                   json={"name": "from-a-url"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "UNAUTHORIZED"
    with secured_server.client("admin") as admin:
        assert all(key["name"] != "from-a-url" for key in admin.get("/api/keys").json()["keys"])


def test_a_token_in_the_url_opens_the_streams(secured_server: Server, models_dir: Path) -> None:
    token = secured_server.tokens["view"]
    with secured_server.client("op") as op:
        made = op.post("/api/instances", json={"name": "url-token-logs",
                                               "model_path": str(models_dir / "tiny.gguf")})
        assert made.status_code == 201, made.text
    try:
        with secured_server.client() as anonymous:
            for url in (f"/api/events?token={token}",
                        f"/api/instances/url-token-logs/logs?follow=true&token={token}"):
                with anonymous.stream("GET", url) as stream:
                    assert stream.status_code == 200, url
                    assert stream.headers["content-type"].startswith("text/event-stream")
        handshake = websocket_handshake(secured_server.port, f"/api/ws?token={token}")
        assert handshake.status == 101
    finally:
        with secured_server.client("op") as op:
            op.delete("/api/instances/url-token-logs")


def _failed_logins(url: str, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        return [client.post("/api/auth/login", headers={"X-Forwarded-For": address},
                            json={"username": "admin", "password": "wrong"}).status_code
                for address in forwarded_for]


ROTATED = [f"203.0.113.{n}" for n in range(1, 6)]


def test_a_forwarded_address_is_ignored_by_default(tmp_path: Path,
                                                   llama_server_bin: str) -> None:
    with running_server(tmp_path, llama_server_bin, auth=auth_section(),
                        rate_limit={"login_failures_per_minute": 3}) as server:
        # Five addresses named, one peer: its fourth failure is refused.
        assert _failed_logins(server.url, ROTATED) == [401, 401, 401, 429, 429]


def test_a_forwarded_address_counts_from_a_trusted_proxy(tmp_path: Path,
                                                         llama_server_bin: str) -> None:
    with running_server(tmp_path, llama_server_bin, auth=auth_section(),
                        rate_limit={"login_failures_per_minute": 3},
                        server={"trusted_proxies": ["127.0.0.0/8"]}) as server:
        assert _failed_logins(server.url, ROTATED) == [401] * 5  # five clients, one each
        assert _failed_logins(server.url, ["198.51.100.7"] * 4) == [401, 401, 401, 429]
