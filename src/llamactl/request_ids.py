"""Request ids: one per answer of llamactl, in its ``X-Request-ID`` header and in the log line
of the answer, for ``/api`` (api/request_id.py, an ASGI middleware) and ``/v1`` (the gateway's
exchanges, in uvicorn's HTTP layer) alike.

A caller's own id (a proxy's, a client's) is kept when it is a plain token, so that one id
follows a request through several logs; otherwise one is made. Clients hand it back on errors
(``APIError.request_id``), so a user's report names the log line to look for.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

HEADER = b"x-request-id"
# A caller's id is echoed into our headers and logs: only short plain tokens are taken.
_ACCEPTED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

logger = logging.getLogger("llamactl.requests")


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's id when plain (names lower-case, as uvicorn gives them), else a new one."""
    for name, value in headers:
        if name == HEADER and _ACCEPTED.fullmatch(value):
            return value.decode("ascii")
    return new_request_id()


_random = b""  # os.urandom read 256 ids at a time: not a getrandom call per request
_taken = 0
_VERSION_CLEAR = ~((0xF << 76) | (0x3 << 62))
_VERSION_SET = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A random (version 4) UUID as 32 hex digits, as ``uuid.uuid4().hex`` makes them,
    without its UUID object and its system call each time (on the event loop's thread)."""
    global _random, _taken
    if _taken >= len(_random):
        _random, _taken = os.urandom(4096), 0
    value = int.from_bytes(_random[_taken:_taken + 16])
    _taken += 16
    return f"{value & _VERSION_CLEAR | _VERSION_SET:032x}"


def _forget_random() -> None:
    global _random, _taken
    _random, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_random)  # a forked child never repeats our ids


def log_answer(method: str, path: str, status: int, request_id: str) -> None:
    """The answer's log line: errors at INFO, the rest at DEBUG, so that a busy server's log
    stays readable."""
    level = logging.INFO if status >= 400 else logging.DEBUG
    if logger.isEnabledFor(level):
        logger.log(level, "%s %s -> %d request_id=%s", method, path, status, request_id)
