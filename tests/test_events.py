"""The ``/api/ws`` event feed, against real ``llamactl serve`` processes (and a real
llama-server where the behaviour is the real server's)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from llamactl.api.event_stream import is_wanted, parse_request
from llamactl.events import Event, EventHub
from tests.conftest import FAKE_COMMAND
from tests.support.feed import StalledClient, feed, stats_of, status_change
from tests.support.helpers import POLL, STATUS_TIMEOUT, llamactl_server, port_block, write_config

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FLOOD_ROUNDS = 64  # at most 64 x 1 MiB of pings before the stalled client must be dropped
FLOOD_PINGS = 8192


def server_config(tmp_path: Path, command: str | list[str], **events: Any) -> Path:
    low, high = port_block()
    return write_config(tmp_path / "config.yaml", {
        "backends": {"llama_cpp": {"command": command}},
        "instances": {"port_range": [low, high]},
        "rate_limit": {"enabled": False},
        "events": events,
    })


async def create(api: httpx.AsyncClient, name: str, model: Path, **fields: Any) -> None:
    response = await api.post("/api/instances",
                              json={"name": name, "model_path": str(model), **fields})
    assert response.status_code == 201, response.text


async def metric_line(api: httpx.AsyncClient, line: str, timeout: float = STATUS_TIMEOUT) -> bool:
    """Poll /metrics until it has ``line``; False if it never does within ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if line in (await api.get("/metrics")).text.splitlines():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(POLL)


