"""Each instance's recent memory and CPU (issue 34's charts): one sample per
``instance_stats_updated``, an hour of them, in memory only.

A ring per instance, bounded twice: by its length (an hour at the stats interval, at most
``MAX_SAMPLES``) and by age (older than an hour is never answered). A deleted instance's
ring goes at the next publication. Nothing is written to disk: a restart of llamactl starts
every chart afresh, as the sampler does.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SPAN_SECONDS = 3600.0
MAX_SAMPLES = 3600  # at a stats interval under a second, the ring holds less than an hour


@dataclass(frozen=True)
class StatsSample:
    at: float  # seconds since the epoch
    memory_usage: int  # bytes
    cpu_usage: float  # percent of one core

    def to_json(self) -> dict[str, Any]:
        return {"time": datetime.fromtimestamp(self.at, UTC).isoformat().replace("+00:00", "Z"),
                "memory_usage": self.memory_usage, "cpu_usage": self.cpu_usage}


class StatsHistory:
    def __init__(self, interval: float, span: float = SPAN_SECONDS):
        self.interval = interval
        self.span = span
        self._length = max(1, min(MAX_SAMPLES, math.ceil(span / interval)))
        self._rings: dict[str, deque[StatsSample]] = {}

    def record(self, name: str, stats: dict[str, Any], at: float | None = None) -> None:
        """One published reading (the contract's ``stats``) of a running instance."""
        ring = self._rings.get(name)
        if ring is None:
            ring = self._rings[name] = deque(maxlen=self._length)
        ring.append(StatsSample(time.time() if at is None else at,
                                int(stats.get("memory_usage") or 0),
                                float(stats.get("cpu_usage") or 0.0)))

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget the rings of instances that are gone."""
        kept = set(names)
        for name in [name for name in self._rings if name not in kept]:
            del self._rings[name]

    def samples(self, name: str, now: float | None = None) -> list[StatsSample]:
        """The last hour's samples of ``name``, oldest first (none: never sampled)."""
        since = (time.time() if now is None else now) - self.span
        return [sample for sample in self._rings.get(name, ()) if sample.at >= since]
