"""A ``multipart/form-data`` request body on its way to its backend (issue 31).

A JSON body is read whole and then routed (gateway/exchange.py). A form upload (an audio
file for ``/v1/audio/transcriptions``) is routed by its ``model`` field as soon as that has
passed (gateway/multipart.py), and its pieces go to the backend as they arrive: held only
until the field is found and the backend connection is ready, and the client's reading paused
while more than ``HOLD_BYTES`` wait. The body keeps the client's framing: its length, or
chunks when the client sent chunks.
"""

from __future__ import annotations

from collections.abc import Callable

from llamactl.gateway.errors import GatewayError
from llamactl.gateway.multipart import ModelFieldFinder, boundary_of
from llamactl.gateway.pool import BackendConnection

HOLD_BYTES = 1024 * 1024  # held beyond this (an on-demand start), the client waits
_LAST_CHUNK = b"0\r\n\r\n"


def invalid_form(message: str) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", "invalid_request")


class Upload:
    """The body's framing, the pieces held, and the connection they go to once it is there.
    ``hold`` pauses (True) or resumes (False) the client's reading."""

    def __init__(self, headers: list[tuple[bytes, bytes]], hold: Callable[[bool], None]):
        content_type = next((v for n, v in headers if n == b"content-type"), b"")
        boundary = boundary_of(content_type)
        if boundary is None:
            raise invalid_form("A multipart/form-data body needs a boundary in its "
                               "Content-Type")
        self.finder = ModelFieldFinder(boundary)
        length = next((v for n, v in headers if n == b"content-length"), None)
        self.length = int(length) if length is not None and length.isdigit() else None
        self.ended = False
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._connection: BackendConnection | None = None
        self._hold = hold
        self._holding = False
        self._dropping = False  # the exchange has ended: whatever still comes is dropped

    def add(self, piece: bytes) -> None:
        """A piece of the body, as read."""
        if not piece or self._dropping:
            return
        if self._connection is not None:
            self._connection.send_more(self._framed(piece))
            return
        self.finder.feed(piece)
        self._held.append(piece)
        self._held_bytes += len(piece)
        if self._held_bytes > HOLD_BYTES and not self._holding:
            self._holding = True
            self._hold(True)

    def end(self) -> None:
        """The body's last byte has been read."""
        self.ended = True
        if self._connection is not None and self.length is None:
            self._connection.send_more(_LAST_CHUNK)

    def rename_model(self, model: str) -> None:
        """Name ``model`` in the form instead (the backend's own name for it); the field
        has been found, so its bytes are among those held."""
        assert self.finder.span is not None
        start, end = self.finder.span
        body = b"".join(self._held)
        value = model.encode()
        self._held = [body[:start] + value + body[end:]]
        if self.length is not None:
            self.length += len(value) - (end - start)

    def head_end_and_held(self) -> bytes:
        """What follows the request's other headers: its framing, and the body so far."""
        framing = (b"transfer-encoding: chunked\r\n\r\n" if self.length is None
                   else b"content-length: %d\r\n\r\n" % self.length)
        held = b"".join(self._held)
        self._held, self._held_bytes = [], 0
        tail = _LAST_CHUNK if self.ended and self.length is None else b""
        return framing + (self._framed(held) if held else b"") + tail

    def connected(self, connection: BackendConnection) -> None:
        """The request's head and what was held went out: the rest follows as it comes."""
        self._connection = connection
        if self._holding:
            self._holding = False
            self._hold(False)

    def release(self) -> None:
        """The exchange ended: the rest of the body, if any, is read and dropped."""
        self._dropping = True
        self._connection = None
        self._held, self._held_bytes = [], 0
        if self._holding:
            self._holding = False
            self._hold(False)

    def _framed(self, piece: bytes) -> bytes:
        return piece if self.length is not None else b"%x\r\n%b\r\n" % (len(piece), piece)