async def test_a_start_is_seen_as_stopped_starting_running_then_stats(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = server_config(tmp_path, llama_server_bin, stats_interval=0.2)
    with llamactl_server(tmp_path / "data", config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api, \
                feed(server.url) as client:
            await create(api, "alpha", model, options={"threads": 1, "context_size": 512})
            assert (await api.post("/api/instances/alpha/start")).status_code == 200
            index, starting = await client.wait_for(status_change("alpha", "starting"))
            assert starting["data"] == {"name": "alpha", "status": "starting",
                                        "previous_status": "stopped"}
            index, running = await client.wait_for(status_change("alpha", "running"),
                                                   after=index)
            assert running["data"]["previous_status"] == "starting"
            assert set(running) == {"type", "timestamp", "data"}
            assert TIMESTAMP.match(running["timestamp"])

            _, stats = await client.wait_for(stats_of("alpha"), after=index)
            assert set(stats["data"]) == {"name", "stats"}
            numbers = stats["data"]["stats"]
            assert set(numbers) == {"memory_usage", "cpu_usage", "uptime"}
            assert isinstance(numbers["memory_usage"], int)
            assert numbers["memory_usage"] > 0
            assert isinstance(numbers["cpu_usage"], int | float)
            assert isinstance(numbers["uptime"], int)
            assert (await api.post("/api/instances/alpha/stop")).status_code == 200
            await client.wait_for(status_change("alpha", "stopped"), after=index)


async def test_a_crash_without_auto_restart_fails_with_an_error_alert(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = server_config(tmp_path, llama_server_bin)
    with llamactl_server(tmp_path / "data", config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api, \
                feed(server.url) as client:
            await create(api, "beta", model, auto_restart=False,
                         options={"threads": 1, "context_size": 512})
            assert (await api.post("/api/instances/beta/start?wait=true")).status_code == 200
            pid = (await api.get("/api/instances/beta")).json()["pid"]
            index, _ = await client.wait_for(status_change("beta", "running"))
            os.kill(pid, signal.SIGKILL)
            index, failed = await client.wait_for(status_change("beta", "failed"), after=index)
            assert failed["data"]["previous_status"] == "running"
            _, alert = await client.wait_for(lambda m: m["type"] == "system_alert", after=index)
            assert alert["data"]["level"] == "error"
            assert alert["data"]["instance"] == "beta"
            assert "crashed" in alert["data"]["message"]


async def test_subscribe_keeps_only_the_named_instances(tmp_path: Path, fake_model: Path) -> None:
    config = server_config(tmp_path, FAKE_COMMAND, stats_interval=0.1)
    with llamactl_server(tmp_path / "data", config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api, \
                feed(server.url) as everything, feed(server.url) as only_a:
            await only_a.send({"type": "subscribe", "instances": ["a"]})
            _, ack = await only_a.wait_for(lambda m: m["type"] == "subscribed")
            assert ack["data"] == {"instances": ["a"]}
            for name in ("a", "b"):
                await create(api, name, fake_model)
                assert (await api.post(f"/api/instances/{name}/start")).status_code == 200
            _, b_stats = await everything.wait_for(stats_of("b"))
            # Each client gets the events in the order they were published: once the filtered
            # client has an event of "a" from after b's stats, it has been offered all of b's.
            await only_a.wait_for(lambda m: stats_of("a")(m)
                                  and m["timestamp"] > b_stats["timestamp"])
            names = {m["data"].get("name") for m in only_a.messages if m["type"] != "subscribed"}
            assert names == {"a"}
            assert any(m["type"] == "instance_status_changed" for m in only_a.messages)

            await only_a.send({"type": "subscribe", "instances": None})
            index, ack = await only_a.wait_for(lambda m: m["type"] == "subscribed"
                                               and m["data"]["instances"] is None)
            await only_a.wait_for(stats_of("b"), after=index)


async def test_bad_client_messages_get_errors_and_pings_come_when_idle(tmp_path: Path) -> None:
    config = server_config(tmp_path, FAKE_COMMAND, ping_interval=0.5)
    with llamactl_server(tmp_path / "data", config) as server:
        async with feed(server.url) as client:
            for bad in ("not json", "[1, 2]", '{"type": "bogus"}',
                        '{"type": "subscribe", "instances": "a"}', '{"no": "type"}'):
                await client.send(bad)
            await client.send({"type": "ping"})
            index, _ = await client.wait_for(lambda m: m["type"] == "pong")
            errors = [m for m in client.messages[:index] if m["type"] == "error"]
            assert len(errors) == 5
            assert all(m["data"]["message"] for m in errors)
            assert "bogus" in errors[2]["data"]["message"]
            # Nothing to say for ping_interval: the server says so, with the events' shape.
            _, ping = await client.wait_for(lambda m: m["type"] == "ping", after=index)
            assert set(ping) == {"type", "timestamp", "data"}
            await client.send({"type": "pong"})
            await client.send({"type": "ping"})
            await client.wait_for(lambda m: m["type"] == "pong", after=index + 1)


async def test_a_client_that_never_reads_is_dropped_and_the_others_keep_receiving(
    tmp_path: Path, fake_model: Path
) -> None:
    config = server_config(tmp_path, FAKE_COMMAND, stats_interval=0.05, queue_size=4)
    with llamactl_server(tmp_path / "data", config) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api, \
                feed(server.url) as reader:
            await create(api, "busy", fake_model)
            assert (await api.post("/api/instances/busy/start?wait=true")).status_code == 200
            await reader.wait_for(stats_of("busy"))
            stalled = StalledClient(server.port)
            try:
                await stalled.handshake()
                assert await metric_line(api, "llamactl_websocket_clients 2.0")
                # Pongs that it never reads fill the server's buffers for this connection
                # until sending to it blocks; then its queue of events overflows.
                for _ in range(FLOOD_ROUNDS):
                    await stalled.flood_pings(FLOOD_PINGS)
                    if await metric_line(api, "llamactl_websocket_dropped_total 1.0", 1.0):
                        break
                else:
                    pytest.fail("the stalled client was never dropped")
                seen = len(reader.messages)
                code, reason = await stalled.read_until_closed()
            finally:
                stalled.close()
            assert (code, reason) == (1013, "too slow: event queue overflowed")
            index = seen
            for _ in range(3):
                index, _ = await reader.wait_for(stats_of("busy"), after=index + 1)
            assert await metric_line(api, "llamactl_websocket_clients 1.0")


def test_filters_pass_alerts_about_no_instance() -> None:
    alert = Event("system_alert", {"level": "warning", "message": "disk"})
    about_b = Event("system_alert", {"level": "error", "message": "x", "instance": "b"})
    stats_a = Event("instance_stats_updated", {"name": "a", "stats": {}})
    assert is_wanted(alert, frozenset({"a"}))
    assert not is_wanted(about_b, frozenset({"a"}))
    assert is_wanted(stats_a, frozenset({"a"}))
    assert not is_wanted(stats_a, frozenset())
    assert all(is_wanted(e, None) for e in (alert, about_b, stats_a))


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "not JSON"), ("3", "object"), ('{"type": 1}', "object"),
    ('{"type": "subscribe", "instances": [1]}', "list of instance names"),
    ('{"type": "nope"}', "unknown"),
])
def test_bad_requests_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_request(text)


async def test_a_full_queue_drops_its_subscriber_and_wakes_it() -> None:
    hub = EventHub()
    slow, fast = hub.subscribe(2), hub.subscribe(8)
    for n in range(3):
        hub.status_changed(f"i{n}", "running", "starting")
    assert slow.overflowed
    assert slow.dropped.is_set()
    assert not fast.overflowed
    assert hub.subscriber_count == 1
    assert fast.queue.qsize() == 3
