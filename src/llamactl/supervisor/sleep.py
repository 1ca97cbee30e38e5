"""Warm standby (issue 32): which running servers sleep, as they say themselves.

An instance with ``sleep_after`` runs llama-server with ``--sleep-idle-seconds``: idle that
long, the server unloads its model and keeps its process; the next request wakes it. Its
``/props`` says ``is_sleeping``, asked at each stats sample. A sleeping instance claims its
measured memory in the budget, not its estimate (admission.py), so others can start beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from llamactl.supervisor.health import probe_sleeping
from llamactl.supervisor.owner import InstanceOwner


async def sample_sleep(owners: Iterable[InstanceOwner]) -> None:
    """Ask each running instance that may sleep whether it does; the others do not."""
    asking = []
    for owner in owners:
        if owner.status == "running" and owner.record.spec.sleep_after is not None:
            asking.append(owner)
        else:
            owner.record.runtime.sleeping = False
    answers = await asyncio.gather(*(
        probe_sleeping(o.port, o.record.api_key, o.backend_host) for o in asking))
    for owner, sleeping in zip(asking, answers, strict=True):
        if sleeping is not None:
            owner.record.runtime.sleeping = sleeping
