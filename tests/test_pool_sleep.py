"""Warm standby (issue 32): sleep_after puts an idle llama-server (by itself) or vLLM (by
llamactl) to sleep without ending its process; /v1 wakes it; the memory it claims follows
(measured while it sleeps)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AppHarness
from tests.support.helpers import wait_instance
from tests.test_backends import STAND_INS


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


async def test_llamactl_puts_an_idle_vllm_to_sleep_and_wakes_it_before_relaying(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    """vLLM does not sleep by itself: llamactl calls its sleep mode's routes (the stand-in,
    as vLLM, serves them only with --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1, and
    refuses a completion while asleep), one wake for however many requests arrive."""
    settings = make_settings(stats_interval=0.2)
    settings.backends.vllm.command = STAND_INS["vllm"]
    app: AppHarness = await make_app(settings)
    weights = tmp_path / "models" / "weights"
    weights.mkdir(parents=True)
    created = await app.client.post("/api/instances", json={
        "name": "v", "model_path": str(weights), "backend": "vllm", "sleep_after": 1})
    assert created.status_code == 201, created.text
    cannot = await app.client.post("/api/instances", json={
        "name": "m", "model_path": str(weights), "backend": "mlx_lm", "sleep_after": 1})
    assert cannot.status_code == 400, cannot.text
    assert "the mlx_lm backend cannot sleep" in cannot.text
    assert (await app.client.post("/api/instances/v/start?wait=true")).status_code == 200
    owner = app.manager.owner("v")
    assert "--enable-sleep-mode" in owner.record.runtime.command
    asleep = await wait_instance(app.client, "v", lambda i: i["sleeping"], timeout=20,
                                 what="asleep")
    assert asleep["pid"] == owner.pid
    assert await is_sleeping(owner.port) is True  # the server itself says so
    answers = await asyncio.gather(*(app.client.post("/v1/completions", json={
        "model": "v", "prompt": "hi", "max_tokens": 2}) for _ in range(3)))
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    assert await is_sleeping(owner.port) is False
    logs = (await app.client.get("/api/instances/v/logs")).json()["logs"]
    assert sum("woken up" in entry["message"] for entry in logs) == 1
    # Idle again, asleep again; the process is never ended for it.
    again = await wait_instance(app.client, "v", lambda i: i["sleeping"], timeout=20,
                                what="asleep again")
    assert again["pid"] == asleep["pid"]


async def is_sleeping(port: int) -> bool:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/is_sleeping")
    sleeping: bool = answer.json()["is_sleeping"]
    return sleeping
