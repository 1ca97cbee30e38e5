"""Replica pools' routing under load (issue 32), with the stand-in backend that answers each
request with a stream paced by the test: sessions, failover, priorities, gateway.max_wait,
growing within the limits and min_running. (test_pools.py has the real llama-servers.)"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AppHarness
from tests.support.helpers import wait_status
from tests.support.keyed_app import keyed_app


def stand_in(chunks: int, interval: float = 0.05) -> list[str]:
    """Arguments of a stand-in whose every answer takes chunks × interval seconds."""
    return ["--fake-stream-chunks", str(chunks), "--fake-chunk-interval", str(interval)]


async def member(app: AppHarness, name: str, model: Path, *, chunks: int = 4,
                 start: bool = True, **fields: Any) -> None:
    response = await app.client.post("/api/instances", json={
        "name": name, "model_path": str(model), "pool": "chat", "options": {"parallel": 1},
        "extra_args": stand_in(chunks), **fields})
    assert response.status_code == 201, response.text
    if start:
        started = await app.client.post(f"/api/instances/{name}/start?wait=true")
        assert started.status_code == 200, started.text


async def ask(app: AppHarness, model: str = "chat", *, headers: dict[str, str] | None = None,
              **body: Any) -> httpx.Response:
    return await app.client.post("/v1/completions", headers=headers or {},
                                 json={"model": model, "prompt": "hi", **body})


def served(app: AppHarness) -> dict[str, int]:
    counts: dict[tuple[str, int], int] = app.app.state.services.gateway.answered
    return {name: count for (name, status), count in counts.items() if status == 200}


async def waiting(app: AppHarness, count: int) -> None:
    """Until ``count`` requests wait in the pool's queue."""
    for _ in range(400):
        pools = (await app.client.get("/api/pools")).json()["pools"]
        if pools and pools[0]["waiting"] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {count} waiting: {pools}")


async def busy(app: AppHarness, count: int) -> None:
    """Until the pool's members hold ``count`` requests between them."""
    for _ in range(400):
        pools = (await app.client.get("/api/pools")).json()["pools"]
        if pools and sum(m["in_flight"] for m in pools[0]["members"]) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {count} in flight: {pools}")


