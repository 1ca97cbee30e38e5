"""The audit log (issue 30): who changed what, when, and how it ended.

One record per state-changing ``/api`` request (POST, PUT, PATCH, DELETE) and per login,
failed ones included, written by the API's middleware (api/audit_trail.py) when the answer
has gone. It holds the action as ``"<METHOD> <route template>"`` and the instance or key it
named: never a body, so never a password, a token or a key. Writes go through the store's
writer (``submit``: never waiting, kept pending while the disk fails); reads page by ``seq``
as the activity's do.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from llamactl.activity.queries import decode_cursor, encode_cursor, moment, page_limit
from llamactl.activity.record import rfc3339
from llamactl.store.writer import StoreWriter

_COLUMNS = ("id", "time", "principal_kind", "principal_name", "action", "target", "status",
            "client")
_INSERT = (f"INSERT INTO audit ({', '.join(_COLUMNS)}) "  # noqa: S608 (constant columns)
           f"VALUES ({', '.join('?' * len(_COLUMNS))})")
_SELECT = f"SELECT seq, {', '.join(_COLUMNS)} FROM audit"  # noqa: S608 (constant columns)


class AuditLog:
    def __init__(self, writer: StoreWriter):
        self._writer = writer
        self._numbers = itertools.count()

    def add(self, principal: tuple[str, str | None], action: str, target: str | None,
            status: int, client: str | None) -> None:
        row = (uuid.uuid4().hex[:16], rfc3339(time.time()), principal[0], principal[1],
               action, target, status, client)

        def write(db: sqlite3.Connection) -> None:
            db.execute(_INSERT, row)

        self._writer.submit(("audit", next(self._numbers)), write)

    async def page(self, query: AuditFilter) -> dict[str, Any]:
        return await self._writer.read(lambda db: _page(db, query))


@dataclass(frozen=True)
class AuditFilter:
    principal: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    before: int | None = None

    @classmethod
    def parse(cls, params: dict[str, str | None]) -> AuditFilter:
        return cls(principal=params.get("principal"), action=params.get("action"),
                   since=moment("since", params.get("since")),
                   until=moment("until", params.get("until")),
                   limit=page_limit(params.get("limit")),
                   before=decode_cursor(params.get("before")))


def _page(db: sqlite3.Connection, query: AuditFilter) -> dict[str, Any]:
    clauses: list[str] = []
    values: list[Any] = []
    for clause, value in (("principal_name = ?", query.principal), ("action = ?", query.action),
                          ("time >= ?", query.since), ("time < ?", query.until),
                          ("seq < ?", query.before)):
        if value is not None:
            clauses.append(clause)
            values.append(value)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    rows = db.execute(f"{_SELECT}{where} ORDER BY seq DESC LIMIT ?",
                      [*values, query.limit + 1]).fetchall()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    items = [{"id": r[1], "time": r[2], "principal": {"kind": r[3], "name": r[4]},
              "action": r[5], "target": r[6], "status": r[7], "client": r[8]} for r in rows]
    return {"items": items, "next": encode_cursor(rows[-1][0]) if more and rows else None}


def prune(db: sqlite3.Connection, cutoff: str) -> int:
    return int(db.execute("DELETE FROM audit WHERE time < ?", (cutoff,)).rowcount)
