"""Which model files an instance may load: an absolute path, inside ``instances.model_dirs``
when that is set, to a readable file.

The model path goes to the backend as is, and anyone who may create an instance chooses it:
without ``model_dirs`` that is any file llamactl's user can read. The check resolves the path
as the backend will open it (symlinks followed, ``..`` resolved), so neither escapes a
directory, and it runs before the file's existence is tested, so that a refused path says
nothing about what lies outside the allowed directories.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from llamactl.errors import ModelNotAllowed, ModelNotFound, ValidationFailed

# Backends whose model_path is a file on this host (a future one may take a hub model id).
FILE_MODEL_BACKENDS = frozenset({"llama_cpp"})


def check_model_path(path: str, backend: str, model_dirs: Sequence[Path]) -> None:
    """Raise the API's error for a model path an instance may not use."""
    if backend not in FILE_MODEL_BACKENDS:
        return
    if not os.path.isabs(path):
        raise ValidationFailed("model_path must be absolute",
                               f"model_path: must be absolute, not '{path}'")
    problem = outside_model_dirs(path, model_dirs)
    if problem is not None:
        raise ModelNotAllowed("model_path is outside the allowed model directories", problem)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ModelNotFound(
            "model_path is not a readable file",
            f"model_path: {path} does not exist or cannot be read",
        )


def outside_model_dirs(path: str, model_dirs: Sequence[Path]) -> str | None:
    """Why ``path`` resolves outside every one of ``model_dirs``; None when inside one (or
    when none is set)."""
    if not model_dirs:
        return None
    resolved = Path(path).resolve()
    if any(resolved.is_relative_to(directory.resolve()) for directory in model_dirs):
        return None
    allowed = ", ".join(str(directory) for directory in model_dirs)
    return f"model_path: resolves outside instances.model_dirs ({allowed})"
