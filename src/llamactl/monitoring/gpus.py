"""NVIDIA GPUs, when there are any: through NVML (``pynvml`` from ``nvidia-ml-py``) when it
can be imported, else through ``nvidia-smi`` when it is on PATH. Neither: no GPU readings,
which is not an error. Readings run off the event loop (a thread, or a subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import shutil
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

SMI_TIMEOUT = 10.0  # seconds; nvidia-smi can be slow while the driver wakes up
_SMI_QUERY = ("--query-gpu=name,memory.total,memory.used,utilization.gpu",
              "--format=csv,noheader,nounits")
_MIB = 1024 * 1024


class GpuUnavailable(Exception):
    pass


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_total: int  # bytes
    memory_used: int  # bytes
    utilization: float  # percent

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "memory_total": self.memory_total,
                "memory_used": self.memory_used, "utilization": self.utilization}


class GpuReader(Protocol):
    async def read(self) -> list[GpuInfo]:
        """The GPUs now; GpuUnavailable when they cannot be read."""

    def close(self) -> None: ...


def find_gpu_reader() -> GpuReader | None:
    return NvmlReader.load() or NvidiaSmiReader.find()


class NvmlReader:
    def __init__(self, nvml: Any):
        self._nvml = nvml

    @classmethod
    def load(cls) -> NvmlReader | None:
        try:
            nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
        except Exception as exc:  # not installed, no driver, no device: all mean "no NVML"
            log.debug("NVML unavailable: %s", exc)
            return None
        return cls(nvml)

    async def read(self) -> list[GpuInfo]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[GpuInfo]:
        nvml = self._nvml
        try:
            gpus = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                gpus.append(GpuInfo(
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_total=int(memory.total), memory_used=int(memory.used),
                    utilization=float(rates.gpu),
                ))
        except Exception as exc:  # pynvml raises NVMLError subclasses for everything
            raise GpuUnavailable(str(exc)) from None
        return gpus

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class NvidiaSmiReader:
    def __init__(self, command: str):
        self._command = command

    @classmethod
    def find(cls) -> NvidiaSmiReader | None:
        command = shutil.which("nvidia-smi")
        return cls(command) if command else None

    async def read(self) -> list[GpuInfo]:
        try:
            process = await asyncio.create_subprocess_exec(
                self._command, *_SMI_QUERY, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            raise GpuUnavailable(f"cannot run {self._command}: {exc}") from None
        try:
            out, _ = await asyncio.wait_for(process.communicate(), SMI_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError) as exc:
            # Reap it either way: no process of ours is left behind, even at shutdown.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            if isinstance(exc, TimeoutError):
                raise GpuUnavailable(f"{self._command} timed out") from None
            raise
        if process.returncode != 0:
            raise GpuUnavailable(f"{self._command} exited with {process.returncode}")
        return parse_nvidia_smi(out.decode(errors="replace"))

    def close(self) -> None:
        pass


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """``name, memory.total, memory.used, utilization.gpu`` per line (MiB, MiB, %)."""
    gpus = []
    for line in text.splitlines():
        fields = [part.strip() for part in line.rsplit(",", 3)]
        if len(fields) != 4 or not fields[0]:
            continue
        name, total, used, utilization = fields
        gpus.append(GpuInfo(name=name, memory_total=int(_number(total) * _MIB),
                            memory_used=int(_number(used) * _MIB),
                            utilization=_number(utilization)))
    return gpus


def _number(text: str) -> float:
    """nvidia-smi prints ``[N/A]`` or ``[Not Supported]`` for what a GPU does not report."""
    try:
        return float(text)
    except ValueError:
        return 0.0
