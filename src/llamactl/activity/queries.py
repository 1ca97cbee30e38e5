"""Reading the ledger: filters, one page at a time, summaries by group, and exports.

Every read runs on the store's writer thread (``StoreWriter.read``), as every statement after
boot does. Pages are by ``seq`` (newest first) and the cursor is opaque to clients: the
base64 of the last ``seq`` given. An export reads page after page, so that a million records
never sit in memory at once.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import statistics
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from llamactl.activity.record import COLUMNS, FIELDS, from_row, rfc3339
from llamactl.errors import ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
GROUPS = ("key", "user", "instance", "model")
GroupBy = Literal["key", "user", "instance", "model"]
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_SELECT = f"SELECT seq, {', '.join(COLUMNS)} FROM activity"  # noqa: S608 (constant columns)


@dataclass(frozen=True)
class ActivityFilter:
    instance: str | None = None
    model: str | None = None
    user: str | None = None
    key: str | None = None
    status: str | None = None  # a code ("429") or a class ("4xx")
    since: str | None = None  # RFC 3339, as stored
    until: str | None = None
    limit: int = DEFAULT_LIMIT
    before: int | None = None  # the seq a page starts below

    @classmethod
    def parse(cls, params: dict[str, str | None]) -> ActivityFilter:
        """From a query string's values; ValidationFailed names the bad parameter."""
        status = params.get("status")
        if status is not None and not ((status.isdigit() and 100 <= int(status) <= 599)
                                       or _STATUS_CLASS.match(status.lower())):
            raise _bad("status", "a status code such as 429, or a class such as 4xx")
        return cls(instance=params.get("instance"), model=params.get("model"),
                   user=params.get("user"), key=params.get("key"),
                   status=status.lower() if status else None,
                   since=moment("since", params.get("since")),
                   until=moment("until", params.get("until")),
                   limit=page_limit(params.get("limit")),
                   before=decode_cursor(params.get("before")))

    def only_user(self, username: str) -> ActivityFilter:
        """A viewer's view: its own requests, whatever it asked for."""
        if self.key is not None or (self.user is not None and self.user != username):
            return replace(self, user=username, key="\0none")
        return replace(self, user=username)

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in (("instance", self.instance), ("model", self.model)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        for kind, name in (("user", self.user), ("key", self.key)):
            if name is not None:
                clauses.append("principal_kind = ? AND principal_name = ?")
                values += [kind, name]
        if self.status is not None:
            if self.status.endswith("xx"):
                low = int(self.status[0]) * 100
                # "+": not by the status index, whose range would need a sort by seq; newest
                # first by seq finds a page of a class soon (bench/activity.py)
                clauses.append("+status BETWEEN ? AND ?")
                values += [low, low + 99]
            else:
                clauses.append("status = ?")
                values.append(int(self.status))
        if self.since is not None:
            clauses.append("time >= ?")
            values.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            values.append(self.until)
        if self.before is not None:
            clauses.append("seq < ?")
            values.append(self.before)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), values


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("s") and text[1:].isdigit():
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise _bad("before", "the next cursor of a previous page")


def page(db: sqlite3.Connection, query: ActivityFilter) -> dict[str, Any]:
    """One page, newest first: ``{"items", "next"}``."""
    where, values = query.where()
    rows = db.execute(f"{_SELECT}{where} ORDER BY seq DESC LIMIT ?",
                      [*values, query.limit + 1]).fetchall()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [from_row(row[1:]) for row in rows],
            "next": encode_cursor(rows[-1][0]) if more and rows else None}


def export_page(db: sqlite3.Connection, query: ActivityFilter,
                format: str) -> tuple[bytes, int | None]:
    """For exports: a page as CSV lines or JSON Lines, and the seq to continue below (None at
    the end). Built on the writer's thread, in one go per page: an export of a million
    records costs a few seconds, not minutes."""
    where, values = query.where()
    line = _CSV_LINE if format == "csv" else _JSON_LINE
    rows = db.execute(f"SELECT seq, {line} FROM activity{where} "  # noqa: S608
                      "ORDER BY seq DESC LIMIT ?", [*values, query.limit]).fetchall()
    below = rows[-1][0] if len(rows) == query.limit else None
    return "".join(row[1] for row in rows).encode(), below


CSV_HEADER = ",".join(FIELDS).encode() + b"\n"
_TEXT = frozenset({"id", "time", "kind", "method", "endpoint", "model", "instance", "node",
                   "error_code", "client", "user_agent"})
