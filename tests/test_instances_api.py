"""The instance API in-process: shapes, status codes, merge semantics, validation, persistence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppHarness

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def app(make_settings: Any, make_app: Any) -> AppHarness:
    harness: AppHarness = await make_app(make_settings(fake=True))
    return harness


def seed_body(model: Path, **extra: Any) -> dict[str, Any]:
    body = {
        "name": "my-instance",
        "model_path": str(model),
        "port": extra.pop("port", 8081),
        "options": {"threads": 4, "context_size": 2048, "gpu_layers": 0},
    }
    body.update(extra)
    return body


async def test_create_answers_the_seed_shape(app: AppHarness, fake_model: Path) -> None:
    response = await app.client.post("/api/instances", json=seed_body(fake_model))
    assert response.status_code == 201
    answer = response.json()
    assert answer["message"] == "Instance created successfully"
    instance = answer["instance"]
    assert instance["name"] == "my-instance"
    assert instance["status"] == "stopped"
    assert instance["model_path"] == str(fake_model)
    assert instance["port"] == 8081
    assert instance["pid"] is None
    assert instance["backend"] == "llama_cpp"
    assert instance["options"] == {"threads": 4, "context_size": 2048, "gpu_layers": 0}
    assert instance["stats"] == {"memory_usage": 0, "cpu_usage": 0.0, "uptime": 0}
    assert TIMESTAMP.match(instance["created_at"])
    assert TIMESTAMP.match(instance["updated_at"])


async def test_list_and_get(app: AppHarness, fake_model: Path) -> None:
    await app.client.post("/api/instances", json=seed_body(fake_model, name="b", port=8082))
    await app.client.post("/api/instances", json=seed_body(fake_model, name="a", port=8083))
    listed = (await app.client.get("/api/instances")).json()["instances"]
    assert [i["name"] for i in listed] == ["a", "b"]
    got = (await app.client.get("/api/instances/b")).json()
    assert got["port"] == 8082
    assert got["pid"] is None
    assert "stats" in got


async def test_port_is_assigned_from_the_range(app: AppHarness, fake_model: Path) -> None:
    low, high = app.settings.instances.port_range
    body = seed_body(fake_model)
    del body["port"]
    first = (await app.client.post("/api/instances", json=body)).json()["instance"]
    second = (await app.client.post("/api/instances", json={**body, "name": "x2"})).json()
    assert low <= first["port"] <= high
    assert second["instance"]["port"] != first["port"]


async def test_update_merges_options_and_removes_nulls(app: AppHarness, fake_model: Path) -> None:
    await app.client.post("/api/instances", json=seed_body(fake_model))
    response = await app.client.put(
        "/api/instances/my-instance",
        json={"options": {"threads": 8, "context_size": 4096, "gpu_layers": None,
                          "flash_attn": True}},
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["message"] == "Instance updated successfully"
    assert answer["instance"]["options"] == {"threads": 8, "context_size": 4096,
                                             "flash_attn": "on"}
    assert "restart_required" not in answer  # it was not running
    # Fields other than options replace theirs; null returns a lifecycle field to the default.
    answer = (await app.client.put("/api/instances/my-instance",
                                   json={"max_restarts": 9, "group": "gpu0"})).json()
    assert answer["instance"]["max_restarts"] == 9
    assert answer["instance"]["group"] == "gpu0"
    answer = (await app.client.put("/api/instances/my-instance",
                                   json={"max_restarts": None})).json()
    assert answer["instance"]["max_restarts"] == app.settings.instances.max_restarts
    assert answer["instance"]["options"]["threads"] == 8


async def test_delete(app: AppHarness, fake_model: Path) -> None:
    await app.client.post("/api/instances", json=seed_body(fake_model))
    response = await app.client.delete("/api/instances/my-instance")
    assert response.status_code == 200
    assert response.json() == {"message": "Instance deleted successfully"}
    missing = await app.client.get("/api/instances/my-instance")
    assert missing.status_code == 404
    assert missing.json()["code"] == "INSTANCE_NOT_FOUND"


async def test_instances_survive_a_restart_of_the_app(app: AppHarness, fake_model: Path) -> None:
    await app.client.post("/api/instances", json=seed_body(fake_model))
    await app.client.put("/api/instances/my-instance", json={"options": {"batch_size": 256}})
    before = (await app.client.get("/api/instances/my-instance")).json()
    await app.restart()
    after = (await app.client.get("/api/instances/my-instance")).json()
    assert after == before


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code", "details"}
    assert body["code"] == code
    assert isinstance(body["error"], str)
    assert body["error"]
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


BAD_CREATES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("bad name", {"name": "bad name"}, 400, "VALIDATION_ERROR", "name"),
    ("name too long", {"name": "a" * 64}, 400, "VALIDATION_ERROR", "name"),
    ("name starts with dot", {"name": ".hidden"}, 400, "VALIDATION_ERROR", "name"),
    ("unknown option", {"options": {"no_such_flag": 1}}, 400, "VALIDATION_ERROR", "no_such_flag"),
    ("ill-typed option", {"options": {"threads": "4"}}, 400, "VALIDATION_ERROR", "threads"),
    ("bool is not int", {"options": {"threads": True}}, 400, "VALIDATION_ERROR", "threads"),
    ("bad choice", {"options": {"split_mode": "sideways"}}, 400, "VALIDATION_ERROR", "split_mode"),
    ("below minimum", {"options": {"batch_size": 0}}, 400, "VALIDATION_ERROR", "batch_size"),
    ("port too low", {"port": 80}, 400, "VALIDATION_ERROR", "port"),
    ("port too high", {"port": 70000}, 400, "VALIDATION_ERROR", "port"),
    ("port as string", {"port": "8081"}, 400, "VALIDATION_ERROR", "port"),
    ("unknown field", {"colour": "blue"}, 400, "VALIDATION_ERROR", "colour"),
    ("missing model", {"model_path": "/nonexistent/model.gguf"}, 400, "MODEL_NOT_FOUND",
     "model_path"),
    ("model is a directory", {"model_path": "/tmp"}, 400, "MODEL_NOT_FOUND", "model_path"),
    ("reserved extra arg", {"extra_args": ["--port", "1"]}, 400, "VALIDATION_ERROR", "--port"),
    ("bad env name", {"environment": {"A B": "x"}}, 400, "VALIDATION_ERROR", "environment"),
    ("unknown backend", {"backend": "tgi"}, 400, "VALIDATION_ERROR", "backend"),
    ("negative restarts", {"max_restarts": -1}, 400, "VALIDATION_ERROR", "max_restarts"),
]


@pytest.mark.parametrize(("case", "change", "status", "code", "named"), BAD_CREATES,
                         ids=[c[0] for c in BAD_CREATES])
async def test_bad_create_is_refused_and_changes_nothing(
    app: AppHarness, fake_model: Path, case: str, change: dict[str, Any], status: int,
    code: str, named: str,
) -> None:
    response = await app.client.post("/api/instances", json={**seed_body(fake_model), **change})
    body = _error(response, status, code)
    assert named in f"{body['error']} {body['details']}"
    assert (await app.client.get("/api/instances")).json() == {"instances": []}


async def test_conflicts(app: AppHarness, fake_model: Path) -> None:
    await app.client.post("/api/instances", json=seed_body(fake_model))
    same_name = await app.client.post("/api/instances", json=seed_body(fake_model, port=8090))
    _error(same_name, 409, "INSTANCE_EXISTS")
    same_port = await app.client.post("/api/instances", json=seed_body(fake_model, name="other"))
    _error(same_port, 409, "PORT_CONFLICT")
    own_port = await app.client.post(
        "/api/instances", json=seed_body(fake_model, name="other", port=app.settings.server.port)
    )
    _error(own_port, 409, "PORT_CONFLICT")
    listed = (await app.client.get("/api/instances")).json()["instances"]
    assert [(i["name"], i["port"]) for i in listed] == [("my-instance", 8081)]


async def test_bad_updates_change_nothing(app: AppHarness, fake_model: Path) -> None:
    await app.client.post("/api/instances", json=seed_body(fake_model))
    await app.client.post("/api/instances", json=seed_body(fake_model, name="other", port=8085))
    before = (await app.client.get("/api/instances/my-instance")).json()
    bad = [
        ({"name": "renamed"}, 400, "VALIDATION_ERROR"),
        ({"options": {"threads": "many"}}, 400, "VALIDATION_ERROR"),
        ({"options": {"bogus": 1}}, 400, "VALIDATION_ERROR"),
        ({"port": 8085}, 409, "PORT_CONFLICT"),
        ({"port": None}, 400, "VALIDATION_ERROR"),
        ({"model_path": "/nope.gguf"}, 400, "MODEL_NOT_FOUND"),
        ({"extra_args": ["--host=0.0.0.0"]}, 400, "VALIDATION_ERROR"),
    ]
    for change, status, code in bad:
        _error(await app.client.put("/api/instances/my-instance", json=change), status, code)
    assert (await app.client.get("/api/instances/my-instance")).json() == before
    _error(await app.client.put("/api/instances/ghost", json={}), 404, "INSTANCE_NOT_FOUND")


async def test_error_format_for_framework_errors(app: AppHarness) -> None:
    _error(await app.client.get("/api/no/such/route"), 404, "NOT_FOUND")
    _error(await app.client.patch("/api/instances"), 405, "METHOD_NOT_ALLOWED")
    _error(await app.client.delete("/api/instances"), 405, "METHOD_NOT_ALLOWED")
    not_json = await app.client.post("/api/instances", content=b"{not json")
    _error(not_json, 400, "INVALID_JSON")
    # curl -d sends a form content type; the body is JSON all the same.
    form_typed = await app.client.post(
        "/api/instances", content=b"{broken", headers={"content-type": "text/plain"}
    )
    _error(form_typed, 400, "INVALID_JSON")
    _error(await app.client.post("/api/instances", json=[1, 2]), 400, "VALIDATION_ERROR")
    _error(await app.client.get("/api/instances/x/logs?lines=abc"), 400, "VALIDATION_ERROR")
    for path in ("/api/instances/ghost", "/api/instances/ghost/health",
                 "/api/instances/ghost/logs"):
        _error(await app.client.get(path), 404, "INSTANCE_NOT_FOUND")
    for action in ("start", "stop", "restart"):
        _error(await app.client.post(f"/api/instances/ghost/{action}"), 404,
               "INSTANCE_NOT_FOUND")
    _error(await app.client.delete("/api/instances/ghost"), 404, "INSTANCE_NOT_FOUND")


async def test_a_bad_name_is_explained_in_words_not_a_regular_expression(
    app: AppHarness, fake_model: Path
) -> None:
    response = await app.client.post("/api/instances",
                                     json=seed_body(fake_model, name="my model"))
    details = _error(response, 400, "VALIDATION_ERROR")["details"]
    assert "name: a name is 1 to 63 letters" in details
    assert "no spaces" in details
    assert "^[" not in details
