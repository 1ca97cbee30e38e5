"""Issue 32's priorities where a request waits for its instance (a pool's queue is in
test_pool_routing.py): its on-demand start, and room to start it within max_running. The
higher priority goes first, whatever the arrival order; first come first served within a
priority. The stand-in backend answers one request at a time (llama-server with one slot)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AppHarness
from tests.support.keyed_app import keyed_app


def stand_in(chunks: int, *more: str) -> list[str]:
    return ["--fake-stream-chunks", str(chunks), "--fake-chunk-interval", "0.05",
            "--fake-serial", *more]


async def create(app: AppHarness, name: str, model: Path, extra_args: list[str]) -> None:
    made = await app.client.post("/api/instances", json={
        "name": name, "model_path": str(model), "extra_args": extra_args,
        "on_demand_start": True, "options": {"parallel": 1}})
    assert made.status_code == 201, made.text


async def waiting(app: AppHarness, instance: str, count: int) -> None:
    """Until ``count`` /v1 requests wait for ``instance`` (its start, or room for it)."""
    await metric(app, f'llamactl_gateway_requests_waiting{{instance="{instance}"}} {count}.0')


async def metric(app: AppHarness, line: str) -> None:
    for _ in range(500):
        if line in (await app.client.get("/metrics")).text:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never in /metrics: {line}")


class Order:
    """The order in which requests ended."""

    def __init__(self, app: AppHarness, keys: dict[str, dict[str, str]]):
        self.app, self.keys, self.ended = app, keys, list[str]()

    async def ask(self, label: str, model: str, key: str) -> httpx.Response:
        answer = await self.app.client.post(
            "/v1/completions", headers=self.keys[key], json={"model": model, "prompt": "hi"})
        self.ended.append(label)
        return answer


async def test_requests_waiting_for_an_on_demand_start_go_in_by_priority(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app, keys = await keyed_app(make_settings, make_app, tmp_path, {"low": 0, "high": 5},
                                fake=True)
    await create(app, "solo", fake_model, stand_in(4, "--fake-load-seconds", "4"))
    order = Order(app, keys)
    tasks = []
    for count, (label, key) in enumerate((("low-1", "low"), ("low-2", "low"),
                                          ("high", "high")), start=1):
        tasks.append(asyncio.create_task(order.ask(label, "solo", key)))
        await waiting(app, "solo", count)  # each arrives while the model loads
    answers = await asyncio.gather(*tasks)
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    # First into the backend's one slot; the two of the same priority after it (in which
    # order is the backend's, as two connections race to it)
    assert order.ended[0] == "high", order.ended


async def test_requests_waiting_for_room_start_their_instances_by_priority(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app, keys = await keyed_app(make_settings, make_app, tmp_path, {"low": 0, "high": 5},
                                fake=True, max_running=1)
    await create(app, "busy", fake_model, stand_in(40))  # 2 s: the others wait for room
    await create(app, "for-low", fake_model, stand_in(1))
    await create(app, "for-high", fake_model, stand_in(1))
    order = Order(app, keys)
    tasks = [asyncio.create_task(order.ask("busy", "busy", "low"))]
    await metric(app, 'llamactl_gateway_requests_in_flight{instance="busy"} 1.0')
    for label, key in (("for-low", "low"), ("for-high", "high")):
        tasks.append(asyncio.create_task(order.ask(label, label, key)))
        await waiting(app, label, 1)
    answers = await asyncio.gather(*tasks)
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    # The busy one ends, is evicted, and the high-priority request's instance starts first.
    assert order.ended == ["busy", "for-high", "for-low"]
