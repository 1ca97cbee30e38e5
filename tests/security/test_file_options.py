"""Options that name files (issue 27, point 1): an operator pointed ``chat_template_file`` at
the data dir's ``auth_secret`` and read the token-signing secret back from ``/props``. Every
such option stays inside ``instances.model_dirs`` for a caller below admin, never names
llamactl's own files for anyone, and is checked again at each start; ``slot_save_path`` is a
folder of the instance's own unless an admin chooses one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import Server

TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}"


def _create(server: Server, user: str, name: str, models_dir: Path,
            options: dict[str, Any]) -> Any:
    with server.client(user) as client:
        return client.post("/api/instances", json={
            "name": name, "model_path": str(models_dir / "tiny.gguf"), "options": options})


def _refused(answer: Any, option: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "VALIDATION_ERROR", body
    assert f"options.{option}" in body["details"], body


def test_operator_cannot_point_a_template_at_llamactls_secrets(
    secured_server: Server, models_dir: Path, cleanup: list[str],
) -> None:
    """The escalation chain (template -> /props -> secret -> forged admin token) ends at its
    first step: the create is refused, whichever way the path is spelled."""
    data = secured_server.root / "data"
    link = models_dir / "innocent.jinja"
    if not link.is_symlink():
        link.symlink_to(data / "auth_secret")  # inside model_dirs by name, not by target
    targets = [data / "auth_secret", data / "llamactl.db", secured_server.root / "config.yaml",
               Path(f"{models_dir}/../data/auth_secret"), link]
    for target in targets:
        answer = _create(secured_server, "op", "escalate", models_dir,
                         {"chat_template_file": str(target)})
        _refused(answer, "chat_template_file")
        assert str(secured_server.root) not in answer.json()["error"]
    with secured_server.client("admin") as admin:
        assert admin.get("/api/instances/escalate").status_code == 404
    created = _create(secured_server, "op", "escalate", models_dir, {})
    assert created.status_code == 201, created.text
    cleanup.append("escalate")
    with secured_server.client("op") as operator, secured_server.client("admin") as admin:
        update = operator.put("/api/instances/escalate",
                              json={"options": {"chat_template_file": str(data / "auth_secret")}})
        _refused(update, "chat_template_file")
        assert "chat_template_file" not in admin.get("/api/instances/escalate").json()["options"]


@pytest.mark.parametrize(("option", "value"), [
    ("model_draft", "{outside}/draft.gguf"),
    ("model_draft", "{models}/../../{outside_name}/outside/draft.gguf"),
    ("mmproj", "{outside}/mmproj.gguf"),
    ("lora", ["{outside}/adapter.gguf"]),
    ("lora", ["{models}/tiny.gguf,{outside}/adapter.gguf"]),  # llama-server splits on commas
    ("model_draft", "models/tiny.gguf"),  # relative: resolved against llamactl's folder
])
def test_operator_loads_files_only_from_model_dirs(
    secured_server: Server, models_dir: Path, tiny_model_file: Path, cleanup: list[str],
    tmp_path: Path, option: str, value: Any,
) -> None:
    outside = tmp_path / "outside"  # beside the config file's folder, not in it
    outside.mkdir()
    for file in ("draft.gguf", "mmproj.gguf", "adapter.gguf"):
        if not (outside / file).exists():
            (outside / file).write_bytes(tiny_model_file.read_bytes())

    def spell(text: str) -> str:
        return text.format(outside=outside, models=models_dir, outside_name=tmp_path.name)

    given = [spell(item) for item in value] if isinstance(value, list) else spell(value)
    _refused(_create(secured_server, "op", "loads", models_dir, {option: given}), option)
    inside = [str(models_dir / "tiny.gguf")] if isinstance(value, list) else str(
        models_dir / "tiny.gguf")
    created = _create(secured_server, "op", "loads", models_dir, {option: inside})
    assert created.status_code == 201, created.text
    cleanup.append("loads")
    assert created.json()["instance"]["options"][option] == inside
    with secured_server.client("admin") as admin:  # an admin may load from anywhere else
        update = admin.put("/api/instances/loads", json={"options": {option: given}})
        assert update.status_code == 200, update.text


def test_slot_save_path_is_the_instances_own_folder(
    secured_server: Server, models_dir: Path, cleanup: list[str], tmp_path: Path,
) -> None:
    data = secured_server.root / "data"
    anywhere = tmp_path / "slots-chosen-by-admin"
    for path in (anywhere, models_dir, data / "instances"):
        _refused(_create(secured_server, "op", "slots", models_dir,
                         {"slot_save_path": str(path)}), "slot_save_path")
    _refused(_create(secured_server, "admin", "slots", models_dir,
                     {"slot_save_path": str(data)}), "slot_save_path")
    created = _create(secured_server, "op", "slots", models_dir, {})
    assert created.status_code == 201, created.text
    cleanup.append("slots")
    with secured_server.client("op") as operator:
        started = operator.post("/api/instances/slots/start", params={"wait": "true"})
        assert started.status_code == 200, started.text
        saved = operator.post("/api/instances/slots/proxy/slots/0", params={"action": "save"},
                              json={"filename": "kept.bin"})
        assert saved.status_code == 200, saved.text
    folder = data / "instances" / "slots" / "slot_save_path"
    assert (folder / "kept.bin").is_file()
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    with secured_server.client("admin") as admin:
        chosen = admin.put("/api/instances/slots", json={"options": {
            "slot_save_path": str(anywhere)}})
        assert chosen.status_code == 200, chosen.text


def test_an_admin_never_names_llamactls_own_files(
    secured_server: Server, models_dir: Path,
) -> None:
    data = secured_server.root / "data"
    for option, value in [("chat_template_file", str(data / "auth_secret")),
                          ("model_draft", str(data / "llamactl.db")),
                          ("lora", [str(secured_server.root / "config.yaml")]),
                          ("mmproj", f"{models_dir}/../config.yaml")]:
        _refused(_create(secured_server, "admin", "own-files", models_dir, {option: value}),
                 option)
    with secured_server.client("admin") as admin:
        assert admin.get("/api/instances/own-files").status_code == 404


@pytest.mark.parametrize("retarget", ["data dir", "config file", "outside"])
def test_a_start_checks_the_files_again(
    secured_server: Server, models_dir: Path, cleanup: list[str], tmp_path: Path, retarget: str,
) -> None:
    """A link inside model_dirs, accepted at create, retargeted before the start."""
    real = models_dir / f"template-{retarget.replace(' ', '-')}.jinja"
    real.write_text(TEMPLATE)
    link = models_dir / f"link-{real.name}"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(real)
    name = f"recheck-{retarget.replace(' ', '-')}"
    created = _create(secured_server, "op", name, models_dir, {"chat_template_file": str(link)})
    assert created.status_code == 201, created.text
    cleanup.append(name)
    outside = tmp_path / "outside-template.jinja"
    outside.write_text(TEMPLATE)
    target = {"data dir": secured_server.root / "data" / "llamactl.db",
              "config file": secured_server.root / "config.yaml", "outside": outside}[retarget]
    link.unlink()
    os.symlink(target, link)
    with secured_server.client("op") as operator:
        started = operator.post(f"/api/instances/{name}/start", params={"wait": "true"})
        assert started.status_code >= 500, started.text
        instance = operator.get(f"/api/instances/{name}").json()
    assert instance["status"] == "failed"
    assert "options.chat_template_file" in instance["last_error"], instance["last_error"]
    assert instance["pid"] is None
