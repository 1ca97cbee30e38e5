"""Bad model files (issue 27, point 10): refused at create and update by their GGUF header
(400 MODEL_INVALID saying what is wrong), and a start that llama-server itself refuses fails
with its real cause in ``last_error``, shown by ``llamactl instances list``."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppHarness
from tests.support.clients import cli, running_server
from tests.support.helpers import write_unloadable_model


def _truncated_header(tiny: bytes) -> bytes:
    return tiny[:200]  # inside the metadata: the vocabulary alone is longer


def _truncated_data(tiny: bytes) -> bytes:
    return tiny[: len(tiny) // 2]  # the later tensors' data would start past the end


BROKEN: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda tiny: b"", "empty file"),
    "text": (lambda tiny: b"just some notes\nabout a model\n" * 20, "the file is text"),
    "binary": (lambda tiny: b"\x7fELF\x02\x01\x01" + bytes(500), "not a GGUF model"),
    "truncated header": (_truncated_header, "truncated GGUF file"),
    "truncated data": (_truncated_data, "truncated GGUF file"),
    "version 1": (lambda tiny: b"GGUF" + struct.pack("<I", 1) + tiny[8:],
                  "unsupported GGUF version 1"),
    "version 9": (lambda tiny: b"GGUF" + struct.pack("<I", 9) + tiny[8:],
                  "unsupported GGUF version 9"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
async def test_a_bad_model_file_is_refused_at_create_and_update(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path, kind: str,
) -> None:
    app: AppHarness = await make_app(make_settings())
    damage, problem = BROKEN[kind]
    bad = tmp_path / "models" / "bad.gguf"
    bad.write_bytes(damage(model.read_bytes()))
    refused = await app.client.post("/api/instances", json={"name": "m", "model_path": str(bad)})
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "MODEL_INVALID"
    assert problem in refused.json()["details"], refused.json()
    assert (await app.client.get("/api/instances/m")).status_code == 404
    created = await app.client.post("/api/instances", json={"name": "m",
                                                            "model_path": str(model)})
    assert created.status_code == 201, created.text
    moved = await app.client.put("/api/instances/m", json={"model_path": str(bad)})
    assert (moved.status_code, moved.json()["code"]) == (400, "MODEL_INVALID")
    assert (await app.client.get("/api/instances/m")).json()["model_path"] == str(model)


async def test_a_failed_start_says_why_in_last_error(
    make_settings: Any, make_app: Any, tmp_path: Path,
) -> None:
    """A whole header that llama-server cannot load: its own first error is the reason."""
    app: AppHarness = await make_app(make_settings())
    unloadable = write_unloadable_model(tmp_path / "models" / "empty-model.gguf")
    created = await app.client.post("/api/instances", json={"name": "u",
                                                            "model_path": str(unloadable)})
    assert created.status_code == 201, created.text
    started = await app.client.post("/api/instances/u/start", params={"wait": "true"})
    assert started.status_code == 502
    instance = (await app.client.get("/api/instances/u")).json()
    assert instance["status"] == "failed"
    assert "before it was ready" in instance["last_error"]
    assert "unknown model architecture" in instance["last_error"], instance["last_error"]


def test_instances_list_shows_the_last_error(tmp_path: Path, llama_server_bin: str) -> None:
    unloadable = write_unloadable_model(tmp_path / "models" / "empty-model.gguf")
    with running_server(tmp_path, llama_server_bin) as server:
        with server.client() as client:
            assert client.post("/api/instances", json={
                "name": "u", "model_path": str(unloadable)}).status_code == 201
            assert client.post("/api/instances/u/start",
                               params={"wait": "true"}).status_code == 502
        home = tmp_path / "home"
        home.mkdir()
        listed = cli("instances", "list", url=server.url, home=home)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert "LAST ERROR" in header
    assert row.split()[1] == "failed"
    assert "unknown model architecture" in row
