"""Instance log files: llamactl's own lines, the backend's, tail, follow, rotation.

The child writes straight into ``<data_dir>/logs/<name>.log``. Its lines are read by its
backend's ``parse_log_line`` (``LineFormat``: llama-server's, for instance, carry the time since
the process started and a level letter). llamactl's own lines read ``[llamactl] <RFC 3339> L
message``; its "started pid N" line is the base that makes a backend line's relative time
absolute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llamactl.backends.base import Level as Level  # re-exported: the API and owner use it
from llamactl.backends.base import LogLine

# A backend's reading of one of its lines (Backend.parse_log_line); None: not in its format.
LineFormat = Callable[[str], LogLine | None]
LEVELS: tuple[Level, ...] = ("debug", "info", "warn", "error")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}
_LETTER: dict[str, Level] = {"D": "debug", "I": "info", "W": "warn", "E": "error"}
_LETTER_OF: dict[Level, str] = {v: k for k, v in _LETTER.items()}

MAX_CAUSE_CHARS = 300  # of a failed start's cause, in last_error
_OWN = re.compile(r"^\[llamactl\] (\S+) ([DIWE]) (.*)$")
_BASE = re.compile(r"^(?:started pid \d+|log rotated; process started (\S+))")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_BLOCK = 64 * 1024
# How many older lines read_tail looks through for the base time once it has its lines.
_BASE_SEARCH_LIMIT = 20_000
FOLLOW_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class LogEntry:
    timestamp: datetime
    level: Level
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "timestamp": self.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": self.level,
            "message": self.message,
        }


def level_at_least(level: Level, minimum: Level) -> bool:
    return _RANK[level] >= _RANK[minimum]


def write_own_line(path: Path, level: Level, message: str, when: datetime | None = None) -> None:
    """Append one llamactl line. O_APPEND keeps it whole beside the child's own writes."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = " ".join(message.splitlines())
    line = f"[llamactl] {stamp} {_LETTER_OF[level]} {text}\n".encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class LineParser:
    """Turns raw lines into entries, carrying the run's base time from line to line."""

    def __init__(self, fallback: datetime, line_format: LineFormat):
        self.line_format = line_format
        self.base: datetime | None = None
        self.last_time = fallback
        self.last_level: Level = "info"

    def parse(self, raw: str) -> LogEntry | None:
        line = _ANSI.sub("", raw.rstrip("\r\n"))
        if not line.strip():
            return None
        own = _OWN.match(line)
        if own:
            return self._own(own)
        backend = self.line_format(line)
        if backend is not None:
            if backend.at is not None:
                self.last_time = backend.at.astimezone(UTC)
            elif self.base is not None and backend.since_start is not None:
                self.last_time = self.base + backend.since_start
            self.last_level = backend.level
            return LogEntry(self.last_time, self.last_level, backend.message)
        # A line without a prefix (output before logging starts, a continuation): it belongs to
        # the entry before it.
        return LogEntry(self.last_time, self.last_level, line)

    def _own(self, match: re.Match[str]) -> LogEntry:
        stamp, letter, message = match.groups()
        when = _parse_time(stamp) or self.last_time
        base = _BASE.match(message)
        if base:
            self.base = _parse_time(base.group(1)) if base.group(1) else when
        self.last_time = when
        self.last_level = "info"
        return LogEntry(when, _LETTER[letter], message)


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def log_files(path: Path, backups: int) -> list[Path]:
    """The current file and its rotated predecessors, newest first, those that exist."""
    candidates = [path] + [path.with_name(f"{path.name}.{i}") for i in range(1, backups + 1)]
    return [p for p in candidates if p.exists()]


def _lines_backward(files: list[Path]) -> Iterator[str]:
    for file in files:
        with contextlib.suppress(FileNotFoundError), file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            position = handle.tell()
            rest = b""
            while position > 0:
                step = min(_BLOCK, position)
                position -= step
                handle.seek(position)
                chunk = handle.read(step) + rest
                lines = chunk.split(b"\n")
                rest = lines[0]
                for line in reversed(lines[1:]):
                    yield line.decode("utf-8", "replace")
            yield rest.decode("utf-8", "replace")


def read_tail(
    path: Path, lines: int, minimum: Level = "debug", backups: int = 0, *,
    line_format: LineFormat,
) -> list[LogEntry]:
    """The last ``lines`` entries at ``minimum`` level or above, oldest first.

    Reads backwards only as far as it must: until it has enough lines and has passed the
    "started pid" line that gives their times a base.
    """
    if lines <= 0:
        return []
    picked: list[str] = []
    matching = 0
    searched = 0
    for raw in _lines_backward(log_files(path, backups)):
        picked.append(raw)
        if matching < lines:
            matching += _passes(raw, minimum, line_format)
        else:
            searched += 1
            if _is_base(raw) or searched > _BASE_SEARCH_LIMIT:
                break
    parser = LineParser(_mtime(path), line_format)
    entries = [e for e in map(parser.parse, reversed(picked)) if e is not None]
    return [e for e in entries if level_at_least(e.level, minimum)][-lines:]


