"""The async ``EventStream`` (``_events.py`` has the blocking one and what both share)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

import httpx

from llamactl.client._event_models import AnyEvent, parse_event
from llamactl.client._events import RETRIED, Backoff
from llamactl.client._streaming import SSEDecoder, StreamBase


class AsyncEventStream(StreamBase):
    """The async ``EventStream``: ``async with`` / ``async for``, ``aclose()``."""

    def __init__(self, open_response: Callable[[], Awaitable[httpx.Response]],
                 keepalive: Callable[[], Awaitable[None]], *, reconnect: bool,
                 max_backoff: float, what: str) -> None:
        self._open, self._what, self._reconnect = open_response, what, reconnect
        self._keepalive = keepalive
        self._backoff = Backoff(maximum=max_backoff)
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self._decoder = SSEDecoder()
        self._connected_once = False
        self._stop = asyncio.Event()
        self.reconnects = 0  # how many times a dropped connection was opened again

    async def __aenter__(self) -> AsyncEventStream:
        await self._connection()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> AnyEvent:
        while not self._stop.is_set():
            lines = await self._connection()
            if lines is None:
                break
            try:
                async for line in lines:
                    await self._keepalive()
                    payload = self._decoder.feed(line)
                    event = None if payload is None else parse_event(payload)
                    if event is not None:
                        return event
            except (httpx.HTTPError, httpx.StreamError):
                pass  # dropped, as when the server ends the stream
            await self._dropped()
        await self.aclose()
        raise StopAsyncIteration

    async def _connection(self) -> AsyncIterator[str] | None:
        if self._lines is not None or self._stop.is_set():
            return self._lines
        if not self._connected_once:
            self._attach(await self._open())
            self._connected_once = True
            return self._lines
        while not await self._stopped_within(self._backoff.delay()):
            try:
                self._attach(await self._open())
            except RETRIED:
                continue
            self._backoff.reset()
            self.reconnects += 1
            return self._lines
        return None

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _attach(self, response: httpx.Response) -> None:
        self._response, self._lines = response, response.aiter_lines()
        self._decoder = SSEDecoder()

    async def _dropped(self) -> None:
        response, self._response, self._lines = self._response, None, None
        if response is not None:
            await response.aclose()
        if not self._reconnect:
            self._stop.set()

    async def aclose(self) -> None:
        self._closed = True
        self._stop.set()
        response, self._response, self._lines = self._response, None, None
        if response is not None:
            await response.aclose()
