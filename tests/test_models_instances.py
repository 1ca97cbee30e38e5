"""``POST /api/instances`` with ``"model"`` (issue 33): a model of the library by its id, or
``<user>/<repo>:<quant>``, pulled first when it is not on disk; the instance waits for its pull
(a manual start is refused meanwhile; an on-demand request waits, then is served)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import AppHarness
from tests.support.model_files import write_mmproj
from tests.support.stand_in_hub import (
    REPO,
    StandInHub,
    held_pull_app,
    hub_settings,
    pull,
    wait_pull,
)

CHAT = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


async def test_an_instance_from_a_model_not_yet_on_disk_serves_once_pulled(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    app, instance = await held_pull_app(make_settings, make_app, hub, tmp_path)
    assert instance["status"] == "stopped"
    assert instance["model_path"] == str(tmp_path / "library" / REPO / "tiny-Q8_0.gguf")
    assert instance["pull"]["status"] in ("queued", "downloading")
    refused = await app.client.post("/api/instances/tiny/start")
    assert (refused.status_code, refused.json()["code"]) == (409, "MODEL_PULLING")

    waiting = asyncio.create_task(app.client.post("/v1/chat/completions",
                                                  json={"model": "tiny", **CHAT}))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "the on-demand request waits for the pull"
    hub.release.set()
    answer = await asyncio.wait_for(waiting, 120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"]
    shown = (await app.client.get("/api/instances/tiny")).json()
    assert (shown["status"], shown["pull"]) == ("running", None)
    models = {m["id"]: m for m in (await app.client.get("/api/models")).json()["models"]}
    assert models[f"{REPO}/tiny-Q8_0.gguf"]["instances"] == ["tiny"]
    assert (await app.client.post("/api/instances/tiny/stop")).status_code == 200


async def test_a_model_on_disk_is_used_without_a_pull(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
    tiny_model_file: Path,
) -> None:
    own = tmp_path / "mine"
    own.mkdir()
    shutil.copy(tiny_model_file, own / "mine.gguf")
    write_mmproj(own / "mmproj-x.gguf")
    settings = hub_settings(make_settings, hub, tmp_path)
    settings.instances.model_dirs = [own]
    app: AppHarness = await make_app(settings)
    assert (await pull(app, {"source": f"{REPO}:Q8_0"}))["status"] == "done"
    served = hub.body_bytes("tiny-Q8_0.gguf")

    by_shorthand = await app.client.post("/api/instances",
                                         json={"name": "a", "model": f"{REPO}:q8_0"})
    assert by_shorthand.status_code == 201, by_shorthand.text
    assert by_shorthand.json()["instance"]["pull"] is None
    assert by_shorthand.json()["instance"]["model_path"] == str(
        tmp_path / "library" / REPO / "tiny-Q8_0.gguf")
    by_id = await app.client.post("/api/instances", json={"name": "b", "model": "mine.gguf"})
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["instance"]["model_path"] == str(own / "mine.gguf")
    assert hub.body_bytes("tiny-Q8_0.gguf") == served, "nothing pulled again"
    assert (await app.client.get("/api/models/pulls")).json()["pulls"][1:] == []
    # The memory estimate allows what instances may use: the library's folder too.
    pulled = str(tmp_path / "library" / REPO / "tiny-Q8_0.gguf")
    estimate = await app.client.post("/api/backends/llama_cpp/estimate",
                                     json={"model_path": pulled})
    assert estimate.status_code == 200, estimate.text


async def test_what_is_not_a_model_is_refused(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path, model: Path,
) -> None:
    write_mmproj(tmp_path / "library" / "mmproj-x.gguf")
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    cases = [
        ({"name": "x", "model": "x.gguf", "model_path": str(model)}, 400, "VALIDATION_ERROR"),
        ({"name": "x"}, 400, "VALIDATION_ERROR"),
        ({"name": "x", "model": "no-such-model.gguf"}, 400, "MODEL_NOT_FOUND"),
        ({"name": "x", "model": "mmproj-x.gguf"}, 400, "VALIDATION_ERROR"),
        ({"name": "x", "model": "tester/nothing-here:Q4_K_M"}, 404, "NOT_FOUND"),
    ]
    for body, status, code in cases:
        answer = await app.client.post("/api/instances", json=body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (body, answer.text)
    assert (await app.client.get("/api/instances")).json()["instances"] == []


async def test_a_failed_pull_fails_the_on_demand_request(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    hub.add(REPO, "broken-Q5_0.gguf", b"GGUF" + bytes(4000), sha256="cd" * 32)
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    created = await app.client.post("/api/instances",
                                    json={"name": "broken", "model": f"{REPO}:Q5_0"})
    assert created.status_code == 201, created.text
    job = await wait_pull(app, created.json()["instance"]["pull"]["id"])
    assert job["status"] == "failed"
    answer = await app.client.post("/v1/chat/completions", json={"model": "broken", **CHAT})
    assert answer.status_code >= 500, answer.text
    assert answer.json()["error"]["code"] == "model_start_failed"
    shown = (await app.client.get("/api/instances/broken")).json()
    assert shown["status"] == "stopped"
    assert shown["pull"]["status"] == "failed"
    assert "SHA-256" in shown["pull"]["error"], "the instance says why it has no model"
