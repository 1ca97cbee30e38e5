"""The database: migrations, and clear startup errors for a corrupt file or an unusable dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llamactl.errors import StartupError
from llamactl.instances.models import InstanceRecord, InstanceSpec
from llamactl.store.database import SCHEMA_VERSION, migrate, open_database
from llamactl.store.instances import InstanceRepository


def test_a_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    db = open_database(tmp_path / "data" / "llamactl.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # A rollback journal, nothing mapped: see test_storage_immutable.py for why.
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.execute("PRAGMA mmap_size").fetchone()[0] == 0
    assert migrate(db) == SCHEMA_VERSION  # again: nothing to do
    db.close()


def test_a_wal_database_of_an_older_llamactl_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "llamactl.db"
    old = sqlite3.connect(path, isolation_level=None)
    assert old.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    old.execute("CREATE TABLE kept (x)")
    old.execute("INSERT INTO kept VALUES (1)")
    old.close()
    db = open_database(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.execute("SELECT x FROM kept").fetchall() == [(1,)]
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llamactl.db"]  # no -wal, no -shm


async def test_records_round_trip(tmp_path: Path) -> None:
    db = open_database(tmp_path / "llamactl.db")
    repo = InstanceRepository(db)
    record = InstanceRecord(spec=InstanceSpec(
        name="a", model_path="/m.gguf", port=9000, options={"threads": 2, "lora": ["x"]},
        max_restarts=7, environment={"K": "V"}, extra_args=["--no-warmup"], group="g",
    ))
    record.runtime.restart_count = 2
    await repo.insert(record)
    db.close()
    loaded = InstanceRepository(open_database(tmp_path / "llamactl.db")).load_all()
    assert loaded == [record]


def test_a_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "llamactl.db"
    path.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(StartupError, match="corrupt"):
        open_database(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "llamactl.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StartupError, match="newer"):
        open_database(path)


def test_a_failed_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llamactl.store import database

    path = tmp_path / "llamactl.db"
    open_database(path).close()
    broken = (*database.MIGRATIONS, "CREATE TABLE extra (x); THIS IS NOT SQL")
    monkeypatch.setattr(database, "MIGRATIONS", broken)
    monkeypatch.setattr(database, "SCHEMA_VERSION", len(broken))
    with pytest.raises(StartupError, match="schema version"):
        database.open_database(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(broken) - 1
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "extra" not in tables


def test_a_data_dir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StartupError, match="cannot create data dir"):
        open_database(blocker / "data" / "llamactl.db")
