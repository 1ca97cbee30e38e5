"""The backends llamactl can launch, found by an instance's ``backend`` field. Each one's
knowledge lives in its own module under this package (``llama_cpp/``, ``vllm.py``,
``mlx_lm.py``), behind the interface of ``base.py``: nothing else in llamactl names a backend,
so a fourth is one module and one line here."""

from __future__ import annotations

from llamactl.backends.base import Backend
from llamactl.backends.docker import InDocker, runs_in_docker
from llamactl.backends.llama_cpp import LLAMA_CPP
from llamactl.backends.mlx_lm import MLX_LM
from llamactl.backends.vllm import VLLM
from llamactl.config import BackendsConfig
from llamactl.instances.models import InstanceRecord

BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (LLAMA_CPP, VLLM, MLX_LM)}


def backend_named(name: str) -> Backend:
    """The backend of that name (the instance schemas only let known names through)."""
    return BACKENDS[name]


def backend_for(record: InstanceRecord, settings: BackendsConfig) -> Backend:
    """The backend that runs this instance: its own, or its own in Docker (its ``docker``
    field, else ``backends.<name>.docker.enabled``)."""
    backend = BACKENDS[record.spec.backend]
    return InDocker(backend, settings) if runs_in_docker(record, settings) else backend
