"""The background work behind ``/api/system/*``, the WebSocket's periodic messages and alerts.

One task samples the host (CPU, memory, disk, GPUs) every ``events.stats_interval`` seconds,
so no request ever waits for a measurement (psutil's CPU percent needs two readings apart in
time), and raises a ``system_alert`` when the disk or the memory crosses its limit. Another
publishes ``instance_stats_updated`` for each running instance from the stats the manager's
sampler already keeps: one reading for every client, never one per client.
Both tasks belong to ``Monitoring``; ``stop()`` cancels them at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from llamactl.config import Settings
from llamactl.events import EventHub
from llamactl.instances.models import STATUSES
from llamactl.monitoring.gpus import GpuInfo, GpuReader, GpuUnavailable, find_gpu_reader
from llamactl.monitoring.history import StatsHistory
from llamactl.monitoring.host import (
    HostResources,
    ThresholdAlert,
    host_facts,
    read_resources,
)
from llamactl.supervisor.manager import InstanceManager
from llamactl.supervisor.stats import contract_stats

log = logging.getLogger(__name__)


class Monitoring:
    def __init__(
        self, settings: Settings, events: EventHub, manager: InstanceManager, *,
        version: str, build_time: str,
    ):
        self._settings = settings
        self._events = events
        self._manager = manager
        self.version = version
        self.build_time = build_time
        self.started = time.monotonic()
        self.resources = HostResources()  # the last sample
        self.gpus: list[GpuInfo] | None = None  # None: no GPU, or none readable
        self._gpu_reader: GpuReader | None = None
        self._gpus_seen = False
        config = settings.events
        self.disk_alert = ThresholdAlert(events, "Disk usage of the data dir",
                                         config.disk_alert_percent)
        self.memory_alert = ThresholdAlert(events, "Host memory usage",
                                           config.memory_alert_percent)
        self._tasks: list[asyncio.Task[None]] = []
        # Each instance's last hour of published stats: GET /api/instances/{name}/history.
        self.history = StatsHistory(config.stats_interval)

    # ---- life ----

    def start(self) -> None:
        self._gpu_reader = find_gpu_reader()
        self._sample_resources()  # now: no answer ever shows an empty sample
        self._tasks = [
            self._spawn(self._sample_host_forever(), "host-sampler"),
            self._spawn(self._publish_stats_forever(), "stats-publisher"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._gpu_reader is not None:
            self._gpu_reader.close()

    @staticmethod
    def _spawn(coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coroutine, name=name)

    # ---- what the routes read ----

    @property
    def uptime(self) -> int:
        return int(time.monotonic() - self.started)

    def status(self) -> dict[str, Any]:
        counts = Counter(owner.status for owner in self._manager.owners())
        instances: dict[str, int] = {"total": sum(counts.values())}
        # The seed's three first, then the other statuses, each always present.
        for status in ("running", "stopped", *(s for s in STATUSES
                                               if s not in ("running", "stopped"))):
            instances[status] = counts.get(status, 0)
        return {"version": self.version, "uptime": self.uptime, "instances": instances,
                "resources": self.resources.to_json(),
                "storage": self._manager.context.repository.writer.status(),
                "memory": self._manager.memory_status()}

    def info(self) -> dict[str, Any]:
        answer = {**host_facts(), "version": self.version, "build_time": self.build_time}
        if self.gpus:
            answer["gpus"] = [gpu.to_json() for gpu in self.gpus]
        return answer

    # ---- the tasks ----

    async def _sample_host_forever(self) -> None:
        interval = self._settings.events.stats_interval
        first = True
        while True:
            try:
                # start() took the first sample of the resources, not of the GPUs.
                await (self._read_gpus() if first else self.sample_host())
            except Exception:  # a bad sample must not end sampling for good
                log.exception("sampling the host failed")
            first = False
            await asyncio.sleep(interval)

    async def sample_host(self) -> None:
        """One sample of the host, and the alerts it calls for."""
        self._sample_resources()
        await self._read_gpus()

    def _sample_resources(self) -> None:
        self.resources = read_resources(self._settings.data_dir)
        self.disk_alert.check(self.resources.disk_usage)
        self.memory_alert.check(self.resources.memory_percent)

    async def _read_gpus(self) -> None:
        reader = self._gpu_reader
        if reader is None:
            return
        try:
            self.gpus = await reader.read()
            self._gpus_seen = True
        except GpuUnavailable as exc:
            self.gpus = None
            if not self._gpus_seen:  # never worked (no driver, no device): stop asking
                log.info("no GPU readings: %s", exc)
                reader.close()
                self._gpu_reader = None
        # Estimates split by gpu_layers, vLLM's claim and vram: auto follow the GPUs.
        self._manager.context.estimator.set_gpus(
            [gpu.memory_total for gpu in self.gpus or []])

    async def _publish_stats_forever(self) -> None:
        interval = self._settings.events.stats_interval
        while True:
            await asyncio.sleep(interval)
            self.publish_stats()

    def publish_stats(self) -> None:
        owners = self._manager.owners()
        self.history.keep_only(owner.name for owner in owners)
        for owner in owners:
            if owner.status == "running" and owner.pid is not None:
                stats = contract_stats(owner.stats, owner.pid, owner.record.runtime.started_at)
                self.history.record(owner.name, stats)
                self._events.stats_updated(owner.name, stats)
