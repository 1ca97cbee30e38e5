"""Instance logs: llama.cpp's prefixed lines, llamactl's own lines, tail, rotation, follow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from llamactl.backends.llama_cpp.log_lines import parse_log_line as LLAMA
from llamactl.supervisor import logs
from tests.support.helpers import llamactl_server, port_block, wait_until, write_config

BASE = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def write_run(path: Path, base: datetime = BASE) -> None:
    logs.write_own_line(path, "info", "started pid 42", when=base)
    with path.open("a") as out:
        out.write("0.00.010.000 I srv  main: loading model\n")
        out.write("plain line before logging starts\n")
        out.write("0.01.500.250 W srv  warn: something odd\n")
        out.write("\x1b[31m0.02.000.000 E srv  error: went wrong\x1b[0m\n")
        out.write("0.02.000.001 D debug detail\n")


def test_levels_and_times_come_from_the_prefix(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    write_run(path)
    entries = logs.read_tail(path, 100, line_format=LLAMA)
    assert [(e.level, e.message) for e in entries] == [
        ("info", "started pid 42"),
        ("info", "srv  main: loading model"),
        ("info", "plain line before logging starts"),
        ("warn", "srv  warn: something odd"),
        ("error", "srv  error: went wrong"),
        ("debug", "debug detail"),
    ]
    assert entries[1].timestamp == BASE + timedelta(milliseconds=10)
    assert entries[2].timestamp == entries[1].timestamp  # inherits from the line before
    assert entries[3].timestamp == BASE + timedelta(seconds=1, milliseconds=500, microseconds=250)
    assert entries[0].to_json()["timestamp"] == "2026-01-02T03:04:05.600000Z"


def test_tail_takes_the_last_lines_at_a_minimum_level(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    write_run(path)
    assert [e.message for e in logs.read_tail(path, 2, line_format=LLAMA)] == [
        "srv  error: went wrong", "debug detail"]
    warn = logs.read_tail(path, 100, "warn", line_format=LLAMA)
    assert [e.level for e in warn] == ["warn", "error"]
    # A base far above the requested lines still dates them.
    with path.open("a") as out:
        for index in range(5000):
            out.write(f"0.03.000.{index % 1000:03d} I filler {index}\n")
    last = logs.read_tail(path, 1, line_format=LLAMA)
    assert last[0].message == "filler 4999"
    assert last[0].timestamp == BASE + timedelta(seconds=3, microseconds=999)


def test_rotation_keeps_history_and_times(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    write_run(path)
    assert not logs.rotate_if_needed(path, 10_000, 2, BASE)
    assert logs.rotate_if_needed(path, 100, 2, BASE)
    assert path.with_name("x.log.1").exists()
    with path.open("a") as out:
        out.write("5.00.000.000 I after rotation\n")
    entries = logs.read_tail(path, 100, backups=2, line_format=LLAMA)
    assert entries[0].message == "started pid 42"  # from x.log.1
    assert entries[-1].message == "after rotation"
    assert entries[-1].timestamp == BASE + timedelta(minutes=5)
    current_only = logs.read_tail(path, 100, backups=0, line_format=LLAMA)
    assert current_only[0].message.startswith("log rotated")
    assert current_only[-1].timestamp == BASE + timedelta(minutes=5)


def test_follow_streams_new_entries_as_server_sent_events(
    tmp_path: Path, fake_model: Path
) -> None:
    from tests.conftest import FAKE_COMMAND

    low, high = port_block()
    config = write_config(tmp_path / "c.yaml", {
        "backends": {"llama_cpp": {"command": FAKE_COMMAND}},
        "instances": {"port_range": [low, high]},
    })
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        client.post("/api/instances", json={"name": "f", "model_path": str(fake_model)})
        assert client.post("/api/instances/f/start?wait=true").status_code == 200
        received: list[dict[str, Any]] = []
        with httpx.stream("GET", f"{server.url}/api/instances/f/logs?follow=true&lines=2",
                          timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            lines = stream.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                if len(received) == 2:
                    break
            client.post("/api/instances/f/stop")
            for line in lines:
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                if any(e["message"].endswith("exited with code 0") for e in received):
                    break
        assert set(received[0]) == {"timestamp", "level", "message"}
        assert any(e["message"].startswith("stopping pid") for e in received[2:])
        wait_until(lambda: client.get("/api/instances/f").json()["status"] == "stopped")


def test_open_streams_do_not_hold_up_shutdown(tmp_path: Path, fake_model: Path) -> None:
    import threading

    from tests.conftest import FAKE_COMMAND

    low, high = port_block()
    config = write_config(tmp_path / "c.yaml", {
        "backends": {"llama_cpp": {"command": FAKE_COMMAND}},
        "instances": {"port_range": [low, high]},
    })
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        client.post("/api/instances", json={"name": "f", "model_path": str(fake_model)})
        opened = threading.Barrier(3, timeout=20)

        def hold(path: str) -> None:
            try:
                with httpx.stream("GET", f"{server.url}{path}", timeout=60) as stream:
                    opened.wait()
                    for _ in stream.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass

        readers = [threading.Thread(target=hold, args=(path,), daemon=True)
                   for path in ("/api/instances/f/logs?follow=true", "/api/events")]
        for reader in readers:
            reader.start()
        opened.wait()
        server.terminate()
        for reader in readers:
            reader.join(10)
    # Streams held open would make uvicorn wait out its graceful-shutdown timeout and then
    # cancel them: it says so, whatever the machine's speed.
    output = server.log.read_text()
    assert "timeout graceful shutdown exceeded" not in output
    assert "Traceback" not in output
