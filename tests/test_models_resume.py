"""A pull interrupted by a kill -9 of llamactl resumes where it stopped (issue 33): the stand-in
Hub counts the bytes it served, and the file crosses the wire once, plus at most what was in
flight when llamactl died."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.helpers import llamactl_server, port_block, write_config
from tests.support.stand_in_hub import StandInHub

REPO = "tester/big-GGUF"
SIZE = 3 * 1024 * 1024


def _payload() -> bytes:
    return (b"GGUF" + bytes(range(251)) * (SIZE // 251 + 1))[:SIZE]


def _wait(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_pull_resumes_after_a_kill_9_of_llamactl(tmp_path: Path, llama_server_bin: str) -> None:
    data = _payload()
    hub = StandInHub().start()
    hub.add(REPO, "big-Q8_0.gguf", data)
    hub.hold_after = SIZE // 3
    library = tmp_path / "library"
    low, high = port_block()
    config = write_config(tmp_path / "config.yaml", {
        "backends": {"llama_cpp": {"command": llama_server_bin}},
        "instances": {"port_range": [low, high]},
        "models": {"dir": str(library), "hub_url": hub.url}})
    partial = library / REPO / ".big-Q8_0.gguf.partial"
    try:
        with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
            started = client.post("/api/models/pull", json={"source": f"{REPO}:Q8_0"})
            assert started.status_code == 202, started.text
            _wait(lambda: partial.exists() and partial.stat().st_size >= SIZE // 3)
            served_at_kill = hub.body_bytes("big-Q8_0.gguf")
            server.kill9()
        kept = partial.stat().st_size
        assert 0 < kept <= served_at_kill < SIZE
        assert not (library / REPO / "big-Q8_0.gguf").exists()

        hub.hold_after = None
        with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
            again = client.post("/api/models/pull", json={"source": f"{REPO}:Q8_0"})
            assert again.status_code == 202, again.text
            job_id = again.json()["id"]
            _wait(lambda: client.get(f"/api/models/pulls/{job_id}").json()["status"]
                  in ("done", "failed"))
            job = client.get(f"/api/models/pulls/{job_id}").json()
            assert job["status"] == "done", job
        assert (library / REPO / "big-Q8_0.gguf").read_bytes() == data
        total = hub.body_bytes("big-Q8_0.gguf")
        in_flight = served_at_kill - kept
        assert SIZE <= total <= SIZE + in_flight, (total, served_at_kill, kept)
    finally:
        hub.stop()
