"""Faults a supervisor must ride out, against real llamactl and real llama-servers: a frozen
backend (SIGSTOP) and a ``kill -9`` of llamactl under /v1 traffic. Each prints its figure
(bench/README.md keeps them beside the load run's)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import AppHarness
from tests.support.helpers import (
    STATUS_TIMEOUT,
    backend_config,
    backends_under,
    llamactl_server,
    wait_instance,
    wait_until,
)

COMPLETION = {"prompt": "hello", "max_tokens": 4, "ignore_eos": True}
INSTANCES = 5


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[figure] {line}")


def listeners_on(port: int) -> set[int]:
    """Pids with a socket listening on ``port`` on any address."""
    pids = set()
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                    pids.add(process.pid)
    return pids


async def test_a_frozen_backend_is_killed_as_a_group_and_restarted_once(
    make_settings: Any, make_app: Any, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGSTOP: the port still accepts connections, nothing answers. Health checks time out,
    the group is killed (SIGKILL reaches a stopped process; SIGTERM would wait for SIGCONT)
    and the instance restarts with backoff; a late SIGCONT never leaves two servers on the
    port."""
    app: AppHarness = await make_app(make_settings(
        health_interval=0.3, health_failures=2, stop_timeout=1, restart_delay=0.5))
    created = await app.client.post("/api/instances", json={"name": "frozen",
                                                             "model_path": str(model)})
    assert created.status_code == 201
    started = await app.client.post("/api/instances/frozen/start?wait=true")
    assert started.status_code == 200, started.text
    first = (await app.client.get("/api/instances/frozen")).json()
    os.kill(first["pid"], signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        restarted = await wait_instance(
            app.client, "frozen",
            lambda i: i["status"] == "running" and i["pid"] not in (None, first["pid"]),
            timeout=STATUS_TIMEOUT, what="restarted with a new process")
        took = time.monotonic() - frozen_at
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first["pid"], signal.SIGCONT)
    report(capsys, f"SIGSTOP of a llama-server: running again as a new process after "
                   f"{took:.1f} s (health every 0.3 s, 2 failures, 2 s probe timeout)")
    assert restarted["restart_count"] == 1
    assert restarted["port"] == first["port"]
    old = psutil.Process(first["pid"]) if psutil.pid_exists(first["pid"]) else None
    assert old is None or old.status() == psutil.STATUS_ZOMBIE
    assert listeners_on(first["port"]) == {restarted["pid"]}
    answer = await app.client.post("/v1/completions", json={"model": "frozen", **COMPLETION})
    assert answer.status_code == 200


class Traffic:
    """/v1 completions in a loop from a thread, round-robin over the instances, bounded."""

    def __init__(self, url: str, names: list[str], limit: int = 5000):
        self.url, self.names, self.limit = url, names, limit
        self.ok = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for n in range(self.limit):
                if self._stop.is_set():
                    return
                try:
                    answer = client.post("/v1/completions", json={
                        "model": self.names[n % len(self.names)], **COMPLETION})
                except httpx.HTTPError:
                    self.failed += 1
                    time.sleep(0.05)
                    continue
                if answer.status_code == 200:
                    self.ok += 1
                else:
                    self.failed += 1

    @contextlib.contextmanager
    def running(self) -> Iterator[Traffic]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(30)


def test_kill_9_of_llamactl_under_traffic_loses_no_instance_and_leaves_no_orphan(
    tmp_path: Path, llama_server_bin: str, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = backend_config(tmp_path / "config.yaml", llama_server_bin)
    data = tmp_path / "data"
    names = [f"m{n}" for n in range(INSTANCES)]
    with llamactl_server(data, config) as first:
        with first.client() as client:
            for name in names:
                assert client.post("/api/instances", json={
                    "name": name, "model_path": str(model),
                    "options": {"context_size": 256, "threads": 1}}).status_code == 201
            assert client.post("/api/instances/start-all").status_code == 200
            wait_until(lambda: all(i["status"] == "running" for i in
                                   client.get("/api/instances").json()["instances"]),
                       STATUS_TIMEOUT, "every instance running")
            before = {i["name"]: i["pid"] for i in client.get("/api/instances").json()[
                "instances"]}
        traffic = Traffic(first.url, names)
        with traffic.running():
            wait_until(lambda: traffic.ok >= 20, STATUS_TIMEOUT, "traffic to flow")
            first.kill9()
            killed_at = time.monotonic()
            served_before = traffic.ok
    assert all(psutil.pid_exists(pid) for pid in before.values())
    with llamactl_server(data, config) as second, second.client() as client:
        after = {i["name"]: (i["status"], i["pid"])
                 for i in client.get("/api/instances").json()["instances"]}
        recovered = time.monotonic() - killed_at
        assert after == {name: ("running", pid) for name, pid in before.items()}
        traffic = Traffic(second.url, names, limit=50)
        with traffic.running():
            wait_until(lambda: traffic.ok + traffic.failed >= 50, STATUS_TIMEOUT,
                       "traffic after the restart")
        assert (traffic.ok, traffic.failed) == (50, 0)
        assert sorted(p.pid for p in backends_under(tmp_path)) == sorted(before.values())
    report(capsys, f"kill -9 of llamactl with {INSTANCES} running instances under /v1 "
                   f"traffic ({served_before} completions before): all {INSTANCES} adopted "
                   f"with the same pids, 0 lost, 0 orphans; answering again {recovered:.1f} s "
                   f"after the kill")
