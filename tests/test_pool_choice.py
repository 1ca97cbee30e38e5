"""The pure choice of a pool's member and of the member a pool starts (issue 32)."""

from __future__ import annotations

import itertools

from llamactl.supervisor.pool_choice import (
    MemberLoad,
    choose_member,
    member_to_start,
    members_short,
    session_member,
)

STATUSES = ("stopped", "starting", "running", "stopping", "restarting", "failed")


def member(name: str, status: str = "running", inflight: int = 0, slots: int = 4,
           reachable: bool = True) -> MemberLoad:
    return MemberLoad(name, status, inflight, slots, reachable)


def test_only_running_reachable_members_with_a_free_slot_are_chosen() -> None:
    for statuses in itertools.product(STATUSES, repeat=3):
        members = [member(f"m{i}", status) for i, status in enumerate(statuses)]
        chosen = choose_member(members, None, 0)
        running = [m.name for m in members if m.status == "running"]
        assert (chosen in running) if running else chosen is None
    lost = [member("a", reachable=False), member("b", status="starting")]
    assert choose_member(lost, None, 0) is None
    assert choose_member(lost, "session", 0) is None


def test_least_loaded_relative_to_slots_then_in_turn() -> None:
    # a: 2 of 4 (0.5), b: 1 of 1 (saturated), c: 1 of 4 (0.25)
    members = [member("a", inflight=2), member("b", inflight=1, slots=1),
               member("c", inflight=1)]
    assert choose_member(members, None, 0) == "c"
    tied = [member("a"), member("b"), member("c", inflight=1)]
    assert [choose_member(tied, None, turn) for turn in range(4)] == ["a", "b", "a", "b"]
    saturated = [member("a", inflight=4), member("b", inflight=2, slots=2)]
    assert choose_member(saturated, None, 0) is None


def test_a_session_sticks_unless_its_member_is_saturated_and_another_is_not() -> None:
    members = [member(name) for name in ("a", "b", "c")]
    homes = {choose_member(members, f"s{i}", turn) for i in range(50) for turn in range(3)
             if f"s{i}" == "s7"}
    assert len(homes) == 1  # the same member whatever the turn
    home = homes.pop()
    busy = [member(m.name, inflight=4 if m.name == home else 0) for m in members]
    assert choose_member(busy, "s7", 0) not in (home, None)
    all_busy = [member(m.name, inflight=4) for m in members]
    assert choose_member(all_busy, "s7", 0) is None


def test_rendezvous_moves_only_the_sessions_of_a_member_that_leaves_or_joins() -> None:
    sessions = [f"session-{i}" for i in range(600)]
    three = [member(name) for name in ("a", "b", "c")]
    before = {s: session_member(three, s).name for s in sessions}  # type: ignore[union-attr]
    counts = {name: list(before.values()).count(name) for name in "abc"}
    assert all(120 < count < 280 for count in counts.values()), counts  # spread
    without_b = [m for m in three if m.name != "b"]
    after = {s: session_member(without_b, s).name for s in sessions}  # type: ignore[union-attr]
    assert all(after[s] == before[s] for s in sessions if before[s] != "b")
    four = [*three, member("d")]
    grown = {s: session_member(four, s).name for s in sessions}  # type: ignore[union-attr]
    assert all(grown[s] in (before[s], "d") for s in sessions)
    stopped_b = [member("a"), member("b", status="stopped"), member("c")]
    assert {s: session_member(stopped_b, s).name for s in sessions} == after  # type: ignore[union-attr]


def test_the_member_to_start_one_at_a_time() -> None:
    assert member_to_start([member("b", "stopped"), member("a", "failed")],
                           starting=False) == "b"
    assert member_to_start([member("b", "failed"), member("a", "failed")],
                           starting=False) == "a"
    assert member_to_start([member("a", "starting"), member("b", "stopped")],
                           starting=False) is None
    assert member_to_start([member("b", "stopped")], starting=True) is None
    assert member_to_start([member("a"), member("b", "stopping")], starting=False) is None


def test_members_short_of_min_running() -> None:
    members = [member("a"), member("b", "starting"), member("c", "stopped"),
               member("d", "failed")]
    assert members_short(members, 0) == 0
    assert members_short(members, 2) == 0
    assert members_short(members, 4) == 2
