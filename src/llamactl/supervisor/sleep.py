"""Warm standby (issue 32): which running servers sleep, as they say themselves.

An instance with ``sleep_after`` runs llama-server with ``--sleep-idle-seconds``: idle that
long, the server unloads its model and keeps its process; the next request wakes it. Its
``/props`` says ``is_sleeping``, asked at each stats sample. vLLM does not sleep by itself:
llamactl sends it to sleep and wakes it (waking.py). A sleeping instance claims its
measured memory in the budget, not its estimate (admission.py), so others can start beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from llamactl.backends import backend_named
from llamactl.supervisor.health import probe_sleeping
from llamactl.supervisor.owner import InstanceOwner
from llamactl.supervisor.waking import Waker


async def sample_sleep(owners: Iterable[InstanceOwner], waker: Waker) -> None:
    """Ask each running instance that sleeps by itself whether it does; send those llamactl
    puts to sleep (waking.py) to sleep if idle; the others do not sleep."""
    asking = []
    for owner in owners:
        if owner.status != "running" or owner.record.spec.sleep_after is None:
            owner.record.runtime.sleeping = False
            if owner.name in waker.asleep:
                waker.forget(owner.name)
            continue
        mode = backend_named(owner.record.spec.backend).sleep_mode
        if mode == "self":
            asking.append(owner)
        elif mode == "driven":
            waker.consider(owner)
    answers = await asyncio.gather(*(
        probe_sleeping(o.port, o.record.api_key, o.backend_host) for o in asking))
    for owner, sleeping in zip(asking, answers, strict=True):
        if sleeping is not None:
            owner.record.runtime.sleeping = sleeping
