"""Rate limits as the contract says: per caller, per minute, headers on every /api answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llamactl.config import Settings
from llamactl.security.ratelimit import FixedWindowLimiter
from tests.conftest import AppHarness
from tests.test_auth import SECRET, bearer, login, write_users


@pytest.fixture
async def app(make_settings: Any, make_app: Any) -> AppHarness:
    harness: AppHarness = await make_app(
        make_settings(fake=True, sections={"rate_limit": {"enabled": True}})
    )
    return harness


async def test_the_101st_regular_request_is_refused(app: AppHarness) -> None:
    remaining = []
    for _ in range(100):
        response = await app.client.get("/api/instances")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "100"
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        reset = int(response.headers["x-ratelimit-reset"])
        assert time.time() < reset <= time.time() + 61
    assert remaining == list(range(99, -1, -1))  # counts down one by one
    refused = await app.client.get("/api/instances")
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMITED"
    assert set(refused.json()) == {"error", "code", "details"}
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Unknown routes and errors are /api answers too, and are limited the same way.
    assert (await app.client.get("/api/nope")).status_code == 429


async def test_the_11th_start_is_refused_and_regular_requests_go_on(
    app: AppHarness, fake_model: Path
) -> None:
    created = await app.client.post("/api/instances",
                                     json={"name": "r", "model_path": str(fake_model)})
    assert created.headers["x-ratelimit-limit"] == "10"
    assert created.headers["x-ratelimit-remaining"] == "9"
    codes = []
    for _ in range(10):
        response = await app.client.post("/api/instances/ghost/start")
        codes.append(response.status_code)
    assert codes == [404] * 9 + [429]
    assert int(response.headers["retry-after"]) >= 1
    listed = await app.client.get("/api/instances")
    assert listed.status_code == 200
    assert listed.headers["x-ratelimit-limit"] == "100"
    for path in ("/api/instances/start-all", "/api/instances/stop-all",
                 "/api/instances/r/restart"):
        assert (await app.client.post(path)).status_code == 429


async def test_off_when_disabled(make_settings: Any, make_app: Any) -> None:
    harness: AppHarness = await make_app(make_settings(fake=True))
    for _ in range(120):
        response = await harness.client.get("/api/instances")
    assert response.status_code == 200
    assert "x-ratelimit-limit" not in response.headers


async def test_by_default_on_with_auth_and_off_without(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    """rate_limit.enabled left out (null): a newcomer on loopback with auth off meets no 429;
    a server with auth on limits every caller."""
    open_app: AppHarness = await make_app(make_settings(fake=True, sections={"rate_limit": {}}))
    for _ in range(120):
        response = await open_app.client.get("/api/instances")
        assert response.status_code == 200
    assert "x-ratelimit-limit" not in response.headers

    config = tmp_path / "config.yaml"
    write_users(config, admin="admin")
    guarded: AppHarness = await make_app(make_settings(fake=True, sections={
        "rate_limit": {}, "auth": {"enabled": True, "secret": SECRET}}), config)
    token = await login(guarded, "admin")
    response = await guarded.client.get("/api/instances", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == "100"


def test_the_default_follows_auth_and_an_explicit_setting_wins() -> None:
    def settings(**document: Any) -> Settings:
        return Settings.model_validate(document)

    assert settings().rate_limit_enabled is False  # loopback: auth off
    assert settings(auth={"enabled": True}).rate_limit_enabled is True
    assert settings(server={"host": "0.0.0.0"}).rate_limit_enabled is True
    assert settings(rate_limit={"enabled": True}).rate_limit_enabled is True
    assert settings(auth={"enabled": True},
                    rate_limit={"enabled": False}).rate_limit_enabled is False


async def test_invalid_creates_do_not_use_up_the_intensive_quota(
    app: AppHarness, fake_model: Path
) -> None:
    for attempt in range(15):
        refused = await app.client.post("/api/instances",
                                        json={"name": "bad name!", "model_path": "x"})
        assert refused.status_code == 400, attempt
        assert refused.headers["x-ratelimit-remaining"] == "10"
    created = await app.client.post("/api/instances",
                                    json={"name": "good", "model_path": str(fake_model)})
    assert created.status_code == 201
    assert created.headers["x-ratelimit-remaining"] == "9"
    # Other failures still count (a start of an instance that does not exist).
    missing = await app.client.post("/api/instances/ghost/start")
    assert missing.status_code == 404
    assert missing.headers["x-ratelimit-remaining"] == "8"


def test_windows_reset_and_the_table_stays_bounded() -> None:
    now = [1000.0]
    limiter = FixedWindowLimiter(2, window=60, max_keys=3, clock=lambda: now[0])
    assert limiter.hit("a").allowed
    assert limiter.hit("a").allowed
    refused = limiter.hit("a")
    assert not refused.allowed
    assert refused.retry_after == 60
    now[0] += 30
    assert limiter.hit("a").retry_after == 30
    now[0] += 30
    assert limiter.hit("a").allowed  # a new window
    for caller in "bcdefg":
        limiter.hit(caller)
    assert len(limiter) == 3
