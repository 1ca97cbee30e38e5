"""Followed logs: Server-Sent Events over HTTP, as ``LogEntry`` items.

Each stream is an iterator (``async for`` for the async one) and a context manager, opened
on entry or on the first item, so ``with client.follow_logs(name) as logs:`` and a bare
``for entry in client.follow_logs(name):`` both work; ``close()`` / ``aclose()`` ends it
cleanly, also from another thread or task.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType

import httpx
import pydantic

from llamactl.client._exceptions import ConnectionError as ClientConnectionError
from llamactl.client._exceptions import ProtocolError
from llamactl.client._models import LogEntry


class SSEDecoder:
    """Server-Sent Events, line by line: the ``data:`` payload of each finished event."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:
            payload = "\n".join(self._data) if self._data else None
            self._data = []
            return payload
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None


def parse_log_entry(payload: str) -> LogEntry:
    try:
        return LogEntry.model_validate_json(payload)
    except pydantic.ValidationError:
        raise ProtocolError(f"not a log entry: {payload[:200]!r}") from None


class StreamBase:
    """What every stream has: what it reads (for messages) and whether it was closed."""

    _what = ""
    _closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._what!r}{' closed' if self._closed else ''}>"


class LogStream(StreamBase):
    """``LogEntry`` items of ``GET /api/instances/{name}/logs?follow=true`` as they are
    written; ends when closed or when the server ends the stream."""

    def __init__(self, open_response: Callable[[], httpx.Response], what: str) -> None:
        self._open, self._what = open_response, what
        self._response: httpx.Response | None = None
        self._lines: Iterator[str] | None = None
        self._decoder = SSEDecoder()

    def _ensure_open(self) -> Iterator[str]:
        if self._lines is None:
            self._response = self._open()
            self._lines = self._response.iter_lines()
        return self._lines

    def __enter__(self) -> LogStream:
        self._ensure_open()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> LogStream:
        return self

    def __next__(self) -> LogEntry:
        if self._closed:
            raise StopIteration
        lines = self._ensure_open()
        try:
            for line in lines:
                payload = self._decoder.feed(line)
                if payload is not None:
                    return parse_log_entry(payload)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            if not self._closed:
                self.close()
                raise ClientConnectionError(f"log stream {self._what} broke: {exc}") from None
        self.close()
        raise StopIteration

    def close(self) -> None:
        """End the stream; safe to call from another thread while one reads."""
        if self._closed:
            return
        self._closed = True
        if self._response is not None:
            shutdown_socket(self._response)
            self._response.close()


def shutdown_socket(response: httpx.Response) -> None:
    """Unblock a read in progress in another thread: closing the response alone leaves a
    thread blocked in recv() until the server writes again (maybe never); shutting the
    socket down wakes it at once. The connection is not reused after a stream anyway."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class AsyncLogStream(StreamBase):
    """The async ``LogStream``: ``async with`` / ``async for``, ``aclose()``."""

    def __init__(self, open_response: Callable[[], Awaitable[httpx.Response]],
                 what: str) -> None:
        self._open, self._what = open_response, what
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self._decoder = SSEDecoder()

    async def _ensure_open(self) -> AsyncIterator[str]:
        if self._lines is None:
            self._response = await self._open()
            self._lines = self._response.aiter_lines()
        return self._lines

    async def __aenter__(self) -> AsyncLogStream:
        await self._ensure_open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncLogStream:
        return self

    async def __anext__(self) -> LogEntry:
        if self._closed:
            raise StopAsyncIteration
        lines = await self._ensure_open()
        try:
            async for line in lines:
                payload = self._decoder.feed(line)
                if payload is not None:
                    return parse_log_entry(payload)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            if not self._closed:
                await self.aclose()
                raise ClientConnectionError(f"log stream {self._what} broke: {exc}") from None
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._closed = True
        if self._response is not None:
            await self._response.aclose()
