"""The installed llama-server runs, and loads the tiny generated model."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import httpx

from llamactl.devtools.tiny_model import write_tiny_model
from tests.support.helpers import free_port, wait_until


def test_llama_server_version_runs(llama_server_bin: str) -> None:
    result = subprocess.run([llama_server_bin, "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    assert "version:" in result.stdout + result.stderr


def test_it_loads_the_tiny_model_and_answers(llama_server_bin: str, model: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [llama_server_bin, "--model", str(model), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 30, "llama-server /health")
        answer = httpx.post(f"http://127.0.0.1:{port}/completion",
                            json={"prompt": "hello", "n_predict": 4, "ignore_eos": True},
                            timeout=30)
        assert answer.status_code == 200
        assert answer.json()["tokens_predicted"] == 4
    finally:
        process.terminate()
        process.wait(30)


def test_the_tiny_model_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    first = write_tiny_model(tmp_path / "a.gguf", seed=3)
    time.sleep(0.01)
    second = write_tiny_model(tmp_path / "b.gguf", seed=3)
    other = write_tiny_model(tmp_path / "c.gguf", seed=4)
    assert digest(first) == digest(second)
    assert digest(first) != digest(other)
    assert first.stat().st_size < 2_000_000