def _quick_level(raw: str, line_format: LineFormat) -> Level | None:
    """The level of a raw line; None for a blank line."""
    line = _ANSI.sub("", raw).rstrip("\r\n")
    if not line.strip():
        return None
    own = _OWN.match(line)
    if own is not None:
        return _LETTER[own.group(2)]
    backend = line_format(line)
    return "info" if backend is None else backend.level


def _passes(raw: str, minimum: Level, line_format: LineFormat) -> bool:
    level = _quick_level(raw, line_format)
    return level is not None and level_at_least(level, minimum)


def _is_base(raw: str) -> bool:
    own = _OWN.match(raw.rstrip("\r\n"))
    return bool(own and _BASE.match(own.group(3)))


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)


def last_messages(path: Path, count: int = 20, *, line_format: LineFormat) -> list[str]:
    """The last raw messages of the log, for error answers when a start fails. No times, so
    no search for the base line: it reads the file's last block, cheap enough for the owner."""
    picked: list[str] = []
    for raw in _lines_backward(log_files(path, 0)):
        if raw.strip():
            picked.append(raw)
        if len(picked) >= count:
            break
    parser = LineParser(datetime.now(UTC), line_format)
    return [e.message for e in map(parser.parse, reversed(picked)) if e is not None]


def first_error_of_run(path: Path, *, line_format: LineFormat,
                       limit: int = 2000) -> str | None:
    """The first error the backend logged since its last start: the cause of a failed start
    (llama-server's "invalid magic characters", "error loading model: ..."), which the lines
    after it only echo. Issue 27: "exited with code 1" alone sent people to the log."""
    run: list[str] = []
    for raw in _lines_backward(log_files(path, 0)):
        if _is_base(raw) or len(run) >= limit:
            break
        run.append(raw)
    for raw in reversed(run):
        line = _ANSI.sub("", raw.rstrip("\r\n"))
        parsed = None if _OWN.match(line) else line_format(line)
        if parsed is not None and parsed.level == "error" and parsed.message.strip():
            return parsed.message.strip()[:MAX_CAUSE_CHARS]
    return None


@dataclass(frozen=True)
class FollowStart:
    """Where a follower starts: what it shows first, and the file's size when it began."""

    entries: list[LogEntry]
    parser: LineParser
    position: int


async def follow_start(
    path: Path, lines: int, minimum: Level = "debug", backups: int = 0, *,
    line_format: LineFormat,
) -> FollowStart:
    """Taken before a follower's answer begins, so that a client that sees the answer's head
    sees every line written after it."""
    # Reading back through the file can take a while: not on the event loop.
    return FollowStart(*await asyncio.to_thread(_follow_start, path, lines, minimum, backups,
                                                line_format))


async def follow(
    path: Path, start: FollowStart, minimum: Level = "debug",
    stop: asyncio.Event | None = None,
) -> AsyncIterator[LogEntry]:
    """``start``'s entries, then each new one as it is written, until cancelled or ``stop``
    is set (llamactl shutting down)."""
    parser, position = start.parser, start.position
    for entry in start.entries:
        yield entry
    pending = b""
    while True:
        size = _size(path)
        if size < position:  # truncated by rotation: the new lines start at 0
            position, pending = 0, b""
        if size > position:
            with path.open("rb") as handle:
                handle.seek(position)
                data = handle.read(size - position)
            position += len(data)
            *complete, pending = (pending + data).split(b"\n")
            for line in complete:
                parsed = parser.parse(line.decode("utf-8", "replace"))
                if parsed is not None and level_at_least(parsed.level, minimum):
                    yield parsed
        if stop is not None and stop.is_set():
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _follow_start(
    path: Path, lines: int, minimum: Level, backups: int, line_format: LineFormat,
) -> tuple[list[LogEntry], LineParser, int]:
    """The entries to show first, a parser primed with the run's base time, where to go on."""
    entries = read_tail(path, lines, minimum, backups, line_format=line_format)
    parser = LineParser(datetime.now(UTC), line_format)
    for raw in reversed(list(_take_until_base(_lines_backward(log_files(path, 0))))):
        parser.parse(raw)
    return entries, parser, _size(path)


def _take_until_base(lines: Iterator[str], limit: int = 5000) -> Iterator[str]:
    for index, raw in enumerate(lines):
        yield raw
        if _is_base(raw) or index >= limit:
            return


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def rotate_if_needed(
    path: Path, max_bytes: int, backups: int, started: datetime | None, *, live: bool = True
) -> bool:
    """Copy-and-truncate rotation while a child writes the file (``live``): it keeps its
    O_APPEND descriptor and writes on at 0. A line written between the copy and the truncate
    can be lost; renaming instead would leave the child writing into the renamed file forever.
    With no child (before a launch) renaming is safe, and cheap enough for the event loop.
    """
    if _size(path) <= max_bytes:
        return False
    if backups > 0:
        for index in range(backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        if not live:
            path.replace(path.with_name(f"{path.name}.1"))
            return True
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with path.open("r+b") as handle:
        handle.truncate(0)
    if started is not None:
        stamp = started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        write_own_line(path, "info", f"log rotated; process started {stamp}")
    return True
