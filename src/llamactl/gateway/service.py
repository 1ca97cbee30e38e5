"""The gateway's shared state: what every ``/v1`` exchange (exchange.py) uses.

The instances and auth, the Origin/Host policy, CORS for /v1's answers, the pool of backend
connections, the answers counted for /metrics, and the tasks of requests that wait for their
instance, which ``close`` ends at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from llamactl.activity.ledger import Ledger
from llamactl.errors import UpstreamUnavailable
from llamactl.gateway.activity_tap import RequestTap
from llamactl.gateway.pool import BackendPool
from llamactl.security.origin import Decisions, OriginPolicy
from llamactl.security.service import AuthService, Principal
from llamactl.supervisor.leases import Lease
from llamactl.supervisor.manager import InstanceManager


class Front(Protocol):
    """The client's side of an exchange."""

    @property
    def keep_alive(self) -> bool:
        """False once the client or a shutdown asked to close after this answer."""

    def write(self, data: bytes) -> None: ...

    def finish(self, *, reusable: bool) -> None:
        """The answer is complete; ``reusable`` false closes the connection."""

    def hold_reading(self, held: bool) -> None:
        """Pause (True) or resume reading the request's body: a form upload waiting for its
        backend (gateway/upload.py)."""


class Gateway:
    """What every exchange shares: the instances, auth, CORS, the backend connections, and
    the tasks of requests that wait for their instance."""

    def __init__(self, manager: InstanceManager, auth: AuthService, pool: BackendPool,
                 cors_origins: list[str], *, origin_policy: OriginPolicy | None = None,
                 max_wait: float = 300.0):
        self.manager = manager
        self.max_wait = max_wait  # gateway.max_wait: the longest a request waits for a model
        self.auth = auth
        self.pool = pool
        self.origin_policy = origin_policy or OriginPolicy.build(
            loopback_listener=True, allowed_hosts=[], cors_origins=cors_origins)
        self.origin_decisions = Decisions()  # decide() once per kind of head, not a request
        self._cors_any = "*" in cors_origins
        self._cors_origins = {origin.encode() for origin in cors_origins}
        self._tasks: set[asyncio.Task[None]] = set()
        # Answers by (instance, status), for /metrics: the instance is "" when none was
        # chosen (the model list, unknown models), never a name a client made up.
        self.answered: dict[tuple[str, int], int] = {}
        self.waiting: dict[str, int] = {}  # instance -> requests waiting for its start or room
        self.ledger: Ledger | None = None  # issue 30: every request on record, when set

    def tap(self) -> RequestTap | None:
        """What a new exchange tells the ledger as it goes; None while the ledger is off."""
        ledger = self.ledger
        return RequestTap(ledger) if ledger is not None and ledger.enabled else None

    async def acquire(self, name: str, principal: Principal) -> Lease:
        """A lease on instance ``name`` for a /v1 request, after its on-demand start or room
        for it; where requests wait, the principal's priority orders them (issue 32)."""
        waiting = self.waiting
        waiting[name] = waiting.get(name, 0) + 1
        try:
            return await self.manager.acquire(name, self.auth.priority_of(principal))
        finally:
            waiting[name] -= 1
            if not waiting[name]:
                del waiting[name]

    async def woken(self, lease: Lease) -> Lease:
        """``lease`` once its instance, asleep by llamactl's doing (vLLM), is awake."""
        waking: asyncio.Future[None] | None = None
        try:
            waking = self.manager.waker.wake(self.manager.owner(lease.instance))
            await asyncio.shield(waking)  # one client leaving ends no one else's wait
        except BaseException as error:
            lease.release()
            task = asyncio.current_task()
            if (isinstance(error, asyncio.CancelledError) and waking is not None
                    and waking.cancelled() and task is not None and not task.cancelling()):
                raise UpstreamUnavailable(f"Instance '{lease.instance}' stopped while it "
                                          "was being woken") from None
            raise
        return lease

    def count(self, instance: str, status: int) -> None:
        key = (instance, status)
        self.answered[key] = self.answered.get(key, 0) + 1

    @property
    def cors_enabled(self) -> bool:
        return bool(self._cors_origins)

    def cors_headers(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """What the CORS middleware adds to /api answers, for /v1's (preflights go to it)."""
        if not self._cors_origins:
            return b""
        origin = next((value for name, value in headers if name == b"origin"), None)
        if origin is None:
            return b""
        if self._cors_any:
            return b"access-control-allow-origin: *\r\n"
        if origin in self._cors_origins:
            return b"access-control-allow-origin: " + origin + b"\r\nvary: Origin\r\n"
        return b""

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Shutdown: end the waits, then drop every backend connection (their exchanges end
        their answers)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.pool.close()
