"""Resource use of an instance's process tree, sampled in the background with psutil.

The API reads the last sample; nothing here runs on a request's path.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil

from llamactl.instances.models import Counted

CHILDREN_EVERY = 12  # samples between searches for child processes (a minute by default)


def contract_stats(stats: ProcessStats, pid: int | None,
                   started_at: datetime | None) -> dict[str, Any]:
    """The contract's ``stats`` of an instance: ``{memory_usage: bytes, cpu_usage: percent,
    uptime: whole seconds}``, zeros while it has no process. The instance JSON of the API and
    the ``instance_stats_updated`` events both answer with this."""
    if pid is None:
        return {"memory_usage": 0, "cpu_usage": 0.0, "uptime": 0}
    uptime = 0
    if started_at is not None:
        uptime = max(0, int((datetime.now(UTC) - started_at).total_seconds()))
    return {"memory_usage": stats.memory_usage, "cpu_usage": stats.cpu_usage, "uptime": uptime}


@dataclass
class ProcessStats(Counted):
    memory_usage: int = 0  # bytes: RSS of the process and its descendants
    cpu_usage: float = 0.0  # percent of one core, over the last sampling interval
    pid: int | None = None
    sampled_at: float = 0.0
    _process: psutil.Process | None = field(default=None, repr=False)
    _children: dict[int, psutil.Process] = field(default_factory=dict, repr=False)
    _samples: int = field(default=0, repr=False)

    def reset(self, pid: int | None) -> None:
        self.memory_usage, self.cpu_usage, self.pid = 0, 0.0, pid
        self._children = {}
        self._samples = 0
        self._process = None
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                self._process = psutil.Process(pid)
                self._process.cpu_percent(None)  # the first call only sets the baseline

    def sample(self) -> None:
        process = self._process
        if process is None:
            return
        try:
            memory = process.memory_info().rss
            cpu = process.cpu_percent(None)
            # Finding children reads every process in /proc (~3 ms on a quiet host, more on a
            # busy one), and llama-server rarely has any: look for them now and then only.
            self._samples += 1
            if self._samples % CHILDREN_EVERY == 1:
                children = _descendants(process)
            else:
                children = list(self._children.values())
        except psutil.Error:
            return
        seen: dict[int, psutil.Process] = {}
        for child in children:
            # Keep the same psutil objects between samples: cpu_percent is measured between
            # two calls on one object.
            known = self._children.get(child.pid, child)
            with contextlib.suppress(psutil.Error):
                memory += known.memory_info().rss
                cpu += known.cpu_percent(None)
                seen[child.pid] = known
        self._children = seen
        self.memory_usage, self.cpu_usage = memory, round(cpu, 1)
        self.sampled_at = time.monotonic()


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    """The process's descendants. Linux lists each thread's children in
    /proc/PID/task/TID/children: a few small reads instead of psutil's walk of every process
    on the machine. Elsewhere, or without that file, psutil's walk."""
    found: list[psutil.Process] = []
    pending = [process.pid]
    try:
        while pending:
            pid = pending.pop()
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as listing:
                    for child in listing.read().split():
                        pending.append(int(child))
                        with contextlib.suppress(psutil.Error):
                            found.append(psutil.Process(int(child)))
    except FileNotFoundError:
        if not os.path.exists(f"/proc/{process.pid}"):
            return []
        return process.children(recursive=True)
    except (OSError, ValueError):
        return process.children(recursive=True)
    return found
