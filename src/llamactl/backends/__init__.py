"""The backends llamactl can launch, found by an instance's ``backend`` field. Each one's
knowledge lives in its own module under this package (``llama_cpp/``, ``vllm.py``,
``mlx_lm.py``), behind the interface of ``base.py``: its option table, command line, log
lines, settings model (``backends.<name>`` in the config) and memory estimate. Nothing else
in llamactl names a backend: the config's sections, the API's backend names and the estimate
route are built from this registry, so a fourth backend is one module and one line here (or
a ``register_backend`` call)."""

from __future__ import annotations

from llamactl.backends.base import Backend
from llamactl.backends.docker import InDocker, runs_in_docker
from llamactl.backends.llama_cpp import LLAMA_CPP
from llamactl.backends.mlx_lm import MLX_LM
from llamactl.backends.vllm import VLLM
from llamactl.config import (
    BackendsConfig,
    register_backend_settings,
    unregister_backend_settings,
)
from llamactl.instances.models import InstanceRecord

BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Instances may name ``backend`` from now on, and the config has its section."""
    BACKENDS[backend.name] = backend
    register_backend_settings(backend.name, backend.settings_model,
                              backend.settings_description)


def unregister_backend(name: str) -> None:
    BACKENDS.pop(name, None)
    unregister_backend_settings(name)


for _builtin in (LLAMA_CPP, VLLM, MLX_LM):
    register_backend(_builtin)


def backend_names() -> list[str]:
    """The names an instance's ``backend`` may take, in the order they were registered."""
    return list(BACKENDS)


def backend_named(name: str) -> Backend:
    """The backend of that name (the instance schemas only let known names through)."""
    return BACKENDS[name]


def backend_for(record: InstanceRecord, settings: BackendsConfig) -> Backend:
    """The backend that runs this instance: its own, or its own in Docker (its ``docker``
    field, else ``backends.<name>.docker.enabled``)."""
    backend = BACKENDS[record.spec.backend]
    return InDocker(backend, settings) if runs_in_docker(record, settings) else backend


def served_name(record: InstanceRecord) -> str | None:
    """The ``model`` a /v1 request must name for the instance's server (None: any)."""
    return backend_named(record.spec.backend).served_model(record)
