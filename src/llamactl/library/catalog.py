"""The models on disk: every GGUF file under ``instances.model_dirs`` and the library's own
folder (``models.dir``), one entry per model (issue 33).

Each listing walks the folders again (a stat per file, no reads) and reads the header of a
file only when its size or mtime is new, so the list follows the disk (a file copied in,
deleted, grown) without a watcher, and a thousand files cost a walk, not a thousand parses.
Split models (``-00001-of-00003``) are one entry; a multimodal projector is an entry marked
``mmproj``. Names starting with a dot are skipped: the library's partial downloads and its
bookkeeping live there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llamactl.backends.llama_cpp.memory import estimate_llama_cpp
from llamactl.library.gguf_info import SPLIT_NAME, FileInfo, read_file_info
from llamactl.library.sources import SourceBook

MAX_DEPTH = 8  # folders below a root that are walked; deeper ones are not models' homes
# A listing this soon after a walk stats the folders only: a file rewritten in place (its
# folder unchanged) shows within this many seconds, one added, removed or renamed at once.
QUICK_SECONDS = 2.0


@dataclass(frozen=True)
class ModelEntry:
    """One model (or projector) on disk."""

    id: str
    path: Path  # what llama-server is given: a split model's first part
    files: tuple[Path, ...]
    real_files: frozenset[str]  # the files' paths as found and resolved: instances' match
    size: int
    info: FileInfo  # the first part's header
    error: str | None
    in_library: bool  # under models.dir: the API may delete it
    source: dict[str, Any] | None
    parameters: int | None
    # as_json's answer but its instances, per has_gpu: built once (the entry is immutable)
    _json: dict[bool, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def as_json(self, instances: list[str], *, has_gpu: bool) -> dict[str, Any]:
        if has_gpu not in self._json:
            self._json[has_gpu] = self._settled_json(has_gpu)
        return {**self._json[has_gpu], "instances": instances}

    def _settled_json(self, has_gpu: bool) -> dict[str, Any]:
        info = self.info
        split = None
        if len(self.files) > 1 or info.split_count:
            split = {"part": info.split_part or 1, "count": info.split_count or len(self.files)}
        estimate = None
        if info.facts is not None and self.error is None:
            estimate = estimate_llama_cpp(info.facts, {}, has_gpu=has_gpu).as_json()
        return {
            "id": self.id, "path": str(self.path), "size": self.size,
            "architecture": info.architecture, "parameters": self.parameters,
            "quantization": info.quantization, "context_length": info.context_length,
            "chat_template": info.chat_template, "split": split, "mmproj": info.mmproj,
            "source": self.source, "memory_estimate": estimate, "instances": [],
            "error": self.error, "deletable": self.in_library,
        }


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime_ns: int
    info: FileInfo


class ModelCatalog:
    """The model files under ``roots`` (the library's folder first), their headers cached."""

    def __init__(self, library_dir: Path, model_dirs: Sequence[Path]):
        self.library_dir = library_dir
        self.roots = [library_dir, *[d for d in model_dirs if d != library_dir]]
        self.sources = SourceBook(library_dir)
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()  # one scan at a time: two would read headers twice
        self._signature: object = None  # what the last scan saw
        self._folders: dict[str, int | None] | None = None  # folder -> its mtime, then
        self._walked_at = 0.0
        self._entries: list[ModelEntry] = []

    def scan(self, *, fresh: bool = False) -> list[ModelEntry]:
        """Every model on disk now. Blocking (stats, and headers of new files): call it off
        the event loop. Within QUICK_SECONDS of the last walk, and when no folder changed
        (a file added, removed or renamed changes its folder), the last answer is given
        again; ``fresh``: walk anyway (a delete, an instance's model). The walk deals in
        strings (pathlib's parsing cost more than the stats), and reads nothing new when no
        file and no source changed."""
        with self._lock:
            if not fresh and self._folders_unchanged():
                return self._entries
            # keyed by the resolved path: a file seen from two roots (or through a link) once
            walked: dict[str, tuple[str, os.stat_result, Path]] = {}
            folders: dict[str, int | None] = {}
            for root in self.roots:
                for path, real, stat in _gguf_files(str(root), folders):
                    walked.setdefault(real, (path, stat, root))
            self._folders, self._walked_at = folders, time.monotonic()
            sources = self.sources.read()
            signature = (tuple((key, path, stat.st_size, stat.st_mtime_ns)
                               for key, (path, stat, _) in walked.items()),
                         self.sources.version)
            if signature == self._signature:
                return self._entries
            found = {key: (Path(path), stat, root) for key, (path, stat, root) in walked.items()}
            infos = {key: self._info(key, path, stat) for key, (path, stat, _) in found.items()}
            self._seen = {key: self._seen[key] for key in found if key in self._seen}
            self._entries = _entries(found, infos, sources, self.library_dir)
            self._signature = signature
            return self._entries

    def _folders_unchanged(self) -> bool:
        if self._folders is None or time.monotonic() - self._walked_at > QUICK_SECONDS:
            return False
        return all(_mtime(folder) == mtime for folder, mtime in self._folders.items())

    def _info(self, key: str, path: Path, stat: os.stat_result) -> FileInfo:
        seen = self._seen.get(key)
        if seen is not None and (seen.size, seen.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            return seen.info
        info = read_file_info(path)
        self._seen[key] = _Seen(stat.st_size, stat.st_mtime_ns, info)
        return info

    def find(self, model_id: str) -> ModelEntry | None:
        return next((entry for entry in self.scan(fresh=True) if entry.id == model_id), None)


def _mtime(folder: str) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def _gguf_files(root: str, folders: dict[str, int | None],
                depth: int = 0) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path, resolved path, stat) of each GGUF file under ``root``, noting each folder's
    mtime in ``folders``. Only links are resolved (a realpath per file would cost a stat
    per folder of its path, on every listing)."""
    folders[root] = _mtime(root)
    try:
        entries = list(os.scandir(root))
    except OSError:  # a missing or unreadable folder has no models
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    yield from _gguf_files(entry.path, folders, depth + 1)
            elif entry.name.lower().endswith(".gguf") and entry.is_file():
                real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                yield entry.path, real, entry.stat()
        except OSError:  # a dangling link, a file gone while walking: not a model
            continue


def _entries(found: dict[str, tuple[Path, os.stat_result, Path]], infos: dict[str, FileInfo],
             sources: dict[str, dict[str, Any]], library_dir: Path) -> list[ModelEntry]:
    groups: dict[tuple[Path, str], list[str]] = {}
    for key, (path, _, _) in found.items():
        split = SPLIT_NAME.match(path.name)
        group = (path.parent, split["base"] + "|" + split["count"]) if split else (path, "")
        groups.setdefault(group, []).append(key)
    entries: list[ModelEntry] = []
    used: set[str] = set()
    for keys in groups.values():
        keys.sort(key=lambda key: found[key][0].name)
        entries.append(_entry(keys, found, infos, sources, library_dir, used))
    entries.sort(key=lambda entry: entry.id)
    return entries


def _entry(keys: list[str], found: dict[str, tuple[Path, os.stat_result, Path]],
           infos: dict[str, FileInfo], sources: dict[str, dict[str, Any]],
           library_dir: Path, used: set[str]) -> ModelEntry:
    first, _stat, root = found[keys[0]]
    files = tuple(found[key][0] for key in keys)
    info = infos[keys[0]]
    error = info.error or _split_problem(first, len(files), info)
    relative = first.relative_to(root).as_posix()
    model_id = relative if relative not in used else f"{relative}@{os.fspath(root)}"
    used.add(model_id)
    parameters = None if error else sum(infos[key].parameters or 0 for key in keys)
    if not error and len(keys) > 1 and info.facts is not None:
        info = replace(info, facts=replace(
            info.facts, layer_bytes=sum(infos[k].layer_bytes for k in keys),
            output_bytes=sum(infos[k].output_bytes for k in keys),
            other_bytes=sum(infos[k].other_bytes for k in keys)))
    in_library = root == library_dir
    return ModelEntry(
        id=model_id, path=first, files=files,
        real_files=frozenset(keys).union(str(path) for path in files),
        size=sum(found[key][1].st_size for key in keys), info=info, error=error,
        in_library=in_library, source=sources.get(relative) if in_library else None,
        parameters=parameters)


def _split_problem(first: Path, present: int, info: FileInfo) -> str | None:
    split = SPLIT_NAME.match(first.name)
    if split is None:
        return None
    count = int(split["count"])
    if int(split["part"]) != 1:
        return f"split model without its first part ({first.name} is part {split['part']})"
    if present < count:
        return f"split model incomplete: {present} of {count} parts on disk"
    return None
