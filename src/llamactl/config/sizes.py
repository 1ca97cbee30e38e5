"""Byte sizes written by people: 12GiB, 512MiB, 8GB, 1024."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes for ``text``; ValueError (a pydantic validation message) when it is not a size."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"'{text}' is not a size (bytes, or a number with KiB, MiB, GiB, "
                         "TiB, KB, MB, GB or TB)")
    return int(float(match.group(1)) * _UNITS[unit])
