"""``llamactl.AsyncClient`` against a real ``llamactl serve`` running real llama-servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamactl import (
    AsyncClient,
    ConflictError,
    InstanceStatusChanged,
    LogEntry,
    NotFoundError,
    StartFailedError,
    ValidationError,
)
from tests.support.clients import running_server
from tests.support.helpers import (
    STATUS_TIMEOUT,
    LlamactlProcess,
    free_port,
    write_unloadable_model,
)

pytestmark = pytest.mark.llama


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin) as process:
        yield process


async def wait_status(client: AsyncClient, name: str, status: str) -> None:
    async with asyncio.timeout(STATUS_TIMEOUT):
        while (await client.get_instance(name)).status != status:
            await asyncio.sleep(0.1)


async def test_every_operation(server: LlamactlProcess, model: Path) -> None:
    async with AsyncClient(server.url) as client:
        assert await client.list_instances() == []
        port = free_port()
        created = await client.create_instance("walk", str(model), port=port)
        assert (created.status, created.port) == ("stopped", port)
        updated = await client.update_instance("walk", options={"context_size": 256})
        assert updated.instance.options == {"context_size": 256}
        assert (await client.instance_health("walk")).status == "stopped"

        assert (await client.start_instance("walk", wait=True)).status == "running"
        assert (await client.get_instance("walk")).pid is not None
        assert (await client.instance_health("walk")).status == "healthy"
        history = await client.instance_history("walk")
        assert (history.name, history.interval) == ("walk", 5.0)
        assert len(await client.instance_logs("walk", lines=3)) == 3
        assert (await client.restart_instance("walk", wait=True)).status == "running"
        assert (await client.stop_instance("walk", wait=True)).status == "stopped"

        assert (await client.start_all()).started == ["walk"]
        await wait_status(client, "walk", "running")
        assert (await client.stop_all()).stopped == ["walk"]
        await wait_status(client, "walk", "stopped")

        assert (await client.system_status()).instances.total == 1
        assert (await client.system_info()).memory_total > 0
        assert (await client.get_config())["instances"]["port_range"]
        assert (await client.update_config({"instances": {"max_restarts": 2}})).restart_required
        assert "max_restarts: 2" in server.config.read_text()
        await client.delete_instance("walk")
        assert await client.list_instances() == []


async def test_errors_are_typed(server: LlamactlProcess, model: Path, tmp_path: Path) -> None:
    garbage = write_unloadable_model(tmp_path / "models" / "garbage.gguf")
    async with AsyncClient(server.url) as client:
        with pytest.raises(NotFoundError):
            await client.delete_instance("nope")
        await client.create_instance("a", str(model))
        with pytest.raises(ConflictError):
            await client.create_instance("a", str(model))
        with pytest.raises(ValidationError):
            await client.update_instance("a", options={"threads": "four"})
        await client.create_instance("broken", str(garbage))
        with pytest.raises(StartFailedError) as failed:
            await client.start_instance("broken", wait=True)
        assert "garbage.gguf" in failed.value.details


async def test_follow_logs_and_events_while_an_instance_starts(
    server: LlamactlProcess, model: Path
) -> None:
    async with AsyncClient(server.url) as client:
        await client.create_instance("live", str(model))
        entries: list[LogEntry] = []
        events: list[InstanceStatusChanged] = []

        async def follow() -> None:
            async with client.follow_logs("live", lines=0) as stream:
                async for entry in stream:
                    entries.append(entry)
                    if "listening" in entry.message:
                        return

        async def watch() -> None:
            async with client.events() as stream:
                async for event in stream:
                    if isinstance(event, InstanceStatusChanged):
                        events.append(event)
                        if event.data.status == "running":
                            return

        tasks = [asyncio.create_task(follow()), asyncio.create_task(watch())]
        await asyncio.sleep(0.5)  # both streams open before the start
        await client.start_instance("live", wait=True)
        async with asyncio.timeout(STATUS_TIMEOUT):
            await asyncio.gather(*tasks)
        assert "starting:" in entries[0].message
        assert [e.data.status for e in events] == ["starting", "running"]
        await client.stop_instance("live", wait=True)


async def test_streams_close_cleanly_while_waiting(server: LlamactlProcess, model: Path) -> None:
    async with AsyncClient(server.url) as client:
        await client.create_instance("quiet", str(model))
        logs = client.follow_logs("quiet")
        events = client.events()
        async with logs, events:
            reading = [asyncio.create_task(anext(logs)), asyncio.create_task(anext(events))]
            await asyncio.sleep(0.5)  # nothing to read: both wait
            assert not any(task.done() for task in reading)
            await logs.aclose()
            await events.aclose()
            async with asyncio.timeout(5):
                outcomes = await asyncio.gather(*reading, return_exceptions=True)
        assert all(isinstance(o, StopAsyncIteration) for o in outcomes), outcomes
