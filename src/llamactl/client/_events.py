"""Events: ``GET /api/events`` (server-sent events), read through the client's own httpx
client, so its transport, TLS settings, headers and proxies apply, as ``AnyEvent`` items.

Like the log streams, an event stream is an iterator and a context manager, and
``close()`` / ``aclose()`` ends it cleanly, also from another thread or task. The first
connection's failure is raised. When a connection drops (the server restarts, a proxy cuts it,
or it goes silent: the server writes at least a ``: ping`` every 15 s) it reconnects with
exponential backoff and jitter. The token is refreshed as lines arrive (the pings among them),
so it is still good when a reconnection needs it: a long-lived listener outlives any one token
and any one server process. Events published while no connection was open are not replayed:
the server keeps no history (it sends no ``id:``, so there is no ``Last-Event-ID`` to resume
from); ``list_instances()`` after a reconnect gives the state.

The async stream is in ``_async_events.py``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

import httpx

from llamactl.client._base import Call
from llamactl.client._event_models import AnyEvent, parse_event
from llamactl.client._exceptions import APIConnectionError, RateLimitError, ServerError
from llamactl.client._streaming import SSEDecoder, StreamBase, shutdown_socket

EVENTS_PATH = "/api/events"
# Three of the server's keep-alive intervals without a byte: the connection is dead.
SILENCE_TIMEOUT = 45.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
# Failures of a reconnection that are worth another try: the server is away, restarting or
# busy. Anything else (the token refused, no permission) ends the stream with that error.
RETRIED = (APIConnectionError, ServerError, RateLimitError)


def events_call(instances: Sequence[str] | None, base: httpx.Timeout) -> Call[None]:
    """The request of an event stream; ``instances`` keeps only their events (and the alerts
    about no instance), as the Go client's ``Events(ctx, names...)``."""
    if isinstance(instances, str):
        raise TypeError("instances is a list of names, not one string")
    params = None if instances is None else {"instances": ",".join(instances)}
    timeout = httpx.Timeout(connect=base.connect, read=SILENCE_TIMEOUT, write=base.write,
                            pool=base.pool)
    return Call("GET", EVENTS_PATH, lambda body: None, params=params, timeout=timeout,
                extra_headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"})


class Backoff:
    """Exponential delays with jitter, so that many clients cut off together do not all
    come back in the same instant."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial, self.maximum = initial, min(max(maximum, initial), BACKOFF_MAX * 10)
        self._next = initial

    def delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not cryptography)

    def reset(self) -> None:
        self._next = self.initial


class EventStream(StreamBase):
    """``AnyEvent`` items from ``/api/events``; reconnects after a drop (``reconnect=False``:
    the stream ends instead)."""

    def __init__(self, open_response: Callable[[], httpx.Response],
                 keepalive: Callable[[], None], *, reconnect: bool, max_backoff: float,
                 what: str) -> None:
        self._open, self._what, self._reconnect = open_response, what, reconnect
        self._keepalive = keepalive
        self._backoff = Backoff(maximum=max_backoff)
        self._response: httpx.Response | None = None
        self._lines: Iterator[str] | None = None
        self._decoder = SSEDecoder()
        self._connected_once = False
        self._stop = threading.Event()
        self.reconnects = 0  # how many times a dropped connection was opened again

    def __enter__(self) -> EventStream:
        self._connection()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> AnyEvent:
        while not self._stop.is_set():
            lines = self._connection()
            if lines is None:
                break
            try:
                for line in lines:
                    self._keepalive()  # the server's pings too: the token stays fresh
                    payload = self._decoder.feed(line)
                    event = None if payload is None else parse_event(payload)
                    if event is not None:
                        return event
            except (httpx.HTTPError, httpx.StreamError):
                pass  # dropped, as when the server ends the stream
            self._dropped()
        self.close()
        raise StopIteration

    def _connection(self) -> Iterator[str] | None:
        """The open stream's lines; (re)connects, waiting between attempts after a drop."""
        if self._lines is not None or self._stop.is_set():
            return self._lines
        if not self._connected_once:
            self._attach(self._open())
            self._connected_once = True
            return self._lines
        while not self._stop.wait(self._backoff.delay()):
            try:
                self._attach(self._open())
            except RETRIED:
                continue
            self._backoff.reset()
            self.reconnects += 1
            return self._lines
        return None

    def _attach(self, response: httpx.Response) -> None:
        self._response, self._lines = response, response.iter_lines()
        self._decoder = SSEDecoder()  # a message cut short by the drop is dropped with it

    def _dropped(self) -> None:
        response, self._response, self._lines = self._response, None, None
        if response is not None:
            response.close()
        if not self._reconnect:
            self._stop.set()

    def close(self) -> None:
        """End the stream; safe to call from another thread while one reads."""
        self._closed = True
        self._stop.set()
        response = self._response
        if response is not None:
            shutdown_socket(response)
            response.close()
