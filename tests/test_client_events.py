"""``events()`` over ``/api/events`` through the client's own httpx client, against a real
``llamactl serve``: the instance filter, the typed models, the client's transport and headers,
and reconnecting after a dropped connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from llamactl import (
    AnyEvent,
    AsyncClient,
    Client,
    InstanceStatsUpdated,
    InstanceStatusChanged,
)
from tests.support.clients import running_server
from tests.support.helpers import STATUS_TIMEOUT, LlamactlProcess

pytestmark = pytest.mark.llama


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin, events={"stats_interval": 0.5}) as process:
        yield process


class RecordingTransport(httpx.HTTPTransport):
    """The real network transport, noting each request it sends: proof of which calls go
    through the client's own transport."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


def test_events_are_filtered_typed_and_go_through_the_clients_transport(
        server: LlamactlProcess, model: Path) -> None:
    transport = RecordingTransport()
    with Client(server.url, transport=transport) as client:
        client.create_instance("a", str(model))
        client.create_instance("b", str(model))
        received: list[AnyEvent] = []
        with client.events(["a"]) as events:
            client.start_instance("b")
            client.start_instance("a")
            for event in events:
                received.append(event)
                if isinstance(event, InstanceStatsUpdated):
                    break
        client.stop_all()
    changes = [e for e in received if isinstance(e, InstanceStatusChanged)]
    assert [(e.data.name, e.data.status) for e in changes] == [("a", "starting"),
                                                               ("a", "running")]
    assert all(type(e) in (InstanceStatusChanged, InstanceStatsUpdated) for e in received)
    stats = received[-1]
    assert isinstance(stats, InstanceStatsUpdated)
    assert stats.data.name == "a"
    assert isinstance(stats.data.stats.memory_usage, int)
    assert stats.data.stats.memory_usage > 0
    opened = [r for r in transport.requests if r.url.path == "/api/events"]
    assert len(opened) == 1
    assert opened[0].url.params["instances"] == "a"
    assert opened[0].headers["accept"] == "text/event-stream"
    assert opened[0].headers["user-agent"].startswith("llamactl-python/")


class Relay:
    """A TCP relay in front of llamactl whose connections the test can cut: a proxy or a
    network dropping the stream while llamactl runs on."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._writers: list[asyncio.StreamWriter] = []
        self.url = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            self.cut()
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._writers += [writer, up_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Drop every connection through the relay, as a network failure would."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()


async def test_async_events_reconnect_after_the_connection_drops(
        server: LlamactlProcess, model: Path) -> None:
    async with Relay(server.url).running() as relay, AsyncClient(relay.url) as client:
        await client.create_instance("d", str(model))
        seen: list[str] = []
        async with client.events(["d"], max_backoff=0.5) as stream:

            async def read() -> None:
                async for event in stream:
                    if isinstance(event, InstanceStatusChanged):
                        seen.append(event.data.status)
                        if event.data.status == "stopped":
                            return

            reader = asyncio.create_task(read())
            await client.start_instance("d", wait=True)
            async with asyncio.timeout(STATUS_TIMEOUT):
                while "running" not in seen:
                    await asyncio.sleep(0.05)
                relay.cut()  # the stream's connection goes; llamactl does not notice a thing
                while stream.reconnects == 0:
                    await asyncio.sleep(0.05)
                # Events come again on the new connection.
                await client.stop_instance("d", wait=True)
                await reader
        assert seen == ["starting", "running", "stopping", "stopped"]
        assert stream.reconnects == 1
