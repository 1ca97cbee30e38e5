"""Pull jobs survive a restart of llamactl (issue 33): every job is on record; a job that was
running when llamactl ended (a kill -9, a SIGTERM) is started again with the same id when the
next one starts, resuming from its partial file (the stand-in Hub counts the bytes it served),
and the instance created from its model waits for it again, then serves. A finished job is
still listed; a job the Hub now refuses ends failed, and its instance says why."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from llamactl.library.pulls import RECORD_INTERVAL
from llamactl.store.database import open_database
from llamactl.store.pulls import PullRecord, PullRepository
from llamactl.store.writer import StoreWriter
from llamactl.supervisor.lifecycle import transition
from llamactl.supervisor.lifecycle_terms import Persist, PullEnded, State
from tests.conftest import AppHarness
from tests.support.helpers import (
    llamactl_server,
    port_block,
    wait_instance,
    wait_until,
    write_config,
)
from tests.support.stand_in_hub import (
    REPO,
    StandInHub,
    held_pull_app,
    hub_settings,
    pull,
    wait_pull,
)

CHAT = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
FILE = "tiny-Q8_0.gguf"
# Bytes a second of the Hub's answer: the tiny model (551 KB) takes about 7 s, so that the
# job is seen running before and after the restart.
RATE = 80_000


def _config(tmp_path: Path, hub: StandInHub, llama_server_bin: str) -> Path:
    low, high = port_block()
    return write_config(tmp_path / "config.yaml", {
        "backends": {"llama_cpp": {"command": llama_server_bin}},
        "instances": {"port_range": [low, high]},
        "models": {"dir": str(tmp_path / "library"), "hub_url": hub.url}})


@pytest.mark.parametrize("ending", ["kill -9", "SIGTERM"])
def test_a_pull_and_the_instance_waiting_for_it_survive_a_restart(
    ending: str, tmp_path: Path, hub: StandInHub, tiny_model_file: Path, llama_server_bin: str,
) -> None:
    size = tiny_model_file.stat().st_size
    config = _config(tmp_path, hub, llama_server_bin)
    partial = tmp_path / "library" / REPO / f".{FILE}.partial"
    hub.rate = RATE
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        created = client.post("/api/instances", json={"name": "tiny", "model": f"{REPO}:Q8_0"})
        assert created.status_code == 201, created.text
        job_id = created.json()["instance"]["pull"]["id"]
        wait_until(lambda: partial.exists() and partial.stat().st_size > 0,
                   what="a part of the model on disk")
        if ending == "kill -9":
            server.kill9()
        else:
            server.terminate()  # a graceful stop: it must still exit in time
    wait_until(lambda: hub.streams == 0, what="the Hub's answer to the stopped llamactl ends")
    kept, served_before = partial.stat().st_size, hub.body_bytes(FILE)
    assert 0 < kept <= served_before < size
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "llamactl.db")) as db:
        status, done = db.execute("SELECT status, bytes_done FROM pulls WHERE id = ?",
                                  (job_id,)).fetchone()
        linked = db.execute("SELECT pull_id FROM instances WHERE name = 'tiny'").fetchone()[0]
    assert (status, linked) == ("downloading", job_id)
    assert done <= kept
    assert done > 0 or ending == "kill -9", "a graceful stop writes the bytes done last"

    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        listed = {job["id"]: job for job in client.get("/api/models/pulls").json()["pulls"]}
        assert listed[job_id]["status"] in ("queued", "downloading"), listed
        instance = client.get("/api/instances/tiny").json()
        assert instance["pull"]["id"] == job_id, instance
        refused = client.post("/api/instances/tiny/start")
        assert (refused.status_code, refused.json()["code"]) == (409, "MODEL_PULLING")
        # On demand: waits for the pull, then for the start, and is served by llama-server.
        answer = client.post("/v1/chat/completions", json={"model": "tiny", **CHAT})
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"]
        job = client.get(f"/api/models/pulls/{job_id}").json()
        assert (job["status"], job["model"]) == ("done", f"{REPO}/{FILE}")
        assert client.get("/api/instances/tiny").json()["pull"] is None
        assert client.post("/api/instances/tiny/stop").status_code == 200
    assert (tmp_path / "library" / REPO / FILE).read_bytes() == tiny_model_file.read_bytes()
    total = hub.body_bytes(FILE)
    assert size <= total <= size + (served_before - kept), (total, served_before, kept)


async def test_a_running_pull_is_written_at_its_changes_and_about_once_a_second(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub.rate = 150_000  # the tiny model in about 4 s
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    repository = app.app.state.services.library.pulls.repository
    written: list[PullRecord] = []
    save = repository.save
    monkeypatch.setattr(repository, "save", lambda record: (written.append(record),
                                                             save(record)))
    began = time.monotonic()
    job = await pull(app, {"source": f"{REPO}:Q8_0"})
    took = time.monotonic() - began
    while written[-1].status != "done":  # the end is written after the last progress event
        assert time.monotonic() - began < took + 5, written[-1]
        await asyncio.sleep(0.02)
    assert [record.status for record in written][::len(written) - 1] == ["queued", "done"]
    assert "downloading" in [record.status for record in written]
    assert len(written) <= took / RECORD_INTERVAL + 4, (len(written), took)
    progress = {record.bytes_done for record in written}
    assert any(0 < done < job["bytes_total"] for done in progress), progress


async def test_a_finished_pull_is_still_listed_after_a_restart(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    done = await pull(app, {"source": f"{REPO}:Q8_0"})
    assert done["status"] == "done"
    await app.restart()
    listed = (await app.client.get("/api/models/pulls")).json()["pulls"]
    assert [(job["id"], job["status"]) for job in listed] == [(done["id"], "done")]
    again = (await app.client.get(f"/api/models/pulls/{done['id']}")).json()
    assert again == done
    cancelled = await app.client.delete(f"/api/models/pulls/{done['id']}")
    assert cancelled.json()["status"] == "done", "a finished pull stays as it ended"
    missing = await app.client.get("/api/models/pulls/0123456789ab")
    assert (missing.status_code, missing.json()["code"]) == (404, "PULL_NOT_FOUND")


async def test_a_resumed_pull_the_hub_now_refuses_fails_and_its_instance_says_why(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    app, instance = await held_pull_app(make_settings, make_app, hub, tmp_path)
    job_id = instance["pull"]["id"]
    await wait_pull(app, job_id, "downloading")
    await app.down()
    del hub.repos[REPO]  # deleted, or made private, while llamactl was down
    await app.up()

    job = await wait_pull(app, job_id)
    assert job["status"] == "failed", job
    assert f"Repository '{REPO}' not found on the Hub" in job["error"]
    # The job's end reaches the instance through its owner's inbox, a moment after the job
    # itself answers failed.
    instance = await wait_instance(app.client, "tiny", lambda i: i["last_error"] is not None,
                                   what="its last_error set")
    assert instance["pull"]["status"] == "failed"
    assert job["error"] in instance["last_error"], instance
    refused = await app.client.post("/v1/chat/completions", json={"model": "tiny", **CHAT})
    assert refused.json()["error"]["code"] == "model_start_failed", refused.text

    await app.restart()  # the link is gone from the record, the reason stays
    instance = (await app.client.get("/api/instances/tiny")).json()
    assert instance["pull"] is None
    assert job["error"] in instance["last_error"], instance
    listed = (await app.client.get("/api/models/pulls")).json()["pulls"]
    assert [(job["id"], job["status"]) for job in listed] == [(job_id, "failed")]


async def test_pulls_go_on_while_the_database_cannot_be_written(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    settings = hub_settings(make_settings, hub, tmp_path)
    app: AppHarness = await make_app(settings)
    first = await pull(app, {"source": f"{REPO}:Q8_0"})
    await app.restart()  # the first pull is on record only
    with contextlib.closing(sqlite3.connect(settings.database_path, isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")  # another process holds the database (beyond 5 s)
        second = await pull(app, {"source": f"{REPO}:Q4_K_M"})
        assert second["status"] == "done"
        again = await app.client.get(f"/api/models/pulls/{second['id']}")
        assert again.json() == second, "its end is not written yet: answered from memory"
        refused = await app.client.get(f"/api/models/pulls/{first['id']}")
        assert (refused.status_code, refused.json()["code"]) == (503, "STORAGE_UNAVAILABLE")
        db.execute("ROLLBACK")
    deadline = time.monotonic() + 30
    while (status := (await app.client.get("/api/system/status")).json())["storage"][
            "pending_writes"]:
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)
    await app.restart()
    listed = (await app.client.get("/api/models/pulls")).json()["pulls"]
    assert [job["id"] for job in listed] == [first["id"], second["id"]]


async def test_the_record_keeps_the_newest_finished_jobs_only(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "llamactl.db")
    writer = StoreWriter(connection)
    writer.start()
    repository = PullRepository(writer, keep=2)
    try:
        for number in range(4):  # job3 has not finished
            finished = f"2026-01-01T00:00:0{number}Z" if number < 3 else None
            repository.save(PullRecord(
                id=f"job{number}", source="a/b:Q8_0", repo="a/b", file="b-Q8_0.gguf",
                revision="c" * 40, status="done" if finished else "downloading",
                bytes_done=1, bytes_total=1, created_at="2026-01-01T00:00:00Z",
                finished_at=finished))
        assert [record.id for record in await repository.finished()] == ["job1", "job2"]
        assert [record.id for record in await repository.live()] == ["job3"]
        assert (await repository.get("job0")) is None
    finally:
        await writer.close(5)
        connection.close()


def test_a_failed_pull_is_the_last_error_of_a_stopped_instance_only() -> None:
    reason = "the pull of its model (abc) failed: Repository 'a/b' not found on the Hub"
    stopped, effects = transition(State(status="stopped"), PullEnded(reason))
    assert stopped.last_error == reason
    assert Persist() in effects, "the link to the pull leaves the record"
    running = State(status="running", process=True, last_error=None)
    after, effects = transition(running, PullEnded(reason))
    assert after.last_error is None, "started since on a file put there: nothing failed"
    assert Persist() in effects
    done, _ = transition(State(status="failed", last_error="before"), PullEnded(None))
    assert done.last_error == "before"
