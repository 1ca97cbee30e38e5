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
import re
from collections.abc import Sequence
from pathlib import Path

from llamactl.errors import ModelNotAllowed, ModelNotFound, ValidationFailed

# A Hugging Face repo id, as vLLM and mlx_lm.server take instead of a local path.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def check_model_path(path: str, files_only: bool, model_dirs: Sequence[Path]) -> None:
    """Raise the API's error for a model path an instance may not use. ``files_only``: the
    backend loads a file (llama.cpp); else also a directory, or a hub id it fetches itself."""
    if "\0" in path:  # no file's name holds one; resolving it would raise, a 500
        raise ValidationFailed("model_path holds a NUL character",
                               "model_path: must not contain a NUL (\\0) character")
    if not files_only and not os.path.isabs(path) and HUB_ID.match(path):
        if model_dirs:  # a download from anywhere is not inside the allowed directories
            raise ModelNotAllowed("hub models are not allowed: instances.model_dirs is set",
                                  f"model_path: '{path}' is not in instances.model_dirs")
        return
    if not os.path.isabs(path):
        raise ValidationFailed("model_path must be absolute",
                               f"model_path: must be absolute, not '{path}'" + (
                                   "" if files_only else " (or a hub id such as org/name)"))
    problem = outside_model_dirs(path, model_dirs)
    if problem is not None:
        raise ModelNotAllowed("model_path is outside the allowed model directories", problem)
    exists = os.path.isfile(path) if files_only else os.path.exists(path)
    if not exists or not os.access(path, os.R_OK):
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
