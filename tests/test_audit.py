"""The audit log (issue 30): state-changing /api requests and logins, failed ones too, with
their principals and targets, for admins only, and never a secret."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llamactl.config.file import update_config_file
from llamactl.security.passwords import hash_password
from tests.conftest import AppHarness

SECRET = "audit-secret-" + "a" * 40


async def test_the_audit_log_lists_changes_and_logins_without_secrets(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"

    def users(doc: dict[str, Any]) -> None:
        doc["auth"] = {"enabled": True, "secret": SECRET, "users": [
            {"username": "root", "password_hash": hash_password("root-pass"), "role": "admin"},
            {"username": "v", "password_hash": hash_password("viewer-pass"),
             "role": "viewer"}]}

    update_config_file(config, users)
    app: AppHarness = await make_app(
        make_settings(sections={"auth": {"enabled": True, "secret": SECRET}}), config)
    failed = await app.client.post("/api/auth/login",
                                   json={"username": "root", "password": "wrong-guess"})
    assert failed.status_code == 401
    token = (await app.client.post("/api/auth/login", json={
        "username": "root", "password": "root-pass"})).json()["token"]
    admin = {"Authorization": f"Bearer {token}"}
    created = await app.client.post("/api/instances", headers=admin,
                                    json={"name": "a", "model_path": str(model)})
    assert created.status_code == 201
    assert (await app.client.post("/api/instances/a/start", headers=admin)).status_code < 300
    for _ in range(200):
        if (await app.client.get("/api/instances/a", headers=admin)).json()["status"] == \
                "running":
            break
        await asyncio.sleep(0.05)
    changed = await app.client.put("/api/config", headers=admin,
                                   json={"instances": {"restart_delay": 2.5}})
    assert changed.status_code == 200, changed.text
    key = (await app.client.post("/api/keys", headers=admin, json={"name": "k1"})).json()["key"]
    proxied = await app.client.post("/api/instances/a/proxy/completion", headers=admin,
                                    json={"prompt": "hi", "n_predict": 1})
    assert proxied.status_code == 200

    answer = await app.client.get("/api/audit", headers=admin)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    seen = [(i["principal"]["name"], i["action"], i["target"], i["status"])
            for i in reversed(items)]
    assert seen == [
        ("root", "POST /api/auth/login", None, 401),
        ("root", "POST /api/auth/login", None, 200),
        ("root", "POST /api/instances", None, 201),
        ("root", "POST /api/instances/{name}/start", "a", seen[3][3]),
        ("root", "PUT /api/config", None, 200),
        ("root", "POST /api/keys", None, 201),
    ]  # the proxied call is activity, not a change
    assert all(i["principal"]["kind"] == "user" and i["client"] == "127.0.0.1" for i in items)
    text = answer.text
    for secret in ("root-pass", "wrong-guess", token, key, SECRET):
        assert secret not in text
    logins = await app.client.get("/api/audit?action=POST /api/auth/login&limit=1",
                                  headers=admin)
    first_page = logins.json()
    assert [i["status"] for i in first_page["items"]] == [200]
    rest = (await app.client.get(f"/api/audit?action=POST /api/auth/login&before="
                                 f"{first_page['next']}", headers=admin)).json()
    assert [i["status"] for i in rest["items"]] == [401]
    assert rest["next"] is None
    viewer_token = (await app.client.post("/api/auth/login", json={
        "username": "v", "password": "viewer-pass"})).json()["token"]
    refused = await app.client.get("/api/audit",
                                   headers={"Authorization": f"Bearer {viewer_token}"})
    assert refused.status_code == 403
    assert (await app.client.get("/api/audit?since=nope", headers=admin)).status_code == 400
