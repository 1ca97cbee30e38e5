"""What the memory budget knows, shown: ``memory`` in ``GET /api/system/status``, ``vram:
auto`` from the GPUs' memory, and vLLM's VRAM claim (issue 20).

There is no GPU here: the GPU tests put a stand-in ``nvidia-smi`` on PATH (the seam llamactl
reads GPUs through when NVML cannot be imported), as tests/test_system.py does."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from llamactl.backends.base import MemoryEstimate
from llamactl.cluster.ray_host import placement_resources
from llamactl.devtools.tiny_model import Shape, write_tiny_model
from llamactl.supervisor.memory import VRAM_AUTO_RESERVE
from tests.conftest import AppHarness
from tests.support.helpers import wait_status

MIB = 2**20
GPUS_MIB = (24576, 8192)
STATUS_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shape = Shape(n_layers=12, n_embd=256, n_ff=704)
    return write_tiny_model(tmp_path_factory.mktemp("models") / "big.gguf", seed=7,
                            shape=shape)


async def memory_status(app: AppHarness) -> dict[str, Any]:
    answer = await app.client.get("/api/system/status")
    assert answer.status_code == 200, answer.text
    memory: dict[str, Any] = answer.json()["memory"]
    return memory


async def test_status_shows_the_budget_what_is_claimed_and_what_is_free(
    make_settings: Any, make_app: Any, big_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(memory_budget={"ram": "1GiB"}))
    created = await app.client.post("/api/instances", json={
        "name": "m", "model_path": str(big_model), "options": {"context_size": 1024}})
    assert created.status_code == 201, created.text
    estimate = created.json()["instance"]["memory_estimate"]["ram"]
    idle = await memory_status(app)
    assert idle == {"budget": {"ram": 2**30, "vram": None}, "claimed": {"ram": 0, "vram": 0},
                    "free": {"ram": 2**30, "vram": None}}
    await app.client.post("/api/instances/m/start", params={"wait": "true"})
    await wait_status(app.client, "m", "running")
    held = await memory_status(app)
    assert held["claimed"]["ram"] >= estimate  # the larger of estimate and measured RSS
    assert held["free"]["ram"] == 2**30 - held["claimed"]["ram"]
    await app.client.post("/api/instances/m/stop")
    await wait_status(app.client, "m", "stopped")
    assert (await memory_status(app))["claimed"] == {"ram": 0, "vram": 0}


async def test_without_a_budget_nothing_is_limited(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    memory = await memory_status(app)
    assert memory["budget"] == {"ram": None, "vram": None}
    assert memory["free"] == {"ram": None, "vram": None}


@pytest.fixture
def two_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("pynvml") is not None:
        pytest.skip("NVML is preferred to nvidia-smi when it can be imported")
    stand_in = tmp_path / "bin" / "nvidia-smi"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n" + "".join(
        f"echo 'Stand-in GPU {i}, {mib}, 0, 0'\n" for i, mib in enumerate(GPUS_MIB)))
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}:{os.environ['PATH']}")


async def until_gpus_read(app: AppHarness) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + STATUS_TIMEOUT
    while True:
        memory = await memory_status(app)
        if memory["budget"]["vram"] is not None:
            return memory
        assert asyncio.get_running_loop().time() < deadline, memory
        await asyncio.sleep(0.05)


@pytest.mark.usefixtures("two_gpus")
async def test_vram_auto_is_the_gpus_memory_less_the_reserve_and_offload_counts(
    make_settings: Any, make_app: Any, big_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(memory_budget={"vram": "auto"}))
    memory = await until_gpus_read(app)
    total = sum(GPUS_MIB) * MIB
    assert memory["budget"]["vram"] == total - VRAM_AUTO_RESERVE
    assert memory["free"]["vram"] == total - VRAM_AUTO_RESERVE
    # With a GPU, gpu_layers put weights and KV cache on it: the estimate splits.
    offloaded = await app.client.post("/api/instances", json={
        "name": "g", "model_path": str(big_model), "options": {"gpu_layers": 99}})
    assert offloaded.status_code == 201, offloaded.text
    assert offloaded.json()["instance"]["memory_estimate"]["vram"] > 30 * MIB


@pytest.mark.usefixtures("two_gpus")
async def test_vllm_claims_its_share_of_the_gpus_it_runs_on(
    make_settings: Any, make_app: Any
) -> None:
    app: AppHarness = await make_app(make_settings(memory_budget={"vram": "auto"}))
    await until_gpus_read(app)
    default = await app.client.post("/api/instances", json={
        "name": "v1", "backend": "vllm", "model_path": "org/model"})
    assert default.status_code == 201, default.text
    assert default.json()["instance"]["memory_estimate"] == {
        "ram": None, "vram": int(0.9 * GPUS_MIB[0] * MIB)}
    both = await app.client.post("/api/instances", json={
        "name": "v2", "backend": "vllm", "model_path": "org/model",
        "options": {"gpu_memory_utilization": 0.5, "tensor_parallel_size": 2}})
    assert both.status_code == 201, both.text
    assert both.json()["instance"]["memory_estimate"] == {
        "ram": None, "vram": int(0.5 * sum(GPUS_MIB) * MIB)}


async def test_vllm_claim_is_unknown_without_a_readable_gpu(
    make_settings: Any, make_app: Any
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    created = await app.client.post("/api/instances", json={
        "name": "v", "backend": "vllm", "model_path": "org/model"})
    assert created.status_code == 201, created.text
    if "gpus" not in (await app.client.get("/api/system/info")).json():
        assert created.json()["instance"]["memory_estimate"] is None


def test_ray_placement_asks_for_the_estimate() -> None:
    estimate = MemoryEstimate(ram=300 * MIB, vram=2000 * MIB)
    assert placement_resources({"box_a": 1}, estimate, vram_declared=False) == {
        "box_a": 1, "memory": 300 * MIB}
    assert placement_resources({}, estimate, vram_declared=True) == {
        "memory": 300 * MIB, "vram": 2000 * MIB}
    # What the instance asks for itself wins; an unknown estimate adds nothing.
    assert placement_resources({"memory": 5.0}, estimate, vram_declared=False) == {
        "memory": 5.0}
    assert placement_resources({"GPU": 1}, None, vram_declared=True) == {"GPU": 1}
    assert placement_resources({}, MemoryEstimate(ram=None, vram=None), True) == {}
