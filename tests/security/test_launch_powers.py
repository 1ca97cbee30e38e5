"""What a caller may make llamactl launch, and what a launched backend gets: only admins set
``environment``/``extra_args``, model paths stay inside ``instances.model_dirs``, and no
``LLAMACTL_*`` variable (the token-signing secret among them) reaches a llama-server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import AUTH_SECRET, Server


def test_backends_inherit_no_llamactl_variable(
    secured_server: Server, models_dir: Path, cleanup: list[str],
) -> None:
    with secured_server.client("admin") as admin:
        created = admin.post("/api/instances", json={
            "name": "env-check", "model_path": str(models_dir / "tiny.gguf"),
            "environment": {"MY_SETTING": "mine"}})
        assert created.status_code == 201, created.text
        cleanup.append("env-check")
        started = admin.post("/api/instances/env-check/start", params={"wait": "true"})
        assert started.status_code == 200, started.text
        pid = admin.get("/api/instances/env-check").json()["pid"]
    with open(f"/proc/{pid}/environ", "rb") as handle:
        entries = [item.decode() for item in handle.read().split(b"\0") if item]
    environment = dict(item.partition("=")[::2] for item in entries)
    assert "llama-server" in Path(f"/proc/{pid}/exe").resolve().name
    assert [name for name in environment if name.upper().startswith("LLAMACTL_")] == []
    assert not any(AUTH_SECRET in value for value in environment.values())
    assert environment["MY_SETTING"] == "mine"
    assert environment["LLAMA_API_KEY"].startswith("llamactl-")
    assert environment.get("PATH") == os.environ.get("PATH")  # the rest is inherited


@pytest.mark.parametrize(("field", "value"), [
    ("environment", {"LD_PRELOAD": "/tmp/evil.so"}),
    ("extra_args", ["--chat-template-file", "/tmp/anything.jinja"]),
])
def test_only_admins_set_environment_and_extra_args(
    secured_server: Server, models_dir: Path, cleanup: list[str], field: str, value: Any,
) -> None:
    model = str(models_dir / "tiny.gguf")
    with secured_server.client("op") as operator, secured_server.client("admin") as admin:
        refused = operator.post("/api/instances",
                                json={"name": "powers", "model_path": model, field: value})
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "FORBIDDEN"
        assert field in refused.json()["error"]
        assert admin.get("/api/instances/powers").status_code == 404  # nothing was created
        created = operator.post("/api/instances", json={"name": "powers", "model_path": model,
                                                        field: type(value)()})  # empty: fine
        assert created.status_code == 201, created.text
        cleanup.append("powers")
        update = operator.put("/api/instances/powers", json={field: value})
        assert (update.status_code, update.json()["code"]) == (403, "FORBIDDEN")
        assert admin.get("/api/instances/powers").json()[field] == type(value)()
        assert admin.put("/api/instances/powers", json={field: value}).status_code == 200
        assert admin.get("/api/instances/powers").json()[field] == value


def test_model_paths_stay_inside_model_dirs(
    secured_server: Server, models_dir: Path, tiny_model_file: Path, cleanup: list[str],
) -> None:
    outside = secured_server.root / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.gguf").write_bytes(tiny_model_file.read_bytes())
    escape = models_dir / "escape.gguf"
    if not escape.exists():
        escape.symlink_to(outside / "secret.gguf")  # a link inside, to a file outside
    escapes = [f"{models_dir}/../outside/secret.gguf", str(escape),
               str(outside / "secret.gguf"), f"{models_dir}/../outside/missing.gguf"]
    with secured_server.client("admin") as admin:
        for path in escapes:
            answer = admin.post("/api/instances", json={"name": "paths", "model_path": path})
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["code"] == "MODEL_NOT_ALLOWED", path
            assert "model_dirs" in answer.json()["details"]
        relative = admin.post("/api/instances", json={"name": "paths",
                                                      "model_path": "models/tiny.gguf"})
        assert (relative.status_code, relative.json()["code"]) == (400, "VALIDATION_ERROR")
        assert "must be absolute" in relative.json()["details"]
        inside = admin.post("/api/instances", json={
            "name": "paths", "model_path": f"{models_dir}/../models/./tiny.gguf"})
        assert inside.status_code == 201, inside.text
        cleanup.append("paths")
        moved = admin.put("/api/instances/paths", json={"model_path": str(escape)})
        assert (moved.status_code, moved.json()["code"]) == (400, "MODEL_NOT_ALLOWED")
