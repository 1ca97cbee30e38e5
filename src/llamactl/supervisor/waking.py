"""Warm standby for servers that do not sleep on their own (issue 32): vLLM's sleep mode.

llama-server sleeps by itself (``--sleep-idle-seconds``) and wakes on the next request;
vLLM only offers routes (``POST /sleep?level=1``, ``POST /wake_up``, with
``--enable-sleep-mode`` and ``VLLM_SERVER_DEV_MODE=1``). So for a backend whose
``sleep_mode`` is "driven", llamactl decides: at each stats sample, an instance idle for its
``sleep_after`` is sent to sleep; a ``/v1`` request leased on a sleeping one waits for
``wake`` (one wake per instance, however many requests arrive) before it is relayed.

An instance is marked asleep *before* its ``/sleep`` is sent: a request that arrives
meanwhile waits for that call to end and then wakes it, instead of reaching a server that is
putting its weights away.
"""

from __future__ import annotations

import asyncio
import logging
import time

from llamactl.errors import UpstreamUnavailable
from llamactl.supervisor.health import status_line_of
from llamactl.supervisor.owner import InstanceOwner

log = logging.getLogger(__name__)

CALL_TIMEOUT_SECONDS = 300.0  # a big model's weights back to the GPU can take minutes


class Waker:
    def __init__(self) -> None:
        # instance -> its sleep call: present while it is asleep or going to sleep
        self.asleep: dict[str, asyncio.Task[None]] = {}
        self._waking: dict[str, asyncio.Task[None]] = {}  # instance -> its wake call

    def consider(self, owner: InstanceOwner) -> None:
        """At a stats sample: send ``owner`` (running, with sleep_after) to sleep if idle."""
        sleep_after = owner.record.spec.sleep_after
        if (owner.name in self.asleep or sleep_after is None or owner.leases.inflight
                or time.monotonic() - owner.leases.last_used < sleep_after):
            return
        self.asleep[owner.name] = asyncio.get_running_loop().create_task(self._sleep(owner))

    def forget(self, name: str) -> None:
        """``name`` stopped, failed or went: a new process starts awake."""
        for tasks in (self.asleep, self._waking):
            task = tasks.pop(name, None)
            if task is not None:
                task.cancel()

    def wake(self, owner: InstanceOwner) -> asyncio.Future[None]:
        """Until ``owner``'s server is awake (UpstreamUnavailable if it would not wake):
        shared by every request that waits for it, so await it through ``asyncio.shield``."""
        task = self._waking.get(owner.name)
        if task is None and owner.name not in self.asleep:  # woken since the request looked
            awake = asyncio.get_running_loop().create_future()
            awake.set_result(None)
            return awake
        if task is None:
            task = asyncio.get_running_loop().create_task(self._wake(owner))
            # Its error reaches every request waiting then; none may be left to ask for it
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._waking[owner.name] = task
        return task

    def close(self) -> None:
        for name in [*self.asleep, *self._waking]:
            self.forget(name)

    async def _sleep(self, owner: InstanceOwner) -> None:
        status = await call(owner, "POST", "/sleep?level=1")
        if status == 200:
            owner.record.runtime.sleeping = True  # memory: measured, not estimated
            log.info("instance %s sleeps (idle %g s)", owner.name, owner.record.spec.sleep_after)
        else:
            log.warning("instance %s would not sleep (POST /sleep: %s); is it vLLM with "
                        "--enable-sleep-mode?", owner.name, status or "no answer")
            # Tried again at the next sample after a full idle period, not at every one
            owner.leases.last_used = time.monotonic()
            self.asleep.pop(owner.name, None)

    async def _wake(self, owner: InstanceOwner) -> None:
        try:
            sleeping = self.asleep.get(owner.name)
            if sleeping is not None and not sleeping.done():
                await asyncio.wait([sleeping])  # a sleep under way ends first, however
            status = await call(owner, "POST", "/wake_up")
            if status != 200:
                raise UpstreamUnavailable(f"Instance '{owner.name}' did not wake: POST "
                                          f"/wake_up answered {status or 'nothing'}")
            owner.record.runtime.sleeping = False
            log.info("instance %s woke for a request", owner.name)
        finally:
            self._waking.pop(owner.name, None)
            self.asleep.pop(owner.name, None)


async def call(owner: InstanceOwner, method: str, target: str) -> int | None:
    """The status of a bodiless request to the instance's server; None: no answer."""
    host = owner.backend_host
    request = (b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n"
               b"Authorization: Bearer %s\r\n\r\n" % (
                   method.encode(), target.encode(), host.encode(),
                   owner.record.api_key.encode()))
    try:
        async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
            line = await status_line_of(host, owner.port, request)
    except (OSError, TimeoutError):
        return None
    parts = (line or b"").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
