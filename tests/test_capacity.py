"""The capacity planner: a pure function, tested on its own."""

from __future__ import annotations

from llamactl.supervisor.capacity import Slot, plan_start


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
