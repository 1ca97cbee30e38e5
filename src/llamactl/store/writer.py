"""The store's one writer thread: every database statement after boot runs on it.

In-memory state is the truth and the database catches up. An owner hands over a snapshot of
a row (``submit``) and never waits: writes are kept per key (the last one for a key wins) and
committed together on this thread. A write that fails (a full disk, a read-only file, a lock
held too long by another process) stays pending and is retried every ``retry_seconds`` until
it succeeds; the failure is logged and alerted once per burst, and ``available``/``error``
say so to ``GET /api/system/status``.

Requests that need a write (create, update, delete, start, API keys) ``require`` it: refused
with StorageUnavailable at once while the store is failing, else committed after every
pending write, and refused if that fails. Nothing here runs on the event loop, so a writer
blocked on SQLite's busy timeout (another process holding the write lock) stalls no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from llamactl.errors import StorageUnavailable
from llamactl.events import EventHub

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], None]

RETRY_SECONDS = 2.0


@dataclass
class _Job:
    """Work for the thread that a caller awaits: a read, or writes that must commit now."""

    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    write: bool


@dataclass
class _State:
    pending: dict[Hashable, Op] = field(default_factory=dict)  # insertion order = write order
    jobs: list[_Job] = field(default_factory=list)
    failing: bool = False
    stopping: bool = False


class StoreWriter:
    def __init__(self, connection: sqlite3.Connection, events: EventHub | None = None, *,
                 retry_seconds: float = RETRY_SECONDS):
        self._db = connection
        self._events = events
        self._retry_seconds = retry_seconds
        self._state = _State()
        self._wake = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Read on the loop; changed on the loop only (the thread reports through it).
        self.available = True
        self.error: str | None = None

    # ---- life ----

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="store-writer", daemon=True)
        self._thread.start()

    async def close(self, timeout: float) -> int:
        """One last attempt to write what is pending, then end the thread; the number of
        writes that never reached the database (logged)."""
        thread = self._thread
        if thread is None:
            return len(self._state.pending)
        with self._wake:
            self._state.stopping = True
            self._wake.notify()
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.error("the store's writer did not finish within %g s", timeout)
        self._thread = None
        lost = len(self._state.pending)
        if lost:
            log.error("%d change(s) could not be written to the database: %s", lost, self.error)
        return lost

    @property
    def pending(self) -> int:
        return len(self._state.pending)

    def status(self) -> dict[str, Any]:
        return {"available": self.available, "error": self.error,
                "pending_writes": self.pending}

    # ---- from the event loop ----

    def submit(self, key: Hashable, op: Op) -> None:
        """Write ``op`` when the store can: never fails, never waits."""
        with self._wake:
            self._state.pending.pop(key, None)  # a newer write for the key goes last
            self._state.pending[key] = op
            self._wake.notify()

    async def require(self, *ops: Op) -> None:
        """Commit every pending write and ``ops`` now; StorageUnavailable if the store cannot
        (``ops`` are then dropped: the request that needed them changed nothing).
        sqlite3.IntegrityError from ``ops`` is the caller's to answer."""
        self._refuse_if_failing()

        def run(db: sqlite3.Connection) -> None:
            for op in ops:
                op(db)

        await self._enqueue(run, write=True)

    async def read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on the writer's thread, after the writes queued before it."""
        result: T = await self._enqueue(run, write=False)
        return result

    def _refuse_if_failing(self) -> None:
        if not self.available:
            raise StorageUnavailable(self.error or "the database cannot be written")

    async def _enqueue(self, run: Callable[[sqlite3.Connection], Any], *, write: bool) -> Any:
        if self._thread is None:  # not started (tools, tests of parts): run here
            return _in_transaction(self._db, run) if write else run(self._db)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._wake:
            self._state.jobs.append(_Job(run, future, write))
            self._wake.notify()
        return await future

    def _report(self, error: str | None) -> None:
        """On the loop: the outcome of the last attempt to write."""
        if error is None and not self.available:
            log.warning("the database can be written again; pending changes saved")
            self._alert("info", "The database can be written again; every pending change "
                                "has been saved")
        elif error is not None and self.available:
            log.error("writing to the database failed: %s; changes are kept in memory and "
                      "retried every %g s", error, self._retry_seconds)
            self._alert("error", f"The database cannot be written ({error}); changes are "
                                 "kept in memory and retried")
        self.available = error is None
        self.error = error

    def _alert(self, level: Any, message: str) -> None:
        if self._events is not None:
            self._events.alert(level, message)

    # ---- on the writer thread ----

    def _work(self) -> None:
        while True:
            with self._wake:
                state = self._state
                # While failing, new writes wait for the retry: they must not postpone it.
                retry_at = time.monotonic() + self._retry_seconds
                while not (state.jobs or state.stopping or (state.pending and not state.failing)):
                    left = retry_at - time.monotonic() if state.failing else None
                    if left is not None and left <= 0:
                        break  # the retry interval passed: try the pending writes again
                    self._wake.wait(left)
                jobs, state.jobs = state.jobs, []
                stopping = state.stopping
            error = self._flush()
            for job in jobs:
                self._finish(job, error)
            if stopping:
                return

    def _flush(self) -> str | None:
        """Commit what is pending; the error that stopped it, or None."""
        with self._wake:
            batch = dict(self._state.pending)
            failing = self._state.failing
        error: str | None = None
        try:
            if batch:
                try:
                    _in_transaction(self._db, lambda db: _apply(db, batch.values()))
                except sqlite3.IntegrityError:
                    _one_by_one(self._db, batch)  # a row at odds with another: write the rest
            elif failing:  # nothing to write, yet a request failed: has the store recovered?
                _in_transaction(self._db, probe_write)
        except sqlite3.Error as exc:
            error = _describe(exc)
        with self._wake:
            if error is None:
                for key, op in batch.items():
                    if self._state.pending.get(key) is op:  # not replaced meanwhile
                        del self._state.pending[key]
            self._state.failing = error is not None
        self._post(self._report, error)
        return error

    def _finish(self, job: _Job, flush_error: str | None) -> None:
        if job.write and flush_error is not None:
            self._post(_fail, job.future, StorageUnavailable(flush_error))
            return
        try:
            result = _in_transaction(self._db, job.run) if job.write else job.run(self._db)
        except sqlite3.IntegrityError as exc:
            self._post(_fail, job.future, exc)
        except sqlite3.Error as exc:
            error = _describe(exc)
            if job.write:
                with self._wake:
                    self._state.failing = True
                self._post(self._report, error)
            self._post(_fail, job.future, StorageUnavailable(error))
        except Exception as exc:  # a bug in the job: its caller reports it
            self._post(_fail, job.future, exc)
        else:
            self._post(_succeed, job.future, result)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(callback, *args)


def _apply(db: sqlite3.Connection, ops: Any) -> None:
    for op in ops:
        op(db)


def _in_transaction(db: sqlite3.Connection, run: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = run(db)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return result


def _one_by_one(db: sqlite3.Connection, batch: dict[Hashable, Op]) -> None:
    """Each write alone, twice over (a port moved from one row to another may need the other
    written first); a write still at odds with the database is dropped, loudly."""
    left = dict(batch)
    for _ in range(2):
        for key, op in list(left.items()):
            with contextlib.suppress(sqlite3.IntegrityError):
                _in_transaction(db, op)
                del left[key]
    for key in left:
        log.error("dropped a write the database refuses (%s): %s", key, "constraint failed")


def probe_write(db: sqlite3.Connection) -> None:
    """A write that changes nothing yet needs the disk: the header's user_version, again."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    db.execute(f"PRAGMA user_version = {version}")


def _describe(exc: sqlite3.Error) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)

