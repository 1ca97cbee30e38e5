"""The instance list's bytes are kept until something they show changes (issue 29): a list of
unchanged instances walks none of them, and any change shows at once, in each visible form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llamactl.api import views
from tests.conftest import AppHarness


@pytest.fixture
async def app(make_settings: Any, make_app: Any) -> AppHarness:
    harness: AppHarness = await make_app(make_settings(fake=True))
    return harness


async def listed(app: AppHarness) -> dict[str, dict[str, Any]]:
    answer = await app.client.get("/api/instances")
    assert answer.status_code == 200
    return {i["name"]: i for i in answer.json()["instances"]}


async def test_an_unchanged_list_walks_no_instance_and_each_change_shows_at_once(
    app: AppHarness, fake_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        created = await app.client.post("/api/instances", json={
            "name": name, "model_path": str(fake_model), "environment": {"TOKEN": "s3cret"}})
        assert created.status_code == 201
    monkeypatch.setattr("llamactl.api.views.time.time", lambda: 1_800_000_000.0)  # a second, held
    first = await listed(app)
    walked: list[str] = []
    original = views._listed

    def counting(owner: Any, *args: Any) -> bytes:
        walked.append(owner.record.spec.name)
        return original(owner, *args)

    monkeypatch.setattr(views, "_listed", counting)
    assert await listed(app) == first
    assert walked == []

    owner = app.manager.owner("a")
    owner.record.runtime.restart_count = 3  # no API call, no event: a set on the runtime
    assert (await listed(app))["a"]["restart_count"] == 3
    owner.record.runtime.last_error = "it broke"
    assert (await listed(app))["a"]["last_error"] == "it broke"
    updated = await app.client.put("/api/instances/b", json={"group": "g"})
    assert updated.status_code == 200
    assert (await listed(app))["b"]["group"] == "g"
    assert (await app.client.delete("/api/instances/a")).status_code == 200
    assert list(await listed(app)) == ["b"]
    assert (await listed(app))["b"]["environment"] == {"TOKEN": "s3cret"}  # an admin's form
