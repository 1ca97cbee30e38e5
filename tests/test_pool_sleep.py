"""Warm standby (issue 32): sleep_after puts an idle llama-server to sleep without ending its
process; /v1 wakes it; the memory it claims follows (measured while it sleeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import AppHarness
from tests.support.helpers import wait_instance


def claimed_ram(app: AppHarness) -> int:
    claimed: int = app.manager.memory_status()["claimed"]["ram"]
    return claimed


async def test_an_idle_instance_sleeps_and_a_request_wakes_it(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(
        stats_interval=0.2, memory_budget={"ram": "64GiB"}))
    created = await app.client.post("/api/instances", json={
        "name": "s", "model_path": str(model), "sleep_after": 1, "pool": "warm",
        "options": {"context_size": 8192}})
    assert created.status_code == 201, created.text
    assert created.json()["instance"]["sleep_after"] == 1
    assert created.json()["instance"]["sleeping"] is False
    bad = await app.client.put("/api/instances/s", json={"sleep_after": 0})
    assert bad.status_code == 400
    started = await app.client.post("/api/instances/s/start?wait=true")
    assert started.status_code == 200
    owner = app.manager.owner("s")
    pid = owner.pid
    assert "--sleep-idle-seconds" in owner.record.runtime.command
    estimate = owner.estimator.estimate(owner.record.spec).ram
    awake = claimed_ram(app)
    assert awake == max(estimate, owner.stats.memory_usage)
    asleep = await wait_instance(app.client, "s", lambda i: i["sleeping"], timeout=20,
                                 what="asleep")
    assert asleep["status"] == "running"
    assert asleep["pid"] == pid  # the same process
    member = (await app.client.get("/api/pools")).json()["pools"][0]["members"][0]
    assert member["sleeping"] is True
    assert claimed_ram(app) == owner.stats.memory_usage  # measured, not the estimate
    reply = await app.client.post("/v1/completions", json={
        "model": "warm", "prompt": "hi", "max_tokens": 2})
    assert reply.status_code == 200, reply.text
    woken = await wait_instance(app.client, "s", lambda i: not i["sleeping"], timeout=20,
                                what="awake")
    assert woken["pid"] == asleep["pid"]
    assert claimed_ram(app) == max(estimate, owner.stats.memory_usage)
