"""What an instance's owner task is asked to do, or told has happened.

Requests come from the API (through the manager) and carry a future for the answer. Notices
come from the owner's own watcher tasks and carry the generation of the process they concern,
so a notice about a process that has since been replaced is recognised and ignored.

``Told`` and ``Noticed`` are the two envelopes of a lifecycle message as it is (its words in
lifecycle_terms.py, no mirror here): one with a reply, one with a generation. Every transition
goes through the inbox in one of them, boot's adoption and the lease book's idle included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from llamactl.instances.models import InstanceRecord
from llamactl.supervisor import lifecycle_terms as t


@dataclass
class Request:
    reply: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class Start(Request):
    ready: asyncio.Future[None] | None = None


@dataclass
class Stop(Request):
    force: bool = False
    timeout: float | None = None
    if_idle: bool = False  # an eviction: refused while requests are in flight


@dataclass
class Acquire(Request):
    """A lease for a request: now if running, when ready if starting, else refused."""

    lease: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class Restart(Request):
    pass


@dataclass
class Delete(Request):
    pass


@dataclass
class Update(Request):
    apply: Callable[[InstanceRecord], None] = lambda record: None
    restart: bool = False


@dataclass
class Shutdown(Request):
    stop: bool = True


@dataclass
class Told(Request):
    """A lifecycle message, answered once handled (boot's Boot)."""

    message: t.Message = field(default_factory=t.Boot)


@dataclass
class Notice:
    generation: int


@dataclass
class Noticed(Notice):
    """A lifecycle message about the process of that generation (the lease book's Idle)."""

    message: t.Message = field(default_factory=t.Idle)


@dataclass
class Exited(Notice):
    code: int | None = None


@dataclass
class Ready(Notice):
    pass


@dataclass
class Placed(Notice):
    """The backend runs on a Ray node now (its pid and node are known)."""


@dataclass
class LoadFailed(Notice):
    reason: str = ""
    model_missing: bool = False  # on a Ray node: answered as MODEL_NOT_FOUND (issue 18)


@dataclass
class Unhealthy(Notice):
    reason: str = ""


@dataclass
class KillTimer(Notice):
    pass


@dataclass
class RestartTimer(Notice):
    pass


@dataclass
class Stable(Notice):
    pass


@dataclass
class IdleTimer(Notice):
    pass


Message = Request | Notice
