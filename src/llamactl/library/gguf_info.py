"""What the model library shows of one GGUF file, read from its header only (issue 33).

One read of the header per file version (the catalog caches by size and mtime), by
backends/llama_cpp/header_reader.py (which reads as ``gguf.GGUFReader`` does, without its
per-token cost): the metadata and the tensor table, never the tensor data, so a 30 GB model
costs what its header costs. A file that is not a GGUF model llama-server can open gets its
problem in words (the create route's check, ``gguf_header.gguf_problem``), not an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamactl.backends.llama_cpp.gguf_header import gguf_problem
from llamactl.backends.llama_cpp.header_reader import read_header
from llamactl.backends.llama_cpp.memory import (
    ModelFacts,
    field_value,
    model_facts,
    tensor_bytes,
)

# llama.cpp's split files (gguf-split): <base>-00001-of-00003.gguf
SPLIT_NAME = re.compile(r"^(?P<base>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.I)
# A quantization in a file name, as the Hub's GGUF repos spell them (Q4_K_M, IQ3_XXS, F16...)
QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])((?:UD-)?I?Q\d(?:_[A-Z0-9]+)*|F16|F32|BF16|MXFP4(?:_MOE)?)"
    r"(?![A-Za-z0-9])", re.I)


@dataclass(frozen=True)
class FileInfo:
    """One GGUF file's header, as the library lists it."""

    error: str | None = None  # why it cannot be read; every other field is then empty
    architecture: str | None = None
    parameters: int | None = None  # weights, counted from the tensor table
    quantization: str | None = None
    context_length: int | None = None
    chat_template: bool = False
    split_part: int | None = None  # 1-based, from split.no; None: not a split file
    split_count: int | None = None
    mmproj: bool = False  # a multimodal projector (clip), not a model on its own
    facts: ModelFacts | None = None  # what the memory estimate needs (models only)
    # This file's tensor data (a split model's parts add up to the model's)
    layer_bytes: int = 0
    output_bytes: int = 0
    other_bytes: int = 0


def read_file_info(path: Path) -> FileInfo:
    """The header of ``path``; a FileInfo with ``error`` for a file llama-server cannot open."""
    problem = gguf_problem(str(path))
    if problem is not None:
        return FileInfo(error=problem)
    try:
        return _read(path)
    except Exception as error:  # gguf's own refusal of a header gguf_problem let through
        return FileInfo(error=f"unreadable GGUF header: {error}")


def _read(path: Path) -> FileInfo:
    reader = read_header(path)
    architecture = str(field_value(reader, "general.architecture", "") or "") or None
    kind = str(field_value(reader, "general.type", "") or "")
    mmproj = kind == "mmproj" or architecture == "clip" or "mmproj" in path.name.lower()
    split_no = field_value(reader, "split.no", None)
    split_count = field_value(reader, "split.count", None)
    facts = None if mmproj else _facts(reader, architecture)
    layer, output, other = tensor_bytes(reader)
    return FileInfo(
        architecture=architecture,
        parameters=sum(int(tensor.n_elements) for tensor in reader.tensors),
        quantization=_quantization(reader, path.name),
        context_length=_context_length(reader, architecture),
        chat_template="tokenizer.chat_template" in reader.fields,
        split_part=int(split_no) + 1 if split_no is not None else None,
        split_count=int(split_count) if split_count is not None else None,
        mmproj=mmproj, facts=facts, layer_bytes=layer, output_bytes=output, other_bytes=other)


def _facts(reader: Any, architecture: str | None) -> ModelFacts | None:
    if architecture is None:
        return None
    try:
        return model_facts(reader)
    except (TypeError, ValueError, IndexError):  # odd metadata: no estimate, still listed
        return None


def _context_length(reader: Any, architecture: str | None) -> int | None:
    if architecture is None:
        return None
    value = field_value(reader, f"{architecture}.context_length", None)
    return int(value) if isinstance(value, int) else None


def _quantization(reader: Any, name: str) -> str | None:
    """The file type llama.cpp's quantizer wrote (general.file_type), else the file name's."""
    import gguf

    file_type = field_value(reader, "general.file_type", None)
    if isinstance(file_type, int):
        try:
            label = gguf.LlamaFileType(file_type).name
        except ValueError:
            label = None
        if label and label != "GUESSED":
            return label.removeprefix("MOSTLY_").removeprefix("ALL_")
    return quant_in_name(name)


def quant_in_name(name: str) -> str | None:
    """The quantization a file's name states (``gemma-3-270m-it-Q4_K_M.gguf``: Q4_K_M)."""
    found = QUANT_IN_NAME.findall(Path(name).stem)
    return found[-1].upper() if found else None
