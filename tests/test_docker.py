"""Backends in Docker containers (backends/docker.py, supervisor/container.py).

No Docker daemon runs here: a stand-in ``docker`` (tests/support/stand_in_docker.py) records
every command line it is given and runs llama.cpp's image as the real llama-server binary with
the tiny model, so the argv after the image is llama-server's own and must work as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from llamactl.backends import backend_named
from llamactl.backends.docker import InDocker
from llamactl.config import BackendsConfig, Settings
from llamactl.instances.models import InstanceRecord, InstanceSpec
from tests.conftest import AppHarness
from tests.support.helpers import llamactl_server, port_block, wait_until, write_config

STAND_IN = Path(__file__).resolve().parent / "support" / "stand_in_docker.py"
LLAMA_IMAGE = "ghcr.io/ggml-org/llama.cpp:server"
STOP_TIMEOUT = 7


class StandIn:
    """The stand-in docker's command (an argv prefix, as backends.docker_command takes) and
    what it saw."""

    def __init__(self, state: Path, llama_server: str):
        self.state = state
        self.prefix = [sys.executable, str(STAND_IN), "--state", str(state),
                       "--image", f"{LLAMA_IMAGE}={llama_server}", "--image", "sleeper=/bin/sleep"]

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line)["argv"] for line in lines]

    def environments(self) -> list[list[str]]:
        lines = (self.state / "calls.jsonl").read_text().splitlines()
        return [json.loads(line)["env"] for line in lines]

    def containers(self) -> list[str]:
        return sorted(p.stem for p in (self.state / "containers").glob("*.json"))


@pytest.fixture
def docker(tmp_path: Path, llama_server_bin: str) -> StandIn:
    return StandIn(tmp_path / "docker", llama_server_bin)


def settings_for(docker: StandIn, llama_server_bin: str, tmp_path: Path,
                 enabled: bool = False) -> Settings:
    low, high = port_block()
    return Settings.model_validate({
        "data_dir": str(tmp_path / "data"),
        "backends": {"llama_cpp": {"command": llama_server_bin,
                                   "docker": {"enabled": enabled}},
                     "docker_command": docker.prefix},
        "instances": {"port_range": [low, high], "stop_timeout": STOP_TIMEOUT},
        "rate_limit": {"enabled": False},
    })


def record(backend: str, model: str, **spec: Any) -> InstanceRecord:
    return InstanceRecord(spec=InstanceSpec(name="q", model_path=model, port=8200,
                                            backend=backend, **spec))


# ---- the command line ----

def test_the_argv_is_docker_run_around_the_backends_own_flags(tmp_path: Path) -> None:
    model = tmp_path / "m" / "x.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF")
    settings = BackendsConfig.model_validate({"llama_cpp": {"docker": {
        "enabled": True, "args": ["--gpus", "all"], "environment": {"HF_HOME": "/cache"}}}})
    spec = record("llama_cpp", str(model), environment={"CUDA_VISIBLE_DEVICES": "0"})
    backend = InDocker(backend_named("llama_cpp"), settings)
    folder = str(model.parent)
    assert backend.argv(["/usr/bin/docker"], spec) == [
        "/usr/bin/docker", "run", "--rm", "--init", "--name", "llamactl-q",
        "--label", "llamactl.instance=q", "-p", "127.0.0.1:8200:8200",
        "-v", f"{folder}:{folder}:ro",
        "-e", "HF_HOME", "-e", "CUDA_VISIBLE_DEVICES", "-e", "LLAMA_API_KEY",
        "--gpus", "all", LLAMA_IMAGE,
        "--model", str(model), "--host", "0.0.0.0", "--port", "8200",
        "--metrics", "--slots", "--log-prefix", "--log-timestamps", "--alias", "q"]
    # The values go in the docker command's environment; the key never on a command line.
    env = backend.env(spec, {"PATH": "/bin", "LLAMACTL_AUTH_SECRET": "s"})
    assert env == {"PATH": "/bin", "HF_HOME": "/cache", "CUDA_VISIBLE_DEVICES": "0",
                   "LLAMA_API_KEY": spec.api_key}
    assert spec.api_key not in " ".join(backend.argv(["docker"], spec))


def test_vllm_in_docker_takes_the_model_as_a_flag_and_a_hub_id_mounts_nothing() -> None:
    backend = InDocker(backend_named("vllm"), BackendsConfig())
    argv = backend.argv(["docker"], record("vllm", "org/model"))
    image = argv.index("vllm/vllm-openai:latest")
    assert "-v" not in argv
    assert argv[image - 2:image] == ["-e", "VLLM_API_KEY"]
    assert argv[image + 1:] == ["--model", "org/model", "--host", "0.0.0.0", "--port", "8200",
                                "--served-model-name", "q"]


def test_a_symlinked_model_mounts_its_targets_folder_too(tmp_path: Path) -> None:
    target = tmp_path / "store" / "x.gguf"
    target.parent.mkdir()
    target.write_bytes(b"GGUF")
    link = tmp_path / "models" / "x.gguf"
    link.parent.mkdir()
    link.symlink_to(target)
    argv = InDocker(backend_named("llama_cpp"), BackendsConfig()).argv(
        ["docker"], record("llama_cpp", str(link)))
    mounts = [argv[i + 1] for i, word in enumerate(argv) if word == "-v"]
    assert mounts == [f"{link.parent}:{link.parent}:ro", f"{target.parent}:{target.parent}:ro"]


def test_mlx_lm_has_no_image_so_docker_is_refused_in_the_config() -> None:
    with pytest.raises(ValueError, match=r"docker\.enabled needs docker\.image"):
        BackendsConfig.model_validate({"mlx_lm": {"docker": {"enabled": True}}})
    defaults = BackendsConfig()
    assert defaults.llama_cpp.docker.image == LLAMA_IMAGE
    assert defaults.vllm.docker.image == "vllm/vllm-openai:latest"
    assert defaults.mlx_lm.docker.image is None
    assert defaults.docker_command == "docker"


async def test_the_docker_field_is_validated_and_kept(
    make_app: Any, docker: StandIn, llama_server_bin: str, tmp_path: Path, model: Path
) -> None:
    app: AppHarness = await make_app(settings_for(docker, llama_server_bin, tmp_path))
    weights = tmp_path / "models" / "mlx"
    weights.mkdir()
    mlx = await app.client.post("/api/instances", json={
        "name": "m", "model_path": str(weights), "backend": "mlx_lm", "docker": True})
    assert mlx.status_code == 400, mlx.text
    assert mlx.json()["code"] == "VALIDATION_ERROR"
    assert "mlx_lm cannot run in Docker" in mlx.json()["error"]
    loose = await app.client.post("/api/instances", json={
        "name": "l", "model_path": str(model), "docker": "yes"})
    assert loose.status_code == 400
    created = await app.client.post("/api/instances", json={
        "name": "d", "model_path": str(model), "docker": True})
    assert created.status_code == 201, created.text
    assert created.json()["instance"]["docker"] is True
    to_mlx = await app.client.put("/api/instances/d", json={
        "backend": "mlx_lm", "model_path": str(weights)})
    assert to_mlx.status_code == 400, to_mlx.text
    assert (await app.client.put("/api/instances/d", json={"docker": None})).status_code == 200
    await app.restart()  # from the database
    assert (await app.client.get("/api/instances/d")).json()["docker"] is None
    assert (await app.client.put("/api/instances/d", json={"docker": False})).status_code == 200
    await app.restart()
    assert (await app.client.get("/api/instances/d")).json()["docker"] is False
    assert docker.calls() == []  # nothing ran in Docker, and no sweep: Docker is not in use


# ---- running, through the stand-in ----

async def started_in_docker(app: AppHarness, model: Path) -> dict[str, Any]:
    """Instance "d" created in Docker and started (waited for): its JSON."""
    created = await app.client.post("/api/instances", json={
        "name": "d", "model_path": str(model), "docker": True,
        "options": {"context_size": 256, "threads": 1}})
    assert created.status_code == 201, created.text
    started = await app.client.post("/api/instances/d/start?wait=true")
    assert started.status_code == 200, started.text
    instance: dict[str, Any] = (await app.client.get("/api/instances/d")).json()
    return instance


async def test_start_serve_and_stop_in_a_container(
    make_app: Any, docker: StandIn, llama_server_bin: str, tmp_path: Path, model: Path
) -> None:
    app: AppHarness = await make_app(settings_for(docker, llama_server_bin, tmp_path))
    instance = await started_in_docker(app, model)
    assert instance["status"] == "running"
    assert psutil.Process(instance["pid"]).cmdline()[1] == str(STAND_IN)  # the docker command
    assert docker.containers() == ["llamactl-d"]
    run = docker.calls()[0]
    assert run[:8] == ["run", "--rm", "--init", "--name", "llamactl-d", "--label",
                       "llamactl.instance=d", "-p"]
    secret = app.manager.owner("d").record.api_key
    assert secret not in json.dumps(docker.calls())
    assert "LLAMA_API_KEY" in docker.environments()[0]
    # Through the gateway: llama-server in the "container" checks the key it was given.
    answer = await app.client.post("/v1/completions", json={
        "model": "d", "prompt": "hi", "max_tokens": 2})
    assert answer.status_code == 200, answer.text
    # The stop's own timeout is docker stop's grace (the config's, in the adoption test).
    stopped = await app.client.post("/api/instances/d/stop", json={"timeout": 3})
    assert stopped.status_code == 200
    await wait_status(app, "d", "stopped")
    assert ["stop", "-t", "3", "llamactl-d"] in docker.calls()
    assert docker.containers() == []
    assert gone(instance["pid"])


async def test_a_forced_stop_removes_the_container_and_kills_the_docker_command(
    make_app: Any, docker: StandIn, llama_server_bin: str, tmp_path: Path, model: Path
) -> None:
    app: AppHarness = await make_app(settings_for(docker, llama_server_bin, tmp_path))
    pid = (await started_in_docker(app, model))["pid"]
    forced = await app.client.post("/api/instances/d/stop", json={"force": True})
    assert forced.status_code == 200
    await wait_status(app, "d", "stopped")
    assert ["rm", "-f", "llamactl-d"] in docker.calls()
    assert not any(call[0] == "stop" for call in docker.calls())
    assert docker.containers() == []
    assert gone(pid)


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_the_instances_field_overrides_the_backends_setting_both_ways(
    make_app: Any, docker: StandIn, llama_server_bin: str, tmp_path: Path, model: Path
) -> None:
    app: AppHarness = await make_app(settings_for(docker, llama_server_bin, tmp_path,
                                                  enabled=True))
    for name, field in (("host", False), ("boxed", None)):
        created = await app.client.post("/api/instances", json={
            "name": name, "model_path": str(model), "docker": field,
            "options": {"context_size": 256, "threads": 1}})
        assert created.status_code == 201, created.text
        started = await app.client.post(f"/api/instances/{name}/start?wait=true")
        assert started.status_code == 200, started.text
    host = (await app.client.get("/api/instances/host")).json()
    assert psutil.Process(host["pid"]).cmdline()[0] == llama_server_bin
    assert docker.containers() == ["llamactl-boxed"]
    runs = [call for call in docker.calls() if call[0] == "run"]
    assert [call[call.index("--name") + 1] for call in runs] == ["llamactl-boxed"]


async def wait_status(app: AppHarness, name: str, status: str) -> None:
    import asyncio

    for _ in range(600):
        if (await app.client.get(f"/api/instances/{name}")).json()["status"] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never became {status}")


def docker_config(tmp_path: Path, docker: StandIn, llama_server_bin: str) -> Path:
    low, high = port_block()
    return write_config(tmp_path / "config.yaml", {
        "backends": {"llama_cpp": {"command": llama_server_bin, "docker": {"enabled": True}},
                     "docker_command": docker.prefix},
        "instances": {"port_range": [low, high], "stop_timeout": STOP_TIMEOUT}})


@pytest.mark.parametrize("docker_command_too", [False, True])
def test_a_container_is_adopted_after_a_kill_9_of_llamactl(
    tmp_path: Path, docker: StandIn, llama_server_bin: str, model: Path,
    docker_command_too: bool,
) -> None:
    """By its name: docker says it runs. Its docker command is taken back by pid when it
    outlived llamactl; when it did not (killed too), ``docker logs --follow`` takes its place
    (as a real container outlives its docker command)."""
    config = docker_config(tmp_path, docker, llama_server_bin)
    data = tmp_path / "data"
    with llamactl_server(data, config) as first:
        with first.client() as client:
            created = client.post("/api/instances", json={
                "name": "d", "model_path": str(model),
                "options": {"context_size": 256, "threads": 1}})
            assert created.status_code == 201, created.text
            assert client.post("/api/instances/d/start?wait=true").status_code == 200
            before = client.get("/api/instances/d").json()
        first.kill9()
    if docker_command_too:
        os.killpg(before["pid"], 9)
        wait_until(lambda: not psutil.pid_exists(before["pid"]) or psutil.Process(
            before["pid"]).status() == psutil.STATUS_ZOMBIE, what="the docker command's end")
    with llamactl_server(data, config) as second, second.client() as client:
        adopted = client.get("/api/instances/d").json()
        assert adopted["status"] == "running", adopted
        assert (adopted["pid"] == before["pid"]) is not docker_command_too
        assert ["inspect", "--format", "{{.State.Running}}", "llamactl-d"] in docker.calls()
        logged = len(client.get("/api/instances/d/logs?lines=10000").json()["logs"])
        answer = client.post("/v1/completions", json={"model": "d", "prompt": "hi",
                                                      "max_tokens": 2})
        assert answer.status_code == 200, answer.text
        # The container's log goes on into the instance's, through whichever command.
        wait_until(lambda: len(client.get("/api/instances/d/logs?lines=10000").json()[
            "logs"]) > logged, what="the container's lines after adoption")
        assert client.post("/api/instances/d/stop").status_code == 200
        wait_until(lambda: client.get("/api/instances/d").json()["status"] == "stopped",
                   what="the adopted container to stop")
    assert ["stop", "-t", str(STOP_TIMEOUT), "llamactl-d"] in docker.calls()
    assert docker.containers() == []


async def test_a_labelled_container_no_instance_owns_is_removed_at_boot(
    make_app: Any, docker: StandIn, llama_server_bin: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orphan = subprocess.Popen(  # left by an instance deleted while llamactl was down
        [*docker.prefix, "run", "--rm", "--name", "llamactl-ghost",
         "--label", "llamactl.instance=ghost", "sleeper", "300"],
        stdout=subprocess.DEVNULL, start_new_session=True)
    stranger = subprocess.Popen(  # not llamactl's: left alone
        [*docker.prefix, "run", "--rm", "--name", "web", "sleeper", "300"],
        stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: docker.containers() == ["llamactl-ghost", "web"],
                   what="the containers to run")
        await make_app(settings_for(docker, llama_server_bin, tmp_path, enabled=True))
        assert docker.containers() == ["web"]
        assert ["rm", "-f", "llamactl-ghost"] in docker.calls()
        assert "removed container llamactl-ghost" in caplog.text
        assert orphan.wait(30) != 0  # its docker run ended with its container
    finally:
        for process, name in ((orphan, "llamactl-ghost"), (stranger, "web")):
            if process.poll() is None:
                subprocess.run([*docker.prefix, "rm", "-f", name], check=False,
                               stdout=subprocess.DEVNULL)
                process.wait(30)
