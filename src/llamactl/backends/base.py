"""What every backend answers, so that the supervisor, the gateway and the API know none by name.

One module (or package) per backend under ``backends/`` implements ``Backend``; the registry in
``backends/__init__.py`` finds it by the instance's ``backend`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, NamedTuple, Protocol

from llamactl.config import BackendsConfig
from llamactl.instances.models import InstanceRecord, OptionValue

Level = Literal["debug", "info", "warn", "error"]


class BackendNotFound(Exception):
    """The backend's program cannot be found: the message says where it was looked for."""


class LogLine(NamedTuple):
    level: Level
    message: str
    since_start: timedelta | None  # the line's time, relative to the process start, if given


class Backend(Protocol):
    name: str

    def command(self, settings: BackendsConfig) -> list[str]:
        """The argv prefix that runs the backend's server (BackendNotFound if missing)."""

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, OptionValue]:
        """The options, checked against the backend's table (ValidationFailed naming a key)."""

    def check_extra_args(self, extra_args: list[str]) -> None:
        """ValidationFailed when an argument sets what llamactl sets itself."""

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        """The whole command line of an instance: the prefix, llamactl's flags, its own."""

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        """The backend's environment: llamactl's minus its own variables, the instance's,
        and the instance's key."""

    def slots(self, argv: list[str] | None) -> int | None:
        """How many requests a launched server serves at once, if its command line says."""

    def parse_log_line(self, line: str) -> LogLine | None:
        """A line in the backend's own log format, or None for a line without its prefix."""
