"""What the owner tasks report for monitoring: launches, crashes, readiness.

A protocol, so the supervisor knows nothing of Prometheus: the app passes its metrics object
in ``OwnerContext``; tests and tools that build owners without one get ``NoMetrics``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class SupervisorMetrics(Protocol):
    def launched(self, name: str, *, retry: bool) -> None:
        """A backend process was spawned; ``retry``: an automatic restart after a crash."""

    def crashed(self, name: str) -> None:
        """A running (or restarting) instance's process died or stopped answering."""

    def ready(self, name: str, launched_at: datetime | None) -> None:
        """The instance answered its health check for the first time since its launch."""


class NoMetrics:
    def launched(self, name: str, *, retry: bool) -> None:
        pass

    def crashed(self, name: str) -> None:
        pass

    def ready(self, name: str, launched_at: datetime | None) -> None:
        pass
