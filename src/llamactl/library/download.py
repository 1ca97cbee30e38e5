"""One file from the Hub onto disk, safely (issue 33).

The bytes land in a hidden partial file beside the destination (``.<name>.partial``: the
catalog skips dot-names), written unbuffered so that what was received is on disk whatever
happens to llamactl. A later fetch of the same file resumes from the partial file's size
with a ``Range`` request, so a pull interrupted by a kill -9, a lost network or a cancel costs
only the bytes in flight. When the last byte is in, the whole file's SHA-256 is compared with
the Hub's LFS hash; only an equal file is renamed into place, and a different one is deleted.

Blocking: run in the pulls' worker threads. ``Transfer`` is what the event loop reads (bytes
done, the phase) and how it stops a fetch (``cancel``): checked at every chunk.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

HASH_CHUNK = 4 * 1024 * 1024
# huggingface_hub reads the body in pieces of DOWNLOAD_CHUNK_SIZE (10 MiB), and httpx holds a
# piece until it is whole: up to 10 MiB received but not on disk, lost to a kill -9, and no
# progress (nor a cancel) between two pieces. 256 KiB: a few thousand loop turns a GB.
WRITE_CHUNK = 256 * 1024


class Cancelled(Exception):
    """The fetch was told to stop; its partial file stays for the next pull to resume."""


class ChecksumMismatch(Exception):
    """The whole file's SHA-256 is not the Hub's: the partial file is deleted."""


@dataclass
class Transfer:
    """A fetch's progress, written by its worker thread, read by the event loop."""

    total: int
    done: int = 0
    phase: str = "queued"  # queued, downloading, verifying, done
    cancel: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled


def partial_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.partial")


def fetch_file(url: str, headers: dict[str, str], final: Path, sha256: str | None,
               transfer: Transfer) -> None:
    """Download ``url`` to ``final`` (resuming a partial file), verify it, move it in place."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get

    constants.DOWNLOAD_CHUNK_SIZE = WRITE_CHUNK
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(final)
    have = partial.stat().st_size if partial.exists() else 0
    if have > transfer.total:  # not the file we are after: start again
        partial.unlink()
        have = 0
    transfer.done, transfer.phase = have, "downloading"
    transfer.check()
    with open(partial, "ab", buffering=0) as out:
        http_get(url, out, resume_size=have, headers=headers, expected_size=transfer.total,
                 displayed_filename=final.name, tqdm_class=cast(Any, _progress(transfer)))
    transfer.phase = "verifying"
    if sha256 is not None and _sha256(partial, transfer) != sha256.lower():
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{final.name}: its SHA-256 is not the Hub's ({sha256[:12]}...)"
                               "; the download was deleted")
    os.replace(partial, final)
    _fsync_dir(final.parent)
    transfer.phase = "done"


def _sha256(path: Path, transfer: Transfer) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            transfer.check()
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _progress(transfer: Transfer) -> type:
    """A stand-in for huggingface_hub's tqdm class: it counts bytes into ``transfer`` and
    stops the download at the next chunk once ``transfer.cancel`` is set."""

    class Progress:
        def __init__(self, *, initial: int = 0, **_: Any):
            transfer.done = initial

        def __enter__(self) -> Progress:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def update(self, count: int) -> None:
            transfer.check()
            transfer.done += count

        def close(self) -> None:
            return None

    return Progress
