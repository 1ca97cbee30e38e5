"""``GET /api/models`` (issue 33): every GGUF file under ``instances.model_dirs`` and the
library's folder, read from its header; split models as one, projectors as projectors,
broken files listed with their problem (never a 500), the list following the disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import AppHarness
from tests.support.model_files import write_mmproj, write_split_model


def _by_id(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {model["id"]: model for model in answer["models"]}


async def _models(app: AppHarness) -> dict[str, dict[str, Any]]:
    answer = await app.client.get("/api/models")
    assert answer.status_code == 200, answer.text
    return _by_id(answer.json())


async def test_the_models_on_disk_are_listed_from_their_headers(
    make_settings: Any, make_app: Any, tmp_path: Path, tiny_model_file: Path,
) -> None:
    mine, library = tmp_path / "mine", tmp_path / "library"
    mine.mkdir()
    shutil.copy(tiny_model_file, mine / "chat-Q8_0.gguf")
    write_split_model(mine / "big", "big-model-Q4_K_M", parts=3)
    write_mmproj(mine / "mmproj-vision-F16.gguf")
    (mine / "notes.gguf").write_text("not a model at all\n" * 10)
    (mine / "empty.gguf").write_bytes(b"")
    (mine / "README.md").write_text("not a GGUF name: not listed")
    (library / "someone" / "repo").mkdir(parents=True)
    shutil.copy(tiny_model_file, library / "someone" / "repo" / "tiny-F32.gguf")
    app: AppHarness = await make_app(make_settings(
        model_dirs=[str(mine)], sections={"models": {"dir": str(library)}}))

    models = await _models(app)

    assert sorted(models) == ["big/big-model-Q4_K_M-00001-of-00003.gguf", "chat-Q8_0.gguf",
                              "empty.gguf", "mmproj-vision-F16.gguf", "notes.gguf",
                              "someone/repo/tiny-F32.gguf"]
    chat = models["chat-Q8_0.gguf"]
    assert chat["path"] == str(mine / "chat-Q8_0.gguf")
    assert chat["size"] == tiny_model_file.stat().st_size
    assert (chat["architecture"], chat["context_length"]) == ("llama", 2048)
    assert chat["quantization"] == "F32"  # the header's file type, over the name's Q8_0
    assert chat["chat_template"] is True
    assert chat["parameters"] > 100_000
    assert (chat["split"], chat["mmproj"], chat["source"], chat["error"]) == (
        None, False, None, None)
    assert chat["memory_estimate"]["ram"] > chat["size"]
    assert chat["instances"] == []
    big = models["big/big-model-Q4_K_M-00001-of-00003.gguf"]
    assert big["split"] == {"part": 1, "count": 3}
    assert big["size"] == sum(p.stat().st_size for p in (mine / "big").iterdir())
    assert big["parameters"] == chat["parameters"], "every part's tensors are counted"
    assert big["error"] is None
    assert big["memory_estimate"] is not None
    projector = models["mmproj-vision-F16.gguf"]
    assert (projector["mmproj"], projector["architecture"]) == (True, "clip")
    assert projector["memory_estimate"] is None
    assert "the file is text" in models["notes.gguf"]["error"]
    assert "empty file" in models["empty.gguf"]["error"]
    assert models["empty.gguf"]["architecture"] is None


async def test_the_list_follows_the_disk(
    make_settings: Any, make_app: Any, tmp_path: Path, tiny_model_file: Path,
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    app: AppHarness = await make_app(make_settings(sections={"models": {"dir": str(library)}}))
    assert await _models(app) == {}

    shutil.copy(tiny_model_file, library / "a.gguf")
    write_split_model(library, "split", parts=2)
    (library / "split-00002-of-00002.gguf").unlink()
    models = await _models(app)
    assert models["a.gguf"]["error"] is None
    assert "1 of 2 parts" in models["split-00001-of-00002.gguf"]["error"]

    (library / "a.gguf").write_bytes(b"GGUF")  # the same name, now broken: read again
    os.utime(library / "a.gguf", ns=(1, 1))
    (library / "b.gguf").symlink_to(tiny_model_file)
    models = await _models(app)
    assert "truncated" in models["a.gguf"]["error"]
    assert models["b.gguf"]["error"] is None
    (library / "b.gguf").unlink()
    assert "b.gguf" not in await _models(app)


async def test_an_instance_using_a_model_is_named_beside_it(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path, tiny_model_file: Path,
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(tiny_model_file, mine / "own.gguf")
    (mine / "link.gguf").symlink_to(mine / "own.gguf")
    app: AppHarness = await make_app(make_settings(
        model_dirs=[str(mine), str(model.parent), str(tiny_model_file.parent)]))
    for name, path in (("chat", mine / "own.gguf"), ("linked", mine / "link.gguf"),
                       ("other", model)):
        created = await app.client.post("/api/instances",
                                        json={"name": name, "model_path": str(path)})
        assert created.status_code == 201, created.text
    models = await _models(app)
    assert models["link.gguf" if "link.gguf" in models else "own.gguf"]["instances"] == [
        "chat", "linked"], "a link and its file are one model, used by both"
    assert models["tiny.gguf"]["instances"] == ["other"]


async def test_unreadable_files_and_folders_are_not_a_500(
    make_settings: Any, make_app: Any, tmp_path: Path, tiny_model_file: Path,
) -> None:
    library = tmp_path / "library"
    (library / "closed").mkdir(parents=True)
    shutil.copy(tiny_model_file, library / "closed" / "hidden.gguf")
    (library / "dangling.gguf").symlink_to(tmp_path / "nowhere.gguf")
    (library / "loop").symlink_to(library)  # a folder link is not followed: no endless walk
    shutil.copy(tiny_model_file, library / "locked.gguf")
    (library / "locked.gguf").chmod(0)
    (library / "closed").chmod(0)
    try:
        app: AppHarness = await make_app(make_settings(
            sections={"models": {"dir": str(library)}}))
        models = await _models(app)
    finally:
        (library / "closed").chmod(0o755)
    if os.geteuid() != 0:  # root reads everything
        assert "cannot be read" in models["locked.gguf"]["error"]
    assert "dangling.gguf" not in models


def test_the_fast_header_reader_reads_what_gguf_reads(tmp_path: Path,
                                                       tiny_model_file: Path) -> None:
    """The library's reader (header_reader.py) against gguf.GGUFReader: the same facts for
    the memory estimate, the same tensors, the same metadata a listing shows."""
    import gguf

    from llamactl.backends.llama_cpp.header_reader import read_header
    from llamactl.backends.llama_cpp.memory import model_facts

    first, second = write_split_model(tmp_path, "s", parts=2)
    for path in (tiny_model_file, write_mmproj(tmp_path / "p.gguf"), first, second):
        ours, theirs = read_header(path), gguf.GGUFReader(path, "r")
        assert [(t.name, t.n_elements, t.n_bytes) for t in ours.tensors] == [
            (t.name, int(t.n_elements), int(t.n_bytes)) for t in theirs.tensors]
        for key in ("general.architecture", "general.file_type", "split.no",
                    "llama.context_length"):
            if key in theirs.fields:
                assert ours.fields[key].contents() == theirs.fields[key].contents(), key
        assert ("tokenizer.chat_template" in ours.fields) == (
            "tokenizer.chat_template" in theirs.fields)
        if path in (tiny_model_file, first):
            assert model_facts(ours) == model_facts(theirs)


def test_the_header_readers_block_sizes_are_ggufs() -> None:
    """header_reader.py keeps its own table so that reading a header never imports numpy."""
    import gguf

    from llamactl.backends.llama_cpp.header_reader import QUANT_SIZES

    assert {int(kind): sizes for kind, sizes in gguf.GGML_QUANT_SIZES.items()} == QUANT_SIZES
