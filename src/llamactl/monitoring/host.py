"""The machine llamactl runs on: fixed facts, sampled resources, and alerts on their limits."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import psutil

from llamactl.events import EventHub

# platform.machine() -> the names the seed uses (Go's GOARCH names).
_ARCH_NAMES = {
    "x86_64": "amd64", "amd64": "amd64", "x64": "amd64",
    "aarch64": "arm64", "arm64": "arm64", "armv8l": "arm64",
    "i386": "386", "i686": "386", "x86": "386",
    "armv7l": "arm", "armv6l": "arm",
}

# An alert that went off clears only this many points below its limit, so a value hovering
# at the limit does not alert on every sample.
ALERT_HYSTERESIS = 2.0


def machine_arch(machine: str | None = None) -> str:
    name = (machine if machine is not None else platform.machine()).lower()
    return _ARCH_NAMES.get(name, name or "unknown")


def host_facts() -> dict[str, Any]:
    """What does not change while llamactl runs."""
    return {
        "hostname": socket.gethostname(),
        "os": platform.system().lower() or "unknown",
        "arch": machine_arch(),
        "cpu_count": os.cpu_count() or 1,
        "memory_total": psutil.virtual_memory().total,
    }


def build_time(dist_name: str) -> str:
    """When this llamactl was installed: the mtime of its distribution's METADATA file (pip
    writes it at install time), else of the package itself. RFC 3339, UTC, with a Z."""
    moment: float | None = None
    try:
        files = distribution(dist_name).files or []
        for file in files:
            if file.name == "METADATA":
                moment = Path(str(file.locate())).stat().st_mtime
                break
    except (PackageNotFoundError, OSError):
        moment = None
    if moment is None:
        moment = Path(__file__).resolve().parent.parent.stat().st_mtime
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class HostResources:
    cpu_usage: float = 0.0  # percent of the whole host, since the previous sample
    memory_usage: int = 0  # bytes in use: total - available
    memory_total: int = 0
    memory_percent: float = 0.0
    disk_usage: float = 0.0  # percent of the data dir's file system

    def to_json(self) -> dict[str, Any]:
        return {"cpu_usage": self.cpu_usage, "memory_usage": self.memory_usage,
                "memory_total": self.memory_total, "disk_usage": self.disk_usage}


def read_resources(data_dir: Path) -> HostResources:
    """One sample. Only /proc reads and one statvfs: cheap enough for the event loop. The CPU
    percent is measured since the previous call (the first one answers 0.0)."""
    memory = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(str(data_dir)).percent
    except OSError:
        disk = 0.0
    return HostResources(
        cpu_usage=round(psutil.cpu_percent(interval=None), 1),
        memory_usage=memory.total - memory.available,
        memory_total=memory.total,
        memory_percent=round(memory.percent, 1),
        disk_usage=round(disk, 1),
    )


class ThresholdAlert:
    """A ``system_alert`` when a value goes above its limit: once per crossing, not once per
    sample, and an ``info`` alert when it is back under (with some hysteresis)."""

    def __init__(self, events: EventHub, what: str, limit: float):
        self._events = events
        self._what = what
        self.limit = limit
        self.active = False

    def check(self, value: float) -> None:
        if not self.active and value > self.limit:
            self.active = True
            self._events.alert("warning", f"{self._what} is at {value:.1f}%, above the "
                                          f"{self.limit:g}% limit")
        elif self.active and value <= self.limit - ALERT_HYSTERESIS:
            self.active = False
            self._events.alert("info", f"{self._what} is back to {value:.1f}%, under the "
                                       f"{self.limit:g}% limit")
