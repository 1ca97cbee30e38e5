"""``POST /api/models/pull`` (issue 33) against the stand-in Hub (tests/support/stand_in_hub.py):
by llama.cpp's shorthand and by file, split models whole, projectors when asked, jobs and their
progress events, the Hub's hash checked, the token, shared downloads, cancel and resume, a
disk too small refused before the first byte."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest

from llamactl.library.download import WRITE_CHUNK
from tests.conftest import AppHarness
from tests.support.feed import feed
from tests.support.stand_in_hub import (
    PULL_TIMEOUT,
    REPO,
    StandInHub,
    hub_settings,
    pull,
    wait_pull,
)
from tests.support.tmpfs import small_tmpfs


async def test_a_shorthand_pulls_the_quant_llama_cpp_would_pick(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
    tiny_model_file: Path,
) -> None:
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    answer = await app.client.post("/api/models/pull", json={"source": f"{REPO}:q8_0"})
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["status"] in ("queued", "downloading", "verifying", "done")
    assert started["bytes_total"] == tiny_model_file.stat().st_size
    assert [f["file"] for f in started["files"]] == ["tiny-Q8_0.gguf"]
    job = await wait_pull(app, started["id"])
    assert job["status"] == "done", job
    assert job["bytes_done"] == job["bytes_total"]
    assert job["model"] == f"{REPO}/tiny-Q8_0.gguf"
    landed = tmp_path / "library" / REPO / "tiny-Q8_0.gguf"
    assert landed.read_bytes() == tiny_model_file.read_bytes()
    assert [p.name for p in landed.parent.iterdir()] == ["tiny-Q8_0.gguf"], "no leftovers"
    listed = {m["id"]: m for m in (await app.client.get("/api/models")).json()["models"]}
    assert listed[job["model"]]["source"] == {
        "repo": REPO, "file": "tiny-Q8_0.gguf", "revision": hub.repos[REPO].commit,
        "sha256": hashlib.sha256(landed.read_bytes()).hexdigest()}
    assert listed[job["model"]]["error"] is None

    default = await pull(app, {"source": REPO})  # no tag: Q4_K_M, as llama.cpp
    assert [f["file"] for f in default["files"]] == ["tiny-Q4_K_M.gguf"]
    pulls = (await app.client.get("/api/models/pulls")).json()["pulls"]
    assert {p["id"] for p in pulls} == {job["id"], default["id"]}


async def test_a_split_model_comes_whole_and_a_projector_when_asked(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    job = await pull(app, {"source": f"{REPO}:Q2_K", "with_mmproj": True})
    assert job["status"] == "done", job
    assert [f["file"] for f in job["files"]] == [
        "big/big-Q2_K-00001-of-00002.gguf", "big/big-Q2_K-00002-of-00002.gguf",
        "mmproj-tiny-F16.gguf"]
    by_file = await pull(app, {"repo": REPO, "file": "big/big-Q2_K-00002-of-00002.gguf"})
    assert len(by_file["files"]) == 2, "naming any part brings the whole model"
    listed = {m["id"]: m for m in (await app.client.get("/api/models")).json()["models"]}
    assert listed[f"{REPO}/big/big-Q2_K-00001-of-00002.gguf"]["split"] == {
        "part": 1, "count": 2}
    assert listed[f"{REPO}/mmproj-tiny-F16.gguf"]["mmproj"] is True


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"source": "not a repo"}, 400, "VALIDATION_ERROR"),
    ({"source": "tester/nothing-here:Q4_K_M"}, 404, "NOT_FOUND"),
    ({"source": f"{REPO}:Q5_K_S"}, 404, "NOT_FOUND"),
    ({"repo": REPO, "file": "missing.gguf"}, 404, "NOT_FOUND"),
    ({"repo": REPO, "file": "README.md"}, 400, "VALIDATION_ERROR"),
    ({"repo": REPO, "file": "../../etc/passwd"}, 400, "VALIDATION_ERROR"),
    ({"repo": REPO, "revision": "no-such-branch"}, 404, "NOT_FOUND"),
    ({"source": REPO, "repo": REPO}, 400, "VALIDATION_ERROR"),
    ({}, 400, "VALIDATION_ERROR"),
])
async def test_what_cannot_be_pulled_is_refused_with_nothing_started(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
    body: dict[str, Any], status: int, code: str,
) -> None:
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    answer = await app.client.post("/api/models/pull", json=body)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert (await app.client.get("/api/models/pulls")).json() == {"pulls": []}
    assert not (tmp_path / "library").exists() or not any((tmp_path / "library").rglob("*"))


async def test_progress_events_come_in_order_at_most_four_a_second(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    hub.add(REPO, "slow-Q6_K.gguf", bytes(range(256)) * 4096)  # 1 MiB
    hub.rate = 512 * 1024  # two seconds
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    port = app.client.base_url.port
    async with feed(f"http://127.0.0.1:{port}") as events:
        job = await pull(app, {"source": f"{REPO}:Q6_K"})
        await events.wait_for(lambda m: m["type"] == "model_pull_progress"
                              and m["data"]["status"] == "done", what="done")
    assert job["status"] == "done", job
    progress = [m for m in events.messages if m["type"] == "model_pull_progress"]
    assert len(progress) >= 4, progress
    done = [m["data"]["bytes_done"] for m in progress]
    assert done == sorted(done)
    assert done[-1] == 1024 * 1024
    assert {m["data"]["id"] for m in progress} == {job["id"]}
    assert progress[-1]["data"]["status"] == "done"
    assert sum(m["data"]["status"] == "done" for m in progress) == 1
    times = [_seconds(m["timestamp"]) for m in progress]
    assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(times))


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


async def test_a_file_whose_hash_is_not_the_hubs_is_refused(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    hub.add(REPO, "bad-Q3_K_M.gguf", b"GGUF" + bytes(5000), sha256="ab" * 32)
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    job = await pull(app, {"source": f"{REPO}:Q3_K_M"})
    assert job["status"] == "failed"
    assert "SHA-256" in job["error"]
    assert job["model"] is None
    folder = tmp_path / "library" / REPO
    assert list(folder.iterdir()) == [], "neither the file nor its partial stays"


async def test_the_hub_token_is_sent_and_never_shown(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    hub.token = "hf_test_secret_token"
    refused: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    answer = await refused.client.post("/api/models/pull", json={"source": REPO})
    assert answer.status_code == 404, "without the token the repo is private"
    await refused.down()
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path,
                                                  hub_token=hub.token))
    job = await pull(app, {"source": f"{REPO}:Q8_0"})
    assert job["status"] == "done", job
    config = (await app.client.get("/api/config")).text
    assert hub.token not in config
    assert (await app.client.get("/api/config")).json()["models"]["hub_token"] == "***"
    assert hub.token not in str(job)


async def test_two_pulls_of_one_file_share_its_download(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
    tiny_model_file: Path,
) -> None:
    hub.hold_after = 1000
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    first = (await app.client.post("/api/models/pull", json={"source": f"{REPO}:Q8_0"})).json()
    second = (await app.client.post("/api/models/pull",
                                    json={"repo": REPO, "file": "tiny-Q8_0.gguf"})).json()
    assert first["id"] != second["id"]
    hub.release.set()
    assert (await wait_pull(app, first["id"]))["status"] == "done"
    assert (await wait_pull(app, second["id"]))["status"] == "done"
    assert hub.body_bytes("tiny-Q8_0.gguf") == tiny_model_file.stat().st_size


async def test_a_cancelled_pull_keeps_its_partial_file_and_resumes_from_it(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
    tiny_model_file: Path,
) -> None:
    size = tiny_model_file.stat().st_size
    hub.hold_after = WRITE_CHUNK  # what llamactl writes at once: on disk when it holds
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    started = (await app.client.post("/api/models/pull", json={"source": f"{REPO}:Q8_0"})).json()
    partial = tmp_path / "library" / REPO / ".tiny-Q8_0.gguf.partial"
    deadline = time.monotonic() + PULL_TIMEOUT
    while not partial.exists() or partial.stat().st_size < WRITE_CHUNK:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    cancelled = await app.client.delete(f"/api/models/pulls/{started['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    hub.release.set()  # the stream goes on; llamactl stops reading at its next chunk
    await asyncio.sleep(0.5)
    assert not (tmp_path / "library" / REPO / "tiny-Q8_0.gguf").exists()
    kept = partial.stat().st_size
    assert WRITE_CHUNK <= kept < size

    hub.hold_after = None
    before = hub.body_bytes("tiny-Q8_0.gguf")
    job = await pull(app, {"source": f"{REPO}:Q8_0"})
    assert job["status"] == "done", job
    assert hub.body_bytes("tiny-Q8_0.gguf") - before == size - kept, "resumed, not restarted"
    assert (tmp_path / "library" / REPO / "tiny-Q8_0.gguf").read_bytes() == \
        tiny_model_file.read_bytes()
    assert not partial.exists()


async def test_a_pull_larger_than_the_free_disk_is_refused_up_front(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    hub.add(REPO, "huge-Q8_0.gguf", b"GGUF")
    hub.claimed_sizes["huge-Q8_0.gguf"] = 1 << 60  # an exabyte: no disk here has it
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    answer = await app.client.post("/api/models/pull",
                                   json={"repo": REPO, "file": "huge-Q8_0.gguf"})
    assert answer.status_code == 507, answer.text
    error = answer.json()
    assert error["code"] == "INSUFFICIENT_STORAGE"
    assert str(1 << 60) in error["details"]
    assert "free" in error["details"]
    assert hub.body_bytes("huge-Q8_0.gguf") == 0
    assert (await app.client.get("/api/models/pulls")).json() == {"pulls": []}


async def test_a_pull_that_a_full_disk_cannot_hold_is_refused_before_its_first_byte(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    """The library on a real 8 MiB file system and a 12 MiB file: the Hub's size, against
    what the disk has free, refuses it; not a byte is asked of the Hub or written."""
    hub.add(REPO, "big-Q8_0.gguf", b"GGUF" + os.urandom(12 << 20))
    with small_tmpfs(tmp_path / "library"):
        app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
        answer = await app.client.post("/api/models/pull",
                                       json={"repo": REPO, "file": "big-Q8_0.gguf"})
        assert answer.status_code == 507, answer.text
        assert answer.json()["code"] == "INSUFFICIENT_STORAGE"
        assert str((12 << 20) + 4) in answer.json()["details"]
        assert hub.body_bytes("big-Q8_0.gguf") == 0
        assert [p for p in (tmp_path / "library").rglob("*") if p.is_file()] == []


async def test_unknown_pulls_are_404(make_settings: Any, make_app: Any, hub: StandInHub,
                                     tmp_path: Path) -> None:
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    for method in ("GET", "DELETE"):
        answer = await app.client.request(method, "/api/models/pulls/nope")
        assert (answer.status_code, answer.json()["code"]) == (404, "PULL_NOT_FOUND")