async def test_a_session_sticks_to_its_member_and_moves_only_when_it_goes(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    for name in ("m1", "m2"):
        await member(app, name, fake_model, chunks=1)
    ways: tuple[dict[str, Any], ...] = (
        {"headers": {"X-Session-ID": "conversation-1"}}, {"user": "alice"},
        {"metadata": {"user_id": "bob"}})
    homes = {}
    for way in ways:
        before = served(app)
        for _ in range(4):  # alone, they would alternate (ties in turn)
            assert (await ask(app, **way)).status_code == 200
        moved = {n: c - before.get(n, 0) for n, c in served(app).items()
                 if c != before.get(n, 0)}
        assert list(moved.values()) == [4], (way, moved)
        homes[str(way)] = next(iter(moved))
    # Many sessions spread over both members.
    before = served(app)
    for index in range(16):
        assert (await ask(app, headers={"X-Session-ID": f"s{index}"})).status_code == 200
    assert all(served(app)[n] > before.get(n, 0) for n in ("m1", "m2"))
    # Its member stopped, a session moves; back once the member runs again.
    way = ways[0]
    home = homes[str(way)]
    other = "m2" if home == "m1" else "m1"
    await app.client.post(f"/api/instances/{home}/stop")
    await wait_status(app.client, home, "stopped")
    count = served(app)[other]
    assert (await ask(app, **way)).status_code == 200
    assert served(app)[other] == count + 1
    await app.client.post(f"/api/instances/{home}/start?wait=true")
    count = served(app)[home]
    assert (await ask(app, **way)).status_code == 200
    assert served(app)[home] == count + 1


async def test_a_saturated_home_sends_its_session_to_a_free_member(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await member(app, "m1", fake_model, chunks=30)
    await member(app, "m2", fake_model, chunks=30)
    first = asyncio.create_task(ask(app, headers={"X-Session-ID": "x"}))
    await busy(app, 1)  # the session's home is busy with it (one slot)
    second = await ask(app, headers={"X-Session-ID": "x"})
    assert second.status_code == 200
    assert (await first).status_code == 200
    assert served(app) == {"m1": 1, "m2": 1}


async def test_requests_not_yet_sent_fail_over_when_a_member_is_killed(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    # Each answer takes 2 s: time enough, on a loaded machine, to see the queue form behind
    # the two in flight before any of them ends.
    await member(app, "m1", fake_model, chunks=40, auto_restart=False)
    await member(app, "m2", fake_model, chunks=40)
    in_flight = [asyncio.create_task(ask(app)) for _ in range(2)]
    await busy(app, 2)
    queued = [asyncio.create_task(ask(app)) for _ in range(4)]
    await waiting(app, 4)
    pid = (await app.client.get("/api/instances/m1")).json()["pid"]
    os.kill(pid, signal.SIGKILL)
    answers = [await task for task in queued]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    await asyncio.gather(*in_flight)  # the one on m1 was cut short; neither is an error page
    assert sum(served(app).values()) == 6


async def test_a_request_its_member_took_and_died_with_before_answering_goes_to_another(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    """As on a lost Ray node, whose backend is killed as its worker goes: the request was
    sent, no byte came back, so nothing reached the client and another member answers."""
    app: AppHarness = await make_app(make_settings(fake=True))
    for name, restart in (("m1", False), ("m2", True)):
        await member(app, name, fake_model, chunks=1, auto_restart=restart,
                     extra_args=[*stand_in(1), "--fake-head-after", "2"])
    asked = [asyncio.create_task(ask(app)) for _ in range(2)]
    await busy(app, 2)  # one on each: a slot each
    pid = (await app.client.get("/api/instances/m1")).json()["pid"]
    os.kill(pid, signal.SIGKILL)
    answers = [await task for task in asked]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert served(app) == {"m2": 2}
    records = (await app.client.get("/api/activity?limit=2")).json()["items"]
    assert {r["instance"] for r in records} == {"m2"}


async def test_the_higher_priority_waits_least_and_max_wait_ends_a_wait(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app, keys = await keyed_app(make_settings, make_app, tmp_path, {"low": 0, "high": 7},
                                fake=True, sections={"gateway": {"max_wait": 5}})
    await member(app, "m1", fake_model, chunks=20)  # 1 s: the queue forms behind it
    ended: list[str] = []

    async def tracked(label: str, key: str) -> httpx.Response:
        answer = await ask(app, headers=keys[key])
        ended.append(label)
        return answer

    tasks = [asyncio.create_task(tracked("first", "low"))]
    await busy(app, 1)
    for index, (label, key) in enumerate((("low-1", "low"), ("low-2", "low"),
                                          ("high", "high"))):
        tasks.append(asyncio.create_task(tracked(label, key)))
        await waiting(app, index + 1)
    answers = await asyncio.gather(*tasks)
    assert [a.status_code for a in answers] == [200] * 4
    assert ended == ["first", "high", "low-1", "low-2"]
    records = (await app.client.get("/api/activity?limit=4")).json()["items"]
    assert all(r["queue_ms"] is not None for r in records)
    assert max(r["queue_ms"] for r in records) > 500  # the last one waited for three
    # Waiting longer than gateway.max_wait: 503 timeout, in OpenAI's envelope.
    await app.client.put("/api/instances/m1", json={"extra_args": stand_in(200)},
                         params={"restart": "true"})
    await wait_status(app.client, "m1", "running")
    holder = asyncio.create_task(ask(app, headers=keys["low"]))
    await busy(app, 1)
    late = await ask(app, headers=keys["high"])
    assert late.status_code == 503, late.text
    assert late.json()["error"]["code"] == "timeout"
    assert late.json()["error"]["type"] == "server_error"
    holder.cancel()


async def test_a_saturated_pool_grows_after_scale_up_after_within_the_limits(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(
        fake=True, sections={"pools": {"scale_up_after": 0.3}}))
    await member(app, "m1", fake_model, chunks=40)
    await member(app, "m2", fake_model, chunks=1, start=False)
    holder = asyncio.create_task(ask(app))
    await busy(app, 1)
    assert (await ask(app)).status_code == 200  # served by m2, started for it
    assert served(app) == {"m2": 1}
    assert not holder.done()
    holder.cancel()
    await app.down()
    # Within the limits: with max_running 1 the pool waits for its member instead.
    app.settings = make_settings(fake=True, max_running=1,
                                 sections={"pools": {"scale_up_after": 0.1}})
    await app.up()
    await app.client.post("/api/instances/m2/stop")
    await wait_status(app.client, "m2", "stopped")
    await app.client.put("/api/instances/m1", json={"extra_args": stand_in(10)})
    await app.client.post("/api/instances/m1/start?wait=true")
    first = asyncio.create_task(ask(app))
    await busy(app, 1)
    assert (await ask(app)).status_code == 200
    assert (await first).status_code == 200
    assert served(app) == {"m1": 2}
    assert (await app.client.get("/api/instances/m2")).json()["status"] == "stopped"


async def test_min_running_is_kept_at_start_and_after_a_crash(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    settings = make_settings(fake=True, sections={"pools": {"chat": {"min_running": 1}}})
    app: AppHarness = await make_app(settings)
    await member(app, "m1", fake_model, start=False, auto_restart=False)
    await member(app, "m2", fake_model, start=False, auto_restart=False)
    running = await wait_status(app.client, "m1", "running")  # at once: created below it
    assert (await app.client.get("/api/instances/m2")).json()["status"] == "stopped"
    os.kill(running["pid"], signal.SIGKILL)
    await wait_status(app.client, "m1", "failed")
    await wait_status(app.client, "m2", "running")
    await app.down()  # stops both
    await app.up()
    statuses = {}
    for _ in range(200):
        statuses = {i["name"]: i["status"] for i in
                    (await app.client.get("/api/instances")).json()["instances"]}
        if "running" in statuses.values():
            break
        await asyncio.sleep(0.05)
    assert sorted(statuses.values()) in (["failed", "running"], ["running", "stopped"])