_NOT_NULL = frozenset({"id", "time", "kind", "method", "endpoint"})  # the table says so
_BOOLEANS = frozenset({"stream", "cancelled"})


def _csv_field(name: str) -> tuple[str, str]:
    """One CSV field as a ``printf`` conversion and its argument: text quoted with its double
    quotes doubled (``%w``), a NULL empty (``%s`` of NULL), numbers as SQLite writes them."""
    if name == "principal":
        return '"%s:%w"', "principal_kind, ifnull(principal_name, '')"
    if name in _NOT_NULL:
        return '"%w"', name
    if name in _TEXT:  # NULL stays NULL through the concatenation: an empty field
        return "%s", f"'\"' || replace({name}, '\"', '\"\"') || '\"'"
    if name in _BOOLEANS:
        return "%s", f"iif({name}, 'True', 'False')"
    return "%s", name


def _json_field(name: str) -> str:
    if name == "principal":
        return "'principal', json_object('kind', principal_kind, 'name', principal_name)"
    if name in _BOOLEANS:
        return f"'{name}', json(iif({name}, 'true', 'false'))"
    return f"'{name}', {name}"


# Each record as one line, made by SQLite (in C: ten times Python's csv module's speed), in one
# printf: a concatenation per field cost twice as much (bench/activity.py's export).
_CSV_PARTS = [_csv_field(name) for name in FIELDS]
_CSV_LINE = (f"printf('{','.join(part[0] for part in _CSV_PARTS)}' || char(10), "
             f"{', '.join(part[1] for part in _CSV_PARTS)})")
_JSON_LINE = f"json_object({', '.join(_json_field(name) for name in FIELDS)}) || char(10)"


def summary(db: sqlite3.Connection, by: GroupBy, query: ActivityFilter) -> dict[str, Any]:
    """Counts, sums and percentiles per group, for the records ``query`` selects."""
    where, values = replace(query, before=None).where()
    if by in ("key", "user"):
        # "+": the principal index holds every key's rows; a day's are found by time
        where = (where + " AND " if where else " WHERE ") + "+principal_kind = ?"
        values.append(by)
        group = "principal_name"
    else:
        group = by
    groups: dict[Any, dict[str, Any]] = {}
    durations: dict[Any, list[float]] = {}
    ttfts: dict[Any, list[float]] = {}
    tps: dict[Any, list[float]] = {}
    sql = (f"SELECT {group}, status, prompt_tokens, completion_tokens, ttft_ms, "  # noqa: S608
           f"duration_ms, generation_tps FROM activity{where}")
    for name, status, prompt, completion, ttft, duration, speed in db.execute(sql, values):
        entry = groups.get(name)
        if entry is None:
            entry = groups[name] = {"group": name, "requests": 0, "errors": 0,
                                    "prompt_tokens": 0, "completion_tokens": 0}
            durations[name], ttfts[name], tps[name] = [], [], []
        entry["requests"] += 1
        entry["errors"] += status >= 400
        entry["prompt_tokens"] += prompt or 0
        entry["completion_tokens"] += completion or 0
        if duration is not None:
            durations[name].append(duration)
        if ttft is not None:
            ttfts[name].append(ttft)
        if speed is not None:
            tps[name].append(speed)
    for name, entry in groups.items():
        entry["ttft_ms_p50"] = _percentile(ttfts[name], 50)
        entry["duration_ms_p50"] = _percentile(durations[name], 50)
        entry["duration_ms_p95"] = _percentile(durations[name], 95)
        entry["generation_tps_mean"] = (round(statistics.fmean(tps[name]), 3)
                                        if tps[name] else None)
    ordered = sorted(groups.values(), key=lambda e: (-e["requests"], str(e["group"])))
    return {"groups": ordered}


def _percentile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    values.sort()
    index = min(len(values) - 1, max(0, round(percent / 100 * len(values) + 0.5) - 1))
    return round(values[index], 3)


def moment(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise _bad(name, "an RFC 3339 time such as 2026-01-31T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise _bad(name, "an RFC 3339 time with its zone (Z or +hh:mm)")
    return rfc3339(parsed.astimezone(UTC).timestamp())


def page_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise _bad("limit", f"an integer from 1 to {MAX_LIMIT}")
    return int(value)


def _bad(parameter: str, wanted: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid query parameter '{parameter}': expected {wanted}",
                            parameter)
