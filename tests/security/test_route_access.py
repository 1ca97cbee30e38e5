"""Every ``/api`` route against every kind of caller, from one table of rules.

The table is checked against the app's own route table, both ways: a new ``/api`` route
without a rule fails this suite (so does a rule for a route that is gone). Each rule names
the least role a route needs and a request to it that changes nothing when it is allowed
(an unknown instance, an invalid body), with the status that request gets then.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import WebSocketRoute

from llamactl.app import create_app
from llamactl.config import Settings
from llamactl.security import tokens
from tests.security.conftest import AUTH_SECRET, Server
from tests.security.raw import websocket_handshake
from tests.support.clients import PASSWORDS, password_hash

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

Need = Literal["public", "viewer", "operator", "admin"]
GHOST = "no-such-instance"


@dataclass(frozen=True)
class Rule:
    need: Need
    target: str  # the path requested
    ok: int  # the status when the caller may
    body: Any = None
    stream: bool = False  # an endless answer: only its head is read
    params: dict[str, str] = field(default_factory=dict)


LOGIN = {"username": "view", "password": PASSWORDS["view"]}
RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/api/auth/login"): Rule("public", "/api/auth/login", 200, LOGIN),
    ("POST", "/api/auth/refresh"): Rule("viewer", "/api/auth/refresh", 200),
    ("GET", "/api/auth/me"): Rule("viewer", "/api/auth/me", 200),
    ("GET", "/api/instances"): Rule("viewer", "/api/instances", 200),
    ("POST", "/api/instances"): Rule("operator", "/api/instances", 400, {"name": "x"}),
    ("POST", "/api/instances/start-all"): Rule("operator", "/api/instances/start-all", 200),
    ("POST", "/api/instances/stop-all"): Rule("operator", "/api/instances/stop-all", 200),
    ("GET", "/api/instances/{name}"): Rule("viewer", f"/api/instances/{GHOST}", 404),
    ("PUT", "/api/instances/{name}"): Rule("operator", f"/api/instances/{GHOST}", 404, {}),
    ("DELETE", "/api/instances/{name}"): Rule("operator", f"/api/instances/{GHOST}", 404),
    ("POST", "/api/instances/{name}/start"): Rule("operator", f"/api/instances/{GHOST}/start",
                                                  404),
    ("POST", "/api/instances/{name}/stop"): Rule("operator", f"/api/instances/{GHOST}/stop", 404),
    ("POST", "/api/instances/{name}/restart"): Rule("operator",
                                                    f"/api/instances/{GHOST}/restart", 404),
    ("GET", "/api/instances/{name}/health"): Rule("viewer", f"/api/instances/{GHOST}/health",
                                                  404),
    ("GET", "/api/instances/{name}/logs"): Rule("viewer", f"/api/instances/{GHOST}/logs", 404),
    ("GET", "/api/instances/{name}/history"): Rule("viewer", f"/api/instances/{GHOST}/history",
                                                   404),
    **{(method, "/api/instances/{name}/proxy/{path:path}"): Rule(
        "operator", f"/api/instances/{GHOST}/proxy/health", 404,
        None if method in ("GET", "DELETE") else {})
       for method in ("GET", "POST", "PUT", "DELETE")},
    ("GET", "/api/keys"): Rule("admin", "/api/keys", 200),
    ("POST", "/api/keys"): Rule("admin", "/api/keys", 400, {"name": "not a valid name"}),
    ("DELETE", "/api/keys/{name}"): Rule("admin", "/api/keys/no-such-key", 404),
    ("GET", "/api/system/status"): Rule("viewer", "/api/system/status", 200),
    ("GET", "/api/system/info"): Rule("viewer", "/api/system/info", 200),
    ("GET", "/api/config"): Rule("viewer", "/api/config", 200),
    ("GET", "/api/backends"): Rule("viewer", "/api/backends", 200),
    ("GET", "/api/pools"): Rule("viewer", "/api/pools", 200),
    ("POST", "/api/backends/{backend}/parse-command"): Rule(
        "operator", "/api/backends/llama_cpp/parse-command", 400, {"command": "ls -l"}),
    ("POST", "/api/backends/{backend}/estimate"): Rule(
        "operator", "/api/backends/llama_cpp/estimate", 400, {"model_path": "relative.gguf"}),
    ("PUT", "/api/config"): Rule("admin", "/api/config", 400, {"server": {"port": 0}}),
    ("GET", "/api/events"): Rule("viewer", "/api/events", 200, stream=True),
    ("WS", "/api/ws"): Rule("viewer", "/api/ws", 101),
    # issue 30: every reader, a viewer limited to its own records
    ("GET", "/api/activity"): Rule("viewer", "/api/activity", 200),
    ("GET", "/api/activity/summary"): Rule("viewer", "/api/activity/summary", 200),
    ("GET", "/api/activity/export"): Rule("viewer", "/api/activity/export", 200),
    ("PUT", "/api/keys/{name}"): Rule("admin", "/api/keys/no-such-key", 404, {}),
    ("GET", "/api/keys/{name}/usage"): Rule("admin", "/api/keys/no-such-key/usage", 404),
    ("GET", "/api/auth/me/usage"): Rule("viewer", "/api/auth/me/usage", 200),
    ("GET", "/api/audit"): Rule("admin", "/api/audit", 200),
    # issue 33: the model library: listing for all, pulling for operators, deleting admins
    ("GET", "/api/models"): Rule("viewer", "/api/models", 200),
    ("POST", "/api/models/pull"): Rule("operator", "/api/models/pull", 400,
                                       {"source": "not a repo"}),
    ("GET", "/api/models/pulls"): Rule("viewer", "/api/models/pulls", 200),
    ("GET", "/api/models/pulls/{pull_id}"): Rule("viewer", "/api/models/pulls/nope", 404),
    ("DELETE", "/api/models/pulls/{pull_id}"): Rule("operator", "/api/models/pulls/nope", 404),
    ("DELETE", "/api/models/{model_id}"): Rule("admin", "/api/models/no-such.gguf", 404),
}
RANK = {"public": -1, "viewer": 0, "operator": 1, "admin": 2}


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every /api route the app serves; "WS" for a WebSocket's."""
    found = set()
    for route in iter_route_contexts(create_app(Settings()).routes):
        # The instance-name converter (api/paths.py) is routing's detail: rules say {name}.
        path = (route.path or "").replace("{name:instance}", "{name}").replace(
            "{model_id:model_id}", "{model_id}")
        if not (path == "/api" or path.startswith("/api/")):
            continue
        if isinstance(route.original_route, WebSocketRoute):
            found.add(("WS", path))
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, path))
    return found


