"""``GET``/``PUT /api/config``: the effective configuration with its secrets hidden, and
partial updates of the config file.

A PUT is a partial document merged into the file's document (mappings key by key; lists and
scalars replaced; ``null`` sets null), validated whole with the same ``Settings`` model that
``llamactl serve`` uses, then written by ``config/file.py`` (backup ``<file>.bak``, temp file,
fsync, atomic rename). The running server keeps its settings: a restart applies them.

Secrets are every key named ``secret``, ``password``, ``api_key`` or ending in ``_secret``,
``_hash``, ``_password`` or ``_token`` (today ``auth.secret``, ``auth.users[].password_hash``
and ``models.hub_token``), and
every value of an ``environment`` map (``backends.*.docker.environment``: an ``HF_TOKEN``
goes there). They read as ``"***"``; a PUT that sends ``"***"`` back keeps the file's value
(list items are matched by ``username``, or ``name``; variables by name), so a client may PUT
what it got from GET.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llamactl.config.file import deep_merge, update_config_file
from llamactl.config.loading import read_config_file
from llamactl.config.settings import Settings
from llamactl.errors import Conflict, StartupError, ValidationFailed

REDACTED = "***"
_SECRET_NAMES = frozenset({"secret", "password", "api_key"})
_SECRET_SUFFIXES = ("_secret", "_hash", "_password", "_token")
# Maps whose every value may be a secret (issue 27): their names stay readable.
_SECRET_MAPS = frozenset({"environment"})
_ITEM_KEYS = ("username", "name")  # what identifies an item of a list, for its secrets
# What flags and LLAMACTL_* variables can set: they beat the file, now and after a restart.
_OVERRIDABLE = (("server", "host"), ("server", "port"), ("data_dir",))

Document = dict[str, Any]


class ConfigFileUnknown(Conflict):
    code = "CONFIG_FILE_UNKNOWN"


class ConfigFileInvalid(Conflict):
    code = "CONFIG_FILE_INVALID"


def is_secret(key: str) -> bool:
    return key in _SECRET_NAMES or key.endswith(_SECRET_SUFFIXES)


def redact(document: Any) -> Any:
    """A copy of ``document`` with every set secret replaced by ``"***"``."""
    if isinstance(document, dict):
        return {key: REDACTED if is_secret(key) and value is not None
                else redact_values(value) if key in _SECRET_MAPS and isinstance(value, dict)
                else redact(value)
                for key, value in document.items()}
    if isinstance(document, list):
        return [redact(item) for item in document]
    return document


def redact_values(variables: dict[str, Any]) -> dict[str, Any]:
    """An environment map with its names and without its values."""
    return dict.fromkeys(variables, REDACTED)


def restore_secrets(patch: Any, existing: Any, where: str = "") -> None:
    """Replace, in place, each ``"***"`` secret of ``patch`` by the value it stands for."""
    if isinstance(patch, dict):
        for key, value in patch.items():
            path = f"{where}.{key}" if where else str(key)
            old = existing.get(key) if isinstance(existing, dict) else None
            if value == REDACTED and is_secret(key):
                patch[key] = kept_secret(old, path)
            elif key in _SECRET_MAPS and isinstance(value, dict):
                variables = old if isinstance(old, dict) else {}
                for name, given in value.items():
                    if given == REDACTED:
                        value[name] = kept_secret(variables.get(name), f"{path}.{name}")
            else:
                restore_secrets(value, old, path)
    elif isinstance(patch, list):
        olds = existing if isinstance(existing, list) else []
        for index, item in enumerate(patch):
            restore_secrets(item, _same_item(item, olds), f"{where}.{index}")


def kept_secret(old: Any, path: str) -> Any:
    """The value a ``"***"`` stands for: the one already there."""
    if old is None:
        raise ValidationFailed(f"{path} is '***' but there is no secret to keep",
                               f"{path}: '***' stands for no existing value")
    return old


def _same_item(item: Any, olds: list[Any]) -> Any:
    if not isinstance(item, dict):
        return None
    for key in _ITEM_KEYS:
        if key in item:
            return next((old for old in olds
                         if isinstance(old, dict) and old.get(key) == item[key]), None)
    return None


class ConfigEditor:
    def __init__(self, settings: Settings, config_path: Path | None):
        self._settings = settings
        self.path = config_path
        self._lock = asyncio.Lock()  # one read-merge-write at a time

    def effective(self) -> Document:
        """The configuration this server runs with, secrets hidden."""
        document: Document = redact(self._settings.model_dump(mode="json"))
        return document

    async def update(self, patch: Document) -> Document:
        """Merge ``patch`` into the file; answer the configuration as it will be after a
        restart, secrets hidden. ValidationFailed (nothing written) when it would be invalid."""
        if self.path is None:
            raise ConfigFileUnknown("This server was started without a config file to write")
        async with self._lock:
            after = await asyncio.to_thread(self._write, copy.deepcopy(patch), self.path)
        document: Document = redact(after)
        return document

    def _write(self, patch: Document, path: Path) -> Document:
        before = _file_settings(path)

        def change(document: Document) -> None:
            restore_secrets(patch, document)
            deep_merge(document, patch)

        try:
            written = update_config_file(path, change)
        except StartupError as exc:  # unreadable, or not YAML: nothing to merge into
            raise ConfigFileInvalid("The config file cannot be updated", exc.message) from None
        return self._after_restart(before, written)

    def _after_restart(self, before: Settings | None, written: Settings) -> Document:
        """The file's new settings, plus what flags or the environment set for this server:
        a value that differs from what the file gave it came from them, and still will."""
        after = written.model_dump(mode="json")
        if before is None:
            return after
        current, base = self._settings.model_dump(mode="json"), before.model_dump(mode="json")
        for keys in _OVERRIDABLE:
            if _get(current, keys) != _get(base, keys):
                _set(after, keys, _get(current, keys))
        return after


def _file_settings(path: Path) -> Settings | None:
    """What the file says now (defaults for a missing file), or None if it is invalid."""
    try:
        return Settings.model_validate(read_config_file(path) if path.exists() else {})
    except (StartupError, ValidationError):
        return None


def _get(document: Document, keys: tuple[str, ...]) -> Any:
    node: Any = document
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _set(document: Document, keys: tuple[str, ...], value: Any) -> None:
    node = document
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
