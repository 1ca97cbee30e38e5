"""Where each pulled file came from: ``<models.dir>/.sources.json``, written when a pull
finishes, read by the catalog (its ``source`` field).

A file beside the models rather than a database table: the library's folder may be shared by
two llamactl data dirs, or copied to another machine, and its sources go with it. Keys are
paths relative to the folder; values ``{"repo", "file", "revision", "sha256"}``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from llamactl.atomic_file import atomic_write

FILE_NAME = ".sources.json"


class SourceBook:
    def __init__(self, library_dir: Path):
        self.path = library_dir / FILE_NAME
        self._lock = threading.Lock()
        self._read_at: tuple[int, int] | None = None
        self._sources: dict[str, dict[str, Any]] = {}

    def read(self) -> dict[str, dict[str, Any]]:
        """The sources on file now (cached while the file's size and mtime stay)."""
        with self._lock:
            try:
                stat = os.stat(self.path)
            except OSError:
                self._read_at, self._sources = None, {}
                return {}
            version = (stat.st_size, stat.st_mtime_ns)
            if version != self._read_at:
                self._sources = _load(self.path)
                self._read_at = version
            return dict(self._sources)

    @property
    def version(self) -> tuple[int, int] | None:
        """The file's size and mtime at the last read (None: none on disk)."""
        return self._read_at

    def record(self, relative: str, source: dict[str, Any]) -> None:
        """Note where ``relative`` came from (replacing what was noted)."""
        with self._lock:
            sources = _load(self.path)
            sources[relative] = source
            self._write(sources)

    def forget(self, relatives: list[str]) -> None:
        with self._lock:
            sources = _load(self.path)
            removed = [sources.pop(relative) for relative in relatives if relative in sources]
            if removed:
                self._write(sources)

    def _write(self, sources: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(sources, indent=1, sort_keys=True), mode=0o644)
        self._read_at = None


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged: sources unknown, models still listed
        return {}
    if not isinstance(document, dict):
        return {}
    return {key: value for key, value in document.items() if isinstance(value, dict)}
