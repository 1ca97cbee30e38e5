"""vLLM and MLX behind the backend interface (backends/vllm.py, backends/mlx_lm.py).

Neither server runs here (no GPU, no macOS): their modules are tested on their own (command
line, environment, options, log lines), and end to end against stand-ins
(tests/support/stand_in_vllm.py, stand_in_mlx_lm.py) that accept exactly their server's
command line, print its log format, and serve /v1 under the served name.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from llamactl.backends import BACKENDS, backend_named
from llamactl.errors import ValidationFailed
from llamactl.instances.models import InstanceRecord, InstanceSpec
from tests.conftest import AppHarness
from tests.support.helpers import llamactl_server, port_block, wait_until, write_config

SUPPORT = Path(__file__).resolve().parent / "support"
STAND_INS = {"vllm": [sys.executable, str(SUPPORT / "stand_in_vllm.py")],
             "mlx_lm": [sys.executable, str(SUPPORT / "stand_in_mlx_lm.py")]}


def record(backend: str, model: str = "org/model", **options: Any) -> InstanceRecord:
    checked = backend_named(backend).validate_options(options)
    return InstanceRecord(spec=InstanceSpec(name="q", model_path=model, port=8200,
                                            backend=backend, options=checked))


def test_every_backend_answers_the_whole_interface() -> None:
    assert set(BACKENDS) == {"llama_cpp", "vllm", "mlx_lm"}
    for name, backend in BACKENDS.items():
        assert backend.name == name
        assert backend.health_paths
        argv = backend.argv(["prog"], record(name, "/m/model.gguf"))
        assert argv[0] == "prog"
        assert "127.0.0.1" in argv


def test_vllm_command_line_and_key() -> None:
    vllm = backend_named("vllm")
    spec = record("vllm", max_model_len=4096, enable_prefix_caching=False, dtype="half",
                  tensor_parallel_size=2)
    assert vllm.argv(["/usr/bin/vllm"], spec) == [
        "/usr/bin/vllm", "serve", "org/model", "--host", "127.0.0.1", "--port", "8200",
        "--served-model-name", "q", "--tensor-parallel-size", "2", "--max-model-len", "4096",
        "--dtype", "half", "--no-enable-prefix-caching"]
    named = record("vllm", served_model_name="other")
    assert vllm.argv(["vllm"], named).count("--served-model-name") == 1
    env = vllm.env(spec, {"PATH": "/bin", "LLAMACTL_AUTH_SECRET": "s"})
    assert env == {"PATH": "/bin", "VLLM_API_KEY": spec.api_key}
    assert spec.api_key not in " ".join(vllm.argv(["vllm"], spec))
    assert vllm.slots(["vllm", "serve", "m", "--max-num-seqs", "8"]) == 8


def test_mlx_command_line_takes_no_key() -> None:
    mlx = backend_named("mlx_lm")
    spec = record("mlx_lm", "mlx-community/x", temp=0.5, trust_remote_code=True)
    assert mlx.argv(["mlx_lm.server"], spec) == [
        "mlx_lm.server", "--model", "mlx-community/x", "--host", "127.0.0.1", "--port", "8200",
        "--temp", "0.5", "--trust-remote-code"]
    assert mlx.env(spec, {"PATH": "/bin"}) == {"PATH": "/bin"}
    assert mlx.health_paths == ("/health", "/v1/models")


@pytest.mark.parametrize(("backend", "options", "problem"), [
    ("vllm", {"context_size": 4}, "options.context_size: unknown option"),
    ("vllm", {"gpu_memory_utilization": "0.9"}, "options.gpu_memory_utilization: must be"),
    ("vllm", {"dtype": "int3"}, "options.dtype: must be one of"),
    ("mlx_lm", {"threads": 2}, "options.threads: unknown option"),
])
def test_options_are_checked_against_each_backends_table(
    backend: str, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        backend_named(backend).validate_options(options)
    assert problem in str(caught.value.details)


@pytest.mark.parametrize(("backend", "arg"), [
    ("vllm", "--port=9"), ("vllm", "--api-key"), ("mlx_lm", "--host"), ("llama_cpp", "-m")])
def test_flags_llamactl_sets_are_refused_in_extra_args(backend: str, arg: str) -> None:
    with pytest.raises(ValidationFailed):
        backend_named(backend).check_extra_args([arg, "x"])


def test_log_lines_in_each_backends_format() -> None:
    vllm = backend_named("vllm").parse_log_line(
        "(APIServer pid=7) WARNING 01-02 03:04:05 [config.py:12] casting to float16")
    assert vllm is not None
    assert (vllm.level, vllm.message) == ("warn", "casting to float16")
    assert vllm.at is not None
    assert (vllm.at.month, vllm.at.day, vllm.at.hour, vllm.at.second) == (1, 2, 3, 5)
    assert backend_named("vllm").parse_log_line("Loading safetensors shards: 50%") is None
    mlx = backend_named("mlx_lm").parse_log_line("2025-06-07 08:09:10,123 - ERROR - out of memory")
    assert mlx is not None
    assert (mlx.level, mlx.message) == ("error", "out of memory")
    assert mlx.at == datetime(2025, 6, 7, 8, 9, 10).astimezone()


async def _app(make_settings: Any, make_app: Any, **instances: Any) -> AppHarness:
    settings = make_settings(**instances)
    settings.backends.vllm.command = STAND_INS["vllm"]
    settings.backends.mlx_lm.command = STAND_INS["mlx_lm"]
    app: AppHarness = await make_app(settings)
    return app


async def test_a_hub_id_is_a_model_for_vllm_but_not_for_llama_cpp(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    app = await _app(make_settings, make_app)
    hub = await app.client.post("/api/instances", json={
        "name": "hub", "model_path": "Qwen/Qwen2.5-0.5B-Instruct", "backend": "vllm"})
    assert hub.status_code == 201, hub.text
    assert (await app.client.get("/api/instances/hub")).json()["backend"] == "vllm"
    relative = await app.client.post("/api/instances", json={
        "name": "rel", "model_path": "Qwen/Qwen2.5-0.5B-Instruct"})
    assert relative.status_code == 400
    unknown = await app.client.post("/api/instances", json={
        "name": "bad", "model_path": str(tmp_path), "backend": "vllm",
        "options": {"threads": 4}})
    assert unknown.status_code == 400
    assert unknown.json()["details"] == "options.threads: unknown option"
    switched = await app.client.put("/api/instances/hub", json={"backend": "llama_cpp"})
    assert switched.status_code == 400  # a hub id is no model file for llama.cpp
    assert (await app.client.get("/api/instances/hub")).json()["backend"] == "vllm"


async def test_hub_ids_are_refused_when_model_dirs_are_set(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    app = await _app(make_settings, make_app, model_dirs=[str(tmp_path)])
    hub = await app.client.post("/api/instances", json={
        "name": "hub", "model_path": "org/model", "backend": "vllm"})
    assert hub.status_code == 400
    assert hub.json()["code"] == "MODEL_NOT_ALLOWED"


@pytest.mark.parametrize("backend", ["vllm", "mlx_lm"])
async def test_a_stand_in_runs_behind_the_gateway_like_llama_server(
    make_settings: Any, make_app: Any, tmp_path: Path, backend: str
) -> None:
    """Create, on-demand start through /v1, logs with levels, stop: as for llama.cpp. The
    stand-in vLLM refuses /v1 without VLLM_API_KEY, so an answer proves the key went in;
    the stand-in mlx_lm has no /health, so readiness came from /v1/models."""
    model = tmp_path / "models" / "weights"
    model.mkdir(parents=True)
    app = await _app(make_settings, make_app)
    created = await app.client.post("/api/instances", json={
        "name": "m", "model_path": str(model), "backend": backend, "aliases": ["gpt-x"],
        "options": {"seed": 1} if backend == "vllm" else {"temp": 0.2}})
    assert created.status_code == 201, created.text
    # By an alias: the gateway names the model as the server serves it (the stand-ins, as
    # the real ones, answer 404 for any other name).
    completion = await app.client.post("/v1/completions",
                                       json={"model": "gpt-x", "prompt": "hi", "max_tokens": 2})
    assert completion.status_code == 200, completion.text
    assert completion.json()["choices"][0]["text"] == " from the stand-in"
    health = await app.client.get("/api/instances/m/health")
    assert health.json()["status"] == "healthy", health.text
    logs = (await app.client.get("/api/instances/m/logs?level=warn")).json()["logs"]
    assert any("stand-in" in entry["message"] and entry["level"] == "warn" for entry in logs)
    assert (await app.client.post("/api/instances/m/stop")).status_code == 200
    stopped = (await app.client.get("/api/instances/m")).json()
    assert stopped["status"] in ("stopping", "stopped")


async def test_a_flag_the_real_server_lacks_fails_the_start(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    model = tmp_path / "models" / "weights"
    model.mkdir(parents=True)
    app = await _app(make_settings, make_app)
    created = await app.client.post("/api/instances", json={
        "name": "m", "model_path": str(model), "backend": "vllm",
        "extra_args": ["--ctx-size", "4096"]})  # llama.cpp's, not vLLM's
    assert created.status_code == 201
    started = await app.client.post("/api/instances/m/start?wait=true")
    assert started.status_code == 502
    assert "unrecognized arguments: --ctx-size" in started.json()["details"]


@pytest.mark.parametrize(("backend", "command", "instance", "ignored"), [
    ("llama_cpp",
     "llama-server -m /models/x.gguf --port 8081 -c 4096 -ngl 99 --host 0.0.0.0",
     {"model_path": "/models/x.gguf", "port": 8081,
      "options": {"context_size": 4096, "gpu_layers": 99}, "extra_args": []},
     ["--host", "0.0.0.0"]),
    ("llama_cpp",
     "LLAMA_ARG_CTX_SIZE=8192 LLAMA_ARG_FLASH_ATTN=on CUDA_VISIBLE_DEVICES=0 "
     "/opt/bin/llama-server --model '/m/my model.gguf' -np=2 --jinja --no-webui "
     "--api-key secret --metrics --mystery 3 --lora a.gguf --lora b.gguf",
     {"model_path": "/m/my model.gguf", "port": None,
      "options": {"parallel": 2, "jinja": True, "webui": False, "lora": ["a.gguf", "b.gguf"],
                  "context_size": 8192, "flash_attn": "on"},
      "extra_args": ["--mystery", "3"]},
     ["CUDA_VISIBLE_DEVICES=0", "--api-key", "secret", "--metrics"]),
    ("vllm",
     "vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000 -tp 2 --max-model-len 8192 "
     "--enforce-eager --api-key k",
     {"model_path": "Qwen/Qwen2.5-7B-Instruct", "port": 8000,
      "options": {"tensor_parallel_size": 2, "max_model_len": 8192, "enforce_eager": True},
      "extra_args": []},
     ["--api-key", "k"]),
    ("mlx_lm",
     "python -m mlx_lm.server --model mlx-community/Qwen3-4B-4bit --temp 0.7 --host 0.0.0.0",
     {"model_path": "mlx-community/Qwen3-4B-4bit", "port": None, "options": {"temp": 0.7},
      "extra_args": []},
     ["--host", "0.0.0.0"]),
])
async def test_a_command_line_is_imported_as_an_instance(
    make_settings: Any, make_app: Any, backend: str, command: str,
    instance: dict[str, Any], ignored: list[str],
) -> None:
    app = await _app(make_settings, make_app)
    answer = await app.client.post(f"/api/backends/{backend}/parse-command",
                                   json={"command": command})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"instance": {"backend": backend, **instance}, "ignored": ignored}


@pytest.mark.parametrize(("backend", "command", "problem"), [
    ("llama_cpp", "vllm serve x", "'vllm' is not a llama_cpp command"),
    ("llama_cpp", "llama-server -m /x.gguf -c many", "-c many: not an integer"),
    ("llama_cpp", "llama-server -m '/x.gguf", "cannot be split"),
    ("llama_cpp", "llama-server -c 4096", "names no model"),
    ("vllm", "vllm run m", "expected 'serve'"),
    ("llama_cpp", "llama-server -m /x.gguf --port 80", "not a port llamactl can use"),
])
async def test_a_command_line_that_cannot_be_imported_is_400_naming_the_token(
    make_settings: Any, make_app: Any, backend: str, command: str, problem: str
) -> None:
    app = await _app(make_settings, make_app)
    answer = await app.client.post(f"/api/backends/{backend}/parse-command",
                                   json={"command": command})
    assert answer.status_code == 400
    assert answer.json()["code"] == "VALIDATION_ERROR"
    assert problem in answer.json()["details"]


async def test_an_imported_instance_with_a_name_is_a_valid_create(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app = await _app(make_settings, make_app)
    parsed = await app.client.post("/api/backends/llama_cpp/parse-command", json={
        "command": f"llama-server -m {model} -c 512 -t 1 --host 0.0.0.0 --port 8080"})
    body = {**parsed.json()["instance"], "name": "imported"}
    body["port"] = None  # the command's port may be taken here: any free one
    created = await app.client.post("/api/instances", json=body)
    assert created.status_code == 201, created.text
    listed = (await app.client.get("/api/backends")).json()["backends"]
    assert [b["name"] for b in listed] == ["llama_cpp", "vllm", "mlx_lm"]
    assert {"name": "context_size", "flag": "--ctx-size", "type": "int", "choices": [],
            "help": "prompt context size (0: from the model)", "minimum": 0,
            "group": "context", "default": 0} in listed[0]["options"]
    groups = {b["name"]: {o["group"] for o in b["options"]} for b in listed}
    assert groups["llama_cpp"] == {"performance", "sampling", "context", "speculative",
                                   "multimodal", "server"}


def test_a_stand_in_vllm_is_adopted_after_a_kill_9_of_llamactl(tmp_path: Path) -> None:
    """As for llama-server (test_adoption.py): the process outlives llamactl, the next one
    takes it back by pid and start time, and stops it."""
    model = tmp_path / "models" / "weights"
    model.mkdir(parents=True)
    low, high = port_block()
    config = write_config(tmp_path / "config.yaml", {
        "backends": {"vllm": {"command": STAND_INS["vllm"]}},
        "instances": {"port_range": [low, high]}})
    data = tmp_path / "data"
    with llamactl_server(data, config) as first:
        with first.client() as client:
            created = client.post("/api/instances", json={
                "name": "v", "model_path": str(model), "backend": "vllm"})
            assert created.status_code == 201, created.text
            assert client.post("/api/instances/v/start?wait=true").status_code == 200
            before = client.get("/api/instances/v").json()
        first.kill9()
    with llamactl_server(data, config) as second, second.client() as client:
        adopted = client.get("/api/instances/v").json()
        assert adopted["status"] == "running"
        assert adopted["pid"] == before["pid"]
        answer = client.post("/v1/completions", json={"model": "v", "prompt": "hi"})
        assert answer.status_code == 200, answer.text
        assert client.post("/api/instances/v/stop").status_code == 200
        wait_until(lambda: client.get("/api/instances/v").json()["status"] == "stopped",
                   what="the adopted stand-in to stop")
    assert not psutil.pid_exists(before["pid"]) or (
        psutil.Process(before["pid"]).status() == psutil.STATUS_ZOMBIE)
