"""The lifecycle's documentation, rendered from the pure transition function.

``python -m llamactl.devtools.lifecycle_doc`` writes ``docs/lifecycle.md``: for each status (in
the variants that behave differently) and each message, what happens, and a state diagram of
every status change the table contains. ``tests/test_lifecycle.py`` fails when the committed
page differs from what the code renders, and walks the same grid to check its invariants.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llamactl.instances.models import STATUSES
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor.lifecycle import transition

POLICY = t.Policy(auto_restart=True, max_restarts=3, restart_delay=5.0, stop_timeout=30.0,
                  idle_minutes=10.0)

# Each status, in the variants that answer messages differently.
STATES: dict[str, t.State] = {
    "stopped": t.State(status="stopped", policy=POLICY),
    "failed": t.State(status="failed", last_error="crashed", policy=POLICY),
    "starting": t.State(status="starting", process=True, policy=POLICY),
    "starting (crash restart)": t.State(status="starting", process=True, retrying=True,
                                        restart_count=1, policy=POLICY),
    "running": t.State(status="running", process=True, idle_armed=True, policy=POLICY),
    "running (being killed: health)": t.State(status="running", process=True, idle_armed=True,
                                              after_kill=("crash", "health check failed"),
                                              policy=POLICY),
    "stopping": t.State(status="stopping", process=True, timer="kill", policy=POLICY),
    "restarting (stopping first)": t.State(status="restarting", process=True, timer="kill",
                                           restart_after_stop=True, policy=POLICY),
    "restarting (crash backoff)": t.State(status="restarting", timer="restart",
                                          restart_count=1, last_error="crashed", policy=POLICY),
}

# Requests from the API, then what the runner and the watchers report.
MESSAGES: dict[str, t.Message] = {
    "start": t.Start(),
    "stop": t.Stop(),
    "stop (force)": t.Stop(force=True),
    "evict (idle)": t.Stop(if_idle=True),
    "evict (busy)": t.Stop(if_idle=True, inflight=1),
    "request (acquire)": t.Acquire(),
    "restart": t.Restart(),
    "update (restart now)": t.Update(restart=True),
    "delete": t.Delete(),
    "shutdown": t.Shutdown(),
    "shutdown (leave running)": t.Shutdown(stop=False),
    "exited": t.Exited(pid=4242, what="exited with code 1"),
    "ready": t.Ready(),
    "load failed": t.LoadFailed("not ready after 120 s without output"),
    "unhealthy": t.Unhealthy("health check failed 3 times in a row"),
    "kill timer": t.KillTimer(),
    "restart timer": t.RestartTimer(),
    "idle timer": t.IdleTimer(idle_for=600.0),
}


def outcome(before: t.State, after: t.State, effects: list[t.Effect]) -> str:
    """One cell: the status after, and the effects a reader cares about."""
    if effects and isinstance(effects[0], t.Refuse):
        return f"refused ({effects[0].kind.replace('_', ' ')})"
    notes: list[str] = []
    for effect in effects:
        note = _note(effect)
        if note and note not in notes:
            notes.append(note)
    if after.closed:
        notes.append("owner ends")
    status = after.status if after.status != before.status else "="
    if status == "=" and not notes:
        return "-"
    return status + (": " + ", ".join(notes) if notes else "")


def _note(effect: t.Effect) -> str:
    if isinstance(effect, t.Launch):
        return "launch" + (" (retry)" if effect.retry else "")
    if isinstance(effect, t.Signal):
        return effect.signal
    if isinstance(effect, t.ArmTimer):
        return f"{effect.kind} timer {effect.seconds:g} s"
    if isinstance(effect, t.WatchReadiness):
        return "readiness checks"
    if isinstance(effect, t.WatchLiveness):
        return "health checks"
    if isinstance(effect, t.TryAdopt):
        return "adopt"
    if isinstance(effect, t.FailWaiters):
        return "waiters get START_FAILED"
    if isinstance(effect, t.ResolveWaiters):
        return "waiters served"
    if isinstance(effect, t.GrantLease):
        return "lease"
    if isinstance(effect, t.WaitReady):
        return "waits for ready"
    if isinstance(effect, t.Alert):
        return f"{effect.level} alert"
    return ""


# At boot a new owner has no process yet: the store says what the status was.
BOOT_MESSAGES: dict[str, t.Message] = {
    "pid recorded": t.Boot(recorded_pid=True),
    "no pid recorded": t.Boot(recorded_pid=False),
    "then: process found": t.Adopted(pid=4242),
    "then: process gone": t.AdoptFailed(pid=4242),
}


def boot_state(status: str) -> t.State:
    return t.State(status=status, policy=POLICY)  # type: ignore[arg-type]


def grid() -> dict[tuple[str, str], tuple[t.State, list[t.Effect]]]:
    return {(state_name, message_name): transition(state, message)
            for state_name, state in STATES.items()
            for message_name, message in MESSAGES.items()}


def boot_grid() -> dict[tuple[str, str], tuple[t.State, list[t.Effect]]]:
    return {(status, message_name): transition(boot_state(status), message)
            for status in STATUSES for message_name, message in BOOT_MESSAGES.items()}


def _edges(cells: dict[tuple[str, str], tuple[t.State, list[t.Effect]]]
           ) -> set[tuple[str, str, str]]:
    """(from, to, message) for every status change; a launch counts as the move to
    starting that its Launched report makes."""
    edges: set[tuple[str, str, str]] = set()
    for (state_name, message_name), (after, effects) in cells.items():
        source = STATES[state_name].status
        target = "starting" if any(isinstance(e, t.Launch) for e in effects) else after.status
        if target != source:
            edges.add((source, target, message_name))
    return edges


def render() -> str:
    cells = grid()
    return "\n".join([*_intro(), *_diagram(cells), *_tables(cells), *_boot_table()])


def _intro() -> list[str]:
    return [
        "# Lifecycle",
        "",
        "<!-- Generated by `python -m llamactl.devtools.lifecycle_doc` from",
        "     src/llamactl/supervisor/lifecycle.py: do not edit by hand. -->",
        "",
        "Every instance has one owner task, and every decision it takes comes from one pure",
        "function, `transition(state, message) -> (state, effects)`",
        "(`src/llamactl/supervisor/lifecycle.py`). This page is rendered from that function, and",
        "the tests fail when it and the code disagree. Settings used: "
        f"`max_restarts: {POLICY.max_restarts}`, `restart_delay: {POLICY.restart_delay:g}`, "
        f"`stop_timeout: {POLICY.stop_timeout:g}`, `idle_timeout: {POLICY.idle_minutes:g}` "
        "(minutes).",
        "",
    ]


def _diagram(cells: dict[tuple[str, str], tuple[t.State, list[t.Effect]]]) -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2", "  [*] --> stopped"]
    merged: dict[tuple[str, str], set[str]] = {}
    for source, target, message in _edges(cells):
        merged.setdefault((source, target), set()).add(message)
    for (source, target), messages in sorted(merged.items()):
        lines.append(f"  {source} --> {target}: {', '.join(sorted(messages))}")
    return [*lines, "```", ""]


def _tables(cells: dict[tuple[str, str], tuple[t.State, list[t.Effect]]]) -> list[str]:
    lines = ["## What each message does, by status", "",
             "`=`: the status does not change; `-`: nothing happens; *refused*: the request gets "
             "an error and nothing changes. A `launch` spawns the backend: the instance is then "
             "`starting`, or `failed` when it cannot be spawned (binary or model missing, port "
             "taken). The process's exit, not the signal, moves a stopping instance on.", ""]
    for state_name in STATES:
        lines += [f"### {state_name}", "", "| Message | Then |", "|---|---|"]
        for message_name in MESSAGES:
            after, effects = cells[(state_name, message_name)]
            lines.append(f"| {message_name} | "
                         f"{outcome(STATES[state_name], after, effects)} |")
        lines.append("")
    return lines


def _boot_table() -> list[str]:
    lines = ["## At boot", "",
             "A new llamactl finds each instance's last status in the store. It takes back "
             "a recorded process that is still the same process (same pid and start time), "
             "or records that it is gone.", "",
             "| Status in the store | " + " | ".join(BOOT_MESSAGES) + " |",
             "|---|" + "---|" * len(BOOT_MESSAGES)]
    boot = boot_grid()
    for status in STATUSES:
        row = [outcome(boot_state(status), *boot[(status, name)]) for name in BOOT_MESSAGES]
        if "adopt" not in row[0]:  # no process to look for: the "then" columns do not apply
            row[2:] = ["", ""]
        lines.append(f"| {status} | " + " | ".join(row) + " |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the lifecycle page from its table.")
    parser.add_argument("target", nargs="?", type=Path, default=Path("docs/lifecycle.md"))
    target: Path = parser.parse_args().target
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
