"""What each instance can do (issue 31): ``context_length`` and ``capabilities`` from the
options and the model's GGUF metadata, on /v1/models and the instance's JSON, and the
refusal of a route the instance cannot serve before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import pytest

from llamactl.backends import backend_named
from llamactl.backends.base import ModelAbilities
from llamactl.devtools.tiny_model import N_CTX
from llamactl.instances.models import InstanceSpec
from llamactl.supervisor.memory import MemoryEstimator
from tests.conftest import AppHarness
from tests.support.helpers import backends_under

TOOL_TEMPLATE = ("{% if tools %}{{ tools | tojson }}{% endif %}"
                 "{% for m in messages %}{{ m['content'] }}{% endfor %}")


def write_metadata_file(path: Path, architecture: str, **values: Any) -> Path:
    """A GGUF file with metadata only (no tensor): what the abilities are read from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, architecture)
    for key, value in values.items():
        key = key.replace("__", ".")
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_string(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def abilities(model: Path, *, extra_args: list[str] | None = None, backend: str = "llama_cpp",
              **options: Any) -> ModelAbilities:
    spec = InstanceSpec(name="x", model_path=str(model), port=1, backend=backend,
                        options=options, extra_args=extra_args or [])
    return backend_named(backend).abilities(spec, MemoryEstimator())


def test_llama_cpp_abilities_from_options_and_metadata(model: Path, tmp_path: Path) -> None:
    assert abilities(model) == ModelAbilities(N_CTX, ("completion", "chat"))
    assert abilities(model, context_size=512).context_length == 512
    assert abilities(model, extra_args=["--ctx-size", "1024"]).context_length == 1024
    assert abilities(model, embedding=True, pooling="mean").capabilities == ("embedding",)
    assert abilities(model, extra_args=["--embeddings"]).capabilities == ("embedding",)
    assert abilities(model, reranking=True).capabilities == ("rerank",)
    tools = write_metadata_file(tmp_path / "tools.gguf", "qwen2", qwen2__context_length=32768,
                                tokenizer__chat_template=TOOL_TEMPLATE)
    assert abilities(tools) == ModelAbilities(32768, ("completion", "chat", "tools"))
    assert abilities(tools, jinja=False).capabilities == ("completion", "chat")
    base = write_metadata_file(tmp_path / "base.gguf", "llama", llama__context_length=4096)
    assert abilities(base).capabilities == ("completion",)
    assert abilities(base, chat_template="chatml").capabilities == (
        "completion", "chat", "tools")
    audio = write_metadata_file(tmp_path / "audio-mmproj.gguf", "clip",
                                clip__has_audio_encoder=True, clip__has_vision_encoder=False)
    both = write_metadata_file(tmp_path / "omni-mmproj.gguf", "clip",
                               clip__has_audio_encoder=True, clip__has_vision_encoder=True)
    old = write_metadata_file(tmp_path / "old-mmproj.gguf", "clip", clip__projector_type="mlp")
    assert abilities(model, mmproj=str(audio)).capabilities == ("completion", "chat", "audio")
    assert abilities(model, mmproj=str(both)).capabilities == (
        "completion", "chat", "vision", "audio")
    assert abilities(model, mmproj=str(old)).capabilities == ("completion", "chat", "vision")


def test_unknown_abilities_refuse_nothing(tmp_path: Path) -> None:
    missing = abilities(tmp_path / "not-there.gguf")
    assert not missing.known
    assert "chat" in missing.capabilities
    text = tmp_path / "text.gguf"
    text.write_text("not a model")
    assert not abilities(text).known
    vllm = abilities(tmp_path, backend="vllm", max_model_len=8192)
    assert vllm == ModelAbilities(8192, ("completion", "chat"), known=False)


async def test_models_and_instances_say_what_each_can_do(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    for name, options in (("chat", {}), ("embed", {"embedding": True, "pooling": "mean"}),
                          ("long", {"context_size": 4096})):
        answer = await app.client.post("/api/instances", json={
            "name": name, "model_path": str(model), "options": options})
        assert answer.status_code == 201, answer.text
        assert answer.json()["instance"]["capabilities"], answer.text
    listed = {m["id"]: (m["context_length"], m["capabilities"])
              for m in (await app.client.get("/v1/models")).json()["data"]}
    assert listed == {"chat": (N_CTX, ["completion", "chat"]), "embed": (N_CTX, ["embedding"]),
                      "long": (4096, ["completion", "chat"])}
    one = (await app.client.get("/v1/models/embed")).json()
    assert (one["context_length"], one["capabilities"]) == (N_CTX, ["embedding"])
    instance = (await app.client.get("/api/instances/long")).json()
    assert (instance["context_length"], instance["capabilities"]) == (
        4096, ["completion", "chat"])
    updated = await app.client.put("/api/instances/long", json={"options": {"reranking": True}})
    assert updated.json()["instance"]["capabilities"] == ["rerank"]
    assert (await app.client.get("/v1/models/long")).json()["capabilities"] == ["rerank"]


@pytest.mark.parametrize(("path", "body", "needed"), [
    ("/v1/embeddings", {"input": "x"}, "embedding"),
    ("/v1/rerank", {"query": "q", "documents": ["d"]}, "rerank"),
    ("/v1/messages", {"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
     "chat"),
])
async def test_a_route_the_instance_cannot_serve_is_refused_before_any_start(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path, path: str,
    body: dict[str, Any], needed: str,
) -> None:
    app: AppHarness = await make_app(make_settings())
    options = {"reranking": True} if needed == "embedding" else {"embedding": True}
    answer = await app.client.post("/api/instances", json={
        "name": "other", "model_path": str(model), "options": options})
    assert answer.status_code == 201, answer.text
    refused = await app.client.post(path, json={"model": "other", **body})
    assert refused.status_code == 400
    error = refused.json()["error"]
    if path == "/v1/messages":  # Anthropic's envelope: no code
        assert refused.json()["type"] == "error"
    else:
        assert error["code"] == "unsupported_capability"
    assert error["type"] == "invalid_request_error"
    assert f"needs '{needed}'" in error["message"]
    assert f"can do: {'rerank' if needed == 'embedding' else 'embedding'}" in error["message"]
    assert (await app.client.get("/api/instances/other")).json()["status"] == "stopped"
    assert backends_under(tmp_path) == []
