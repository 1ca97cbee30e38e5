"""A web page the user opens must not drive llamactl: the Origin rule (cross-site requests,
WebSocket hijacking) and the Host rule (DNS rebinding) on every kind of route, against the
install a new user runs (loopback, auth off), and the headers every answer carries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AppHarness
from tests.security.conftest import Server
from tests.security.raw import websocket_handshake

EVIL = "http://evil.example"
CONTENT_SECURITY_POLICY = (  # what HTML answers carry, word for word
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'")
CHAT = {"model": "victim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
# Every kind of route: the API, its event streams, the gateway, metrics, the web pages.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/instances", None),
    ("POST", "/api/instances/start-all", None),
    ("GET", "/api/events", None),
    ("GET", "/api/instances/victim/logs?follow=true", None),
    ("GET", "/metrics", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", CHAT),
]
FOREIGN: dict[str, Callable[[Server], dict[str, str]]] = {
    "foreign origin": lambda s: {"Origin": EVIL},
    "null origin": lambda s: {"Origin": "null"},
    "other port": lambda s: {"Origin": "http://127.0.0.1:1"},
    "cross-site fetch": lambda s: {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
    "rebound host": lambda s: {"Host": f"evil.example:{s.port}"},
}


def request(server: Server, method: str, path: str, body: Any,
            headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """One request; an endless answer (an event stream) is read no further than its head."""
    with server.client() as client, client.stream(method, path, json=body,
                                                   headers=headers) as answer:
        streaming = answer.headers.get("content-type", "").startswith("text/event-stream")
        return answer, b"" if streaming else answer.read()


def error_code(path: str, answer: httpx.Response, body: bytes) -> str:
    document = httpx.Response(200, content=body).json()
    if path.startswith("/v1"):  # OpenAI's envelope
        assert answer.headers["content-type"] == "application/json"
        return str(document["error"]["code"]).upper()
    assert set(document) == {"error", "code", "details"}
    return str(document["code"])


@pytest.fixture(scope="module")
def victim(open_server: Server, tiny_model_file: Path) -> str:
    """A stopped instance on the open server, created as curl would create it."""
    with open_server.client() as client:
        answer = client.post("/api/instances", json={
            "name": "victim", "model_path": str(tiny_model_file), "on_demand_start": True})
        assert answer.status_code == 201, answer.text
    return "victim"


@pytest.mark.parametrize("foreign", sorted(FOREIGN))
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[r[1] for r in ROUTES])
def test_foreign_requests_are_refused_everywhere(
    open_server: Server, victim: str, method: str, path: str, body: Any, foreign: str,
) -> None:
    answer, content = request(open_server, method, path, body, FOREIGN[foreign](open_server))
    want = "FORBIDDEN_HOST" if foreign == "rebound host" else "FORBIDDEN_ORIGIN"
    assert answer.status_code == 403, content
    assert error_code(path, answer, content) == want
    assert answer.headers["x-content-type-options"] == "nosniff"
    with open_server.client() as client:  # and nothing happened
        assert client.get(f"/api/instances/{victim}").json()["status"] == "stopped"


@pytest.mark.parametrize(("method", "path", "body"), [r for r in ROUTES if r[0] == "GET"],
                         ids=[r[1] for r in ROUTES if r[0] == "GET"])
def test_curl_own_pages_and_loopback_names_are_served(
    open_server: Server, victim: str, method: str, path: str, body: Any,
) -> None:
    own = f"http://127.0.0.1:{open_server.port}"
    for headers in ({}, {"Origin": own, "Sec-Fetch-Site": "same-origin"},
                    {"Host": f"localhost:{open_server.port}"},
                    {"Host": f"[::1]:{open_server.port}"}):
        answer, content = request(open_server, method, path, body, headers)
        assert answer.status_code == 200, (headers, content)


def test_a_simple_cross_site_post_creates_and_starts_nothing(
    open_server: Server, victim: str, tiny_model_file: Path,
) -> None:
    document = json.dumps({"name": "planted", "model_path": str(tiny_model_file),
                           "environment": {"LD_PRELOAD": "x"}})  # sent as text/plain
    with open_server.client() as client:
        created = client.post("/api/instances", content=document, headers={
            "Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
        started = client.post(f"/api/instances/{victim}/start",
                              headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
        assert (created.status_code, created.json()["code"]) == (403, "FORBIDDEN_ORIGIN")
        assert (started.status_code, started.json()["code"]) == (403, "FORBIDDEN_ORIGIN")
        names = [i["name"] for i in client.get("/api/instances").json()["instances"]]
        assert names == [victim]
        assert client.get(f"/api/instances/{victim}").json()["status"] == "stopped"


def test_navigating_to_a_page_is_not_refused_but_to_the_api_it_is(open_server: Server) -> None:
    navigation = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                  "Sec-Fetch-Dest": "document"}
    with open_server.client() as client:
        assert client.get("/docs", headers=navigation).status_code == 200
        refused = client.get("/api/instances", headers=navigation)
        assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN_ORIGIN")
        posted = client.post("/docs", headers={**navigation, "Origin": EVIL})
        assert posted.status_code == 403


def test_websocket_handshakes(open_server: Server) -> None:
    port = open_server.port
    assert websocket_handshake(port, "/api/ws").status == 101  # the clients: no Origin
    own = websocket_handshake(port, "/api/ws", {"Origin": f"http://127.0.0.1:{port}"})
    assert own.status == 101
    hijack = websocket_handshake(port, "/api/ws", {"Origin": EVIL})
    assert (hijack.status, hijack.json()["code"]) == (403, "FORBIDDEN_ORIGIN")
    rebound = websocket_handshake(port, "/api/ws", host=f"evil.example:{port}")
    assert (rebound.status, rebound.json()["code"]) == (403, "FORBIDDEN_HOST")


@pytest.mark.parametrize(("path", "status"), [
    ("/api/instances", 200), ("/api/instances/nope", 404), ("/v1/models", 200),
    ("/v1/models/nope", 404), ("/metrics", 200), ("/openapi.json", 200), ("/docs", 200),
])
def test_every_answer_says_nosniff(open_server: Server, path: str, status: int) -> None:
    with open_server.client() as client:
        answer = client.get(path)
    assert answer.status_code == status
    assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
    html = answer.headers["content-type"].startswith("text/html")
    assert html == (path == "/docs")
    if html:
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_allowed_hosts_and_cors_origins(
    make_settings: Callable[..., Any], make_app: Any,
) -> None:
    settings = make_settings(fake=True, sections={"server": {
        "allowed_hosts": ["llm.lan"], "cors_origins": ["https://app.example"]}})
    app: AppHarness = await make_app(settings)
    for path in ("/api/instances", "/v1/models"):
        served = await app.client.get(path, headers={"Host": "llm.lan:8080"})
        assert served.status_code == 200
        refused = await app.client.get(path, headers={"Host": "other.lan:8080"})
        assert refused.status_code == 403
        allowed = await app.client.get(path, headers={"Origin": "https://app.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        foreign = await app.client.get(path, headers={"Origin": "https://other.example"})
        assert foreign.status_code == 403
