"""Real ``llamactl serve`` processes: kill -9 and adoption, shutdown behaviour, pid reuse."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.helpers import (
    backend_config,
    backends_under,
    llamactl_server,
    wait_until,
)


def config_file(tmp_path: Path, llama_server_bin: str, **instances: Any) -> Path:
    return backend_config(tmp_path / "config.yaml", llama_server_bin, **instances)


def start_instance(client: httpx.Client, name: str, model: Path) -> dict[str, Any]:
    assert client.post("/api/instances",
                       json={"name": name, "model_path": str(model)}).status_code == 201
    response = client.post(f"/api/instances/{name}/start?wait=true")
    assert response.status_code == 200, response.text
    instance: dict[str, Any] = client.get(f"/api/instances/{name}").json()
    return instance


def backend_health(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code


def test_kill_9_of_llamactl_then_a_new_one_adopts_the_running_instances(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first:
        with first.client() as client:
            one = start_instance(client, "one", model)
            two = start_instance(client, "two", model)
        first.kill9()
    # The children outlive llamactl: own sessions, output into files, not pipes.
    for instance in (one, two):
        assert psutil.pid_exists(instance["pid"])
        assert backend_health(instance["port"]) == 200
    with llamactl_server(data, config) as second, second.client() as client:
        for instance in (one, two):
            adopted = client.get(f"/api/instances/{instance['name']}").json()
            assert adopted["status"] == "running"
            assert adopted["pid"] == instance["pid"]
            health = client.get(f"/api/instances/{instance['name']}/health").json()
            assert health["status"] == "healthy"
        logs = client.get("/api/instances/one/logs?lines=500").json()["logs"]
        messages = [e["message"] for e in logs]
        assert f"adopted pid {one['pid']}" in messages
        assert any("model loaded" in m for m in messages)  # the log from before goes on
        # Stop works on an adopted process, which is not llamactl's child.
        assert client.post("/api/instances/one/stop").status_code == 200
        wait_until(lambda: client.get("/api/instances/one").json()["status"] == "stopped",
                   what="adopted instance to stop")
        assert not psutil.pid_exists(one["pid"]) or (
            psutil.Process(one["pid"]).status() == psutil.STATUS_ZOMBIE)
    # The second llamactl stopped on SIGTERM (stop_on_shutdown defaults to true).
    wait_until(lambda: backends_under(tmp_path) == [], 30, "backends to stop at shutdown")


def test_an_instance_that_died_while_llamactl_was_down_is_marked_stopped(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first:
        with first.client() as client:
            instance = start_instance(client, "gone", model)
        first.kill9()
    os.kill(instance["pid"], signal.SIGKILL)
    wait_until(lambda: backends_under(tmp_path) == [], 10, "backend to die")
    with llamactl_server(data, config) as second, second.client() as client:
        after = client.get("/api/instances/gone").json()
        assert after["status"] == "stopped"
        assert after["pid"] is None


def test_a_reused_pid_is_not_adopted_nor_killed(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first, first.client() as client:
        assert client.post("/api/instances",
                           json={"name": "x", "model_path": str(model)}).status_code == 201
    # Pretend llamactl died while "x" ran as a pid that now belongs to an unrelated program.
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        with sqlite3.connect(data / "llamactl.db") as db:
            db.execute(
                "UPDATE instances SET status='running', pid=?, pid_start_time=?, command=? "
                "WHERE name='x'",
                (stranger.pid, psutil.Process(stranger.pid).create_time() + 5, '["llama-server"]'),
            )
        with llamactl_server(data, config) as second, second.client() as client:
            after = client.get("/api/instances/x").json()
            assert after["status"] == "stopped"
            assert after["pid"] is None
        assert stranger.poll() is None  # untouched
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_on_shutdown_false_keeps_instances_for_the_next_llamactl(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = config_file(tmp_path, llama_server_bin, stop_on_shutdown=False)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first:
        with first.client() as client:
            instance = start_instance(client, "kept", model)
        first.terminate()
    assert backend_health(instance["port"]) == 200
    with llamactl_server(data, config) as second, second.client() as client:
        adopted = client.get("/api/instances/kept").json()
        assert adopted["status"] == "running"
        assert adopted["pid"] == instance["pid"]
        assert client.post("/api/instances/kept/stop").status_code == 200
        wait_until(lambda: client.get("/api/instances/kept").json()["status"] == "stopped",
                   what="kept instance to stop")


def test_sigterm_stops_every_instance_by_default(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as server:
        with server.client() as client:
            start_instance(client, "a", model)
            start_instance(client, "b", model)
        server.terminate()
    assert backends_under(tmp_path) == []
    with llamactl_server(data, config) as again, again.client() as client:
        listed = client.get("/api/instances").json()["instances"]
        statuses = {i["name"]: i["status"] for i in listed}
        assert statuses == {"a": "stopped", "b": "stopped"}


def serve_once(data: Path, config: Path, port: int) -> subprocess.CompletedProcess[str]:
    """``llamactl serve`` expected to refuse: it must exit by itself, quickly."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "llamactl", "serve", "--port", str(port), "--config",
         str(config), "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def instance_rows(data: Path) -> list[tuple[Any, ...]]:
    """What adoption reads: each instance's status, pid and port. (Not the file's bytes: the
    first server itself writes to it, e.g. its change counter, whenever it commits.)"""
    with contextlib.closing(sqlite3.connect(data / "llamactl.db")) as db:
        return db.execute("SELECT name, status, pid, pid_start_time, serving_port "
                          "FROM instances ORDER BY name").fetchall()


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("llamactl: error: ")
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_server_on_the_same_data_dir_exits_2_and_touches_nothing(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    from tests.support.helpers import free_port

    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first, first.client() as client:
        before = start_instance(client, "s", model)
        recorded = instance_rows(data)
        assert first.process is not None
        # On its own port, and on the first one's port: the data dir is what is refused.
        for port in (free_port(), first.port):
            second = serve_once(data, config, port)
            assert_refused_in_one_line(second, f"data dir {data} is in use by another "
                                               f"llamactl (pid {first.process.pid})")
        after = client.get("/api/instances/s").json()
        assert (after["status"], after["pid"]) == ("running", before["pid"])
        assert backend_health(before["port"]) == 200
        assert instance_rows(data) == recorded
        messages = [e["message"] for e in client.get("/api/instances/s/logs").json()["logs"]]
        assert not any("unexpectedly" in m or "adopted" in m for m in messages), messages


def test_deleting_the_lock_file_lets_no_second_server_in(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    """Issue 27, point 6: what is locked is the data dir itself, not a file in it that
    anyone may delete (a second server then adopted, and later killed, the first's)."""
    from llamactl.store.data_dir_lock import LOCK_FILE
    from tests.support.helpers import free_port

    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first, first.client() as client:
        before = start_instance(client, "s", model)
        (data / LOCK_FILE).unlink()
        second = serve_once(data, config, free_port())
        assert_refused_in_one_line(second, f"data dir {data} is in use by another llamactl")
        assert not (data / LOCK_FILE).exists()  # a refused server writes nothing there
        after = client.get("/api/instances/s").json()
        assert (after["status"], after["pid"]) == ("running", before["pid"])
        assert backend_health(before["port"]) == 200


def test_a_server_whose_port_is_taken_exits_2_before_adopting_anything(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    import socket

    config = config_file(tmp_path, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first:
        with first.client() as client:
            left = start_instance(client, "s", model)
        first.kill9()  # the llama-server runs on, waiting for the next llamactl
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        refused = serve_once(data, config, taken)
        assert_refused_in_one_line(refused, f"cannot listen on 127.0.0.1:{taken}")
    # Not adopted, hence not stopped on the way out: still there for the next llamactl.
    assert psutil.pid_exists(left["pid"])
    assert backend_health(left["port"]) == 200
    with llamactl_server(data, config) as third, third.client() as client:
        adopted = client.get("/api/instances/s").json()
        assert (adopted["status"], adopted["pid"]) == ("running", left["pid"])
