"""Instances' memory estimates and the budget they are held to (issue 20).

The arithmetic is pure (backends/gguf_memory.py); this module reads headers (once per file
version: keyed by path, size and mtime), knows the GPUs' memory (told by the monitoring
service, which reads NVML or nvidia-smi), and turns instances.memory_budget into bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
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
# vLLM's own default for --gpu-memory-utilization: the share of each GPU it takes at start.
VLLM_GPU_UTILIZATION = 0.9


class MemoryEstimator:
    """The estimate of an instance's spec, or None where it cannot be known (not a readable
    GGUF file; vLLM on a machine whose GPUs llamactl cannot read)."""

    def __init__(self, gpu_memory: Sequence[int] = ()):
        self._gpus: tuple[int, ...] = tuple(gpu_memory)
        self._facts: dict[tuple[str, int, int], ModelFacts | None] = {}
        self.generation = 0  # bumped when the GPUs change: cached estimates are stale

    def set_gpus(self, memory_totals: Sequence[int]) -> None:
        """The GPUs' memory in bytes, one per device ([] when none can be read). With a GPU,
        llama-server's gpu_layers offload, so estimates split between RAM and VRAM."""
        if tuple(memory_totals) != self._gpus:
            self._gpus = tuple(memory_totals)
            self.generation += 1

    @property
    def gpu_total(self) -> int | None:
        """All GPUs' memory in bytes; None when no GPU can be read."""
        return sum(self._gpus) if self._gpus else None

    def estimate(self, spec: InstanceSpec) -> MemoryEstimate | None:
        if spec.backend == "vllm":
            return self._vllm_claim(spec)
        if spec.backend != "llama_cpp":
            return None
        facts = self.facts(Path(spec.model_path))
        if facts is None:
            return None
        return estimate_llama_cpp(facts, spec.options, has_gpu=bool(self._gpus))

    def _vllm_claim(self, spec: InstanceSpec) -> MemoryEstimate | None:
        """vLLM takes gpu_memory_utilization of each GPU it runs on (tensor x pipeline
        parallel of them) whatever the model: that is its VRAM claim. Its RAM cannot be known
        from the model reference (often a hub id): null."""
        if not self._gpus:
            return None
        share = _number(spec.options.get("gpu_memory_utilization"), VLLM_GPU_UTILIZATION)
        devices = int(_number(spec.options.get("tensor_parallel_size"), 1)
                      * _number(spec.options.get("pipeline_parallel_size"), 1))
        return MemoryEstimate(ram=None, vram=int(share * sum(self._gpus[:max(devices, 1)])))

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


def _number(value: object, default: float) -> float:
    """An option's value as validated by the option table (a number), else the default."""
    return float(value) if isinstance(value, int | float) else default


def resolve_budget(config: MemoryBudgetConfig, gpu_total: int | None) -> MemoryBudget | None:
    """Bytes per kind; ``vram: auto`` is the GPUs' total less the reserve, or no limit when
    the total is unknown (no NVML). None: nothing is limited."""
    vram = config.vram
    if vram == "auto":
        vram = None if gpu_total is None else max(gpu_total - VRAM_AUTO_RESERVE, 0)
    if config.ram is None and vram is None:
        return None
    return MemoryBudget(ram=config.ram, vram=vram)
