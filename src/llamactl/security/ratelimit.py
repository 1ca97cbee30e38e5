"""In-memory rate limiting: fixed one-minute windows per caller, O(1) per request.

Each window starts at a caller's first request; the table is an LRU bounded at ``max_keys``
callers, so a flood of distinct addresses cannot grow it without bound (the oldest caller is
forgotten, which can only ever be in that caller's favour).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds when the window ends
    retry_after: int  # seconds, when refused

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class FixedWindowLimiter:
    def __init__(
        self, limit: int, *, window: float = WINDOW_SECONDS, max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.time,
    ):
        self.limit = limit
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        self._windows: OrderedDict[str, list[float]] = OrderedDict()  # key -> [start, count]

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Count a request of ``key``; refused requests are not counted."""
        now = self._clock()
        entry = self._windows.get(key)
        if entry is None or now >= entry[0] + self._window:
            entry = [now, 0]
            self._windows[key] = entry
            if len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        self._windows.move_to_end(key)
        reset_at = entry[0] + self._window
        allowed = entry[1] + cost <= self.limit
        if allowed:
            entry[1] += cost
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, self.limit - int(entry[1])),
            reset=math.ceil(reset_at),
            retry_after=max(1, math.ceil(reset_at - now)),
        )

    def refund(self, key: str, cost: int = 1) -> Decision:
        """Give back what a counted request cost (it turned out to use nothing), and say where
        ``key`` stands now."""
        entry = self._windows.get(key)
        if entry is not None and self._clock() < entry[0] + self._window:
            entry[1] = max(0, entry[1] - cost)
        return self.hit(key, cost=0)

    def peek(self, key: str) -> int:
        """How many requests ``key`` has made in its current window."""
        entry = self._windows.get(key)
        if entry is None or self._clock() >= entry[0] + self._window:
            return 0
        return int(entry[1])

    def __len__(self) -> int:
        return len(self._windows)
