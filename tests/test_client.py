"""``llamactl.Client`` against a real ``llamactl serve`` running real llama-servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamactl import (
    AnyEvent,
    Client,
    ConflictError,
    InstanceStatusChanged,
    LogEntry,
    NotFoundError,
    StartFailedError,
    ValidationError,
)
from tests.support.clients import running_server
from tests.support.helpers import LlamactlProcess, wait_until, write_unloadable_model

pytestmark = pytest.mark.llama
JOIN_TIMEOUT = 10.0


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin) as process:
        yield process


def test_the_seed_snippet_works_verbatim(server: LlamactlProcess) -> None:
    port = server.port
    namespace: dict[str, object] = {}
    exec(  # the API reference's Python example, with only the port filled in
        "from llamactl import Client\n"
        "\n"
        f'client = Client("http://localhost:{port}")\n'
        "instances = client.list_instances()\n",
        namespace,
    )
    assert namespace["instances"] == []
    namespace["client"].close()  # type: ignore[attr-defined]  # the snippet leaves it open


def test_every_operation(server: LlamactlProcess, model: Path) -> None:
    with Client(server.url) as client:
        created = client.create_instance("walk", str(model), options={"context_size": 256})
        assert (created.status, created.pid, created.backend) == ("stopped", None, "llama_cpp")
        assert [i.name for i in client.list_instances()] == ["walk"]
        updated = client.update_instance("walk", options={"threads": 2})
        assert updated.instance.options == {"context_size": 256, "threads": 2}
        assert updated.restart_required is False
        assert client.instance_health("walk").status == "stopped"

        assert client.start_instance("walk", wait=True).status == "running"
        running = client.get_instance("walk")
        assert running.status == "running"
        assert running.pid is not None
        assert client.instance_health("walk").status == "healthy"
        history = client.instance_history("walk")  # samples come every stats interval
        assert (history.name, history.interval) == ("walk", 5.0)
        assert all(sample.memory_usage > 0 for sample in history.samples)
        assert 0 < len(client.instance_logs("walk", lines=5)) <= 5
        warnings = client.instance_logs("walk", lines=1000, level="warn")
        assert all(entry.level in ("warn", "error") for entry in warnings)

        assert client.restart_instance("walk", wait=True).status == "running"
        assert client.get_instance("walk").pid not in (None, running.pid)
        assert client.stop_instance("walk", wait=True).status == "stopped"

        assert client.start_all().started == ["walk"]
        wait_until(lambda: client.get_instance("walk").status == "running", what="start-all")
        assert client.stop_all().stopped == ["walk"]
        wait_until(lambda: client.get_instance("walk").status == "stopped", what="stop-all")

        status = client.system_status()
        assert (status.instances.total, status.instances.stopped) == (1, 1)
        assert client.system_info().cpu_count >= 1
        assert client.get_config()["rate_limit"]["enabled"] is False
        changed = client.update_config({"instances": {"idle_timeout": 7}})
        assert changed.restart_required is True
        assert "idle_timeout: 7" in server.config.read_text()

        client.delete_instance("walk")
        assert client.list_instances() == []


def test_errors_are_typed(server: LlamactlProcess, model: Path, tmp_path: Path) -> None:
    with Client(server.url) as client:
        with pytest.raises(NotFoundError) as missing:
            client.get_instance("nope")
        assert missing.value.code == "INSTANCE_NOT_FOUND"
        client.create_instance("a", str(model))
        with pytest.raises(ConflictError) as exists:
            client.create_instance("a", str(model))
        assert exists.value.code == "INSTANCE_EXISTS"
        with pytest.raises(ConflictError) as not_running:
            client.stop_instance("a")
        assert not_running.value.code == "INSTANCE_NOT_RUNNING"
        with pytest.raises(ValidationError) as bad_option:
            client.create_instance("b", str(model), options={"no_such_flag": 1})
        assert "no_such_flag" in str(bad_option.value.details)
        with pytest.raises(ValidationError) as bad_name:
            client.create_instance("-bad name", str(model))
        assert bad_name.value.code == "VALIDATION_ERROR"
        with pytest.raises(ValidationError) as no_model:
            client.create_instance("c", str(tmp_path / "missing.gguf"))
        assert no_model.value.code == "MODEL_NOT_FOUND"


def test_a_failed_start_raises_with_the_backends_reason(
    server: LlamactlProcess, tmp_path: Path
) -> None:
    garbage = write_unloadable_model(tmp_path / "models" / "garbage.gguf")
    with Client(server.url) as client:
        client.create_instance("broken", str(garbage))
        with pytest.raises(StartFailedError) as failed:
            client.start_instance("broken", wait=True, timeout=60)
        assert failed.value.status_code == 502
        assert "garbage.gguf" in failed.value.details
        assert client.get_instance("broken").status == "failed"


def test_follow_logs_receives_entries_while_the_instance_starts(
    server: LlamactlProcess, model: Path
) -> None:
    with Client(server.url) as client:
        client.create_instance("f", str(model))
        received: list[LogEntry] = []
        stream = client.follow_logs("f", lines=0)

        def read() -> None:
            received.extend(stream)

        with stream:
            reader = threading.Thread(target=read)
            reader.start()
            client.start_instance("f", wait=True)
            wait_until(lambda: any("listening" in e.message for e in received),
                       what="llama-server's 'listening' line")
        # Leaving the block closed the stream under the reading thread: it ends at once.
        reader.join(JOIN_TIMEOUT)
        assert not reader.is_alive()
        assert "starting:" in received[0].message
        client.stop_instance("f", wait=True)


def test_events_arrive_while_an_instance_starts(server: LlamactlProcess, model: Path) -> None:
    with Client(server.url) as client:
        client.create_instance("e", str(model))
        received: list[AnyEvent] = []
        with client.events() as events:
            client.start_instance("e")
            for event in events:
                received.append(event)
                if isinstance(event, InstanceStatusChanged) and event.data.status == "running":
                    break
        changes = [(e.data.previous_status, e.data.status) for e in received
                   if isinstance(e, InstanceStatusChanged)]
        assert changes == [("stopped", "starting"), ("starting", "running")]
        assert received[0].timestamp.tzinfo is not None
        client.stop_instance("e", wait=True)


def test_events_reconnect_when_llamactl_restarts(server: LlamactlProcess, model: Path) -> None:
    received: list[AnyEvent] = []
    with Client(server.url) as client:
        stream = client.events(max_backoff=1.0)
        reader = threading.Thread(target=lambda: received.extend(stream))
        with stream:
            reader.start()
            client.create_instance("q", str(model))
            _toggle_until_an_event_arrives(client, "q", received)  # connected: it hears "q"
            wait_until(lambda: any(isinstance(e, InstanceStatusChanged) and e.data.name == "q"
                                   and e.data.status == "stopped" for e in received),
                       what="q's last event")
            before_restart = len(received)
            server.terminate()
            restarted = LlamactlProcess(server.data_dir, server.config, server.port).start()
            try:
                client.create_instance("r", str(model))
                _toggle_until_an_event_arrives(client, "r", received, after=before_restart)
            finally:
                restarted.terminate()
        reader.join(JOIN_TIMEOUT)
        assert not reader.is_alive()
    assert {e.data.name for e in received[before_restart:]
            if isinstance(e, InstanceStatusChanged)} == {"r"}
    assert stream.reconnects >= 1


def _toggle_until_an_event_arrives(client: Client, name: str,
                                   received: list[AnyEvent], after: int = 0) -> None:
    """Start and stop ``name`` until the stream has seen an event (beyond the first
    ``after``): when it (re)connects is up to its backoff, and changes before that are not
    seen."""
    deadline = time.monotonic() + 30
    while len(received) <= after:
        assert time.monotonic() < deadline, "no events after llamactl came back"
        client.start_instance(name, wait=True)
        client.stop_instance(name, wait=True)


def test_openai_reaches_the_gateway(server: LlamactlProcess, model: Path) -> None:
    pytest.importorskip("openai")
    with Client(server.url) as client:
        client.create_instance("chat", str(model), options={"context_size": 256})
        gateway = client.openai()
        assert [m.id for m in gateway.models.list()] == ["chat"]
        # The gateway starts the instance on demand.
        completion = gateway.completions.create(model="chat", prompt="Hello", max_tokens=4)
        assert completion.choices[0].text
        client.stop_instance("chat", wait=True)
