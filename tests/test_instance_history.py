"""``GET /api/instances/{name}/history`` (issue 34's instance charts): the last hour of the
memory and CPU each ``instance_stats_updated`` published, from a bounded ring per instance."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llamactl.monitoring.history import MAX_SAMPLES, StatsHistory
from tests.conftest import AppHarness


def test_the_ring_is_bounded_by_length_and_by_age() -> None:
    history = StatsHistory(interval=10, span=60)  # six samples
    for second in range(0, 100, 10):
        history.record("a", {"memory_usage": second, "cpu_usage": 1.5}, at=1000 + second)
    kept = history.samples("a", now=1090)
    assert [s.memory_usage for s in kept] == [40, 50, 60, 70, 80, 90]
    assert [s.memory_usage for s in history.samples("a", now=1145)] == [90]  # a minute old
    assert history.samples("a", now=1200) == []
    assert history.samples("never-sampled") == []
    assert kept[0].to_json() == {"time": "1970-01-01T00:17:20Z", "memory_usage": 40,
                                 "cpu_usage": 1.5}
    history.keep_only(["b"])  # "a" was deleted
    assert history.samples("a", now=1090) == []
    # A tiny stats interval does not make the ring unbounded.
    tiny = StatsHistory(interval=0.001)
    for i in range(MAX_SAMPLES + 10):
        tiny.record("a", {"memory_usage": i, "cpu_usage": 0.0})
    assert len(tiny.samples("a")) == MAX_SAMPLES


async def test_history_holds_what_the_stats_events_published(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    settings = make_settings(sections={"events": {"stats_interval": 0.1}})
    app: AppHarness = await make_app(settings)
    made = await app.client.post("/api/instances", json={
        "name": "h", "model_path": str(model), "options": {"context_size": 256}})
    assert made.status_code == 201, made.text
    empty = (await app.client.get("/api/instances/h/history")).json()
    assert empty == {"name": "h", "interval": 0.1, "samples": []}  # never ran
    assert (await app.client.post("/api/instances/h/start?wait=true")).status_code == 200
    samples: list[dict[str, Any]] = []
    for _ in range(100):
        await asyncio.sleep(0.1)
        samples = (await app.client.get("/api/instances/h/history")).json()["samples"]
        if len(samples) >= 3 and samples[-1]["memory_usage"] > 0:
            break
    assert len(samples) >= 3
    assert samples[-1]["memory_usage"] > 10_000_000  # a real llama-server's resident memory
    assert [s["time"] for s in samples] == sorted(s["time"] for s in samples)
    assert all(s["time"].endswith("Z") for s in samples)
    missing = await app.client.get("/api/instances/nope/history")
    assert missing.status_code == 404
    assert missing.json()["code"] == "INSTANCE_NOT_FOUND"
    await app.client.post("/api/instances/h/stop?wait=true")
    assert (await app.client.delete("/api/instances/h")).status_code == 200
    await asyncio.sleep(0.3)  # a publication after the delete forgets its ring
    assert app.app.state.services.monitoring.history.samples("h") == []
