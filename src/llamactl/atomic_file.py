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
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
