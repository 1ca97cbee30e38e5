"""Issue 18 without a Ray cluster: the cluster config, the [ray] extra's refusal, and the
instance fields ``resources`` and ``node`` under the default local engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llamactl.config import Settings
from tests.conftest import AppHarness
from tests.support.helpers import free_port

# Runs the CLI as if Ray were not installed: a None in sys.modules makes `import ray` raise
# ImportError, exactly what a Python without the package does.
WITHOUT_RAY = ("import sys; sys.modules['ray'] = None; "
               "from llamactl.cli import main; sys.argv[0] = 'llamactl'; main()")


def test_engine_ray_without_ray_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("cluster: {engine: ray, address: '127.0.0.1:1'}\n")
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_RAY, "serve", "--port", str(free_port()),
         "--config", str(config), "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("llamactl: error: cluster.engine is ray, but Ray is not "
                             "installed: pip install 'llamactl-server[ray]'\n")
    assert not (tmp_path / "d").exists()  # refused before touching the data dir


def test_cluster_defaults_and_bad_values() -> None:
    cluster = Settings().cluster
    assert (cluster.engine, cluster.address, cluster.namespace, cluster.host) == (
        "local", None, "llamactl", None)
    with pytest.raises(ValidationError, match=r"cluster\.engine"):
        Settings.model_validate({"cluster": {"engine": "k8s"}})


@pytest.fixture
async def app(make_settings: Any, make_app: Any) -> AppHarness:
    harness: AppHarness = await make_app(make_settings(fake=True))
    return harness


async def test_resources_are_kept_and_node_is_null_locally(
        app: AppHarness, fake_model: Path) -> None:
    body = {"name": "a", "model_path": str(fake_model), "resources": {"GPU": 1, "box_a": 0.5}}
    created = await app.client.post("/api/instances", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["instance"]["resources"] == {"GPU": 1, "box_a": 0.5}
    assert created.json()["instance"]["node"] is None
    updated = await app.client.put("/api/instances/a", json={"resources": {"CPU": 2}})
    assert updated.json()["instance"]["resources"] == {"CPU": 2}
    started = await app.client.post("/api/instances/a/start")
    assert started.status_code == 200, started.text
    got = (await app.client.get("/api/instances/a")).json()
    assert got["node"] is None  # local engine: resources ignored (but kept), no node


async def test_resources_refuse_negative_and_non_numbers(
        app: AppHarness, fake_model: Path) -> None:
    for bad in ({"GPU": -1}, {"GPU": "one"}, {"": 1}):
        body = {"name": "a", "model_path": str(fake_model), "resources": bad}
        answer = await app.client.post("/api/instances", json=body)
        assert answer.status_code == 400, bad
        assert answer.json()["code"] == "VALIDATION_ERROR"
    assert (await app.client.get("/api/instances")).json()["instances"] == []
