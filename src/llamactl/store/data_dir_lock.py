"""One server per data dir: an exclusive ``flock`` on ``<data dir>/llamactl.lock``.

Two servers on one data dir would both adopt the same llama-servers; the one that then fails
(its port taken, say) stops them on its way out and the other sees its instances "crash". The
lock is taken before anything in the data dir is read or written, and held for the server's
life: the kernel drops it when the process ends, however it ends, so a ``kill -9`` never
leaves a stale lock. The file is opened close-on-exec (Python's default), so children never
hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from llamactl.errors import StartupError

LOCK_FILE = "llamactl.lock"


class DataDirLock:
    """Held while the object is open; ``release`` (or the process's end) lets it go."""

    def __init__(self, handle: IO[str], path: Path):
        self._handle = handle
        self.path = path

    def release(self) -> None:
        self._handle.close()  # closing the only descriptor releases the flock


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Create the data dir if needed and lock it, or raise StartupError naming the holder."""
    path = data_dir / LOCK_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data dir {data_dir}: {exc.strerror}") from None
    try:
        # "a+": never truncates, so a refused server does not even touch the holder's pid.
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise StartupError(f"cannot use data dir {data_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise StartupError(
            f"data dir {data_dir} is in use by another llamactl{who}; "
            "one server per data dir (use --data-dir for a second one)"
        ) from None
    with contextlib.suppress(OSError):  # the pid is for the message above only
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    return DataDirLock(handle, path)
