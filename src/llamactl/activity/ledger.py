"""The ledger: records handed over by the request paths, written to SQLite in batches.

``add`` runs on the event loop at the end of every request: it appends to a bounded deque and
returns. The ledger's one task (owned here, cancelled by ``stop``) takes what has gathered,
at most ``BATCH`` records at a time, and writes it on the store's writer thread
(store/writer.py), in a transaction of its own: a slow or full disk stalls no request. A batch
that cannot be written stays at the head of the deque and is tried again (the ledger is then
``pending``, as the store is); a burst that would grow the deque past ``max_pending`` is
counted as ``dropped``, logged and alerted once per burst, and shown in the system status.
The same task prunes by age and count (``activity.retention_days``, ``max_records``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from llamactl.activity import audit
from llamactl.activity.record import COLUMNS, Record, rfc3339
from llamactl.config import ActivityConfig
from llamactl.errors import StorageUnavailable
from llamactl.events import Event, EventHub
from llamactl.store.writer import StoreWriter

log = logging.getLogger(__name__)

BATCH = 2000
FLUSH_SECONDS = 0.25  # a record reaches the database this long after its request at most
RETRY_SECONDS = 2.0
PRUNE_SECONDS = 300.0
MAX_PENDING = 100_000  # records waiting for the disk; ~1 KB each in memory
# Rows per INSERT statement: SQLite takes up to 32,766 parameters (26 a row). One statement
# for many rows, not executemany: each row's step releases and retakes the GIL, and under
# load every retake waits for the event loop's thread to let go of it (a switch interval,
# futex calls, the loop's work interrupted ~400 times a second).
ROWS_PER_STATEMENT = 1000
# A batch is cut into statements of these sizes only (1,234 rows: 1000 + 2x100 + 3x10 + 4x1),
# so that SQLite prepares each once and its statement cache keeps them: a statement of a new
# size each batch (the size of whatever had gathered) cost SQLite more to prepare than to run
# (30-40 us a row against 11-14: bench/activity.py).
STATEMENT_SIZES = (ROWS_PER_STATEMENT, 100, 10, 1)


class Ledger:
    def __init__(self, config: ActivityConfig, writer: StoreWriter, events: EventHub, *,
                 max_pending: int = MAX_PENDING, flush_seconds: float = FLUSH_SECONDS):
        self.config = config
        self.enabled = config.enabled
        self.writer = writer
        self._events = events
        self._max_pending = max_pending
        self._flush_seconds = flush_seconds
        self._queue: collections.deque[Record] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._bursting = False  # dropping now: one alert per burst
        self.dropped = 0
        self.written = 0
        self.error: str | None = None
        self.observers: list[Callable[[Record], None]] = []  # quotas, metrics: on the loop
        self.on_dropped: Callable[[], None] | None = None  # /metrics' counter

    # ---- life ----

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger")

    async def stop(self) -> None:
        """Write what is left (once), then end the task."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(StorageUnavailable, sqlite3.Error):
            while self._queue and await self._write_batch():
                pass
        if self._queue:
            log.error("%d activity record(s) could not be written: %s", len(self._queue),
                      self.error)

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "pending": len(self._queue), "dropped": self.dropped,
                "written": self.written, "error": self.error}

    # ---- from the request paths ----

    def add(self, record: Record) -> None:
        """Never waits, never fails: kept, or counted as dropped."""
        if not self.enabled:
            return
        for observe in self.observers:
            observe(record)
        if self._events.subscriber_count:
            self._events.publish(Event("request_completed", record.to_json()))
        if len(self._queue) >= self._max_pending:
            self.dropped += 1
            if self.on_dropped is not None:
                self.on_dropped()
            if not self._bursting:
                self._bursting = True
                log.error("activity records arrive faster than they can be written; dropping "
                          "(%d kept waiting)", len(self._queue))
                self._events.alert("warning", "Activity records arrive faster than the "
                                   "database takes them; some are dropped (see dropped in "
                                   "GET /api/system/status)")
            return
        self._queue.append(record)
        if len(self._queue) == 1 or len(self._queue) >= BATCH:
            self._wake.set()  # the first record wakes the task; a whole batch, at once

    # ---- the task ----

    async def _run(self) -> None:
        next_prune = time.monotonic()
        while True:
            await self._gather(next_prune)
            try:
                # One batch a wake, and more only while a whole batch waits: records that
                # arrive during a write wait for the next flush. Writing them at once made
                # a commit (two syncs, a journal created and unlinked) of every few dozen
                # records under load: ~45 a second, half of llamactl's CPU (bench/activity.py).
                while await self._write_batch() and len(self._queue) >= BATCH:
                    pass
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_SECONDS
                    await self.prune()
            except (StorageUnavailable, sqlite3.Error) as exc:
                self._failed(str(exc))
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:  # a bug: keep the ledger alive, and say so
                log.exception("the activity ledger failed to write")
                await asyncio.sleep(RETRY_SECONDS)

    async def _gather(self, next_prune: float) -> None:
        """Until there is something to do: asleep while no record comes (no timer ticking on
        an idle server) or pruning is due, then ``flush_seconds`` for a batch to gather, or
        less when a whole one waits."""
        self._wake.clear()
        if not self._queue:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(),
                                       max(0.0, next_prune - time.monotonic()))
            self._wake.clear()
        if self._queue and len(self._queue) < BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)

    async def _write_batch(self) -> bool:
        """Write the oldest records; False when nothing was taken."""
        batch = _head(self._queue, BATCH)
        if not batch:
            return False
        # Rows are made on the writer's thread: ~2,000 at a time would stall the loop.
        await self.writer.read(lambda db: _insert(db, [record.row() for record in batch]))
        for _ in batch:
            self._queue.popleft()
        self.written += len(batch)
        if self.error is not None:
            log.warning("activity records are written again")
            self.error = None
        if len(self._queue) < self._max_pending // 2:
            self._bursting = False
        return True

    def _failed(self, error: str) -> None:
        if self.error is None:
            log.error("writing activity records failed: %s; %d kept in memory and retried",
                      error, len(self._queue))
        self.error = error

    async def prune(self) -> int:
        """Drop records older than the retention, then the oldest beyond ``max_records``."""
        cutoff = rfc3339(time.time() - self.config.retention_days * 86400)
        keep = self.config.max_records
        removed: int = await self.writer.read(lambda db: _prune(db, cutoff, keep))
        if removed:
            log.info("pruned %d activity record(s)", removed)
        return removed


