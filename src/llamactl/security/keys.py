"""Inference API keys for the /v1 gateway, kept in SQLite (``KeyStore``: the CLI's, direct;
the server's is ``security/key_cache.py``, from memory).

A key is shown once, when created. The store keeps an HMAC-SHA256 of it under the server's
secret: keys are random and long, so a fast keyed hash is right (a slow password hash per
request would cost milliseconds for no gain). ``last_used_at`` is written at most once a
minute per key, so heavy use does not mean a database write per request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from llamactl.errors import Conflict, NotFound

KEY_PREFIX = "llk_"
LAST_USED_RESOLUTION_SECONDS = 60.0


@dataclass
class ApiKey:
    id: str
    name: str
    prefix: str  # the first characters, to recognise a key in lists
    instances: list[str] | None  # None: every instance
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    limits: dict[str, int] | None = None  # quotas (config.QuotaLimits' fields), None: none
    priority: int = 0

    def allows(self, instance: str) -> bool:
        return self.instances is None or instance in self.instances

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "name": self.name, "prefix": self.prefix, "instances": self.instances,
            "created_at": _fmt(self.created_at), "expires_at": _fmt(self.expires_at),
            "last_used_at": _fmt(self.last_used_at), "limits": self.limits,
            "priority": self.priority,
        }


def _fmt(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_COLUMNS = ("id, name, prefix, instances, created_at, expires_at, last_used_at, limits, "
            "priority")


@dataclass
class KeyStore:
    db: sqlite3.Connection
    secret: str
    _uses: UseMarks = field(default_factory=lambda: UseMarks())

    def hash(self, key: str) -> str:
        return hmac.new(self.secret.encode(), key.encode(), hashlib.sha256).hexdigest()

    def new_key(
        self, name: str, instances: list[str] | None = None, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str, str]:
        """A new key, its plaintext and its hash; nothing written yet."""
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=uuid.uuid4().hex[:12], name=name, prefix=plaintext[:10],
                     instances=instances, created_at=datetime.now(UTC).replace(microsecond=0),
                     expires_at=expires_at)
        return key, plaintext, self.hash(plaintext)

    def create(
        self, name: str, instances: list[str] | None = None, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        key, plaintext, key_hash = self.new_key(name, instances, expires_at)
        try:
            insert_key(self.db, key, key_hash)
        except sqlite3.IntegrityError:
            raise key_exists(name) from None
        return key, plaintext

    def list(self) -> list[ApiKey]:
        return [key for key, _ in load_keys(self.db)]

    def revoke(self, name_or_id: str) -> None:
        if delete_key(self.db, name_or_id) == 0:
            raise key_not_found(name_or_id)

    def verify(self, plaintext: str) -> ApiKey | None:
        """The key's record if the key is known and not expired; marks it used."""
        if not plaintext.startswith(KEY_PREFIX):
            return None
        digest = self.hash(plaintext)
        row = self.db.execute(
            f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE key_hash = ?",  # noqa: S608
            (digest,),
        ).fetchone()
        # The lookup is by a keyed hash the caller cannot choose; the comparison that
        # decides is constant-time all the same, as every comparison of a secret here.
        if row is None or not hmac.compare_digest(str(row[-1]).encode(), digest.encode()):
            return None
        key = _from_row(row[:-1])
        if key.expired():
            return None
        self._touch(key)
        return key

    def _touch(self, key: ApiKey) -> None:
        moment = self._uses.due(key)
        if moment is not None:
            mark_used(self.db, key.id, moment)


class UseMarks:
    """When a key's ``last_used_at`` is worth writing: at most once a minute per key (a busy
    key would otherwise write on every request)."""

    def __init__(self) -> None:
        self._marked: dict[str, float] = {}

    def due(self, key: ApiKey) -> datetime | None:
        """The moment to write (set on ``key`` too), or None when one was written lately."""
        now = time.monotonic()
        if now - self._marked.get(key.id, -LAST_USED_RESOLUTION_SECONDS) < \
                LAST_USED_RESOLUTION_SECONDS:
            return None
        self._marked[key.id] = now
        key.last_used_at = datetime.now(UTC).replace(microsecond=0)
        return key.last_used_at


def key_exists(name: str) -> Conflict:
    return Conflict(f"an API key named '{name}' already exists", code="KEY_EXISTS")


def key_not_found(name_or_id: str) -> NotFound:
    return NotFound(f"no API key named '{name_or_id}'", code="KEY_NOT_FOUND")


def insert_key(db: sqlite3.Connection, key: ApiKey, key_hash: str) -> None:
    db.execute(
        f"INSERT INTO api_keys ({_COLUMNS}, key_hash) "  # noqa: S608 (constant columns)
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key.id, key.name, key.prefix,
         json.dumps(key.instances) if key.instances is not None else None,
         key.created_at.isoformat(), key.expires_at.isoformat() if key.expires_at else None,
         None, json.dumps(key.limits) if key.limits is not None else None, key.priority,
         key_hash),
    )


def update_key(db: sqlite3.Connection, key: ApiKey) -> int:
    """Write what ``PUT /api/keys/{name}`` may change; the rows changed."""
    return db.execute(
        "UPDATE api_keys SET instances = ?, expires_at = ?, limits = ?, priority = ? "
        "WHERE id = ?",
        (json.dumps(key.instances) if key.instances is not None else None,
         key.expires_at.isoformat() if key.expires_at else None,
         json.dumps(key.limits) if key.limits is not None else None, key.priority, key.id),
    ).rowcount


def delete_key(db: sqlite3.Connection, name_or_id: str) -> int:
    cursor = db.execute("DELETE FROM api_keys WHERE name = ? OR id = ?", (name_or_id, name_or_id))
    return cursor.rowcount


def mark_used(db: sqlite3.Connection, key_id: str, moment: datetime) -> None:
    db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (moment.isoformat(), key_id))


def load_keys(db: sqlite3.Connection) -> list[tuple[ApiKey, str]]:
    """Every key with its hash, by name."""
    rows = db.execute(f"SELECT {_COLUMNS}, key_hash FROM api_keys ORDER BY name")  # noqa: S608
    return [(_from_row(row[:-1]), str(row[-1])) for row in rows]


def _from_row(row: tuple[object, ...]) -> ApiKey:
    id_, name, prefix, instances, created, expires, used, limits, priority = row
    return ApiKey(
        limits=json.loads(limits) if isinstance(limits, str) else None,
        priority=int(priority) if isinstance(priority, int) else 0,
        id=str(id_), name=str(name), prefix=str(prefix),
        instances=json.loads(str(instances)) if instances is not None else None,
        created_at=_parse(str(created)) or datetime.now(UTC),
        expires_at=_parse(expires if isinstance(expires, str) else None),
        last_used_at=_parse(used if isinstance(used, str) else None),
    )
