"""One server per data dir: an exclusive ``flock`` on the data dir itself.

Two servers on one data dir would both adopt the same llama-servers; the one that then fails
(its port taken, say) stops them on its way out and the other sees its instances "crash". The
lock is taken before anything in the data dir is read or written, and held for the server's
life: the kernel drops it when the process ends, however it ends, so a ``kill -9`` never
leaves a stale lock.

What is locked is the directory, through a descriptor opened on it: a lock on a file inside
it (as before) was gone for everyone else the moment someone deleted that file, and a second
server then started beside the first. A directory cannot be deleted while it holds the
database, and the lock is checked by identity (device and inode), not by path: a data dir
replaced between our ``open`` and our ``flock`` is tried again. ``<data dir>/llamactl.lock``
now only carries the holder's pid, for the refusal message. The descriptor is close-on-exec
(Python's default), so children never hold the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from llamactl.errors import StartupError

LOCK_FILE = "llamactl.lock"  # the holder's pid, for a refused server's message
_ATTEMPTS = 3  # a data dir swapped under us on every try is not one we should use


class DataDirLock:
    """Held while the descriptor is open; ``release`` (or the process's end) lets it go."""

    def __init__(self, descriptor: int, path: Path):
        self._descriptor = descriptor
        self.path = path

    def release(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)  # closing the only descriptor releases the flock
            self._descriptor = -1


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Create the data dir if needed and lock it, or raise StartupError naming the holder."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data dir {data_dir}: {exc.strerror}") from None
    for _ in range(_ATTEMPTS):
        descriptor = _open_directory(data_dir)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            raise _in_use(data_dir) from None
        if _same_directory(descriptor, data_dir):
            _record_pid(data_dir)
            return DataDirLock(descriptor, data_dir)
        os.close(descriptor)  # the path names another directory now: lock that one
    raise StartupError(f"data dir {data_dir} keeps being replaced; cannot lock it")


def _open_directory(data_dir: Path) -> int:
    try:
        return os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise StartupError(f"cannot use data dir {data_dir}: {exc.strerror}") from None


def _same_directory(descriptor: int, data_dir: Path) -> bool:
    try:
        now = os.stat(data_dir)
    except OSError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _in_use(data_dir: Path) -> StartupError:
    holder = ""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        holder = (data_dir / LOCK_FILE).read_text(encoding="utf-8").strip()
    who = f" (pid {holder})" if holder.isdigit() else ""
    return StartupError(
        f"data dir {data_dir} is in use by another llamactl{who}; "
        "one server per data dir (use --data-dir for a second one)"
    )


def _record_pid(data_dir: Path) -> None:
    """Written only once the lock is ours, so a refused server never touches the holder's."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with contextlib.suppress(OSError):  # the pid is for the message above only
        descriptor = os.open(data_dir / LOCK_FILE, flags, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as pid_file:
            pid_file.write(f"{os.getpid()}\n")
