"""Instances' memory estimates and the budget they are held to (issue 20).

The arithmetic is pure (backends/gguf_memory.py); this module reads headers (once per file
version: keyed by path, size and mtime) and turns instances.memory_budget into bytes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from llamactl.backends.gguf_memory import (
    MemoryEstimate,
    ModelFacts,
    estimate_llama_cpp,
    read_model_facts,
)
from llamactl.config.settings import MemoryBudgetConfig
from llamactl.instances.models import InstanceSpec
from llamactl.supervisor.capacity import MemoryBudget

log = logging.getLogger(__name__)

# vram: auto keeps this much of the GPUs' memory free for the driver, CUDA contexts and
# other programs (an operator's choice, not a measurement: there is no GPU on the test box).
VRAM_AUTO_RESERVE = 512 * 1024 * 1024


class MemoryEstimator:
    """The estimate of an instance's spec, or None where it cannot be known (not a readable
    GGUF file). ``has_gpu``: whether llama-server can offload here at all."""

    def __init__(self, *, has_gpu: bool = False):
        self._has_gpu = has_gpu
        self._facts: dict[tuple[str, int, int], ModelFacts | None] = {}

    def estimate(self, spec: InstanceSpec) -> MemoryEstimate | None:
        if spec.backend != "llama_cpp":
            return None
        facts = self.facts(Path(spec.model_path))
        if facts is None:
            return None
        return estimate_llama_cpp(facts, spec.options, has_gpu=self._has_gpu)

    def facts(self, path: Path) -> ModelFacts | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._facts:
            try:
                self._facts[key] = read_model_facts(path)
            except Exception as error:  # a corrupt or foreign file: unknown, not fatal
                log.info("no memory estimate for %s: %s", path, error)
                self._facts[key] = None
        return self._facts[key]


# One cache for the process: the API's instance JSON and the capacity keeper share it.
# Hook for engine: ray (not built here): ESTIMATES.estimate(spec).ram is the placement's
# ``memory`` request, and .vram its ``vram`` custom resource where nodes declare one.
ESTIMATES = MemoryEstimator()


def resolve_budget(config: MemoryBudgetConfig, gpu_total: int | None) -> MemoryBudget | None:
    """Bytes per kind; ``vram: auto`` is the GPUs' total less the reserve, or no limit when
    the total is unknown (no NVML). None: nothing is limited."""
    vram = config.vram
    if vram == "auto":
        vram = None if gpu_total is None else max(gpu_total - VRAM_AUTO_RESERVE, 0)
    if config.ram is None and vram is None:
        return None
    return MemoryBudget(ram=config.ram, vram=vram)
