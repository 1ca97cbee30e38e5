"""``GET /api/events``: the WebSocket feed's messages as a server-sent event stream, against
real ``llamactl serve`` processes (a real llama-server where the behaviour is the real one's);
the stalled-client path in-process, where a send that never returns can be staged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from llamactl.api.routes.events import EventSourceResponse, parse_instances
from llamactl.events import EventHub
from tests.conftest import FAKE_COMMAND
from tests.support.clients import ServerProcess
from tests.support.feed import ReceivedMessages, feed, stats_of, status_change
from tests.support.helpers import POLL, STATUS_TIMEOUT, write_config

Message = dict[str, Any]
PASSWORD = "sse-viewer-password"
STALL_TIMEOUT = 5.0  # seconds the stalled stream may take to end once its queue overflows
# This file's servers and instances stay in 20000-20999, clear of the other suites' ports and
# below Linux's ephemeral range (32768 and up), where a client's local end can take a port.
SERVER_PORTS = range(20000, 20400)
INSTANCE_PORTS = range(20400, 21000)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(ports: range) -> int:
    start = time.monotonic_ns() % len(ports)
    for offset in range(len(ports)):
        port = ports[(start + offset) % len(ports)]
        if _bindable(port):
            return port
    raise AssertionError(f"no free port in {ports}")


def port_block(size: int = 10) -> int:
    """The first of ``size`` free ports in a row, in INSTANCE_PORTS."""
    lows = range(INSTANCE_PORTS.start, INSTANCE_PORTS.stop - size + 1, size)
    start = time.monotonic_ns() % len(lows)
    for offset in range(len(lows)):
        low = lows[(start + offset) % len(lows)]
        if all(_bindable(p) for p in range(low, low + size)):
            return low
    raise AssertionError(f"no {size} free ports in {INSTANCE_PORTS}")


def server_config(tmp_path: Path, command: str | list[str], **sections: Any) -> Path:
    low = port_block()
    return write_config(tmp_path / "config.yaml", {
        "backends": {"llama_cpp": {"command": command}},
        "instances": {"port_range": [low, low + 9]},
        "rate_limit": {"enabled": False},
        **sections,
    })


@contextlib.contextmanager
def serve(tmp_path: Path, config: Path) -> Iterator[ServerProcess]:
    """A real ``llamactl serve`` on a port of this file's range (401 counts as up)."""
    server = ServerProcess(tmp_path / "data", config, pick_port(SERVER_PORTS))
    try:
        server.start()
        yield server
    finally:
        server.stop()


