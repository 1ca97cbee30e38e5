"""The instances table: records in and out, one row per instance.

After boot every write goes through the store's writer thread (store/writer.py): ``save`` hands
over a snapshot of the row and returns at once (the owners' status changes); ``insert``,
``delete`` and ``save_now`` wait for the commit and raise StorageUnavailable when the database
cannot take it (requests that must not go ahead without their write).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from llamactl.instances.models import InstanceRecord, InstanceSpec, RuntimeState, Status
from llamactl.store.writer import Op, StoreWriter

_LIFECYCLE_FIELDS = (
    "auto_restart", "max_restarts", "restart_delay", "on_demand_start", "idle_timeout", "group",
    "docker", "pool", "sleep_after",
)
_LISTS = ("aliases", "resources")  # kept in the lifecycle JSON too; an absent key is an empty list
_COLUMNS = (
    "name", "backend", "model_path", "port", "options", "lifecycle", "environment", "extra_args",
    "api_key", "status", "pid", "pid_start_time", "command", "started_at", "restart_count",
    "last_error", "created_at", "updated_at", "serving_port", "pull_id",
)

# Built once from the constant column list above, never from input.
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM instances ORDER BY name"  # noqa: S608
_INSERT = (
    f"INSERT INTO instances ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
# Insert or replace the whole row: a save that was pending when its row's insert had not
# reached the database yet, or after the row was deleted by mistake, still lands.
_UPSERT = (
    f"{_INSERT} ON CONFLICT(name) DO UPDATE SET "
    f"{', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}"
)


class InstanceRepository:
    def __init__(self, connection: sqlite3.Connection, writer: StoreWriter | None = None):
        self._db = connection
        self.writer = writer or StoreWriter(connection)

    def load_all(self) -> list[InstanceRecord]:
        """At boot, before the writer starts."""
        cursor = self._db.execute(_SELECT)
        return [_from_row(dict(zip(_COLUMNS, row, strict=True))) for row in cursor]

    async def insert(self, record: InstanceRecord) -> None:
        await self.writer.require(_upsert(record))

    async def save_now(self, record: InstanceRecord) -> None:
        await self.writer.require(_upsert(record))

    def save(self, record: InstanceRecord) -> None:
        self.writer.submit(("instance", record.name), _upsert(record))

    async def delete(self, name: str) -> None:
        def delete(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM instances WHERE name = ?", (name,))

        # After every pending write, the row's last save included.
        await self.writer.require(delete)


def _upsert(record: InstanceRecord) -> Op:
    values = [_to_row(record)[c] for c in _COLUMNS]  # a snapshot, taken on the loop

    def upsert(db: sqlite3.Connection) -> None:
        db.execute(_UPSERT, values)

    return upsert


def _to_row(record: InstanceRecord) -> dict[str, Any]:
    spec, runtime = record.spec, record.runtime
    return {
        "name": spec.name,
        "backend": spec.backend,
        "model_path": spec.model_path,
        "port": spec.port,
        "options": json.dumps(spec.options),
        "lifecycle": json.dumps({f: getattr(spec, f) for f in _LIFECYCLE_FIELDS + _LISTS}),
        "environment": json.dumps(spec.environment),
        "extra_args": json.dumps(spec.extra_args),
        "api_key": record.api_key,
        "status": runtime.status,
        "pid": runtime.pid,
        "pid_start_time": runtime.pid_start_time,
        "command": json.dumps(runtime.command) if runtime.command is not None else None,
        "started_at": runtime.started_at.isoformat() if runtime.started_at else None,
        "restart_count": runtime.restart_count,
        "last_error": runtime.last_error,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "serving_port": runtime.serving_port,
        "pull_id": runtime.pull_id,
    }


def _from_row(row: dict[str, Any]) -> InstanceRecord:
    lifecycle = json.loads(row["lifecycle"])
    spec = InstanceSpec(
        name=row["name"],
        model_path=row["model_path"],
        port=row["port"],
        backend=row["backend"],
        options=json.loads(row["options"]),
        environment=json.loads(row["environment"]),
        extra_args=json.loads(row["extra_args"]),
        aliases=list(lifecycle.get("aliases") or []),
        resources=dict(lifecycle.get("resources") or {}),
        **{f: lifecycle.get(f) for f in _LIFECYCLE_FIELDS},
    )
    status: Status = row["status"]
    runtime = RuntimeState(
        status=status,
        pid=row["pid"],
        pid_start_time=row["pid_start_time"],
        command=json.loads(row["command"]) if row["command"] else None,
        started_at=datetime.fromisoformat(row["started_at"]) if row["started_at"] else None,
        restart_count=row["restart_count"],
        last_error=row["last_error"],
        serving_port=row["serving_port"],
        pull_id=row["pull_id"],
    )
    return InstanceRecord(
        spec=spec,
        runtime=runtime,
        api_key=row["api_key"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )
