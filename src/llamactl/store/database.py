"""Opening the database: a rollback journal, schema migrations, and clear errors instead of
tracebacks.

One connection: opened and migrated here at startup, then used by the store's writer thread
only (store/writer.py), so that a slow or failing disk never stalls the event loop. A database
that cannot be written (a read-only or immutable file, its journal included) is refused here,
with the reason, like an unwritable data dir.

Why not WAL: WAL keeps its index in ``<db>-shm``, mapped into memory, and a write through that
mapping to a file made immutable while llamactl runs is a SIGBUS that ends the process (issue
27). SQLite's heap-memory index (``locking_mode=EXCLUSIVE``) would lock out every other
process, ``llamactl keys create`` against the data dir included. A rollback journal maps
nothing (and ``mmap_size=0`` keeps the database file unmapped too): every fault of the disk is
an error the writer reports, as a 503 STORAGE_UNAVAILABLE, and retries. The writer thread
batches writes, so the journal's extra syncs never reach a request's latency.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from llamactl.errors import StartupError
from llamactl.store.writer import probe_write

# Each entry moves the schema from version i to i+1. Never edit a released entry: add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE instances (
        name            TEXT PRIMARY KEY,
        backend         TEXT NOT NULL,
        model_path      TEXT NOT NULL,
        port            INTEGER NOT NULL UNIQUE,
        options         TEXT NOT NULL,          -- JSON object
        lifecycle       TEXT NOT NULL,          -- JSON: auto_restart, max_restarts, ...
        environment     TEXT NOT NULL,          -- JSON object
        extra_args      TEXT NOT NULL,          -- JSON list
        api_key         TEXT NOT NULL,
        status          TEXT NOT NULL,
        pid             INTEGER,
        pid_start_time  REAL,
        command         TEXT,                   -- JSON list
        started_at      TEXT,
        restart_count   INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    """,
    # The port the running process listens on: an update of `port` applies at the next start.
    "ALTER TABLE instances ADD COLUMN serving_port INTEGER;",
    """
    CREATE TABLE api_keys (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        key_hash        TEXT NOT NULL UNIQUE,   -- HMAC-SHA256 of the key; the key is not kept
        prefix          TEXT NOT NULL,
        instances       TEXT,                   -- JSON list, or NULL for every instance
        created_at      TEXT NOT NULL,
        expires_at      TEXT,
        last_used_at    TEXT
    );
    """,
    # Issue 30: one row per /v1 and proxy request (activity/), newest = highest seq. `time`
    # is the start, RFC 3339 UTC with microseconds, so that text order is time order.
    """
    CREATE TABLE activity (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        id                TEXT NOT NULL,
        time              TEXT NOT NULL,
        kind              TEXT NOT NULL,
        method            TEXT NOT NULL,
        endpoint          TEXT NOT NULL,
        model             TEXT,
        instance          TEXT,
        node              TEXT,
        principal_kind    TEXT NOT NULL,
        principal_name    TEXT,
        status            INTEGER NOT NULL,
        error_code        TEXT,
        stream            INTEGER NOT NULL,
        cancelled         INTEGER NOT NULL,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        cached_tokens     INTEGER,
        draft_tokens      INTEGER,
        draft_accepted    INTEGER,
        queue_ms          REAL,
        ttft_ms           REAL,
        duration_ms       REAL,
        prompt_tps        REAL,
        generation_tps    REAL,
        client            TEXT,
        user_agent        TEXT
    );
    CREATE INDEX activity_time ON activity (time);
    CREATE INDEX activity_instance ON activity (instance, seq);
    CREATE INDEX activity_model ON activity (model, seq);
    CREATE INDEX activity_principal ON activity (principal_kind, principal_name, seq);
    CREATE INDEX activity_status ON activity (status, seq);
    """,
    # Issue 30: a key's quotas (JSON object, or NULL: none), and its priority (issue 31).
    """
    ALTER TABLE api_keys ADD COLUMN limits TEXT;
    ALTER TABLE api_keys ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    """,
    # Issue 30: the audit log, one row per state-changing /api request and per login.
    """
    CREATE TABLE audit (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT NOT NULL,
        time            TEXT NOT NULL,
        principal_kind  TEXT NOT NULL,
        principal_name  TEXT,
        action          TEXT NOT NULL,
        target          TEXT,
        status          INTEGER NOT NULL,
        client          TEXT
    );
    CREATE INDEX audit_time ON audit (time);
    CREATE INDEX audit_principal ON audit (principal_name, seq);
    CREATE INDEX audit_action ON audit (action, seq);
    """,
    # Issue 33: pull jobs on record, so that a restart of llamactl resumes the running ones
    # (store/pulls.py), and the pull an instance created from a model waits for.
    """
    CREATE TABLE pulls (
        id              TEXT PRIMARY KEY,
        source          TEXT NOT NULL,          -- as given
        repo            TEXT NOT NULL,
        file            TEXT NOT NULL,          -- the model's file (its first part)
        revision        TEXT NOT NULL,          -- the commit every file is fetched at
        files           TEXT NOT NULL,          -- JSON list: name, size, sha256, progress
        status          TEXT NOT NULL,
        bytes_done      INTEGER NOT NULL,
        bytes_total     INTEGER NOT NULL,
        error           TEXT,
        created_at      TEXT NOT NULL,
        finished_at     TEXT
    );
    CREATE INDEX pulls_finished ON pulls (finished_at);
    ALTER TABLE instances ADD COLUMN pull_id TEXT;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
# The files SQLite keeps beside the database: the journal, and a WAL and its index left by a
# llamactl from before the rollback journal (converted, then removed, at its first start).
_COMPANIONS = ("journal", "wal", "shm")
JOURNAL_MODE = "delete"


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database, or raise StartupError saying why."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data dir {path.parent}: {exc.strerror}") from None
    try:
        # The database holds each instance's backend key: readable by llamactl's user only.
        # SQLite gives its -wal and -shm files the database file's mode.
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except OSError as exc:
        raise StartupError(f"cannot create database {path}: {exc.strerror}") from None
    except sqlite3.Error as exc:
        raise StartupError(f"cannot open database {path}: {exc}") from None
    try:
        _check_writable(connection, path)
        _check_and_configure(connection, path)
        migrate(connection)
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise StartupError(
            f"database {path} is corrupt or not a llamactl database ({exc}); "
            "move it aside to start with an empty one"
        ) from None
    except StartupError:
        connection.close()
        raise
    return connection


def _check_writable(connection: sqlite3.Connection, path: Path) -> None:
    """SQLite opens a file it may not write read-only, silently: every write would then fail
    while llamactl runs. Check the files, then write for real."""
    for file in (path, *(path.with_name(f"{path.name}-{suffix}") for suffix in _COMPANIONS)):
        try:
            os.close(os.open(file, os.O_RDWR))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StartupError(f"database file {file} is not writable: {exc.strerror}") from None
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            probe_write(connection)
            connection.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
    except sqlite3.OperationalError as exc:
        raise StartupError(f"database {path} cannot be written: {exc}") from None


def _check_and_configure(connection: sqlite3.Connection, path: Path) -> None:
    connection.execute("PRAGMA mmap_size=0")  # nothing mapped: a disk fault is an error
    try:
        mode = connection.execute(f"PRAGMA journal_mode={JOURNAL_MODE}").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "unable to open" in str(exc):
            raise StartupError(f"database {path} is not writable: {exc}") from None
        raise
    if str(mode).lower() != JOURNAL_MODE:  # a WAL database another process has open
        raise StartupError(f"database {path} cannot use a rollback journal (got {mode}); "
                           "close whatever else has it open")
    # FULL, not NORMAL: with a rollback journal, NORMAL may corrupt on a power loss.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")
    result = connection.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {result}")


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen; return the resulting version."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StartupError(
            f"database schema version {version} is newer than this llamactl "
            f"understands ({SCHEMA_VERSION}); upgrade llamactl"
        )
    for index in range(version, SCHEMA_VERSION):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[index]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {index + 1}")
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            raise StartupError(
                f"migrating the database to schema version {index + 1} failed: {exc}"
            ) from None
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    """Split a script into statements. executescript() would COMMIT our transaction first;
    splitting (where SQLite itself says a statement is complete, so semicolons in comments
    and literals are safe) lets a failed migration roll back whole."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
