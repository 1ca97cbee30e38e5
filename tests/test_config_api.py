"""``GET``/``PUT /api/config``: secrets hidden, partial updates merged into the config file,
validated whole, written atomically with a backup, applied at the next restart."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from llamactl.security.passwords import hash_password
from tests.conftest import AppHarness
from tests.support.helpers import write_config

SECRET = "config-test-secret-" + "s" * 32
HASHES = {"admin": hash_password("admin-password"), "view": hash_password("viewer-password")}
USERS = [{"username": "admin", "password_hash": HASHES["admin"], "role": "admin"},
         {"username": "view", "password_hash": HASHES["view"], "role": "viewer"}]
AUTH_OFF = {"enabled": False, "secret": SECRET, "users": USERS}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = write_config(tmp_path / "config.yaml",
                        {"instances": {"max_restarts": 4}, "auth": AUTH_OFF})
    path.chmod(0o640)
    return path


@pytest.fixture
async def app(make_settings: Callable[..., Any], make_app: Any, config_file: Path) -> AppHarness:
    harness: AppHarness = await make_app(
        make_settings(fake=True, sections={"auth": AUTH_OFF}), config_file)
    return harness


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


async def test_get_shows_the_effective_config_with_secrets_hidden(app: AppHarness) -> None:
    response = await app.client.get("/api/config")
    assert response.status_code == 200
    config = response.json()
    assert config["auth"]["secret"] == "***"
    assert [u["password_hash"] for u in config["auth"]["users"]] == ["***", "***"]
    assert [u["username"] for u in config["auth"]["users"]] == ["admin", "view"]
    assert SECRET not in response.text
    assert not any(h in response.text for h in HASHES.values())
    # The effective settings, not the file: these came from the test's settings.
    assert config["instances"]["max_restarts"] == 3
    assert config["data_dir"] == str(app.settings.data_dir)
    assert config["events"]["stats_interval"] == 5.0
    assert set(config) >= {"server", "data_dir", "backends", "instances", "auth", "rate_limit"}


async def test_put_merges_into_the_file_with_a_backup(
    app: AppHarness, config_file: Path
) -> None:
    before = config_file.read_bytes()
    response = await app.client.put("/api/config", json={
        "instances": {"restart_delay": 2.5}, "rate_limit": {"regular_per_minute": 300}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Configuration updated"
    assert body["restart_required"] is True
    config = body["config"]
    assert config["instances"]["max_restarts"] == 4  # the file's, kept
    assert config["instances"]["restart_delay"] == 2.5
    assert config["rate_limit"]["regular_per_minute"] == 300
    assert config["auth"]["secret"] == "***"

    written = read(config_file)
    assert written["instances"] == {"max_restarts": 4, "restart_delay": 2.5}
    assert written["rate_limit"] == {"regular_per_minute": 300}
    assert written["auth"]["secret"] == SECRET
    assert config_file.with_name("config.yaml.bak").read_bytes() == before
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640
    assert sorted(p.name for p in config_file.parent.iterdir()
                  if p.name.startswith((".config", "config"))) == ["config.yaml",
                                                                   "config.yaml.bak"]
    # The running server keeps its settings until a restart.
    running = (await app.client.get("/api/config")).json()
    assert running["instances"]["restart_delay"] == 5.0


@pytest.mark.parametrize(("patch", "where"), [
    ({"instances": {"max_restarts": -1}}, "instances.max_restarts"),
    ({"instances": {"max_restartz": 1}}, "instances.max_restartz"),
    ({"server": {"port": "eighty"}}, "server.port"),
    ({"events": {"queue_size": 0}}, "events.queue_size"),
    ({"auth": {"users": [{"username": "x"}]}}, "auth.users.0.password_hash"),
])
async def test_an_invalid_put_changes_nothing(
    app: AppHarness, config_file: Path, patch: dict[str, Any], where: str
) -> None:
    assert (await app.client.put("/api/config", json={"instances": {"max_restarts": 5}})
            ).status_code == 200
    backup = config_file.with_name("config.yaml.bak")
    snapshot = (config_file.read_bytes(), backup.read_bytes(), config_file.stat().st_mtime_ns)
    response = await app.client.put("/api/config", json=patch)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert where in response.json()["details"]
    assert (config_file.read_bytes(), backup.read_bytes(),
            config_file.stat().st_mtime_ns) == snapshot


async def test_a_body_that_is_not_a_json_object_is_refused(
    app: AppHarness, config_file: Path
) -> None:
    before = config_file.read_bytes()
    not_json = await app.client.put("/api/config", content=b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["code"] == "INVALID_JSON"
    a_list = await app.client.put("/api/config", json=[1, 2])
    assert a_list.status_code == 400
    assert a_list.json()["code"] == "VALIDATION_ERROR"
    assert config_file.read_bytes() == before
    assert not config_file.with_name("config.yaml.bak").exists()


async def test_secrets_sent_back_as_stars_keep_their_values(
    app: AppHarness, config_file: Path
) -> None:
    shown = (await app.client.get("/api/config")).json()
    # What GET showed, sent back whole (with a change): the stars keep the secrets.
    shown["auth"]["users"].reverse()
    shown["instances"]["max_restarts"] = 6
    response = await app.client.put("/api/config", json=shown)
    assert response.status_code == 200, response.text
    written = read(config_file)["auth"]
    assert written["secret"] == SECRET
    assert {u["username"]: u["password_hash"] for u in written["users"]} == HASHES
    assert response.json()["config"]["auth"]["users"][0]["password_hash"] == "***"

    stranger = {"username": "new", "password_hash": "***", "role": "viewer"}
    response = await app.client.put("/api/config",
                                    json={"auth": {"users": [*USERS, stranger]}})
    assert response.status_code == 400
    assert "auth.users.2.password_hash" in response.json()["details"]


async def test_values_from_flags_and_environment_stay_in_the_answer(
    make_settings: Callable[..., Any], make_app: Any, tmp_path: Path
) -> None:
    # The server runs on port 8080 and its own data dir, while the file says otherwise: as
    # with `llamactl serve --port 8080 --data-dir ...`, those still win after a restart.
    path = write_config(tmp_path / "config.yaml", {"server": {"port": 9999}})
    app: AppHarness = await make_app(make_settings(fake=True), path)
    response = await app.client.put("/api/config", json={"server": {"port": 9100}})
    assert response.status_code == 200, response.text
    config = response.json()["config"]
    assert config["server"]["port"] == 8080
    assert config["data_dir"] == str(app.settings.data_dir)
    assert read(path)["server"]["port"] == 9100


async def test_put_creates_a_missing_file_readable_by_its_owner_only(
    make_settings: Callable[..., Any], make_app: Any, tmp_path: Path
) -> None:
    path = tmp_path / "new" / "dir" / "config.yaml"
    app: AppHarness = await make_app(make_settings(fake=True), path)
    response = await app.client.put("/api/config", json={"instances": {"max_restarts": 1}})
    assert response.status_code == 200, response.text
    assert read(path) == {"instances": {"max_restarts": 1}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("config.yaml.bak").exists()


async def test_without_a_config_file_put_is_refused(
    make_settings: Callable[..., Any], make_app: Any
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    response = await app.client.put("/api/config", json={})
    assert response.status_code == 409
    assert response.json()["code"] == "CONFIG_FILE_UNKNOWN"
    assert (await app.client.get("/api/config")).status_code == 200


async def test_a_file_that_is_not_yaml_is_left_alone(
    make_settings: Callable[..., Any], make_app: Any, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("server: [1, 2\n")
    app: AppHarness = await make_app(make_settings(fake=True), path)
    response = await app.client.put("/api/config", json={"instances": {"max_restarts": 1}})
    assert response.status_code == 409
    assert response.json()["code"] == "CONFIG_FILE_INVALID"
    assert path.read_text() == "server: [1, 2\n"
    assert sorted(os.listdir(tmp_path)) == ["config.yaml", "data"]


async def test_only_admins_may_put(
    make_settings: Callable[..., Any], make_app: Any, tmp_path: Path
) -> None:
    auth = {"enabled": True, "secret": SECRET, "users": USERS}
    path = write_config(tmp_path / "config.yaml", {"auth": auth})
    app: AppHarness = await make_app(make_settings(fake=True, sections={"auth": auth}), path)
    tokens = {}
    for user, password in (("admin", "admin-password"), ("view", "viewer-password")):
        login = await app.client.post("/api/auth/login",
                                      json={"username": user, "password": password})
        tokens[user] = {"Authorization": f"Bearer {login.json()['token']}"}
    patch = {"instances": {"max_restarts": 2}}
    assert (await app.client.put("/api/config", json=patch)).status_code == 401
    refused = await app.client.put("/api/config", json=patch, headers=tokens["view"])
    assert refused.status_code == 403
    assert "max_restarts" not in read(path).get("instances", {})
    assert (await app.client.put("/api/config", json=patch, headers=tokens["admin"])
            ).status_code == 200
    shown = await app.client.get("/api/config", headers=tokens["view"])
    assert shown.status_code == 200
    assert shown.json()["auth"]["secret"] == "***"


async def test_docker_environment_values_are_secrets(
    make_settings: Callable[..., Any], make_app: Any, tmp_path: Path
) -> None:
    """Issue 27: an HF_TOKEN in backends.*.docker.environment read as "***" by everyone, and
    sent back as "***" it keeps its value."""
    docker = {"environment": {"HF_TOKEN": "hf_config_secret", "HF_HOME": "/cache"}}
    backends = {"vllm": {"docker": docker}}
    path = write_config(tmp_path / "config.yaml", {"auth": AUTH_OFF, "backends": backends})
    app: AppHarness = await make_app(
        make_settings(fake=True, sections={"auth": AUTH_OFF, "backends": {
            "llama_cpp": {"command": "llama-server"}, **backends}}), path)
    shown = (await app.client.get("/api/config")).json()
    assert shown["backends"]["vllm"]["docker"]["environment"] == {
        "HF_TOKEN": "***", "HF_HOME": "***"}
    shown["backends"]["vllm"]["docker"]["environment"]["HF_HOME"] = "/other"
    response = await app.client.put("/api/config", json=shown)
    assert response.status_code == 200, response.text
    assert "hf_config_secret" not in response.text
    assert read(path)["backends"]["vllm"]["docker"]["environment"] == {
        "HF_TOKEN": "hf_config_secret", "HF_HOME": "/other"}
    unknown = {"backends": {"vllm": {"docker": {"environment": {"NEW": "***"}}}}}
    refused = await app.client.put("/api/config", json=unknown)
    assert refused.status_code == 400
    assert "backends.vllm.docker.environment.NEW" in refused.json()["details"]
