"""Quotas per API key and per user (issue 30), against a real llama-server: refusals at the
right request with Retry-After, usage reports, changes by PUT, and usage after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llamactl.config.file import update_config_file
from llamactl.security.passwords import hash_password
from tests.conftest import AppHarness

PROMPT = {"model": "a", "prompt": "hello", "max_tokens": 5, "ignore_eos": True}
SECRET = "quota-secret-" + "q" * 40


async def test_quotas_refuse_at_the_right_request_and_survive_a_restart(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"

    def users(doc: dict[str, Any]) -> None:
        doc["auth"] = {"enabled": True, "secret": SECRET, "users": [
            {"username": "root", "password_hash": hash_password("root-pass"), "role": "admin"},
            {"username": "v", "password_hash": hash_password("viewer-pass"), "role": "viewer",
             "limits": {"requests_per_minute": 1}, "priority": 3}]}

    update_config_file(config, users)
    app: AppHarness = await make_app(
        make_settings(sections={"auth": {"enabled": True, "secret": SECRET}}), config)

    async def login(user: str, password: str) -> dict[str, str]:
        answer = await app.client.post("/api/auth/login",
                                       json={"username": user, "password": password})
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    admin, viewer = await login("root", "root-pass"), await login("v", "viewer-pass")
    created = await app.client.post("/api/instances", headers=admin,
                                    json={"name": "a", "model_path": str(model)})
    assert created.status_code == 201
    made = await app.client.post("/api/keys", headers=admin, json={
        "name": "two", "limits": {"requests_per_minute": 2}, "priority": 5})
    assert made.status_code == 201, made.text
    assert made.json()["info"]["limits"]["requests_per_minute"] == 2
    assert made.json()["info"]["priority"] == 5
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    bad = await app.client.post("/api/keys", headers=admin,
                                json={"name": "bad", "limits": {"tokens_per_day": 0}})
    assert bad.status_code == 400

    statuses = [(await app.client.post("/v1/completions", json=PROMPT, headers=key))
                for _ in range(3)]
    assert [s.status_code for s in statuses] == [200, 200, 429]
    refused = statuses[2]
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    usage = (await app.client.get("/api/keys/two/usage", headers=admin)).json()
    assert usage["limits"]["requests_per_minute"] == 2
    assert usage["used"]["requests_per_minute"] == 2
    used_tokens = sum(s.json()["usage"]["total_tokens"] for s in statuses[:2])
    assert usage["used"]["tokens_per_day"] == used_tokens
    assert set(usage["resets"]) == set(usage["used"])

    # a user's own limit, from the config file
    first = await app.client.post("/v1/completions", json=PROMPT, headers=viewer)
    second = await app.client.post("/v1/completions", json=PROMPT, headers=viewer)
    assert (first.status_code, second.status_code) == (200, 429)
    mine = (await app.client.get("/api/auth/me/usage", headers=viewer)).json()
    assert mine["limits"]["requests_per_minute"] == 1
    assert mine["used"]["tokens_per_day"] == first.json()["usage"]["total_tokens"]

    # PUT changes the key's quotas at once: a day's tokens, already spent
    changed = await app.client.put("/api/keys/two", headers=admin,
                                   json={"limits": {"tokens_per_day": used_tokens}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["limits"] == {"requests_per_minute": None, "tokens_per_minute": None,
                                        "tokens_per_day": used_tokens, "tokens_per_month": None}
    assert changed.json()["priority"] == 5
    over_day = await app.client.post("/v1/completions", json=PROMPT, headers=key)
    assert over_day.status_code == 429
    assert int(over_day.headers["retry-after"]) > 60  # until midnight UTC, not a minute

    # usage survives a restart: it comes from the ledger
    await app.restart()
    admin = await login("root", "root-pass")
    after = (await app.client.get("/api/keys/two/usage", headers=admin)).json()
    assert after["used"]["tokens_per_day"] == used_tokens
    still = await app.client.post("/v1/completions", json=PROMPT, headers=key)
    assert still.status_code == 429
    assert still.json()["error"]["code"] == "quota_exceeded"
