"""Replica pools (issue 32): instances that share a ``pool`` serve one model name.

The keeper knows each pool's members, hands a request a lease on the member that
pool_choice.py's pure ``choose_member`` names, and keeps the requests that found every member
saturated in one queue per pool, highest priority first and first come first served within
a priority. A slot freed on a member (its lease book's ``on_release``) or a member becoming
running serves the queue from the event loop's thread, with no await between the choice and
the lease, so two requests cannot take one slot.

It grows a pool whose requests have waited ``pools.scale_up_after`` with every member
saturated (one start at a time per pool, within the capacity keeper's limits), starts a member
at once when none runs, and keeps each pool's ``min_running`` members running (at boot and
after a member stopped or failed).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from llamactl.config import PoolsConfig
from llamactl.errors import InstanceNotRunning, LlamactlError
from llamactl.supervisor.leases import Lease
from llamactl.supervisor.owner import InstanceOwner
from llamactl.supervisor.pool_choice import (
    DEFAULT_SLOTS,
    MemberLoad,
    choose_member,
    member_to_start,
    members_short,
)

log = logging.getLogger(__name__)

# Starts the keeper of min_running makes in a row before it looks again: a member that fails
# at once is not started in a tight loop.
KEEP_PAUSE_SECONDS = 1.0

# (owner, wait for room) -> started; CapacityKeeper.start_within_limits, joined.
Starter = Callable[[InstanceOwner, bool], Awaitable[None]]


@dataclass
class Ticket:
    """What a pool needs to know of one request to choose its member."""

    session: str | None = None  # X-Session-ID, OpenAI's user or Anthropic's metadata.user_id
    priority: int = 0  # the key's or user's: higher goes first
    allowed: Callable[[str], bool] | None = None  # a key limited to some instances
    avoid: set[str] = field(default_factory=set)  # members it failed on (failover)


@dataclass(order=True)
class _Waiter:
    rank: tuple[int, int]  # (-priority, arrival): the queue's order
    since: float = field(compare=False)
    ticket: Ticket = field(compare=False)
    future: asyncio.Future[Lease] = field(compare=False)


class PoolKeeper:
    def __init__(self, owners: Mapping[str, InstanceOwner], config: PoolsConfig,
                 start: Starter, *, on_demand: Callable[[InstanceOwner], bool]):
        self._owners = owners
        self.config = config
        self._start = start
        self._on_demand = on_demand  # the member's on_demand_start, the config's default
        self._members: dict[str, list[str]] = {}  # pool -> member names, sorted
        self._pool_of: dict[str, str] = {}  # member -> pool
        self._waiting: dict[str, list[_Waiter]] = {}
        self._turns: dict[str, int] = {}
        self._growing: set[str] = set()  # pools with a start of theirs under way
        self._arrivals = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._keep_wake = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    # ---- who is a member ----

    def refresh(self) -> None:
        """After boot, a create, an update or a delete: the members again."""
        members: dict[str, list[str]] = {}
        for name in sorted(self._owners):
            owner = self._owners[name]
            pool = owner.record.spec.pool
            owner.leases.on_release = None if pool is None else partial(self._released, pool)
            if pool is not None and not owner.closed:
                members.setdefault(pool, []).append(name)
        self._members = members
        self._pool_of = {name: pool for pool, names in members.items() for name in names}
        self._keep_wake.set()

    def names(self) -> set[str]:
        """Every pool: those with members and those the config names."""
        return set(self._members) | set(self.config.entries)

    def __contains__(self, pool: str) -> bool:
        return pool in self._members or pool in self.config.entries

    def members(self, pool: str) -> list[InstanceOwner]:
        return [self._owners[name] for name in self._members.get(pool, ())
                if name in self._owners]

    def waiting(self, pool: str) -> int:
        return sum(1 for w in self._waiting.get(pool, ()) if not w.future.done())

    # ---- a request's member ----

    def take(self, pool: str, ticket: Ticket) -> Lease | None:
        """A lease on the member chosen now; None when every serving member is saturated."""
        loads = self._loads(pool, ticket)
        turn = self._turns.get(pool, 0)
        name = choose_member(loads, ticket.session, turn)
        if name is None:
            return None
        self._turns[pool] = turn + 1
        return self._owners[name].lease_if_running()

    async def acquire(self, pool: str, ticket: Ticket) -> Lease:
        """A lease on a member, waiting in the pool's queue for a free slot as long as it
        takes (the gateway bounds the wait by gateway.max_wait)."""
        lease = self.take(pool, ticket)
        if lease is not None:
            return lease
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        waiter = _Waiter((-ticket.priority, next(self._arrivals)), time.monotonic(), ticket,
                         future)
        queue = self._waiting.setdefault(pool, [])
        bisect.insort(queue, waiter)
        timer = asyncio.get_running_loop().call_later(self.config.scale_up_after,
                                                      self._grow, pool, False)
        try:
            self._grow(pool, True)  # none serves: start one now
            return await future
        except asyncio.CancelledError:
            # Cancelled (the client left, the wait timed out) just as a slot was handed over.
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().release()
            raise
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                queue.remove(waiter)

    def _loads(self, pool: str, ticket: Ticket) -> list[MemberLoad]:
        allowed = ticket.allowed
        return [MemberLoad(owner.name, owner.status, owner.leases.inflight,
                           owner.slots or DEFAULT_SLOTS,
                           reachable=owner.pid is not None and owner.name not in ticket.avoid)
                for owner in self.members(pool)
                if allowed is None or allowed(owner.name)]

    def _released(self, pool: str) -> None:
        if self._waiting.get(pool):
            self._serve(pool)

    def _serve(self, pool: str) -> None:
        """Hand free slots to the queue in its order; a waiter that no free member may serve
        (its key's instances, members it failed on) lets the next one go first."""
        queue = self._waiting.get(pool)
        if not queue:
            return
        for waiter in list(queue):
            if waiter.future.done():
                queue.remove(waiter)
                continue
            lease = self.take(pool, waiter.ticket)
            if lease is not None:
                queue.remove(waiter)
                waiter.future.set_result(lease)
            elif not any(m.free for m in self._loads(pool, Ticket())):
                break  # no free slot left for anyone
        oldest = min((w.since for w in queue), default=None)
        if oldest is not None and time.monotonic() - oldest >= self.config.scale_up_after:
            self._grow(pool, False)

    # ---- members changing ----

    def status_changed(self, name: str, status: str) -> None:
        """OwnerContext.on_status_change: a member may serve now, or may be gone."""
        pool = self._pool_of.get(name)
        if pool is None:
            return
        if status == "running":
            self._serve(pool)
        elif status in ("stopped", "failed"):
            self._keep_wake.set()
            if self._waiting.get(pool):
                self._grow(pool, True)  # its waiters must not wait for nothing

    # ---- growing ----

    def _grow(self, pool: str, only_if_none_serves: bool) -> None:
        """Start one more member when requests wait: at once if no member serves or starts;
        after scale_up_after when every serving member is saturated."""
        if pool in self._growing or not self.waiting(pool):
            return
        loads = self._loads(pool, Ticket())
        alive = any(m.status in ("starting", "running", "restarting") for m in loads)
        if only_if_none_serves and alive:
            return
        if any(m.free for m in loads):
            return
        startable = [m for m in loads if self._on_demand(self._owners[m.name])]
        name = member_to_start(startable, starting=False)
        if name is None:
            if not alive:
                self._fail_waiters(pool, InstanceNotRunning(
                    f"No member of pool '{pool}' is running, and none may start on demand"))
            return
        self._growing.add(pool)
        self._spawn(self._start_member(pool, self._owners[name], wait_for_room=not alive))

    async def _start_member(self, pool: str, owner: InstanceOwner, *,
                            wait_for_room: bool) -> None:
        try:
            log.info("pool %s: starting member %s", pool, owner.name)
            await self._start(owner, wait_for_room)
            await owner.wait_ready()
        except LlamactlError as error:
            log.warning("pool %s: member %s did not start: %s", pool, owner.name, error.message)
            if not any(m.status in ("starting", "running", "restarting")
                       for m in self._loads(pool, Ticket())):
                self._fail_waiters(pool, error)
        finally:
            self._growing.discard(pool)
        self._serve(pool)

    def _fail_waiters(self, pool: str, error: LlamactlError) -> None:
        for waiter in self._waiting.pop(pool, []):
            if not waiter.future.done():
                waiter.future.set_exception(error)

    # ---- min_running ----

    def start(self) -> None:
        """After boot: keep each pool's min_running from now on."""
        self._keeper = asyncio.create_task(self._keep_forever(), name="pools:min_running")
        self._keep_wake.set()

    async def _keep_forever(self) -> None:
        while True:
            await self._keep_wake.wait()
            self._keep_wake.clear()
            started = False
            for pool, entry in self.config.entries.items():
                started |= await self._keep(pool, entry.min_running)
            if started:
                await asyncio.sleep(KEEP_PAUSE_SECONDS)

    async def _keep(self, pool: str, min_running: int) -> bool:
        started = False
        for _ in range(members_short(self._loads(pool, Ticket()), min_running)):
            name = member_to_start(self._loads(pool, Ticket()), starting=False)
            if name is None:
                break
            try:
                await self._start(self._owners[name], False)
                started = True
            except LlamactlError as error:
                log.warning("pool %s: min_running: %s did not start: %s", pool, name,
                            error.message)
                break
        return started

    # ---- reads and shutdown ----

    def nodes_besides(self, name: str) -> tuple[str, ...]:
        """The Ray nodes of the other members of ``name``'s pool that hold a backend."""
        pool = self._pool_of.get(name)
        if pool is None:
            return ()
        return tuple(sorted({o.record.runtime.node["id"] for o in self.members(pool)
                             if o.name != name and o.record.runtime.node
                             and o.status in ("starting", "running", "restarting")}))

    def describe(self, pool: str) -> dict[str, Any]:
        """``GET /api/pools``' entry of one pool."""
        entry = self.config.entries.get(pool)
        return {"name": pool, "min_running": entry.min_running if entry else 0,
                "waiting": self.waiting(pool),
                "members": [{"name": o.name, "status": o.status,
                             "node": (o.record.runtime.node or {}).get("id"),
                             "in_flight": o.leases.inflight,
                             "slots": o.slots or DEFAULT_SLOTS,
                             "sleeping": o.record.runtime.sleeping}
                            for o in self.members(pool)]}

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._keeper] if self._keeper else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for pool in list(self._waiting):
            for waiter in self._waiting.pop(pool):
                if not waiter.future.done():
                    waiter.future.cancel()
