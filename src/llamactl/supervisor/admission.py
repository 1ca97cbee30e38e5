"""Carrying out capacity plans: evict idle instances, start, or queue for room.

One lock serialises these decisions, so two starts cannot both take the last place. Evictions
go through the victims' owners as conditional stops (refused if a request has arrived since
the plan was made), and the new instance starts only once its victims have exited, so the
memory they held is free.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Mapping

from llamactl.config import InstancesConfig
from llamactl.errors import (
    CapacityExhausted,
    Conflict,
    InstanceAlreadyRunning,
    InsufficientMemory,
)
from llamactl.supervisor.capacity import HOLDING, Plan, Slot, plan_start
from llamactl.supervisor.memory import MemoryEstimator, resolve_budget
from llamactl.supervisor.owner import InstanceOwner
from llamactl.supervisor.ranked_lock import RankedLock

log = logging.getLogger(__name__)


class CapacityKeeper:
    def __init__(self, config: InstancesConfig, owners: Mapping[str, InstanceOwner],
                 estimator: MemoryEstimator):
        self._config = config
        self._owners = owners
        self.estimator = estimator  # issue 20: the memory budget's estimates
        # One decision at a time; waiting requests decide by priority (issue 32), then arrival
        self._lock = RankedLock()
        self._arrivals = itertools.count()
        self._room = asyncio.Event()  # set, then replaced, whenever room may have appeared
        self._queued = 0
        self._starting = 0  # starts under way: only they can be waiting for room

    def changed(self) -> None:
        """An instance stopped, failed or went idle: wake whoever waits for room. (Called
        at the end of every gateway request: nothing to do unless a start is under way.)"""
        if self._starting:
            self._room.set()
            self._room = asyncio.Event()

    async def start_within_limits(
        self, owner: InstanceOwner, *, wait_for_room: bool, join: bool, priority: int = 0
    ) -> None:
        """Start ``owner`` once the limits allow. ``join``: a start by someone else is fine
        (the gateway); otherwise it is a conflict (a manual start). When room appears, the
        waiting starts try in order of ``priority`` (higher first), then of arrival."""
        rank = (-priority, next(self._arrivals))
        deadline = time.monotonic() + self._config.queue_timeout
        queued = False
        self._starting += 1
        try:
            while True:
                room = self._room
                plan = await self._try_start(owner, join=join, rank=rank)
                if plan is None:
                    return
                if not wait_for_room:
                    raise CapacityExhausted(f"No room to start '{owner.name}'", plan.reason,
                                            headers={"Retry-After": "5"})
                if not queued:
                    if self._queued >= self._config.queue_size:
                        raise CapacityExhausted("Too many requests are waiting for room",
                                                plan.reason, headers={"Retry-After": "5"})
                    self._queued += 1
                    queued = True
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CapacityExhausted(
                        f"No room to start '{owner.name}' within "
                        f"{self._config.queue_timeout:g} s", plan.reason,
                        headers={"Retry-After": str(max(1, math.ceil(left + 5)))})
                try:
                    await asyncio.wait_for(room.wait(), timeout=left)
                except TimeoutError:
                    continue
        finally:
            self._starting -= 1
            if queued:
                self._queued -= 1

    async def _try_start(self, owner: InstanceOwner, *, join: bool,
                         rank: tuple[int, int]) -> Plan | None:
        """Start now (None), or the plan that says why not."""
        async with self._lock.hold(rank):
            if owner.status not in ("stopped", "failed"):
                if join:
                    return None
                raise InstanceAlreadyRunning(f"Instance '{owner.name}' is already {owner.status}")
            budget = resolve_budget(self._config.memory_budget, self.estimator.gpu_total)
            slot = self._slot if budget is not None else _slot
            plan = plan_start(slot(owner), [slot(o) for o in self._owners.values()],
                              self._config.max_running, self._config.group_limits, budget)
            if plan.refuse:
                raise InsufficientMemory(f"Instance '{owner.name}' does not fit in "
                                         "instances.memory_budget", plan.reason)
            if plan.wait:
                return plan
            for victim in plan.evict:
                try:
                    await self._owners[victim].stop(if_idle=True)
                except Conflict:
                    return Plan(reason="an instance chosen for eviction became busy")
                log.info("evicting idle instance %s to make room for %s", victim, owner.name)
            for victim in plan.evict:
                await self._owners[victim].wait_stopped()
            try:
                await owner.start()
            except InstanceAlreadyRunning:
                if not join:
                    raise
            return None

    def memory_status(self) -> dict[str, dict[str, int | None]]:
        """``memory`` of ``GET /api/system/status``: the budget in bytes (null: not limited),
        what instances holding memory claim (as the budget counts them) and what is free."""
        budget = resolve_budget(self._config.memory_budget, self.estimator.gpu_total)
        limits = {"ram": budget.ram if budget else None, "vram": budget.vram if budget else None}
        claimed = {"ram": 0, "vram": 0}
        for owner in self._owners.values():
            if owner.status in HOLDING:
                slot = self._slot(owner)
                claimed["ram"] += slot.ram or 0
                claimed["vram"] += slot.vram or 0
        free = {kind: None if limit is None else max(limit - claimed[kind], 0)
                for kind, limit in limits.items()}
        return {"budget": limits, "claimed": dict(claimed), "free": free}

    def _slot(self, owner: InstanceOwner) -> Slot:
        """With memory: a running instance claims the larger of its estimate and its
        measured use (RSS; VRAM is not measured per process yet)."""
        estimate = self.estimator.estimate(owner.record.spec)
        ram, vram = (estimate.ram, estimate.vram) if estimate else (None, None)
        sleeping = owner.record.runtime.sleeping and owner.status == "running"
        if sleeping:  # issue 32: its model unloaded, it holds what it is measured to hold
            ram, vram = owner.stats.memory_usage, 0
        elif owner.status in HOLDING:
            ram = max(ram or 0, owner.stats.memory_usage)
        return Slot(owner.name, owner.record.spec.group, owner.status, owner.leases.inflight,
                    owner.leases.last_used, ram, vram, sleeping)


def _slot(owner: InstanceOwner) -> Slot:
    return Slot(owner.name, owner.record.spec.group, owner.status, owner.leases.inflight,
                owner.leases.last_used)
