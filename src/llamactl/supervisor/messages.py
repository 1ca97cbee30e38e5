"""What an instance's owner task is asked to do, or told has happened: the lifecycle's own
messages (lifecycle_terms.py) in an envelope, no mirror of them here.

``Told`` carries a lifecycle message with a reply: requests from the API (through the
manager) and boot's adoption. ``Noticed`` carries one with the generation of the process it
concerns: from the owner's watchers, timers and lease book, so that a notice about a process
since replaced is recognised and ignored. The owner fills in the facts only it knows when it
handles one (requests in flight, the process reaped or placed). Three requests carry more than
a reply, and stay their own envelopes: a start that waits (a future for "running"), a lease (a
future for it) and an update (the change, applied in the owner task, in its turn).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from llamactl.instances.models import InstanceRecord
from llamactl.supervisor import lifecycle_terms as t


def _future() -> asyncio.Future[object]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Request:
    reply: asyncio.Future[object] = field(default_factory=_future)


@dataclass
class Told(Request):
    """A lifecycle message, answered once handled."""

    message: t.Message = field(default_factory=t.Boot)


@dataclass
class Start(Request):
    ready: asyncio.Future[None] | None = None  # resolved once running (start?wait=true)


@dataclass
class Acquire(Request):
    """A lease for a request: now if running, when ready if starting, else refused."""

    lease: asyncio.Future[object] = field(default_factory=_future)
    priority: int = 0  # waiting for a start, the higher is answered first (issue 32)


@dataclass
class Update(Request):
    apply: Callable[[InstanceRecord], None] = lambda record: None
    restart: bool = False


@dataclass
class Noticed:
    """A lifecycle message about the process of that generation."""

    generation: int
    message: t.Message = field(default_factory=t.Idle)


Message = Request | Noticed
