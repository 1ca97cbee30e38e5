"""The lifecycle's pure transition function, without processes, loops or clocks.

Every status (in the variants that behave differently) with every message, against a table
written here by hand; invariants that must hold in every cell; then the sequences that matter
(crash restarts with backoff, shutdown during a pending kill, idleness, adoption). The page
docs/lifecycle.md is rendered from the same function and must be up to date.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llamactl.devtools.lifecycle_doc import MESSAGES, POLICY, STATES, grid, render
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor.lifecycle import transition

ROOT = Path(__file__).resolve().parent.parent

NR, AR, BUSY = "R:not_running", "R:already_running", "R:busy"
# Columns, in STATES' order:
#   stopped, failed, starting, starting (crash restart), running, running (being killed),
#   stopping, restarting (stopping first), restarting (crash backoff)
# "L": a launch (the status moves when the runner reports Launched); "R:kind": refused;
# "closed:S": the owner ends in S; "-": nothing changes; else the status after.
EXPECTED: dict[str, tuple[str, ...]] = {
    "start": ("L", "L", AR, AR, AR, AR, AR, AR, AR),
    "stop": (NR, NR, "stopping", "stopping", "stopping", "stopping", "stopping", "stopping",
             "stopped"),
    "stop (force)": (NR, NR, "stopping", "stopping", "stopping", "stopping", "stopping",
                     "stopping", "stopped"),
    "evict (idle)": (NR, NR, BUSY, BUSY, "stopping", "stopping", BUSY, BUSY, BUSY),
    "evict (busy)": (NR, NR, BUSY, BUSY, BUSY, BUSY, BUSY, BUSY, BUSY),
    "request (acquire)": (NR, NR, "starting", "starting", "running", "running", "R:stopping",
                          "restarting", "restarting"),
    "restart": ("L", "L", "restarting", "restarting", "restarting", "restarting", "restarting",
                "-", "L"),
    "update (restart now)": ("-", "-", "restarting", "restarting", "restarting", "restarting",
                             "restarting", "-", "-"),
    "delete": ("closed:stopped", "closed:failed", "R:running", "R:running", "R:running",
               "R:running", "R:running", "R:running", "R:running"),
    "shutdown": ("closed:stopped", "closed:failed", "stopping", "stopping", "stopping",
                 "stopping", "stopping", "stopping", "closed:stopped"),
    "shutdown (leave running)": ("closed:stopped", "closed:failed", "closed:starting",
                                 "closed:starting", "closed:running", "closed:running",
                                 "closed:stopping", "closed:restarting", "closed:restarting"),
    "exited": ("-", "-", "failed", "restarting", "restarting", "restarting", "stopped", "L",
               "-"),
    "ready": ("-", "-", "running", "running", "-", "-", "-", "-", "-"),
    "load failed": ("-", "-", "starting", "starting", "running", "running", "stopping",
                    "restarting", "-"),
    "unhealthy": ("-", "-", "starting", "starting", "running", "running", "stopping",
                  "restarting", "-"),
    "kill timer": ("-", "-", "-", "-", "-", "-", "stopping", "restarting", "-"),
    "restart timer": ("-", "-", "-", "-", "-", "-", "-", "-", "L"),
    "idle timer": ("-", "-", "-", "-", "stopping", "stopping", "-", "-", "-"),
}
CELLS = [(state, message) for state in STATES for message in MESSAGES]


def code(before: t.State, after: t.State, effects: list[t.Effect]) -> str:
    if effects and isinstance(effects[0], t.Refuse):
        return f"R:{effects[0].kind}"
    if any(isinstance(effect, t.Launch) for effect in effects):
        return "L"
    if after.closed:
        return f"closed:{after.status}"
    if after == before and all(isinstance(e, (t.Persist, t.Answer)) for e in effects):
        return "-"
    return after.status


def kinds(effects: list[t.Effect]) -> list[type[t.Effect]]:
    return [type(effect) for effect in effects]


def test_the_table_covers_every_message_and_every_status() -> None:
    assert set(EXPECTED) == set(MESSAGES)
    assert all(len(row) == len(STATES) for row in EXPECTED.values())
    assert {state.status for state in STATES.values()} == {
        "stopped", "failed", "starting", "running", "stopping", "restarting"}


@pytest.mark.parametrize(("state", "message"), CELLS)
def test_every_status_with_every_message(state: str, message: str) -> None:
    before = STATES[state]
    after, effects = transition(before, MESSAGES[message])
    expected = EXPECTED[message][list(STATES).index(state)]
    assert code(before, after, effects) == expected, effects


@pytest.mark.parametrize(("state", "message"), CELLS)
def test_invariants_hold_in_every_cell(state: str, message: str) -> None:
    before = STATES[state]
    after, effects = transition(before, MESSAGES[message])
    if effects and isinstance(effects[0], t.Refuse):
        assert after == before  # a refused request changes nothing
        assert len(effects) == 1
        return
    # Signals only reach a process we have; a launch never starts a second one.
    if any(isinstance(e, t.Signal) for e in effects):
        assert before.process
    if any(isinstance(e, t.Launch) for e in effects):
        assert not after.process
        assert not after.closed
        assert effects.index(next(e for e in effects if isinstance(e, t.CancelWatchers))) < (
            effects.index(next(e for e in effects if isinstance(e, t.Launch))))
    # The recorded status is the state's: every status change is published, the last one wins.
    statuses = [e.status for e in effects if isinstance(e, t.SetStatus)]
    if after.status != before.status:
        assert statuses
        assert statuses[-1] == after.status
    # At rest, nothing is left to fire.
    if after.status in ("stopped", "failed"):
        assert after.timer is None
        assert not after.idle_armed
        assert not after.process
    assert after.closed == any(isinstance(e, t.Close) for e in effects) or before.closed
    if after.status == "running" and before.status != "running":
        assert t.ResolveWaiters in kinds(effects)


def run(state: t.State, *messages: t.Message) -> tuple[t.State, list[t.Effect]]:
    """Feed messages in order; the effects of the last one."""
    effects: list[t.Effect] = []
    for message in messages:
        state, effects = transition(state, message)
    return state, effects


RUNNING = STATES["running"]


def test_shutdown_during_a_kill_for_failed_health_ends_stopped_with_no_restart() -> None:
    state, effects = run(RUNNING, t.Unhealthy("health check failed 3 times"))
    assert state.after_kill == ("crash", "health check failed 3 times")
    state, effects = run(state, t.Shutdown(), t.Exited(pid=1, what="was killed by SIGKILL"))
    assert state.status == "stopped"
    assert state.closed
    assert t.Close in kinds(effects)
    assert not any(isinstance(e, (t.ArmTimer, t.Launch)) for e in effects)
    assert state.restart_count == 0


def test_shutdown_during_a_kill_for_a_failed_load_ends_stopped_not_failed() -> None:
    state, _ = run(STATES["starting"], t.LoadFailed("not ready after 120 s without output"),
                   t.Shutdown(), t.Exited(pid=1, what="was killed by SIGKILL"))
    assert state.status == "stopped"
    assert state.closed
    assert state.last_error is None


def test_crash_restarts_back_off_doubling_then_give_up() -> None:
    state = RUNNING
    delays = []
    for _ in range(POLICY.max_restarts):
        state, effects = run(state, t.Exited(pid=1, what="was killed by SIGSEGV"))
        assert state.status == "restarting"
        delays += [e.seconds for e in effects if isinstance(e, t.ArmTimer)]
        state, effects = run(state, t.RestartTimer())
        assert effects[-1] == t.Launch(retry=True)
        state, effects = run(state, t.Launched(pid=2))
        assert state.status == "starting"
        assert t.Count("relaunched") in effects
    assert delays == [5.0, 10.0, 20.0]
    # Dying while loading after a crash restart is another crash, until none are left.
    state, effects = run(state, t.Exited(pid=2, what="exited with code 1"))
    assert state.status == "failed"
    assert state.last_error == "crashed: process exited with code 1; gave up after 3 restarts"
    assert t.Alert("error", f"Instance 'instance' failed: {state.last_error}") in effects


def test_a_first_start_that_dies_while_loading_fails_and_tells_its_waiters() -> None:
    state, effects = run(STATES["stopped"], t.Start(wait=True))
    assert kinds(effects)[:1] == [t.WaitReady]
    state, effects = run(state, t.Launched(pid=7), t.Exited(pid=7, what="exited with code 1"))
    assert state.status == "failed"
    assert state.last_error == "start failed: process exited with code 1 before it was ready"
    assert t.FailWaiters(f"Instance 'instance' failed: {state.last_error}", log_tail=True) in (
        effects)


def test_a_launch_that_cannot_spawn_fails_at_once() -> None:
    state, _ = run(STATES["stopped"], t.Start(),
                   t.LaunchFailed("model file /m.gguf is missing or not readable"))
    assert state.status == "failed"
    assert state.last_error == "start failed: model file /m.gguf is missing or not readable"


def test_without_auto_restart_a_crash_fails() -> None:
    state = t.State(status="running", process=True,
                    policy=t.Policy(auto_restart=False))
    state, _ = run(state, t.Exited(pid=1, what="exited with code 2"))
    assert state.status == "failed"
    assert state.last_error == "crashed: process exited with code 2"


def test_stable_running_forgets_past_crashes() -> None:
    state = t.State(status="running", process=True, restart_count=2)
    state, effects = run(state, t.Stable())
    assert state.restart_count == 0
    assert effects == [t.Persist()]


def test_a_restart_stops_then_launches_once_the_process_is_gone() -> None:
    state, effects = run(RUNNING, t.Restart())
    assert state.status == "restarting"
    assert t.Signal("SIGTERM", "info", "stopping pid {pid} (SIGTERM, 30 s grace)", 30) in effects
    assert not any(isinstance(e, t.Launch) for e in effects)
    state, effects = run(state, t.Exited(pid=1, what="exited with code 0"))
    assert effects[-1] == t.Launch(retry=False)


def test_a_stop_during_a_crash_backoff_cancels_the_restart() -> None:
    state, effects = run(STATES["restarting (crash backoff)"], t.Stop())
    assert state.status == "stopped"
    assert t.CancelTimer("restart") in effects
    assert run(state, t.RestartTimer())[1] == []  # a timer that fired anyway does nothing


def test_idleness_waits_for_the_whole_timeout_after_the_last_request() -> None:
    state, effects = run(STATES["starting"], t.Ready(inflight=0))
    assert t.ArmTimer("idle", 600.0) in effects
    assert t.CapacityChanged() in effects
    # Fired early (a request came and went meanwhile): wait for the rest.
    state, effects = run(state, t.IdleTimer(inflight=0, idle_for=200.0))
    assert effects == [t.ArmTimer("idle", 400.0)]
    # A request in flight keeps it up; its end arms the timer again.
    state, effects = run(state, t.IdleTimer(inflight=1, idle_for=900.0))
    assert effects == []
    assert not state.idle_armed
    state, effects = run(state, t.Idle())
    assert t.ArmTimer("idle", 600.0) in effects
    state, effects = run(state, t.IdleTimer(inflight=0, idle_for=600.0))
    assert state.status == "stopping"
    assert t.Log("info", "idle for 10 min: stopping") in effects


def test_no_idle_timer_without_an_idle_timeout() -> None:
    state = t.State(status="starting", process=True, policy=t.Policy(idle_minutes=0))
    _, effects = run(state, t.Ready(inflight=0))
    assert not any(isinstance(e, t.ArmTimer) for e in effects)


@pytest.mark.parametrize("status", ["starting", "running", "stopping", "restarting"])
def test_boot_adopts_a_recorded_process_or_records_it_gone(status: str) -> None:
    state = t.State(status=status)  # type: ignore[arg-type]
    _, effects = run(state, t.Boot(recorded_pid=True))
    assert effects == [t.TryAdopt()]
    gone, _ = run(state, t.AdoptFailed(pid=9))
    assert gone.status == "stopped"
    adopted, effects = run(state, t.Adopted(pid=9))
    assert adopted.process
    expected = {"running": "running", "stopping": "stopping"}.get(status, "starting")
    assert adopted.status == expected
    watcher = {"running": t.WatchLiveness, "stopping": t.Signal}.get(status, t.WatchReadiness)
    assert watcher in kinds(effects)


def test_boot_during_a_crash_backoff_carries_on_with_the_restart() -> None:
    state = t.State(status="restarting", restart_count=2)
    state, effects = run(state, t.Boot(recorded_pid=False))
    assert effects == [t.ArmTimer("restart", 10.0)]
    assert state.timer == "restart"


def test_the_lifecycle_page_is_what_the_code_renders() -> None:
    committed = (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/lifecycle.md is stale: run .venv/bin/python -m llamactl.devtools.lifecycle_doc")
    assert len(grid()) == len(STATES) * len(MESSAGES)
