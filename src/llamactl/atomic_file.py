"""The one way llamactl replaces a file: a temp file in the same directory, written and
fsynced, given its mode, renamed over the old one, and the directory fsynced. A reader sees
the old file or the new one, never half of one, and after a crash the new one is on disk
once the call returned. Used for the config file (config/file.py) and for the command
line's saved tokens (cli/common.py): it imports nothing but the standard library, so the
client side can use it without the server's configuration.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o600  # a new file may hold secrets (password hashes, tokens)


def atomic_write(path: Path, text: str, *, mode: int | None = None,
                 backup: bool = False) -> None:
    """Replace ``path`` with ``text``. ``mode``: the new file's mode (default: the old
    file's, or 0600 for a new one). ``backup``: first copy the old file to ``<name>.bak``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.exists()
    if mode is None:
        mode = path.stat().st_mode & 0o777 if exists else NEW_FILE_MODE
    if backup and exists:
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


_TEMP_SUFFIX = ".tmp"
# tempfile.mkstemp's random part: eight of its letters (lower case, digits, underscore).
_TEMP_RANDOM = r"[a-z0-9_]{8}"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temp files an ``atomic_write`` of ``path`` killed mid-write (kill -9, power
    loss) left beside it, and say which. Only names of this writer's own pattern
    (``.<name>.<8 random>.tmp``): nothing else in the directory is touched."""
    pattern = re.compile(re.escape(_temp_prefix(path)) + _TEMP_RANDOM + re.escape(_TEMP_SUFFIX))
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return []
    for candidate in candidates:
        if pattern.fullmatch(candidate.name) and candidate.is_file() \
                and not candidate.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
