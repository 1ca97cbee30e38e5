"""Request ids: one per answer of llamactl, in its ``X-Request-ID`` header and in the log line
of the answer, for ``/api`` (api/request_id.py, an ASGI middleware) and ``/v1`` (the gateway's
exchanges, in uvicorn's HTTP layer) alike.

A caller's own id (a proxy's, a client's) is kept when it is a plain token, so that one id
follows a request through several logs; otherwise one is made. Clients hand it back on errors
(``APIError.request_id``), so a user's report names the log line to look for.
"""

from __future__ import annotations

import logging
import re
import uuid
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
    return uuid.uuid4().hex


def log_answer(method: str, path: str, status: int, request_id: str) -> None:
    """The answer's log line: errors at INFO, the rest at DEBUG, so that a busy server's log
    stays readable."""
    level = logging.INFO if status >= 400 else logging.DEBUG
    if logger.isEnabledFor(level):
        logger.log(level, "%s %s -> %d request_id=%s", method, path, status, request_id)
