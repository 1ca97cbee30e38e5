"""The backends llamactl can launch, found by an instance's ``backend`` field. Each one's
knowledge lives in its own module under this package (``llama_cpp/``), behind the interface of
``base.py``: nothing else in llamactl names a backend."""

from __future__ import annotations

from llamactl.backends.base import Backend
from llamactl.backends.llama_cpp import LLAMA_CPP

BACKENDS: dict[str, Backend] = {LLAMA_CPP.name: LLAMA_CPP}


def backend_named(name: str) -> Backend:
    """The backend of that name (the instance schemas only let known names through)."""
    return BACKENDS[name]
