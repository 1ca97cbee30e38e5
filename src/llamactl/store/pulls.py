"""The pulls table (issue 33): every pull job on record, so that a restart of llamactl (a
SIGTERM, a kill -9, a power loss) finds the jobs that were running and starts them again.

Written through the store's writer thread like every other table: ``save`` hands over a
snapshot at a job's state changes (and about once a second while it downloads) and never
waits; a write the database refuses stays pending and is retried (store/writer.py). Reads run
on the writer's thread too, after the writes queued before them; StorageUnavailable when the
database cannot be read.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from llamactl.store.writer import StoreWriter

LIVE = ("queued", "downloading", "verifying")
_COLUMNS = ("id", "source", "repo", "file", "revision", "files", "status", "bytes_done",
            "bytes_total", "error", "created_at", "finished_at")
# Built once from the constant column list above, never from input.
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM pulls"  # noqa: S608
_UPSERT = (
    f"INSERT INTO pulls ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT(id) DO UPDATE SET "
    f"{', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}"
)
# The finished jobs beyond the newest ``keep`` are forgotten (GET /api/models/pulls lists
# that many).
_PRUNE = ("DELETE FROM pulls WHERE finished_at IS NOT NULL AND id NOT IN "
          "(SELECT id FROM pulls WHERE finished_at IS NOT NULL "
          "ORDER BY finished_at DESC, rowid DESC LIMIT ?)")


@dataclass
class PullRecord:
    """One job as the database holds it. ``files``: per file its ``file`` (path in the
    repo), ``path`` (on disk), ``bytes_total``, ``sha256``, ``bytes_done`` and ``status``."""

    id: str
    source: str
    repo: str
    file: str
    revision: str
    status: str
    bytes_done: int
    bytes_total: int
    created_at: str
    files: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    finished_at: str | None = None


class PullRepository:
    def __init__(self, writer: StoreWriter, *, keep: int):
        self.writer = writer
        self._keep = keep

    def save(self, record: PullRecord) -> None:
        """Write when the store can: never fails, never waits (the last save of a job wins)."""
        values = [_to_row(record)[c] for c in _COLUMNS]  # a snapshot, taken on the loop
        finished = record.finished_at is not None
        keep = self._keep

        def upsert(db: sqlite3.Connection) -> None:
            db.execute(_UPSERT, values)
            if finished:
                db.execute(_PRUNE, (keep,))

        self.writer.submit(("pull", record.id), upsert)

    async def live(self) -> list[PullRecord]:
        """The jobs that had not finished when the last llamactl ended, oldest first."""
        query = f"{_SELECT} WHERE finished_at IS NULL ORDER BY created_at, rowid"
        return await self.writer.read(lambda db: _records(db.execute(query)))

    async def finished(self) -> list[PullRecord]:
        """The newest finished jobs (at most ``keep``), oldest first."""
        query = (f"{_SELECT} WHERE finished_at IS NOT NULL "
                 "ORDER BY finished_at DESC, rowid DESC LIMIT ?")
        newest = await self.writer.read(lambda db: _records(db.execute(query, (self._keep,))))
        newest.reverse()  # created in the same second: in the order they finished
        return sorted(newest, key=lambda record: record.created_at)

    async def get(self, job_id: str) -> PullRecord | None:
        found = await self.writer.read(
            lambda db: _records(db.execute(f"{_SELECT} WHERE id = ?", (job_id,))))
        return found[0] if found else None


def _to_row(record: PullRecord) -> dict[str, Any]:
    row = {column: getattr(record, column) for column in _COLUMNS}
    row["files"] = json.dumps(record.files)
    return row


def _records(cursor: sqlite3.Cursor) -> list[PullRecord]:
    records = []
    for row in cursor:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["files"] = json.loads(values["files"])
        records.append(PullRecord(**values))
    return records
