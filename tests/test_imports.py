"""What the server imports: nothing heavy that it does not use (issue 29's RSS goal).

rich and pygments (httpx's command line client), huggingface_hub (only a pull needs it) and
numpy/gguf (only reading a GGUF header with gguf's reader needs them) cost tens of MB and
~100 ms each; a server that only lists and runs instances must not carry them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.helpers import (
    SERVER_START_TIMEOUT,
    backend_config,
    free_port,
    wait_until,
)

HEAVY = ("rich", "pygments", "huggingface_hub", "numpy", "gguf")


def heavy_in(imported: list[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in imported if name.split(".")[0] in HEAVY})


def test_importing_the_app_loads_nothing_heavy() -> None:
    code = ("import sys, llamactl.app\n"
            "print('\\n'.join(sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert heavy_in(result.stdout.split()) == []


def test_httpx_still_works_without_its_command_line_client() -> None:
    code = ("import llamactl, httpx, sys\n"
            "assert sys.modules['httpx._main'] is None\n"
            "print(httpx.Client, httpx.get)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "httpx.Client" in result.stdout


def test_a_serving_llamactl_with_a_running_instance_loads_nothing_heavy(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    """``-X importtime`` writes every module the server process imports, to the end."""
    config = backend_config(tmp_path / "config.yaml", llama_server_bin)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.err"
    with log.open("wb") as err:
        server = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "llamactl", "serve", "--port", str(port),
             "--config", str(config), "--data-dir", str(tmp_path / "data")],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(url, server), SERVER_START_TIMEOUT, "llamactl")
        with httpx.Client(base_url=url, timeout=60) as client:
            created = client.post("/api/instances",
                                  json={"name": "lean", "model_path": str(model)})
            assert created.status_code == 201, created.text
            started = client.post("/api/instances/lean/start?wait=true")
            assert started.status_code == 200, started.text
            assert client.get("/api/instances").status_code == 200
            assert client.get("/api/instances/lean/health").status_code == 200
            assert client.post("/api/instances/lean/stop?wait=true").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    imported = [line.rsplit("|", 1)[-1].strip() for line in log.read_text().splitlines()
                if line.startswith("import time:")]
    assert "llamactl.app" in imported
    assert heavy_in(imported) == []


def _answers(url: str, server: subprocess.Popen[bytes]) -> bool:
    assert server.poll() is None, "llamactl exited"
    try:
        return httpx.get(f"{url}/api/instances", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
