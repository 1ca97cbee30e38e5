"""The check behind ``llamactl serve``'s refusal of ``engine: ray`` without the [ray] extra."""

from __future__ import annotations

import importlib

from llamactl.errors import StartupError

RAY_EXTRA_HINT = "pip install 'llamactl-server[ray]'"


def require_ray() -> None:
    """Raise StartupError (exit 2, one line) when Ray cannot be imported."""
    try:
        importlib.import_module("ray")
    except ImportError:
        raise StartupError(
            f"cluster.engine is ray, but Ray is not installed: {RAY_EXTRA_HINT}") from None
