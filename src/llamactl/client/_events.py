"""Events: the ``/api/ws`` WebSocket feed, as ``Event`` items.

Like the log streams, an event stream is an iterator and a context manager, and
``close()`` / ``aclose()`` ends it cleanly, also from another thread or task. When the
connection drops it reconnects with exponential backoff, and while it waits for events it keeps
the client's token fresh, so a long-lived listener outlives any one token.

The async stream is in ``_async_events.py``, so that the blocking client (and the command
line) never import asyncio's WebSocket machinery.
"""

from __future__ import annotations

import builtins
import json
import random
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pydantic
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from llamactl.client._exceptions import (
    APIError,
    AuthenticationError,
    LlamactlError,
    PermissionDeniedError,
    ProtocolError,
    error_class,
)
from llamactl.client._exceptions import ConnectionError as ClientConnectionError
from llamactl.client._models import Event
from llamactl.client._streaming import StreamBase

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection as SyncConnection

# A quiet event stream wakes this often to refresh the token and to notice close().
KEEPALIVE_INTERVAL = 1.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
# Messages of the feed itself, not events: "ping" keeps a quiet connection alive for
# browsers, "pong" and "subscribed" answer a client's requests.
_CONTROL_TYPES = {"ping", "pong", "subscribed"}
# Close codes that mean "you may not listen": reconnecting would only be refused again.
_AUTH_CLOSE_CODES = {1008: AuthenticationError, 4401: AuthenticationError,
                     4403: PermissionDeniedError}


def parse_event(message: str | bytes) -> Event | None:
    """The event in a message, or None for the feed's own keep-alive and acknowledgements."""
    try:
        event = Event.model_validate_json(message)
    except pydantic.ValidationError:
        raise ProtocolError(f"not an event: {message[:200]!r}") from None
    return None if event.type in _CONTROL_TYPES else event


class Backoff:
    """Exponential delays with jitter, so that many clients cut off together do not all
    come back in the same instant."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial, self.maximum = initial, maximum
        self._next = initial

    def delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not cryptography)

    def reset(self) -> None:
        self._next = self.initial


def websocket_error(exc: Exception, url: str) -> LlamactlError:
    """A failed WebSocket handshake or connection, as our exception."""
    if isinstance(exc, InvalidStatus):
        return _refused(exc.response.status_code, bytes(exc.response.body or b""))
    if isinstance(exc, InvalidHandshake | OSError | builtins.TimeoutError):
        return ClientConnectionError(f"cannot open {url}: {exc}")
    return LlamactlError(f"{url}: {exc}")


def _refused(status: int, content: bytes) -> APIError:
    try:
        body: Any = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return error_class(status, body["code"])(str(body.get("error", "")), status_code=status,
                                                 code=body["code"], details=body.get("details"))
    if status in (401, 403):
        # A server refuses a WebSocket before accepting it with a bare 403 whatever the
        # reason, and every role may listen to events: it is the token.
        return AuthenticationError(
            f"WebSocket refused with HTTP {status}: the token is missing, invalid or expired",
            status_code=status, code="UNAUTHORIZED")
    return error_class(status, f"HTTP_{status}")(f"WebSocket refused with HTTP {status}",
                                                 status_code=status, code=f"HTTP_{status}")


def closed_error(exc: ConnectionClosed) -> LlamactlError | None:
    """The error a server-side close stands for, or None for an ordinary drop."""
    if exc.rcvd is None or exc.rcvd.code not in _AUTH_CLOSE_CODES:
        return None
    code = exc.rcvd.code
    return _AUTH_CLOSE_CODES[code](exc.rcvd.reason or "WebSocket closed by the server",
                                   status_code=403 if code == 4403 else 401,
                                   code="FORBIDDEN" if code == 4403 else "UNAUTHORIZED")


class EventStream(StreamBase):
    """``Event`` items from ``/api/ws``. The first connection's failure is raised; later
    drops are retried with exponential backoff (``reconnect=False``: the stream ends)."""

    def __init__(self, connect: Callable[[], SyncConnection], keepalive: Callable[[], None],
                 *, reconnect: bool, max_backoff: float, what: str) -> None:
        self._connect, self._keepalive, self._what = connect, keepalive, what
        self._reconnect = reconnect
        self._backoff = Backoff(maximum=max_backoff)
        self._ws: SyncConnection | None = None
        self._connected_once = False
        self._stop = threading.Event()

    def __enter__(self) -> EventStream:
        self._connection()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        while not self._stop.is_set():
            ws = self._connection()
            if ws is None:
                break
            try:
                message = ws.recv(timeout=KEEPALIVE_INTERVAL)
            except builtins.TimeoutError:
                self._keepalive()
                continue
            except ConnectionClosed as exc:
                self._dropped(exc)
                continue
            event = parse_event(message)
            if event is not None:
                return event
        self.close()
        raise StopIteration

    def _connection(self) -> SyncConnection | None:
        """The open connection; (re)connects, waiting between attempts after a drop."""
        if self._ws is not None or self._stop.is_set():
            return self._ws
        if not self._connected_once:
            self._ws = self._connect()
            self._connected_once = True
            return self._ws
        while not self._stop.wait(self._backoff.delay()):
            try:
                self._ws = self._connect()
            except ClientConnectionError:
                continue
            self._backoff.reset()
            return self._ws
        return None

    def _dropped(self, exc: ConnectionClosed) -> None:
        self._ws = None
        if self._stop.is_set():
            return
        error = closed_error(exc)
        if error is not None:
            self.close()
            raise error
        if not self._reconnect:
            self.close()

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