def test_every_api_route_has_a_rule() -> None:
    routes = app_routes()
    assert routes - RULES.keys() == set(), "routes without a rule in RULES"
    assert RULES.keys() - routes == set(), "rules for routes the app no longer has"


# ---- the callers ----

def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _claims(user: str, expires: datetime) -> dict[str, Any]:
    return {"iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "sub": user,
            "pwf": tokens.password_fingerprint(password_hash(user)),
            "iat": int((expires - timedelta(hours=1)).timestamp()),
            "exp": int(expires.timestamp())}


def _forged(kind: str) -> str:
    later = datetime.now(UTC) + timedelta(hours=1)
    if kind == "wrong signature":
        return jwt.encode(_claims("admin", later), "another-secret-" + "y" * 40,
                          algorithm="HS256")
    if kind == "alg none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims('admin', later))}."
    if kind == "expired":  # signed with the server's own secret, an hour ago
        return jwt.encode(_claims("admin", datetime.now(UTC) - timedelta(minutes=5)),
                          AUTH_SECRET, algorithm="HS256")
    return "garbage"


REFUSED = ["no token", "garbage", "wrong signature", "alg none", "expired", "api key"]
USERS: dict[str, Need] = {"view": "viewer", "op": "operator", "admin": "admin"}


def caller_token(server: Server, kind: str) -> str | None:
    if kind == "no token":
        return None
    if kind in USERS:
        return server.tokens[kind]
    if kind == "api key":  # an inference key is for /v1, never for /api
        if "api key" not in server.tokens:
            with server.client("admin") as admin:
                answer = admin.post("/api/keys", json={"name": "suite-matrix"})
                assert answer.status_code == 201, answer.text
                server.tokens["api key"] = answer.json()["key"]
        return server.tokens["api key"]
    return _forged(kind)


def expected_status(rule: Rule, kind: str) -> int:
    if rule.need == "public":
        return rule.ok
    if kind in REFUSED:
        return 401
    return rule.ok if RANK[USERS[kind]] >= RANK[rule.need] else 403


def http_status(server: Server, method: str, rule: Rule, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client() as client, client.stream(
        method, rule.target, json=rule.body, headers=headers, params=rule.params,
    ) as answer:
        text = "" if rule.stream and answer.status_code == 200 else answer.read().decode()
        return answer.status_code, text


def ws_status(server: Server, rule: Rule, token: str | None) -> tuple[int, str]:
    path = rule.target + (f"?token={token}" if token else "")
    answer = websocket_handshake(server.port, path)
    return answer.status, answer.body.decode()


@pytest.mark.parametrize(("method", "path"), sorted(RULES),
                         ids=[f"{method} {path}" for method, path in sorted(RULES)])
def test_route_against_every_caller(secured_server: Server, method: str, path: str) -> None:
    rule = RULES[(method, path)]
    call: Callable[[str | None], tuple[int, str]] = (
        (lambda token: ws_status(secured_server, rule, token)) if method == "WS"
        else (lambda token: http_status(secured_server, method, rule, token)))
    wrong = []
    for kind in [*REFUSED, *USERS]:
        status, text = call(caller_token(secured_server, kind))
        want = expected_status(rule, kind)
        codes = {401: ("UNAUTHORIZED", "TOKEN_EXPIRED"), 403: ("FORBIDDEN",)}.get(want)
        if status != want or (codes and json.loads(text)["code"] not in codes):
            wrong.append(f"{kind}: {status} (want {want}) {text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_expired_token_says_so(secured_server: Server) -> None:
    with secured_server.client() as client:
        answer = client.get("/api/instances",
                            headers={"Authorization": f"Bearer {_forged('expired')}"})
    assert (answer.status_code, answer.json()["code"]) == (401, "TOKEN_EXPIRED")


def test_metrics_needs_a_token_or_key(secured_server: Server) -> None:
    with secured_server.client() as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={
            "Authorization": f"Bearer {_forged('alg none')}"}).status_code == 401
    with secured_server.client("view") as viewer:
        assert viewer.get("/metrics").status_code == 200


