"""The async ``EventStream`` (``_events.py`` has the blocking one and what both share)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable
from types import TracebackType

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.exceptions import ConnectionClosed

from llamactl.client._events import KEEPALIVE_INTERVAL, Backoff, closed_error, parse_event
from llamactl.client._exceptions import ConnectionError as ClientConnectionError
from llamactl.client._models import Event
from llamactl.client._streaming import StreamBase


class AsyncEventStream(StreamBase):
    """The async ``EventStream``: ``async with`` / ``async for``, ``aclose()``."""

    def __init__(self, connect: Callable[[], Awaitable[AsyncConnection]],
                 keepalive: Callable[[], Awaitable[None]],
                 *, reconnect: bool, max_backoff: float, what: str) -> None:
        self._connect, self._keepalive, self._what = connect, keepalive, what
        self._reconnect = reconnect
        self._backoff = Backoff(maximum=max_backoff)
        self._ws: AsyncConnection | None = None
        self._connected_once = False
        self._stop = asyncio.Event()

    async def __aenter__(self) -> AsyncEventStream:
        await self._connection()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._stop.is_set():
            ws = await self._connection()
            if ws is None:
                break
            try:
                # Cancelling recv() is safe in websockets: no message is lost.
                message = await asyncio.wait_for(ws.recv(), KEEPALIVE_INTERVAL)
            except builtins.TimeoutError:
                await self._keepalive()
                continue
            except ConnectionClosed as exc:
                await self._dropped(exc)
                continue
            event = parse_event(message)
            if event is not None:
                return event
        await self.aclose()
        raise StopAsyncIteration

    async def _connection(self) -> AsyncConnection | None:
        if self._ws is not None or self._stop.is_set():
            return self._ws
        if not self._connected_once:
            self._ws = await self._connect()
            self._connected_once = True
            return self._ws
        while not await self._stopped_within(self._backoff.delay()):
            try:
                self._ws = await self._connect()
            except ClientConnectionError:
                continue
            self._backoff.reset()
            return self._ws
        return None

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except builtins.TimeoutError:
            return False
        return True

    async def _dropped(self, exc: ConnectionClosed) -> None:
        self._ws = None
        if self._stop.is_set():
            return
        error = closed_error(exc)
        if error is not None:
            await self.aclose()
            raise error
        if not self._reconnect:
            await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        self._stop.set()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
