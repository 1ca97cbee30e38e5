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


@dataclass(frozen=True)
class Plan:
    evict: tuple[str, ...] = ()
    wait: bool = False  # no room now: wait for an instance to become idle or stop
    reason: str = ""


def plan_start(
    target: Slot, slots: Sequence[Slot], max_running: int | None,
    group_limits: Mapping[str, int],
) -> Plan:
    """What must happen before ``target`` may start: nothing, evictions, or waiting."""
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
                      key=lambda s: s.last_used)
        if len(idle) < excess:
            busy = ", ".join(sorted(s.name for s in remaining)) or "none"
            return Plan(wait=True, reason=f"{label} is {limit} and every instance in it is busy "
                                          f"({busy})")
        chosen.extend(idle[:excess])
    return Plan(evict=tuple(s.name for s in chosen))
