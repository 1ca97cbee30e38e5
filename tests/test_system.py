"""``/api/system/status`` and ``/api/system/info``, and the host sampling behind them."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import platform
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from llamactl.events import EventHub
from llamactl.monitoring.gpus import parse_nvidia_smi
from llamactl.monitoring.host import ThresholdAlert, machine_arch
from llamactl.version import package_version
from tests.conftest import AppHarness
from tests.support.helpers import POLL, STATUS_TIMEOUT, wait_status

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
STATUSES = ("running", "stopped", "starting", "stopping", "restarting", "failed")


async def create(app: AppHarness, name: str, model: Path) -> None:
    response = await app.client.post("/api/instances",
                                     json={"name": name, "model_path": str(model)})
    assert response.status_code == 201, response.text


async def test_status_has_the_seeds_fields_and_counts_instances(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    status = (await app.client.get("/api/system/status")).json()
    # The seed's fields in the seed's order, then what llamactl adds.
    assert list(status) == ["version", "uptime", "instances", "resources", "storage", "memory",
                            "activity"]
    assert status["storage"] == {"available": True, "error": None, "pending_writes": 0}
    assert status["version"] == package_version()
    assert isinstance(status["uptime"], int)
    assert status["uptime"] >= 0
    assert status["instances"] == {"total": 0, **dict.fromkeys(STATUSES, 0)}
    resources = status["resources"]
    assert set(resources) == {"cpu_usage", "memory_usage", "memory_total", "disk_usage"}
    assert 0 <= resources["cpu_usage"] <= 100
    assert isinstance(resources["memory_total"], int)
    assert 0 < resources["memory_usage"] <= resources["memory_total"]
    assert 0 < resources["disk_usage"] <= 100

    for name in ("a", "b"):
        await create(app, name, fake_model)
    assert (await app.client.post("/api/instances/a/start?wait=true")).status_code == 200
    counts = (await app.client.get("/api/system/status")).json()["instances"]
    assert counts == {"total": 2, **dict.fromkeys(STATUSES, 0), "running": 1, "stopped": 1}
    assert (await app.client.post("/api/instances/a/stop")).status_code == 200
    await wait_status(app.client, "a", "stopped")
    counts = (await app.client.get("/api/system/status")).json()["instances"]
    assert (counts["running"], counts["stopped"]) == (0, 2)


async def test_info_describes_the_host(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    info = (await app.client.get("/api/system/info")).json()
    assert info["hostname"] == socket.gethostname()
    assert info["os"] == platform.system().lower()
    assert info["arch"] == machine_arch()
    if platform.machine() == "x86_64":
        assert info["arch"] == "amd64"
    assert isinstance(info["cpu_count"], int)
    assert info["cpu_count"] >= 1
    assert isinstance(info["memory_total"], int)
    assert info["memory_total"] > 0
    assert info["version"] == package_version()
    assert RFC3339_Z.match(info["build_time"])
    if shutil.which("nvidia-smi") is None and importlib.util.find_spec("pynvml") is None:
        assert "gpus" not in info


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None,
                    reason="NVML is preferred to nvidia-smi when it can be imported")
async def test_gpus_from_nvidia_smi(
    make_settings: Any, make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA Test GPU, 24576, 1024, 37'\n"
                    "echo 'NVIDIA Other, 8192, [N/A], [N/A]'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    app: AppHarness = await make_app(make_settings(fake=True))
    gpus = await poll_info(app, "gpus")
    assert gpus == [
        {"name": "NVIDIA Test GPU", "memory_total": 24576 * 2**20, "memory_used": 1024 * 2**20,
         "utilization": 37.0},
        {"name": "NVIDIA Other", "memory_total": 8192 * 2**20, "memory_used": 0,
         "utilization": 0.0},
    ]


async def test_a_broken_nvidia_smi_means_no_gpus_not_an_error(
    make_settings: Any, make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    app: AppHarness = await make_app(make_settings(fake=True))
    monitoring = app.app.state.services.monitoring
    await monitoring.sample_host()
    response = await app.client.get("/api/system/info")
    assert response.status_code == 200
    if importlib.util.find_spec("pynvml") is None:
        assert "gpus" not in response.json()


async def poll_info(app: AppHarness, key: str) -> Any:
    deadline = asyncio.get_running_loop().time() + STATUS_TIMEOUT
    while True:
        info = (await app.client.get("/api/system/info")).json()
        if key in info:
            return info[key]
        assert asyncio.get_running_loop().time() < deadline, f"no {key} in {info}"
        await asyncio.sleep(POLL)


def test_nvidia_smi_output_is_parsed_by_its_last_three_columns() -> None:
    gpus = parse_nvidia_smi("A, B, with commas, 100, 50, 5\n\ngarbage\n")
    assert [(g.name, g.memory_total, g.utilization) for g in gpus] == [
        ("A, B, with commas", 100 * 2**20, 5.0)]


@pytest.mark.parametrize(("machine", "arch"), [
    ("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64"),
    ("riscv64", "riscv64"),
])
def test_arch_uses_the_seeds_names(machine: str, arch: str) -> None:
    assert machine_arch(machine) == arch


async def test_an_alert_once_per_crossing() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    alert = ThresholdAlert(hub, "Disk", 90)
    for value in (50, 91, 95, 99, 89, 88.5, 87, 86, 93, 94):
        alert.check(value)
    seen = []
    while not subscription.queue.empty():
        event = subscription.queue.get_nowait()
        seen.append((event.type, event.data["level"], event.data["message"].split(" is")[0]))
    # Up at 91, back under at 87 (two points of hysteresis), up again at 93.
    assert seen == [("system_alert", "warning", "Disk"), ("system_alert", "info", "Disk"),
                    ("system_alert", "warning", "Disk")]


async def test_a_full_disk_alerts_at_the_first_sample_and_not_at_each(
    make_settings: Any, make_app: Any
) -> None:
    settings = make_settings(fake=True, sections={"events": {"disk_alert_percent": 0}})
    app: AppHarness = await make_app(settings)
    monitoring = app.app.state.services.monitoring
    deadline = asyncio.get_running_loop().time() + STATUS_TIMEOUT
    while not monitoring.disk_alert.active:
        assert asyncio.get_running_loop().time() < deadline, "the sampler never alerted"
        await asyncio.sleep(POLL)
    subscription = app.app.state.services.events.subscribe()
    await monitoring.sample_host()
    await monitoring.sample_host()
    assert subscription.queue.empty()
