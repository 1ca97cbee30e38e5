"""Authentication and roles: tokens, every route's refusals, users changing under a live app."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from llamactl.config.file import update_config_file
from llamactl.security.passwords import hash_password
from tests.conftest import AppHarness

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SECRET = "test-secret-" + "x" * 40
PASSWORDS = {"admin": "admin-password", "op": "operator-password", "view": "viewer-password"}
ROLES = {"admin": "admin", "op": "operator", "view": "viewer"}
_HASHES = {name: hash_password(password) for name, password in PASSWORDS.items()}


def write_users(path: Path, **roles: str) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["auth"] = {"enabled": True, "secret": SECRET, "users": [
            {"username": name, "password_hash": _HASHES[name], "role": role}
            for name, role in roles.items()
        ]}

    update_config_file(path, change)


@pytest.fixture
async def app(make_settings: Callable[..., Any], make_app: Any, tmp_path: Path) -> AppHarness:
    config = tmp_path / "config.yaml"
    write_users(config, **ROLES)
    settings = make_settings(fake=True, sections={"auth": {"enabled": True, "secret": SECRET}})
    harness: AppHarness = await make_app(settings, config)
    return harness


async def login(app: AppHarness, user: str, password: str | None = None) -> str:
    response = await app.client.post(
        "/api/auth/login", json={"username": user, "password": password or PASSWORDS[user]}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_refresh_and_use(app: AppHarness) -> None:
    response = await app.client.post("/api/auth/login",
                                     json={"username": "admin", "password": "admin-password"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - datetime.now(UTC)) - timedelta(seconds=86400)) < timedelta(seconds=5)
    listed = await app.client.get("/api/instances", headers=bearer(body["token"]))
    assert listed.status_code == 200
    refreshed = await app.client.post("/api/auth/refresh", headers=bearer(body["token"]))
    assert refreshed.status_code == 200
    assert refreshed.json()["token"] != body["token"]
    assert (await app.client.get("/api/instances",
                                 headers=bearer(refreshed.json()["token"]))).status_code == 200


@pytest.mark.parametrize(("user", "password"), [("admin", "wrong"), ("nobody", "whatever")])
async def test_bad_credentials_get_one_answer(app: AppHarness, user: str, password: str) -> None:
    response = await app.client.post("/api/auth/login",
                                      json={"username": user, "password": password})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid username or password",
                               "code": "INVALID_CREDENTIALS", "details": None}


def forged_tokens() -> dict[str, str]:
    now = int(time.time())
    good = {"iss": "llamactl", "aud": "llamactl-api", "sub": "admin", "iat": now,
            "exp": now + 3600, "pwf": "0" * 16}
    none_token = jwt.encode(good, None, algorithm="none")  # type: ignore[arg-type]
    return {
        "alg none": none_token,
        "wrong secret": jwt.encode(good, "another-secret-" + "y" * 40, algorithm="HS256"),
        "other algorithm": jwt.encode(good, SECRET, algorithm="HS512"),
        "wrong issuer": jwt.encode({**good, "iss": "someone"}, SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode({**good, "aud": "other"}, SECRET, algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in good.items() if k != "exp"}, SECRET,
                                algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize("case", ["alg none", "wrong secret", "other algorithm", "wrong issuer",
                                  "wrong audience", "no expiry", "garbage"])
async def test_forged_tokens_are_refused(app: AppHarness, case: str) -> None:
    response = await app.client.get("/api/instances", headers=bearer(forged_tokens()[case]))
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_tampered_signature_is_refused(app: AppHarness) -> None:
    token = await login(app, "admin")
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}x"
    assert (await app.client.get("/api/instances", headers=bearer(tampered))).status_code == 401


async def test_an_expired_token_says_so(app: AppHarness) -> None:
    token = await login(app, "admin")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="llamactl-api")
    claims["exp"] = int(time.time()) - 10
    expired = jwt.encode(claims, SECRET, algorithm="HS256")
    response = await app.client.get("/api/instances", headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_EXPIRED"
    assert (await app.client.post("/api/auth/refresh", headers=bearer(expired))).status_code == 401


# Routes whose admitted answer is an endless event stream (tests/test_events_sse.py reads it
# from a real server).
ENDLESS_STREAMS = {"/api/events"}


def every_route(app: AppHarness) -> list[tuple[str, str, str]]:
    """(method, path, required role) for every operation in the OpenAPI document."""
    routes = []
    for path, operations in app.app.openapi()["paths"].items():
        if not path.startswith("/api"):
            continue
        for method, operation in operations.items():
            declared = operation.get("x-required-role")
            role = declared or ("viewer" if method == "get" else "admin")
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            routes.append((method.upper(), concrete, role))
    return routes


async def test_every_route_refuses_a_missing_token(app: AppHarness) -> None:
    routes = every_route(app)
    assert len(routes) >= 15
    for method, path, _ in routes:
        response = await app.client.request(method, path, json={} if method != "GET" else None)
        if path == "/api/auth/login":
            assert response.status_code != 401 or response.json()["code"] != "UNAUTHORIZED"
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "UNAUTHORIZED"


async def test_every_route_refuses_a_role_too_low_and_admits_one_high_enough(
    app: AppHarness,
) -> None:
    tokens = {role: await login(app, user) for user, role in ROLES.items()}
    rank = {"viewer": 0, "operator": 1, "admin": 2}
    checked = 0
    for method, path, required in every_route(app):
        if path == "/api/auth/login":
            continue
        for role, token in tokens.items():
            if path in ENDLESS_STREAMS and rank[role] >= rank[required]:
                continue  # admitted, it never ends: reading it would wait forever
            response = await app.client.request(
                method, path, headers=bearer(token), json={} if method != "GET" else None
            )
            if rank[role] < rank[required]:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["code"] == "FORBIDDEN"
            else:
                assert response.status_code not in (401, 403), (role, method, path)
            checked += 1
    assert checked >= 45


async def test_write_routes_default_to_admin(app: AppHarness) -> None:
    # Instance writes are declared operator; anything without a declaration is admin-only.
    required = {(m, p): r for m, p, r in every_route(app)}
    assert required[("POST", "/api/instances")] == "operator"
    assert required[("POST", "/api/keys")] == "admin"
    assert required[("GET", "/api/instances")] == "viewer"


async def test_removed_downgraded_and_repassworded_users_lose_access_at_once(
    app: AppHarness,
) -> None:
    assert app.config_path is not None
    tokens = {user: await login(app, user) for user in ("admin", "op", "view")}
    write_users(app.config_path, admin="admin", op="viewer")  # view removed, op downgraded
    assert (await app.client.get("/api/instances", headers=bearer(tokens["view"]))).status_code \
        == 401
    downgraded = await app.client.post("/api/instances/start-all", headers=bearer(tokens["op"]))
    assert downgraded.status_code == 403
    assert (await app.client.get("/api/instances", headers=bearer(tokens["op"]))).status_code \
        == 200

    def new_password(doc: dict[str, Any]) -> None:
        doc["auth"]["users"][0]["password_hash"] = hash_password("a-new-password")

    update_config_file(app.config_path, new_password)
    assert (await app.client.get("/api/instances", headers=bearer(tokens["admin"]))).status_code \
        == 401
    assert await login(app, "admin", "a-new-password")


async def test_failed_logins_are_limited_per_address(app: AppHarness) -> None:
    limit = app.settings.rate_limit.login_failures_per_minute
    for _ in range(limit):
        response = await app.client.post("/api/auth/login",
                                          json={"username": "admin", "password": "bad"})
        assert response.status_code == 401
    blocked = await app.client.post("/api/auth/login",
                                     json={"username": "admin", "password": "admin-password"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60


async def test_api_keys_are_shown_once_and_revocable(app: AppHarness) -> None:
    token = await login(app, "admin")
    created = await app.client.post("/api/keys", headers=bearer(token),
                                    json={"name": "app", "instances": ["a"]})
    assert created.status_code == 201
    plaintext = created.json()["key"]
    assert plaintext.startswith("llk_")
    listed = (await app.client.get("/api/keys", headers=bearer(token))).json()["keys"]
    assert [k["name"] for k in listed] == ["app"]
    assert plaintext not in str(listed)
    store = app.manager and app.app.state.services.auth.keys
    key = store.verify(plaintext)
    assert key is not None
    assert key.allows("a")
    assert not key.allows("b")
    assert (await store.list())[0].last_used_at is not None
    assert store.verify(plaintext + "x") is None
    duplicate = await app.client.post("/api/keys", headers=bearer(token), json={"name": "app"})
    assert duplicate.status_code == 409
    assert (await app.client.delete("/api/keys/app", headers=bearer(token))).status_code == 200
    assert store.verify(plaintext) is None
    assert (await app.client.delete("/api/keys/app", headers=bearer(token))).status_code == 404


async def test_expired_keys_do_not_work(app: AppHarness) -> None:
    store = app.app.state.services.auth.keys
    _, plaintext = await store.create("old", None, datetime.now(UTC) - timedelta(seconds=1))
    assert store.verify(plaintext) is None


async def test_auth_off_on_loopback_by_default(make_settings: Any, make_app: Any) -> None:
    harness: AppHarness = await make_app(make_settings(fake=True))
    assert (await harness.client.get("/api/instances")).status_code == 200


async def test_cors_is_off_by_default_and_on_for_listed_origins(
    make_settings: Any, make_app: Any
) -> None:
    plain: AppHarness = await make_app(make_settings(fake=True))
    answer = await plain.client.get("/api/instances", headers={"Origin": "http://ui.example"})
    assert "access-control-allow-origin" not in answer.headers
    cors: AppHarness = await make_app(make_settings(
        fake=True, sections={"server": {"cors_origins": ["http://ui.example"]}}))
    answer = await cors.client.get("/api/instances", headers={"Origin": "http://ui.example"})
    assert answer.headers["access-control-allow-origin"] == "http://ui.example"
    other = await cors.client.get("/api/instances", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_secrets_stay_out_of_logs(
    app: AppHarness, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level("DEBUG")
    token = await login(app, "admin")
    await app.client.post("/api/auth/login", json={"username": "admin", "password": "nope"})
    await app.client.post("/api/keys", headers=bearer(token), json={"name": "k"})
    text = caplog.text + "".join(
        p.read_text() for p in (tmp_path / "data" / "logs").glob("*") if p.is_file()
    )
    for secret in (SECRET, token, *PASSWORDS.values(), "nope"):
        assert secret not in text


async def test_rate_limits_count_per_user(
    make_settings: Callable[..., Any], make_app: Any, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    write_users(config, **ROLES)
    settings = make_settings(fake=True, sections={
        "auth": {"enabled": True, "secret": SECRET},
        "rate_limit": {"enabled": True, "regular_per_minute": 5},
    })
    app: AppHarness = await make_app(settings, config)
    admin, viewer = await login(app, "admin"), await login(app, "view")
    for _ in range(5):
        assert (await app.client.get("/api/instances", headers=bearer(admin))).status_code == 200
    assert (await app.client.get("/api/instances", headers=bearer(admin))).status_code == 429
    other = await app.client.get("/api/instances", headers=bearer(viewer))
    assert other.status_code == 200
    assert other.headers["x-ratelimit-remaining"] == "4"


async def test_metrics_need_a_token_or_a_key_when_auth_is_on(app: AppHarness) -> None:
    assert (await app.client.get("/metrics")).status_code == 401
    viewer = await login(app, "view")
    assert (await app.client.get("/metrics", headers=bearer(viewer))).status_code == 200
    _, key = await app.app.state.services.auth.keys.create("scraper")
    assert (await app.client.get("/metrics", headers=bearer(key))).status_code == 200
    assert (await app.client.get("/metrics", headers=bearer("llk_nope"))).status_code == 401


async def test_the_openapi_document_promises_400_never_422(app: AppHarness) -> None:
    document = app.app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    create = document["paths"]["/api/instances"]["post"]["responses"]
    assert "400" in create


async def test_a_config_that_would_not_start_is_refused(app: AppHarness) -> None:
    token = await login(app, "admin")
    answer = await app.client.put("/api/config", headers=bearer(token),
                                  json={"auth": {"users": []}})
    assert answer.status_code == 400
    assert "no users are configured" in answer.json()["details"]


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_a_websocket_without_a_valid_token_gets_the_contract_error(
    app: AppHarness, token: str | None
) -> None:
    import json

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    url = str(app.client.base_url).replace("http://", "ws://") + "/api/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url + (f"?token={token}" if token else "")):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body or b"")["code"] == "UNAUTHORIZED"
    # ... and a valid token opens it.
    async with connect(url + f"?token={await login(app, 'view')}") as websocket:
        assert websocket.response.status_code == 101
