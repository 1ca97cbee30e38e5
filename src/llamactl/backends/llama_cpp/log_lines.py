"""llama-server's log lines, as it writes them with ``--log-prefix --log-timestamps``:
``M.SS.mmm.uuu L message``, minutes, seconds, milliseconds and microseconds since the process
started, then the level letter (D, I, W, E)."""

from __future__ import annotations

import re
from datetime import timedelta

from llamactl.backends.base import Level, LogLine

_LINE = re.compile(r"^(\d+)\.(\d{2})\.(\d{3})\.(\d{3}) ([DIWE]) ?(.*)$")
_LETTER: dict[str, Level] = {"D": "debug", "I": "info", "W": "warn", "E": "error"}


def parse_log_line(line: str) -> LogLine | None:
    match = _LINE.match(line)
    if match is None:
        return None
    minutes, seconds, millis, micros, letter, message = match.groups()
    offset = timedelta(minutes=int(minutes), seconds=int(seconds),
                       milliseconds=int(millis), microseconds=int(micros))
    return LogLine(_LETTER[letter], message, offset)
