"""A database file made immutable while llamactl runs (issue 27, point 5): no fault of the disk
may end the process. With WAL, a write through the mapped ``-shm`` file of an immutable inode
was a SIGBUS; now each such fault is a 503 STORAGE_UNAVAILABLE (or nothing at all, for a file
SQLite no longer uses), the API answers throughout, and the writes go through once the
attribute is gone. Real llamactl in its own process (a SIGBUS must not take pytest with it), on
a file system that keeps the attribute (skipped, saying why, where chattr is refused)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import httpx

from tests.support.helpers import llamactl_server
from tests.test_storage_faults import config_file, immutable, wait_storage

# SQLite's files beside the database, each made immutable in turn; the last two are the ones
# a running llamactl writes, so they must refuse writes (503), not merely survive.
FILES = ("llamactl.db-shm", "llamactl.db-wal", "llamactl.db-journal", "llamactl.db")
WRITTEN = {"llamactl.db-journal", "llamactl.db"}


async def create(client: httpx.AsyncClient, name: str, model: Path) -> httpx.Response:
    return await client.post("/api/instances", json={"name": name, "model_path": str(model)})


async def test_an_immutable_database_file_is_a_503_not_a_crash(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = config_file(tmp_path, llama_server_bin)
    data_dir = tmp_path / "data"
    created: list[str] = []
    with llamactl_server(data_dir, config) as server:
        assert server.process is not None
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            assert (await create(client, "first", model)).status_code == 201
            created.append("first")
            for index, file in enumerate(FILES):
                target = data_dir / file
                # Made where SQLite does not keep it (the -shm and -wal of WAL; a journal
                # between two commits).
                with immutable(target, touch=True):
                    answer = await create(client, f"while-{index}", model)
                    assert server.process.poll() is None, f"llamactl died: {file} immutable"
                    if answer.status_code == 201:
                        assert file not in WRITTEN, f"a write to an immutable {file} passed"
                        created.append(f"while-{index}")
                    else:
                        assert answer.status_code == 503, answer.text
                        assert answer.json()["code"] == "STORAGE_UNAVAILABLE"
                        assert "Traceback" not in answer.text
                    listed = await client.get("/api/instances")
                    assert listed.status_code == 200  # the API keeps answering
                await wait_storage(client, available=True)
                assert (await create(client, f"after-{index}", model)).status_code == 201
                created.append(f"after-{index}")
            assert server.process.poll() is None
    # Every write answered 201 is in the database, read by another process.
    with contextlib.closing(sqlite3.connect(data_dir / "llamactl.db")) as db:
        names = {name for (name,) in db.execute("SELECT name FROM instances")}
    assert names == set(created)