def _head(queue: collections.deque[Record], count: int) -> list[Record]:
    return [record for _, record in zip(range(count), queue, strict=False)]


@functools.lru_cache(maxsize=len(STATEMENT_SIZES))
def _insert_statement(rows: int) -> str:
    values = "(" + ",".join("?" * len(COLUMNS)) + ")"
    return (f"INSERT INTO activity ({', '.join(COLUMNS)}) "  # noqa: S608 (constant columns)
            f"VALUES {','.join([values] * rows)}")


def _statements(count: int) -> list[tuple[int, int]]:
    """(first row, rows) of each statement for ``count`` rows, in STATEMENT_SIZES only."""
    cut: list[tuple[int, int]] = []
    start = 0
    for size in STATEMENT_SIZES:
        while count - start >= size:
            cut.append((start, size))
            start += size
    return cut


def _insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Its own transaction: the writer's ``read`` jobs run outside one."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for start, size in _statements(len(rows)):
            chunk = rows[start:start + size]
            db.execute(_insert_statement(size), list(itertools.chain.from_iterable(chunk)))
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _prune(db: sqlite3.Connection, cutoff: str, keep: int) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        removed = db.execute("DELETE FROM activity WHERE time < ?", (cutoff,)).rowcount
        removed += audit.prune(db, cutoff)  # the audit log is kept as long
        row = db.execute("SELECT seq FROM activity ORDER BY seq DESC LIMIT 1 OFFSET ?",
                         (keep,)).fetchone()
        if row is not None:
            removed += db.execute("DELETE FROM activity WHERE seq <= ?", (row[0],)).rowcount
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return int(removed)
