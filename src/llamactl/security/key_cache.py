"""The server's API keys: checked from memory, changed through the store's writer thread.

``verify`` runs on every ``/v1`` request: it reads a dict, never the database (a SELECT per
request on the event loop stalled the gateway whenever another process held the database).
Changes made here update the dict once committed. ``llamactl keys create/revoke`` write from
another process: every ``REFRESH_SECONDS`` the writer thread asks SQLite whether another
connection committed (``PRAGMA data_version``, no table read) and reloads the keys if so.

A key the dict does not know may have been made by such a process since the last refresh (a
script that creates a key and uses it at once): ``verify_fresh`` then asks the store once, on
the writer's thread, before the key is refused. So that random bad keys cannot hammer SQLite,
lookups are shared (every miss waiting joins the next one), start at most every
``LOOKUP_INTERVAL`` seconds, are the same cheap ``data_version`` question, and at most
``MAX_WAITING`` requests wait for one: past that a miss is refused at once, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import time
from datetime import datetime
from typing import Any

from llamactl.security.keys import (
    KEY_PREFIX,
    ApiKey,
    KeyStore,
    UseMarks,
    delete_key,
    insert_key,
    key_exists,
    key_not_found,
    load_keys,
    mark_used,
    update_key,
)
from llamactl.store.writer import StoreWriter

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
LOOKUP_INTERVAL = 0.05  # seconds between the starts of two lookups of unknown keys
MAX_WAITING = 8  # requests with unknown keys waiting for a lookup at once


class CachedKeys:
    def __init__(self, store: KeyStore, writer: StoreWriter,
                 refresh_seconds: float = REFRESH_SECONDS):
        self._store = store
        self._writer = writer
        self._refresh_seconds = refresh_seconds
        self._by_hash: dict[str, ApiKey] = {}
        self._version = -1  # the data_version the dict was loaded at
        self._uses = UseMarks()
        self._refresher: asyncio.Task[None] | None = None
        self._next_lookup: asyncio.Task[None] | None = None  # not begun: misses join it
        self._lookups: set[asyncio.Task[None]] = set()
        self._last_lookup = -LOOKUP_INTERVAL
        self._waiting = 0

    # ---- life: load at boot, refresh while running ----

    def load(self) -> None:
        """At boot, before the writer thread starts."""
        self._version, self._by_hash = _reload(self._store.db, -1) or (-1, {})

    def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_forever(), name="key-refresh")

    async def stop(self) -> None:
        for lookup in list(self._lookups):
            lookup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lookup
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # a failed read: the keys in memory stay valid
                log.warning("reloading API keys failed: %s", exc)

    async def refresh(self) -> None:
        version = self._version
        loaded = await self._writer.read(lambda db: _reload(db, version))
        if loaded is None:
            return
        self._version, keys = loaded
        for key_hash, key in keys.items():  # a use not yet written is newer than the row
            known = self._by_hash.get(key_hash)
            if known is not None and known.last_used_at and (
                    key.last_used_at is None or key.last_used_at < known.last_used_at):
                key.last_used_at = known.last_used_at
        self._by_hash = keys

    # ---- what routes and the gateway call ----

    def verify(self, plaintext: str) -> ApiKey | None:
        """The key's record if the key is known and not expired; marks it used."""
        if not plaintext.startswith(KEY_PREFIX):
            return None
        key = self._by_hash.get(self._store.hash(plaintext))
        if key is None or key.expired():
            return None
        self._touch(key)
        return key

    async def verify_fresh(self, plaintext: str) -> ApiKey | None:
        """``verify``, but a well-formed key the memory does not know is first looked for in
        the store (made by another process since the last refresh)."""
        key = self.verify(plaintext)
        if key is not None or not plaintext.startswith(KEY_PREFIX):
            return key
        if self._store.hash(plaintext) in self._by_hash or self._waiting >= MAX_WAITING:
            return None  # known but expired; or too many strangers at once
        self._waiting += 1
        try:
            if self._next_lookup is None:
                self._next_lookup = asyncio.create_task(self._look_up(), name="key-lookup")
                self._lookups.add(self._next_lookup)
                self._next_lookup.add_done_callback(self._lookups.discard)
            # shielded: a request that goes away does not cancel the others' lookup
            await asyncio.shield(self._next_lookup)
        finally:
            self._waiting -= 1
        return self.verify(plaintext)

    async def _look_up(self) -> None:
        wait = self._last_lookup + LOOKUP_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        # A miss from now on may hold a key committed after this read began: it waits for the
        # next lookup rather than join this one.
        if self._next_lookup is asyncio.current_task():
            self._next_lookup = None
        self._last_lookup = time.monotonic()
        try:
            await self.refresh()
        except Exception as exc:  # the store cannot answer: the key is refused, as before
            log.warning("looking up an API key failed: %s", exc)

    async def create(
        self, name: str, instances: list[str] | None = None, expires_at: datetime | None = None,
        *, limits: dict[str, int] | None = None, priority: int = 0,
    ) -> tuple[ApiKey, str]:
        key, plaintext, key_hash = self._store.new_key(name, instances, expires_at)
        key.limits, key.priority = limits, priority
        try:
            await self._writer.require(lambda db: insert_key(db, key, key_hash))
        except sqlite3.IntegrityError:
            raise key_exists(name) from None
        self._by_hash[key_hash] = key
        return key, plaintext

    async def list(self) -> list[ApiKey]:
        return sorted(self._by_hash.values(), key=lambda key: key.name)

    def named(self, name_or_id: str) -> ApiKey:
        for key in self._by_hash.values():
            if name_or_id in (key.name, key.id):
                return key
        raise key_not_found(name_or_id)

    async def update(self, name_or_id: str, changes: dict[str, Any]) -> ApiKey:
        """``PUT /api/keys/{name}``: the fields given, written, then shown."""
        current = self.named(name_or_id)
        changed = dataclasses.replace(current, **changes)
        def write(db: sqlite3.Connection) -> None:
            update_key(db, changed)

        await self._writer.require(write)
        for key_hash, key in self._by_hash.items():
            if key is current:
                self._by_hash[key_hash] = changed
        return changed

    async def revoke(self, name_or_id: str) -> None:
        deleted: list[int] = []
        await self._writer.require(lambda db: deleted.append(delete_key(db, name_or_id)))
        self._by_hash = {h: k for h, k in self._by_hash.items()
                         if name_or_id not in (k.name, k.id)}
        if not deleted or deleted[0] == 0:
            raise key_not_found(name_or_id)

    def _touch(self, key: ApiKey) -> None:
        """``last_used_at``, written at most once a minute per key, when the store can."""
        moment = self._uses.due(key)
        if moment is None:
            return
        key_id = key.id
        self._writer.submit(("key-used", key_id), lambda db: mark_used(db, key_id, moment))


def _reload(db: sqlite3.Connection, version: int) -> tuple[int, dict[str, ApiKey]] | None:
    """The keys by hash and the data_version they were read at; None if no other connection
    has committed since ``version``."""
    now = int(db.execute("PRAGMA data_version").fetchone()[0])
    if now == version:
        return None
    return now, {key_hash: key for key, key_hash in load_keys(db)}
