"""A GGUF header read forward, for the library's listing and the memory estimate: metadata
values and the tensor table, with what ``gguf.GGUFReader`` offers of them
(``fields[key].contents()``, ``len(field.data)``, ``tensors[i].name/n_elements/n_bytes``), so
``memory.model_facts`` reads either.

Why not ``GGUFReader`` itself: it builds a numpy view per metadata item, the vocabulary's
every token included: 75 ms for the tiny test model, seconds for a real vocabulary of 150,000
tokens, and the library reads every file on a first listing. Here large arrays are skipped
(their length kept), strings decoded only where small, so a header costs what reading it
costs. Nor is the ``gguf`` package imported: it imports numpy (18 MB of a server's RSS, for
a table of block sizes); ``QUANT_SIZES`` is its ``GGML_QUANT_SIZES`` (tests/test_models_list.py
compares them).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

# gguf.h's gguf_type: struct formats of the scalars; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_STRING = 1 << 20  # a longer string value (none is) is skipped, not decoded
MAX_SCALAR_ARRAY = 4096  # per-layer values (head counts, window patterns) are read
MAX_STRING_ARRAY = 64  # a vocabulary, merges: skipped, their length kept
# ggml_type -> (elements per block, bytes per block), as gguf.GGML_QUANT_SIZES has them.
QUANT_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1),
    25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}


class HeaderError(Exception):
    pass


class Field:
    """One metadata value: ``contents()`` and ``data`` (for its length), as gguf's."""

    def __init__(self, value: Any, count: int = 1):
        self._value = value
        self.data = range(count)

    def contents(self) -> Any:
        return self._value


@dataclass(frozen=True)
class Tensor:
    name: str
    n_elements: int
    n_bytes: int


@dataclass(frozen=True)
class Header:
    fields: dict[str, Field]
    tensors: list[Tensor]


def read_header(path: Path) -> Header:
    with open(path, "rb", buffering=1 << 20) as stream:
        if stream.read(4) != b"GGUF":
            raise HeaderError("not a GGUF file")
        _unpack(stream, "<I")  # the version: gguf_header.gguf_problem judged it
        n_tensors, n_fields = _unpack(stream, "<Q"), _unpack(stream, "<Q")
        fields = {}
        for _ in range(n_fields):
            key = _string(stream)
            fields[key] = _value(stream, _unpack(stream, "<I"))
        tensors = []
        for _ in range(n_tensors):
            name = _string(stream)
            dims = [_unpack(stream, "<Q") for _ in range(_unpack(stream, "<I"))]
            kind = _unpack(stream, "<I")
            _unpack(stream, "<Q")  # the data's offset
            if kind not in QUANT_SIZES:
                raise HeaderError(f"tensor {name}: unknown type {kind}")
            block, size = QUANT_SIZES[kind]
            elements = 1
            for dim in dims:
                elements *= dim
            tensors.append(Tensor(name, elements, elements * size // block))
    return Header(fields, tensors)


def _value(stream: BinaryIO, kind: int) -> Field:
    if kind in _SCALARS:
        return Field(_unpack(stream, _SCALARS[kind]))
    if kind == _STRING:
        return Field(_string(stream))
    if kind != _ARRAY:
        raise HeaderError(f"a value of unknown type {kind}")
    item, count = _unpack(stream, "<I"), _unpack(stream, "<Q")
    if item in _SCALARS:
        layout = _SCALARS[item]
        width = struct.calcsize(layout)
        if count > MAX_SCALAR_ARRAY:
            stream.seek(width * count, io.SEEK_CUR)
            return Field(None, count)
        data = _exactly(stream, width * count)
        return Field(list(struct.unpack(f"<{count}{layout[1]}", data)), count)
    if item == _STRING:
        if count > MAX_STRING_ARRAY:
            for _ in range(count):
                stream.seek(_unpack(stream, "<Q"), io.SEEK_CUR)
            return Field(None, count)
        return Field([_string(stream) for _ in range(count)], count)
    raise HeaderError(f"an array of unknown type {item}")


def _string(stream: BinaryIO) -> Any:
    length = _unpack(stream, "<Q")
    if length > MAX_STRING:
        stream.seek(length, io.SEEK_CUR)
        return ""
    return _exactly(stream, length).decode("utf-8", "replace")


def _unpack(stream: BinaryIO, layout: str) -> Any:
    return struct.unpack(layout, _exactly(stream, struct.calcsize(layout)))[0]


def _exactly(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) < length:
        raise HeaderError("the file ends inside its header")
    return data
