"""The CSV export's lines, byte for byte: SQLite formats them (one printf per record, for the
export's speed), and what it writes must be what a CSV reader reads back as the record."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

from llamactl.activity.ledger import _insert
from llamactl.activity.queries import CSV_HEADER, ActivityFilter, export_page
from llamactl.activity.record import FIELDS, Record, Usage
from llamactl.store.database import open_database


def test_csv_lines_quote_text_leave_nulls_empty_and_keep_sqlites_numbers(tmp_path: Path) -> None:
    awkward = Record(
        id="r-1", started=1_767_225_600.25, kind="proxy", method="POST",
        endpoint='/v1/"odd",path', principal_kind="key", principal_name='ke"y,1',
        status=429, model="m,1", instance='in"st', node="n\n1", error_code="quota_exceeded",
        stream=True, cancelled=False,
        usage=Usage(prompt_tokens=23, completion_tokens=0, generation_tps=81.25,
                    prompt_tps=123456789.123456789),
        queue_ms=5.0, ttft_ms=0.1 + 0.2, duration_ms=1e20,
        client="127.0.0.1", user_agent='Agent "x"/1.0, y')
    bare = Record(id="r-2", started=1_767_225_601.0, kind="v1", method="GET",
                  endpoint="/v1/models", principal_kind="anonymous", principal_name=None,
                  status=200)
    with contextlib.closing(open_database(tmp_path / "llamactl.db")) as db:
        _insert(db, [awkward.row(), bare.row()])
        body, below = export_page(db, ActivityFilter(limit=10), "csv")
    assert below is None
    assert body.decode().splitlines(keepends=True) == [
        '"r-2","2026-01-01T00:00:01.000000Z","v1","GET","/v1/models",,,,"anonymous:",200,,'
        "False,False,,,,,,,,,,,,\n",
        '"r-1","2026-01-01T00:00:00.250000Z","proxy","POST","/v1/""odd"",path","m,1",'
        '"in""st","n\n',
        '1","key:ke""y,1",429,"quota_exceeded",True,False,23,0,,,,5.0,0.3,1.0e+20,'
        '123456789.123457,81.25,"127.0.0.1","Agent ""x""/1.0, y"\n',
    ]
    rows = list(csv.DictReader(io.StringIO((CSV_HEADER + body).decode(), newline="")))
    assert list(rows[1]) == list(FIELDS)
    assert rows[1]["endpoint"] == '/v1/"odd",path'
    assert rows[1]["principal"] == 'key:ke"y,1'
    assert rows[1]["node"] == "n\n1"
    assert rows[1]["user_agent"] == 'Agent "x"/1.0, y'
