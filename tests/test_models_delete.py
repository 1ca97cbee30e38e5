"""``DELETE /api/models/{id}`` (issue 33): only files of the library's own folder, never one an
instance uses, never a user's own files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.conftest import AppHarness
from tests.support.model_files import write_split_model


async def _ids(app: AppHarness) -> set[str]:
    return {m["id"] for m in (await app.client.get("/api/models")).json()["models"]}


async def test_a_library_model_is_deleted_whole_unless_an_instance_uses_it(
    make_settings: Any, make_app: Any, tmp_path: Path, tiny_model_file: Path,
) -> None:
    library = tmp_path / "library"
    model = library / "someone" / "repo" / "tiny-Q8_0.gguf"
    model.parent.mkdir(parents=True)
    shutil.copy(tiny_model_file, model)
    write_split_model(library / "split", "big", parts=2)
    app: AppHarness = await make_app(make_settings(sections={"models": {"dir": str(library)}}))
    listed = (await app.client.get("/api/models")).json()["models"]
    assert [m["deletable"] for m in listed] == [True, True], "both inside models.dir"
    created = await app.client.post("/api/instances",
                                    json={"name": "chat", "model_path": str(model)})
    assert created.status_code == 201, created.text

    refused = await app.client.delete("/api/models/someone/repo/tiny-Q8_0.gguf")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "MODEL_IN_USE"
    assert "chat" in refused.json()["details"]
    assert model.exists()

    assert (await app.client.delete("/api/instances/chat")).status_code == 200
    deleted = await app.client.delete("/api/models/someone/repo/tiny-Q8_0.gguf")
    assert deleted.status_code == 200, deleted.text
    assert not model.exists()
    assert not (library / "someone").exists(), "the folders it emptied went with it"
    split = await app.client.delete("/api/models/split/big-00001-of-00002.gguf")
    assert split.status_code == 200, split.text
    assert not (library / "split").exists(), "every part"
    assert await _ids(app) == set()
    again = await app.client.delete("/api/models/someone/repo/tiny-Q8_0.gguf")
    assert (again.status_code, again.json()["code"]) == (404, "NOT_FOUND")


async def test_a_file_outside_the_library_folder_is_never_deleted(
    make_settings: Any, make_app: Any, tmp_path: Path, model: Path,
) -> None:
    app: AppHarness = await make_app(make_settings(
        model_dirs=[str(model.parent)],
        sections={"models": {"dir": str(tmp_path / "library")}}))
    listed = {m["id"]: m for m in (await app.client.get("/api/models")).json()["models"]}
    assert listed["tiny.gguf"]["deletable"] is False, "outside models.dir: never deleted"
    refused = await app.client.delete("/api/models/tiny.gguf")
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN"), refused.text
    assert model.exists()
    for sneaky in ("../models/tiny.gguf", "%2e%2e/models/tiny.gguf", str(model)):
        answer = await app.client.delete(f"/api/models/{sneaky}")
        assert answer.status_code in (403, 404), (sneaky, answer.text)
    assert model.exists()