class EventSourceClient(ReceivedMessages):
    """Reads ``/api/events`` in the background: the ``data:`` messages and the comments."""

    def __init__(self, response: httpx.Response):
        super().__init__()
        self.response = response
        self.comments: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            async for line in self.response.aiter_lines():
                if line.startswith("data: "):
                    self.messages.append(json.loads(line.removeprefix("data: ")))
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    assert line == "", f"not a line of this stream: {line!r}"

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def event_source(url: str, query: str = "",
                       headers: dict[str, str] | None = None) -> AsyncIterator[EventSourceClient]:
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, read=None)) as http, \
            http.stream("GET", f"/api/events{query}", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        client = EventSourceClient(response)
        try:
            yield client
        finally:
            await client.close()


async def create_and_start(api: httpx.AsyncClient, name: str, model: Path,
                           **fields: Any) -> None:
    created = await api.post("/api/instances",
                             json={"name": name, "model_path": str(model), **fields})
    assert created.status_code == 201, created.text
    started = await api.post(f"/api/instances/{name}/start")
    assert started.status_code == 200, started.text


def until_running(messages: list[Message]) -> list[Message]:
    changes = [m for m in messages if m["type"] == "instance_status_changed"]
    ends = [i for i, m in enumerate(changes) if m["data"]["status"] == "running"]
    return changes[:ends[0] + 1]


async def test_a_start_arrives_as_the_websocket_messages(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = server_config(tmp_path, llama_server_bin, events={"stats_interval": 0.2})
    with serve(tmp_path, config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api, \
                feed(server.url) as websocket, event_source(server.url) as stream:
            await create_and_start(api, "alpha", model,
                                   options={"threads": 1, "context_size": 512})
            index, starting = await stream.wait_for(status_change("alpha", "starting"))
            assert starting["data"] == {"name": "alpha", "status": "starting",
                                        "previous_status": "stopped"}
            index, running = await stream.wait_for(status_change("alpha", "running"),
                                                   after=index)
            assert set(running) == {"type", "timestamp", "data"}
            await stream.wait_for(stats_of("alpha"), after=index)
            # The same messages, timestamps and all, as the WebSocket's.
            await websocket.wait_for(status_change("alpha", "running"))
            assert until_running(stream.messages) == until_running(websocket.messages)
            assert (await api.post("/api/instances/alpha/stop")).status_code == 200
            await stream.wait_for(status_change("alpha", "stopped"), after=index)


async def test_the_instances_filter_and_the_keepalive(tmp_path: Path, fake_model: Path) -> None:
    config = server_config(tmp_path, FAKE_COMMAND,
                           events={"stats_interval": 0.1, "ping_interval": 0.5})
    with serve(tmp_path, config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api, \
                event_source(server.url) as everything, \
                event_source(server.url, "?instances=a,%20c") as only_a, \
                event_source(server.url, "?instances=nobody") as nothing:
            for name in ("a", "b"):
                await create_and_start(api, name, fake_model)
            _, b_stats = await everything.wait_for(stats_of("b"))
            # Events come in the order they were published: once the filtered stream has an
            # event of "a" from after b's stats, it has been offered all of b's.
            await only_a.wait_for(lambda m: stats_of("a")(m)
                                  and m["timestamp"] > b_stats["timestamp"])
            assert {m["data"]["name"] for m in only_a.messages} == {"a"}
            assert any(m["type"] == "instance_status_changed" for m in only_a.messages)
            # Stats keep coming, but none are for "nobody": that stream gets keepalives.
            deadline = time.monotonic() + STATUS_TIMEOUT
            while nothing.comments.count(": ping") < 2:
                assert time.monotonic() < deadline, "no keepalive comment"
                await asyncio.sleep(POLL)
            for name in ("a", "b"):
                await api.post(f"/api/instances/{name}/stop", json={"force": True})
                await everything.wait_for(status_change(name, "stopped"))
            assert nothing.messages == []


def add_viewer(config: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "llamactl", "users", "add", "watcher", "--role", "viewer",
         "--password-stdin", "--config", str(config)],
        input=PASSWORD, text=True, check=True, capture_output=True, timeout=120,
    )


async def test_auth_is_required_and_a_token_may_come_in_the_query(
    tmp_path: Path, fake_model: Path
) -> None:
    config = server_config(tmp_path, FAKE_COMMAND, auth={"enabled": True})
    add_viewer(config)
    with serve(tmp_path, config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api:
            refused = await api.get("/api/events")
            assert refused.status_code == 401
            assert refused.json()["code"] == "UNAUTHORIZED"
            assert (await api.get("/api/events?token=forged")).status_code == 401
            login = await api.post("/api/auth/login",
                                   json={"username": "watcher", "password": PASSWORD})
            token = login.json()["token"]
        async with event_source(server.url, f"?token={token}") as by_query, \
                event_source(server.url, headers={"Authorization": f"Bearer {token}"}):
            assert by_query.messages == []


class StalledSend:
    """An ASGI ``send`` that takes the response's start, then blocks like a client that
    stopped reading."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            await asyncio.Event().wait()  # forever: only a cancellation ends it


async def test_a_stalled_client_is_dropped_without_slowing_the_hub() -> None:
    hub = EventHub()
    send = StalledSend()
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()
        return {"type": "http.disconnect"}

    response = EventSourceResponse(hub, queue_size=2, instances=None, close_timeout=0.2)
    task = asyncio.create_task(response({"type": "http"}, receive, send))
    while hub.subscriber_count == 0:
        await asyncio.sleep(0)
    for n in range(10):  # the first is stuck in send, two fill the queue, the next overflows
        hub.status_changed(f"i{n}", "running", "starting")  # synchronous: it cannot wait
        await asyncio.sleep(0)
    assert hub.subscriber_count == 0  # dropped as too slow, not waited for
    await asyncio.wait_for(task, STALL_TIMEOUT)
    assert send.sent[0]["status"] == 200
    assert len([m for m in send.sent if m["type"] == "http.response.body"]) >= 2


def test_the_filter_query() -> None:
    assert parse_instances(None) is None
    assert parse_instances("a,b") == frozenset({"a", "b"})
    assert parse_instances(" a , ,b,") == frozenset({"a", "b"})
    assert parse_instances("") == frozenset()
