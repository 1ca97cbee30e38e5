"""Instances' memory estimates and the budget they are held to (issue 20).

Each backend estimates its own (``Backend.memory``: llama.cpp's from the GGUF header in
backends/llama_cpp/memory.py, vLLM's claim on the GPUs); this module is the ``Machine`` they
ask: it reads files once per version (keyed by path, size and mtime), knows the GPUs' memory
(told by the monitoring service, which reads NVML or nvidia-smi), and turns
instances.memory_budget into bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from llamactl.backends import backend_named
from llamactl.backends.base import MemoryEstimate
from llamactl.config.settings import MemoryBudgetConfig
from llamactl.instances.models import InstanceSpec
from llamactl.supervisor.capacity import MemoryBudget

log = logging.getLogger(__name__)

# vram: auto keeps this much of the GPUs' memory free for the driver, CUDA contexts and
# other programs (an operator's choice, not a measurement: there is no GPU on the test box).
VRAM_AUTO_RESERVE = 512 * 1024 * 1024
T = TypeVar("T")


class MemoryEstimator:
    """The estimate of an instance's spec by its backend, or None where it cannot be known
    (not a readable GGUF file; vLLM on a machine whose GPUs llamactl cannot read)."""

    def __init__(self, gpu_memory: Sequence[int] = ()):
        self._gpus: tuple[int, ...] = tuple(gpu_memory)
        self._files: dict[tuple[str, int, int, Callable[[Path], Any]], Any] = {}
        self.generation = 0  # bumped when the GPUs change: cached estimates are stale

    def set_gpus(self, memory_totals: Sequence[int]) -> None:
        """The GPUs' memory in bytes, one per device ([] when none can be read). With a GPU,
        llama-server's gpu_layers offload, so estimates split between RAM and VRAM."""
        if tuple(memory_totals) != self._gpus:
            self._gpus = tuple(memory_totals)
            self.generation += 1

    @property
    def gpus(self) -> tuple[int, ...]:
        return self._gpus

    @property
    def gpu_total(self) -> int | None:
        """All GPUs' memory in bytes; None when no GPU can be read."""
        return sum(self._gpus) if self._gpus else None

    def estimate(self, spec: InstanceSpec) -> MemoryEstimate | None:
        return backend_named(spec.backend).memory(spec, self)

    def read_file(self, path: Path, reader: Callable[[Path], T]) -> T | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (str(path), stat.st_size, stat.st_mtime_ns, reader)
        if key not in self._files:
            try:
                self._files[key] = reader(path)
            except Exception as error:  # a corrupt or foreign file: unknown, not fatal
                log.info("no memory estimate for %s: %s", path, error)
                self._files[key] = None
        found: T | None = self._files[key]
        return found


def resolve_budget(config: MemoryBudgetConfig, gpu_total: int | None) -> MemoryBudget | None:
    """Bytes per kind; ``vram: auto`` is the GPUs' total less the reserve, or no limit when
    the total is unknown (no NVML). None: nothing is limited."""
    vram = config.vram
    if vram == "auto":
        vram = None if gpu_total is None else max(gpu_total - VRAM_AUTO_RESERVE, 0)
    if config.ram is None and vram is None:
        return None
    return MemoryBudget(ram=config.ram, vram=vram)
