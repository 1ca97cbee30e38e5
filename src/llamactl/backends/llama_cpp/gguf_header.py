"""Is this a GGUF file llama-server can open? Its header, read at create and update.

An empty file, a text file or a truncated download used to be accepted at create and fail at
start with "exited with code 1 before it was ready", the cause buried in the log (issue 27).
This reads what llama.cpp's ``gguf_init_from_file`` reads before any tensor data: the magic,
the version (2 and 3; 1 is no longer read), the metadata and the tensor infos, and checks that
every tensor's data starts inside the file. Whether the model itself loads (its architecture,
its tensors' sizes) is llama-server's to say at start, in the instance's ``last_error``.

Only the standard library, reading forward through a buffered file: a header holds a vocabulary
of up to a few hundred thousand strings, a few megabytes, never the tensor data.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMENSIONS = 8  # GGML_MAX_DIMS is 4; a larger count is a corrupt header
# Bytes of each metadata value type (gguf.h's gguf_type); 8 is a string, 9 an array.
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
_SCALAR_LAYOUTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                   10: "<Q", 11: "<q", 12: "<d"}
MetadataValue = str | int | float | bool
_U64 = struct.Struct("<Q")


class HeaderProblem(Exception):
    """What is wrong with the file, in words for the API's answer."""


class _Truncated(Exception):
    pass


def gguf_problem(path: str) -> str | None:
    """Why ``path`` is not a GGUF file llama-server can open, or None."""
    try:
        with open(path, "rb", buffering=1 << 20) as stream:
            _check(stream, Path(path).stat().st_size)
    except HeaderProblem as problem:
        return str(problem)
    except _Truncated:
        return "truncated GGUF file: it ends inside its header"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    return None


def _check(stream: BinaryIO, size: int) -> None:
    if size == 0:
        raise HeaderProblem("empty file, not a GGUF model")
    magic = stream.read(4)
    if magic != MAGIC:
        raise HeaderProblem(_not_gguf(magic + stream.read(508)))
    version = _unpack(stream, "<I")
    if version not in SUPPORTED_VERSIONS:
        raise HeaderProblem(f"unsupported GGUF version {version} (llama-server reads "
                            f"versions {' and '.join(map(str, SUPPORTED_VERSIONS))})")
    tensors, entries = _unpack(stream, "<Q"), _unpack(stream, "<Q")
    if tensors > size or entries > size:
        raise HeaderProblem("corrupt GGUF header: impossible tensor or metadata counts")
    alignment = DEFAULT_ALIGNMENT
    for _ in range(entries):
        key = _string(stream, size)
        kind = _unpack(stream, "<I")
        if key == "general.alignment" and kind == _UINT32:
            alignment = _unpack(stream, "<I") or DEFAULT_ALIGNMENT
        else:
            _skip_value(stream, kind, size)
    last_offset = 0
    for _ in range(tensors):
        _string(stream, size)
        dimensions = _unpack(stream, "<I")
        if dimensions > MAX_DIMENSIONS:
            raise HeaderProblem("corrupt GGUF header: a tensor with too many dimensions")
        stream.read(8 * dimensions + 4)  # the shape and the type
        last_offset = max(last_offset, _unpack(stream, "<Q"))
    data_start = -(-stream.tell() // alignment) * alignment
    if tensors and data_start + last_offset >= size:
        raise HeaderProblem("truncated GGUF file: its tensor data ends before the header "
                            "says it does")


def read_metadata(path: Path, wanted: Callable[[str], bool]) -> dict[str, MetadataValue]:
    """The metadata values whose keys ``wanted`` accepts (strings and numbers; arrays are
    skipped), read from the header's start: no tensor info, no numpy. HeaderProblem (or
    OSError) when the file is no GGUF file this reads."""
    with open(path, "rb", buffering=1 << 20) as stream:
        size = os.fstat(stream.fileno()).st_size
        try:
            if stream.read(4) != MAGIC or _unpack(stream, "<I") not in SUPPORTED_VERSIONS:
                raise HeaderProblem("not a GGUF file of a version llama-server reads")
            _unpack(stream, "<Q")  # the tensors' count
            entries = _unpack(stream, "<Q")
            found: dict[str, MetadataValue] = {}
            for _ in range(min(entries, size)):
                key = _string(stream, size)
                kind = _unpack(stream, "<I")
                if not wanted(key) or (kind not in _SCALAR_LAYOUTS and kind != _STRING):
                    _skip_value(stream, kind, size)
                elif kind == _STRING:
                    found[key] = _string(stream, size)
                else:
                    layout = _SCALAR_LAYOUTS[kind]
                    found[key] = struct.unpack(layout, _read(stream, struct.calcsize(layout)))[0]
        except _Truncated:
            raise HeaderProblem("truncated GGUF file: it ends inside its header") from None
    return found


def _read(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) < length:
        raise _Truncated
    return data


def _not_gguf(start: bytes) -> str:
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in start):
        return "not a GGUF model: the file is text"
    return f"not a GGUF model: it starts with {start[:4]!r}, not {MAGIC!r}"


def _unpack(stream: BinaryIO, layout: str) -> int:
    data = stream.read(struct.calcsize(layout))
    if len(data) < struct.calcsize(layout):
        raise _Truncated
    value: int = struct.unpack(layout, data)[0]
    return value


def _string(stream: BinaryIO, size: int) -> str:
    length = _unpack(stream, "<Q")
    if length > size:
        raise _Truncated
    data = stream.read(length)
    if len(data) < length:
        raise _Truncated
    return data.decode("utf-8", "replace")


def _skip_value(stream: BinaryIO, kind: int, size: int) -> None:
    if kind in _SCALAR_SIZES:
        _skip(stream, _SCALAR_SIZES[kind], size)
    elif kind == _STRING:
        _skip(stream, _unpack(stream, "<Q"), size)
    elif kind == _ARRAY:
        item, count = _unpack(stream, "<I"), _unpack(stream, "<Q")
        if item in _SCALAR_SIZES:
            _skip(stream, _SCALAR_SIZES[item] * count, size)
        elif item == _STRING:
            _skip_strings(stream, count, size)
        else:
            raise HeaderProblem(f"corrupt GGUF header: an array of unknown type {item}")
    else:
        raise HeaderProblem(f"corrupt GGUF header: a value of unknown type {kind}")


def _skip_strings(stream: BinaryIO, count: int, size: int) -> None:
    """An array of strings: a vocabulary, a few hundred thousand of them, the hot loop of a
    header read (also on a /v1 request's first look at the model's abilities)."""
    read, seek, unpack = stream.read, stream.seek, _U64.unpack
    for _ in range(count):
        data = read(8)
        if len(data) < 8:
            raise _Truncated
        length = unpack(data)[0]
        if length > size:
            raise _Truncated
        seek(length, io.SEEK_CUR)
    if stream.tell() > size:
        raise _Truncated


def _skip(stream: BinaryIO, length: int, size: int) -> None:
    if stream.tell() + length > size:
        raise _Truncated
    stream.seek(length, io.SEEK_CUR)
