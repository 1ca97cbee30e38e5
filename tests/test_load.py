"""A short load run (bench/load.py is the full one): /v1 completions, /v1 streams beside
/api/events readers, WebSocket clients that come and go. No errors, and llamactl keeps
neither the memory nor the file descriptors that the run used."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from llamactl.devtools.load import Footprint, Shape, run_load, total_errors
from tests.support.helpers import (
    STATUS_TIMEOUT,
    backend_config,
    llamactl_server,
    wait_until,
)

WARM_UP = Shape(completions=200, concurrency=16, streams=8, event_clients=8, websockets=8)
RUN = Shape(completions=1000, concurrency=32, streams=40, event_clients=40, websockets=40)
SETTLE_SECONDS = 2.0
RSS_GROWTH_LIMIT_MB = 20.0
# Connections to the backends are pooled (as many per instance as it has slots): the count
# may settle a little differently after a run without anything leaking.
FD_SLACK = 4


def test_load_leaves_no_errors_no_memory_and_no_descriptors_behind(
    tmp_path: Path, llama_server_bin: str, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = backend_config(tmp_path / "config.yaml", llama_server_bin)
    models = ["a", "b"]
    with llamactl_server(tmp_path / "data", config) as server:
        assert server.process is not None
        with server.client() as client:
            for name in models:
                assert client.post("/api/instances", json={
                    "name": name, "model_path": str(model),
                    # One thread each: two llama-servers with a thread per core contend on
                    # 2 cores (ggml's threads spin); beside one busy core that was 412
                    # completions/s against 1,457, and once 6/s with other servers running.
                    "options": {"context_size": 512, "parallel": 4, "threads": 1},
                }).status_code == 201
                assert client.post(f"/api/instances/{name}/start?wait=true").status_code == 200
        warm = asyncio.run(run_load(server.url, models, WARM_UP))
        assert total_errors(warm) == 0, warm
        time.sleep(SETTLE_SECONDS)
        before = Footprint.of(server.process.pid)
        result = asyncio.run(run_load(server.url, models, RUN))
        pid = server.process.pid
        wait_until(lambda: Footprint.of(pid).fds <= before.fds + FD_SLACK, STATUS_TIMEOUT,
                   "llamactl's descriptors to settle")
        time.sleep(SETTLE_SECONDS)
        after = Footprint.of(pid)
    with capsys.disabled():
        done = result["completions"]
        print(f"\n[figure] load: {done['ok']} completions at {RUN.concurrency} concurrent "
              f"({done['per_second']:.0f}/s, p50 {done['p50_ms']:.1f} ms), "
              f"{RUN.streams} streams + {RUN.event_clients} event readers, "
              f"{RUN.websockets} WebSocket clients: {total_errors(result)} errors; RSS "
              f"{before.rss_mb:.1f} -> {after.rss_mb:.1f} MB, fds {before.fds} -> {after.fds}")
    assert total_errors(result) == 0, result
    assert result["completions"]["ok"] == RUN.completions
    assert result["streams"]["ok"] == RUN.streams
    assert result["event_readers"]["ok"] == RUN.event_clients
    assert result["websockets"]["ok"] == RUN.websockets
    assert after.rss_mb - before.rss_mb < RSS_GROWTH_LIMIT_MB
    assert after.fds <= before.fds + FD_SLACK
