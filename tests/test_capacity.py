"""The capacity planner: a pure function, tested on its own."""

from __future__ import annotations

import itertools

from llamactl.supervisor.capacity import HOLDING, MemoryBudget, Plan, Slot, plan_start


def slot(name: str, status: str = "running", inflight: int = 0, last_used: float = 0.0,
         group: str | None = None) -> Slot:
    return Slot(name, group, status, inflight, last_used)


def test_no_limits_no_evictions() -> None:
    plan = plan_start(slot("new", "stopped"), [slot("a"), slot("b")], None, {})
    assert plan.evict == ()
    assert not plan.wait


def test_the_least_recently_used_idle_instance_goes() -> None:
    slots = [slot("a", last_used=30), slot("b", last_used=10), slot("c", last_used=20)]
    plan = plan_start(slot("new", "stopped"), slots, 3, {})
    assert plan.evict == ("b",)


def test_busy_instances_are_never_evicted() -> None:
    slots = [slot("a", inflight=1, last_used=1), slot("b", last_used=50)]
    assert plan_start(slot("new", "stopped"), slots, 2, {}).evict == ("b",)
    all_busy = [slot("a", inflight=1), slot("b", inflight=2)]
    plan = plan_start(slot("new", "stopped"), all_busy, 2, {})
    assert plan.wait
    assert "busy" in plan.reason


def test_starting_and_stopping_hold_a_place_but_cannot_be_evicted() -> None:
    slots = [slot("a", "starting"), slot("b", "stopping"), slot("c", "stopped")]
    assert plan_start(slot("new", "stopped"), slots, 2, {}).wait
    assert plan_start(slot("new", "stopped"), slots, 3, {}).evict == ()


def test_group_limits_evict_within_the_group_only() -> None:
    slots = [slot("g1", group="gpu", last_used=5), slot("g2", group="gpu", last_used=1),
             slot("other", last_used=0)]
    plan = plan_start(slot("new", "stopped", group="gpu"), slots, None, {"gpu": 2})
    assert plan.evict == ("g2",)
    # Outside the group, the group's limit does not apply.
    assert plan_start(slot("x", "stopped"), slots, None, {"gpu": 2}).evict == ()


def test_both_limits_at_once_pick_one_victim_that_satisfies_both() -> None:
    slots = [slot("g1", group="gpu", last_used=1), slot("other", last_used=0)]
    plan = plan_start(slot("new", "stopped", group="gpu"), slots, 2, {"gpu": 1})
    # The global limit alone would take "other" (least recently used), and then the group
    # would need g1 gone too; g1 alone makes room in both.
    assert plan.evict == ("g1",)


def test_the_target_itself_is_not_counted() -> None:
    plan = plan_start(slot("a", "failed"), [slot("a", "failed"), slot("b")], 2, {})
    assert plan.evict == ()


# Memory budget (issue 20) ----------------------------------------------------------------

def mem(name: str, ram: int | None, status: str = "running", inflight: int = 0,
        last_used: float = 0.0, vram: int | None = None) -> Slot:
    return Slot(name, None, status, inflight, last_used, ram, vram)


def test_no_budget_ignores_memory() -> None:
    plan = plan_start(mem("new", 10**12, "stopped"), [mem("a", 10**12)], None, {})
    assert plan == Plan()


def test_budget_of_two_and_a_half_evicts_the_least_recently_used_idle_one() -> None:
    slots = [mem("a", 100, last_used=5), mem("b", 100, last_used=1)]
    plan = plan_start(mem("c", 100, "stopped"), slots, None, {}, MemoryBudget(ram=250))
    assert plan.evict == ("b",)


def test_a_busy_instance_is_never_evicted_for_memory() -> None:
    slots = [mem("a", 100, inflight=1, last_used=0), mem("b", 100, last_used=9)]
    plan = plan_start(mem("c", 100, "stopped"), slots, None, {}, MemoryBudget(ram=250))
    assert plan.evict == ("b",)
    busy = [mem("a", 100, inflight=1), mem("b", 100, inflight=3)]
    plan = plan_start(mem("c", 100, "stopped"), busy, None, {}, MemoryBudget(ram=250))
    assert plan.wait
    assert "memory budget" in plan.reason


def test_larger_than_the_budget_alone_is_refused_naming_the_numbers() -> None:
    plan = plan_start(mem("huge", 300, "stopped"), [], None, {}, MemoryBudget(ram=250))
    assert plan.refuse
    assert "300" in plan.reason
    assert "250" in plan.reason
    plan = plan_start(mem("gpu", 1, "stopped", vram=9), [], None, {}, MemoryBudget(vram=8))
    assert plan.refuse


def test_vram_and_ram_are_separate_budgets() -> None:
    slots = [mem("cpu", 100, last_used=0, vram=0), mem("gpu", 10, last_used=5, vram=8)]
    plan = plan_start(mem("new", 10, "stopped", vram=8), slots, None, {},
                      MemoryBudget(ram=1000, vram=10))
    assert plan.evict == ("gpu",)  # "cpu" is older but frees no VRAM


def test_count_victims_also_free_memory() -> None:
    slots = [mem("a", 100, last_used=0), mem("b", 100, last_used=5)]
    plan = plan_start(mem("c", 100, "stopped"), slots, 2, {}, MemoryBudget(ram=250))
    assert plan.evict == ("a",)


STATUSES = ("running", "starting", "stopping", "stopped", "failed")


def test_memory_plans_exhaustively() -> None:
    """Every combination of three instances' statuses, in-flight counts and sizes: an
    eviction plan fits, never touches a busy or non-running instance, takes the least recently
    used first; a wait means nothing more could be evicted; a refusal means too big alone."""
    sizes = (None, 0, 60, 120)
    budget = MemoryBudget(ram=200)
    for statuses in itertools.product(STATUSES, repeat=3):
        for inflights in itertools.product((0, 1), repeat=3):
            for rams in itertools.product(sizes, repeat=3):
                for need in (50, 150, 250):
                    slots = [mem(f"s{i}", rams[i], statuses[i], inflights[i], float(i))
                             for i in range(3)]
                    _check_memory_plan(mem("t", need, "stopped"), slots, budget)


def _check_memory_plan(target: Slot, slots: list[Slot], budget: MemoryBudget) -> None:
    plan = plan_start(target, slots, None, {}, budget)
    assert budget.ram is not None
    holding = [s for s in slots if s.status in HOLDING]
    evictable = [s for s in holding if s.status == "running" and s.inflight == 0]
    assert (target.ram or 0) > budget.ram or not plan.refuse
    if plan.refuse:
        return
    evicted = [s for s in slots if s.name in plan.evict]
    assert all(s in evictable and (s.ram or 0) > 0 for s in evicted)
    left = sum(s.ram or 0 for s in holding if s not in evicted)
    if plan.wait:
        assert sum(s.ram or 0 for s in holding if s not in evictable) + (target.ram or 0) > \
            budget.ram
        return
    assert left + (target.ram or 0) <= budget.ram
    kept_idle = [s for s in evictable if s not in evicted and (s.ram or 0) > 0]
    assert all(k.last_used > e.last_used for k in kept_idle for e in evicted)
