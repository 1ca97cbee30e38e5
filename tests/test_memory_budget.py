"""instances.memory_budget with real llama-servers: eviction by memory and refusal (issue 20).

The model is a bigger tiny model (12 layers, 256 wide: 38 MiB of weights) so that an
instance's estimate (~80 MiB at 1024 context) dwarfs rounding."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from llamactl.backends.llama_cpp.memory import estimate_llama_cpp, read_model_facts
from llamactl.devtools.tiny_model import Shape, write_tiny_model
from tests.conftest import AppHarness
from tests.support.helpers import wait_status

COMPLETION = {"prompt": "hello", "max_tokens": 4, "ignore_eos": True}
OPTIONS = {"context_size": 1024, "parallel": 1}


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shape = Shape(n_layers=12, n_embd=256, n_ff=704)
    return write_tiny_model(tmp_path_factory.mktemp("models") / "big.gguf", seed=7,
                            shape=shape)


def one_estimate(model: Path) -> int:
    return estimate_llama_cpp(read_model_facts(model), OPTIONS, has_gpu=False).ram


async def create(app: AppHarness, name: str, model: Path, **options: Any) -> None:
    response = await app.client.post("/api/instances", json={
        "name": name, "model_path": str(model), "options": OPTIONS | options})
    assert response.status_code == 201, response.text


async def statuses(app: AppHarness) -> dict[str, str]:
    listing = (await app.client.get("/api/instances")).json()["instances"]
    return {item["name"]: item["status"] for item in listing}


async def test_a_budget_of_two_and_a_half_keeps_two_running_and_evicts_the_lru(
    make_settings: Any, make_app: Any, big_model: Path
) -> None:
    budget = int(one_estimate(big_model) * 2.5)
    app: AppHarness = await make_app(make_settings(memory_budget={"ram": budget}))
    for name in ("a", "b", "c"):
        await create(app, name, big_model)
    for name in ("a", "b", "c"):
        answer = await app.client.post("/v1/completions", json={"model": name, **COMPLETION})
        assert answer.status_code == 200, answer.text
    assert await statuses(app) == {"a": "stopped", "b": "running", "c": "running"}
    # b is now the least recently used: a request for a evicts b, not c.
    answer = await app.client.post("/v1/completions", json={"model": "a", **COMPLETION})
    assert answer.status_code == 200, answer.text
    assert await statuses(app) == {"a": "running", "b": "stopped", "c": "running"}


async def test_an_instance_larger_than_the_budget_is_refused(
    make_settings: Any, make_app: Any, big_model: Path
) -> None:
    budget = int(one_estimate(big_model) * 1.5)
    app: AppHarness = await make_app(make_settings(memory_budget={"ram": str(budget)}))
    await create(app, "huge", big_model, context_size=16384)
    answer = await app.client.post("/api/instances/huge/start")
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "INSUFFICIENT_MEMORY"
    assert str(budget) in body["details"]
    gateway = await app.client.post("/v1/completions", json={"model": "huge", **COMPLETION})
    assert gateway.status_code == 503
    assert gateway.json()["error"]["code"] == "insufficient_memory"
    assert await statuses(app) == {"huge": "stopped"}


async def test_instances_show_their_estimate_and_it_follows_updates(
    make_settings: Any, make_app: Any, big_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "m", big_model)
    first = (await app.client.get("/api/instances/m")).json()["memory_estimate"]
    assert first == {"ram": one_estimate(big_model), "vram": 0}
    answer = await app.client.put("/api/instances/m", json={"options": {"context_size": 8192}})
    assert answer.status_code == 200, answer.text
    second = (await app.client.get("/api/instances/m")).json()["memory_estimate"]
    assert second["ram"] - first["ram"] >= (8192 - 1024) * 12 * 256 * 2 * 2  # the KV cache
    not_gguf = tmp_path / "not.gguf"
    not_gguf.write_bytes(b"GGUF but not really")  # no estimate: refused at create (issue 27)
    odd = await app.client.post("/api/instances", json={"name": "odd",
                                                        "model_path": str(not_gguf)})
    assert (odd.status_code, odd.json()["code"]) == (400, "MODEL_INVALID")


async def test_the_estimate_route_answers_without_an_instance(
    make_settings: Any, make_app: Any, big_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    url = "/api/backends/llama_cpp/estimate"
    answer = await app.client.post(url, json={"model_path": str(big_model), "options": OPTIONS})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ram": one_estimate(big_model), "vram": 0}
    bigger = await app.client.post(url, json={"model_path": str(big_model),
                                              "options": {"context_size": 4096}})
    assert bigger.json()["ram"] > answer.json()["ram"]
    bad = await app.client.post(url, json={"model_path": str(big_model),
                                           "options": {"context_size": "big"}})
    assert bad.status_code == 400
    assert bad.json()["code"] == "VALIDATION_ERROR"
    missing = await app.client.post(url, json={"model_path": str(tmp_path / "none.gguf")})
    assert missing.status_code == 400
    assert missing.json()["code"] == "MODEL_NOT_FOUND"  # as creating an instance says
    other = await app.client.post("/api/backends/vllm/estimate",
                                  json={"model_path": str(big_model)})
    assert other.status_code == 404
    assert (await app.client.get("/api/instances")).json()["instances"] == []


async def test_a_busy_instance_is_never_evicted_the_start_waits_for_it(
    make_settings: Any, make_app: Any, big_model: Path
) -> None:
    budget = int(one_estimate(big_model) * 1.5)
    app: AppHarness = await make_app(make_settings(memory_budget={"ram": budget}))
    for name in ("a", "b"):
        await create(app, name, big_model)
    assert (await app.client.post("/api/instances/a/start")).status_code == 200
    await wait_status(app.client, "a", "running")
    finished: dict[str, float] = {}

    async def long_request() -> None:
        answer = await app.client.post("/v1/completions", timeout=120, json={
            "model": "a", "prompt": "hi", "max_tokens": 300, "ignore_eos": True})
        assert answer.status_code == 200, answer.text
        finished["a"] = time.monotonic()

    busy = asyncio.create_task(long_request())

    async def a_is_busy() -> bool:
        slots = (await app.client.get("/api/instances/a/proxy/slots")).json()
        return any(slot["is_processing"] for slot in slots)

    while not await a_is_busy():
        assert not busy.done()
        await asyncio.sleep(0.02)
    answer = await app.client.post("/v1/completions", timeout=120,
                                   json={"model": "b", **COMPLETION})
    finished["b"] = time.monotonic()
    await busy
    assert answer.status_code == 200, answer.text
    assert finished["b"] >= finished["a"]  # b started only once a's request had ended
    assert await statuses(app) == {"a": "stopped", "b": "running"}
