"""Who may run: a pure function of the instances' states, in-flight counts, last use and the
limits. No I/O and no clock, so it is tested on its own; the manager carries out its answer
through the owner tasks (llama-swap keeps its scheduler pure the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Statuses that hold (or are about to hold) a model in memory.
HOLDING = frozenset({"starting", "running", "stopping", "restarting"})


@dataclass(frozen=True)
class Slot:
    name: str
    group: str | None
    status: str
    inflight: int
    last_used: float  # monotonic seconds; smaller is longer ago
    # Memory (issue 20): for a running instance the larger of its estimate and its measured
    # use; for the target, its estimate. None: unknown (counts as 0, never blocks a start).
    ram: int | None = None
    vram: int | None = None
    sleeping: bool = False  # its server sleeps (issue 32): evicted before those awake


def _eviction_order(slot: Slot) -> tuple[bool, float]:
    """Sleeping instances first (their memory is the least use), then least recently used."""
    return (not slot.sleeping, slot.last_used)


@dataclass(frozen=True)
class MemoryBudget:
    """``instances.memory_budget`` in bytes; None: that kind of memory is not limited."""

    ram: int | None = None
    vram: int | None = None


@dataclass(frozen=True)
class Plan:
    evict: tuple[str, ...] = ()
    wait: bool = False  # no room now: wait for an instance to become idle or stop
    reason: str = ""
    # The target does not fit in the memory budget even alone: refuse (409
    # INSUFFICIENT_MEMORY), waiting cannot help.
    refuse: bool = False


def plan_start(
    target: Slot, slots: Sequence[Slot], max_running: int | None,
    group_limits: Mapping[str, int], budget: MemoryBudget | None = None,
) -> Plan:
    """What must happen before ``target`` may start: nothing, evictions, waiting, or (the
    memory budget) a refusal."""
    holding = [s for s in slots if s.status in HOLDING and s.name != target.name]
    # The group first: a victim from the group also makes room overall, so one eviction can
    # satisfy both limits where the other order would take two.
    scopes: list[tuple[str, int, list[Slot]]] = []
    if target.group is not None and target.group in group_limits:
        members = [s for s in holding if s.group == target.group]
        scopes.append((f"group '{target.group}'", group_limits[target.group], members))
    if max_running is not None:
        scopes.append(("instances.max_running", max_running, holding))
    chosen: list[Slot] = []
    for label, limit, members in scopes:
        remaining = [s for s in members if s not in chosen]
        excess = len(remaining) + 1 - limit
        if excess <= 0:
            continue
        idle = sorted((s for s in remaining if s.status == "running" and s.inflight == 0),
                      key=_eviction_order)
        if len(idle) < excess:
            busy = ", ".join(sorted(s.name for s in remaining)) or "none"
            return Plan(wait=True, reason=f"{label} is {limit} and every instance in it is busy "
                                          f"({busy})")
        chosen.extend(idle[:excess])
    if budget is not None:
        return _fit_memory(target, [s for s in holding if s not in chosen], chosen, budget)
    return Plan(evict=tuple(s.name for s in chosen))


def _fit_memory(target: Slot, kept: list[Slot], chosen: list[Slot], budget: MemoryBudget) -> Plan:
    """Evict least recently used idle instances, after those the count limits chose, until
    the target's estimate fits beside the rest in every limited kind of memory."""
    kinds = [(kind, limit) for kind, limit in (("ram", budget.ram), ("vram", budget.vram))
             if limit is not None]
    for kind, limit in kinds:
        need = getattr(target, kind) or 0
        if need > limit:
            return Plan(refuse=True, reason=f"'{target.name}' needs {need} bytes of {kind}; "
                                            f"the budget is {limit}")
    idle = sorted((s for s in kept if s.status == "running" and s.inflight == 0),
                  key=_eviction_order)
    victims = list(chosen)
    for kind, limit in kinds:
        def claimed(k: str = kind) -> int:
            return sum(getattr(s, k) or 0 for s in kept if s not in victims)
        while claimed() + (getattr(target, kind) or 0) > limit:
            # Only an instance that holds this kind of memory makes room for it.
            candidates = [s for s in idle if s not in victims and (getattr(s, kind) or 0) > 0]
            if not candidates:
                return Plan(wait=True, reason=f"memory budget: {kind} {limit} bytes, "
                            f"{claimed()} claimed by busy or starting instances, "
                            f"'{target.name}' needs {getattr(target, kind) or 0}")
            victims.append(candidates[0])
    return Plan(evict=tuple(s.name for s in victims))
