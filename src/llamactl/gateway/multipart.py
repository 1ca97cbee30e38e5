"""The ``model`` field of a ``multipart/form-data`` body, found as the body streams past.

OpenAI's audio routes (``/v1/audio/transcriptions``) take a form: the file and ``model``
among other fields, in any order. The gateway routes by ``model`` like a JSON body's, but
must not hold a whole upload to find it: ``ModelFieldFinder`` reads each piece as it arrives,
keeping only a delimiter's length of what it skipped, a part's head and the field's value
(both bounded), and says where in the body the value lies (the gateway may rename the
model for its backend).
"""

from __future__ import annotations

import re

MAX_PART_HEAD = 8 * 1024  # a part's headers; more is no form a client of ours sends
MAX_MODEL_BYTES = 1024
_BOUNDARY = re.compile(rb'(?i)boundary=(?:"([^"]{1,200})"|([^";\s]{1,200}))')
_MODEL_PART = re.compile(rb'(?im)^content-disposition:[^\r\n]*;\s*name="?model"?\s*(?:;|$)')
_DELIMITER, _HEAD, _VALUE = 0, 1, 2


def is_multipart(content_type: bytes) -> bool:
    """Whether a Content-Type names a form upload. Cheap on the JSON requests' hot path:
    ``application/json`` is told apart by its first byte."""
    return content_type[:1] in b"mM" and content_type[:19].lower() == b"multipart/form-data"


def boundary_of(content_type: bytes) -> bytes | None:
    found = _BOUNDARY.search(content_type)
    return None if found is None else found.group(1) or found.group(2)


class ModelFieldFinder:
    """Feed it the body's pieces in order; ``done`` once it found ``model`` (and its
    ``span`` in the body) or knows the body has none it can read."""

    def __init__(self, boundary: bytes):
        self._delimiter = b"\r\n--" + boundary
        self._buffer = b"\r\n"  # the first delimiter has no line break before it
        self._offset = -2  # where _buffer starts in the body
        self._state = _DELIMITER
        self.done = False
        self.model: str | None = None
        self.span: tuple[int, int] | None = None

    def feed(self, piece: bytes) -> None:
        if self.done:
            return
        self._buffer += piece
        while not self.done and self._step():
            pass

    def _step(self) -> bool:
        """One move of the state machine; False when it needs more of the body."""
        buffer = self._buffer
        if self._state == _DELIMITER:
            at = buffer.find(self._delimiter)
            if at < 0:  # keep what could begin a delimiter split across two pieces
                self._drop(max(len(buffer) - len(self._delimiter) + 1, 0))
                return False
            self._drop(at + len(self._delimiter))
            self._state = _HEAD
            return True
        if self._state == _HEAD:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0 and not buffer.startswith(b"--"):
                self._state = _VALUE if _MODEL_PART.search(buffer[:end]) else _DELIMITER
                self._drop(end + 4)
                return True
            # the closing delimiter (no model in the form), or a head past all bounds
            self.done = buffer.startswith(b"--") or len(buffer) > MAX_PART_HEAD
            return False
        end = buffer.find(self._delimiter)
        if end >= 0:
            self.model = buffer[:end].decode("utf-8", "replace").strip()
            self.span = (self._offset, self._offset + end)
        self.done = end >= 0 or len(buffer) > MAX_MODEL_BYTES
        return False

    def _drop(self, count: int) -> None:
        if count:
            self._buffer = self._buffer[count:]
            self._offset += count
