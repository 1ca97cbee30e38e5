"""GGUF files the model library's tests write: a split model and a multimodal projector,
beside the tiny model (llamactl.devtools.tiny_model) and broken files."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from llamactl.devtools import tiny_model


def write_split_model(folder: Path, base: str, *, parts: int = 2, seed: int = 3) -> list[Path]:
    """The tiny model cut into ``parts`` files as llama.cpp's gguf-split names and marks them
    (``<base>-00001-of-0000N.gguf``; ``split.no``, ``split.count``, ``split.tensors.count``):
    the first holds the metadata, the tensors are dealt out in order."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_model.build_vocab()
    tensors = list(tiny_model.build_tensors(vocab, seed).items())
    share = -(-len(tensors) // parts)
    paths = []
    for index in range(parts):
        path = folder / f"{base}-{index + 1:05d}-of-{parts:05d}.gguf"
        writer = gguf.GGUFWriter(path, "llama")
        try:
            if index == 0:
                tiny_model._add_hparams(writer, len(vocab.pieces), tiny_model.Shape())
                tiny_model._add_tokenizer(writer, vocab)
            writer.add_uint16("split.no", index)
            writer.add_uint16("split.count", parts)
            writer.add_int32("split.tensors.count", len(tensors))
            for name, tensor in tensors[index * share:(index + 1) * share]:
                writer.add_tensor(name, tensor)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        paths.append(path)
    return paths


def write_mmproj(path: Path) -> Path:
    """A small CLIP projector file, as a vision model's repo ships beside its weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, "clip")
    try:
        writer.add_type("mmproj")
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_tensor("mm.0.weight", np.ones((8, 8), dtype=np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path
