"""The decision at the heart of supervision: ``transition(state, message) -> (state, effects)``.

Pure: no I/O, no clock, no asyncio. The owner task (supervisor/owner.py) feeds it one message
at a time (requests from the API, notices from its watchers and timers) and carries out the
effects in order. ``tests/test_lifecycle.py`` walks every status with every message, and
``docs/lifecycle.md`` is rendered from this function (``llamactl.devtools.lifecycle_doc``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from llamactl.instances.models import Status
from llamactl.supervisor import lifecycle_terms as t

# Statuses that may be asked to start: anything else is already on its way up or down.
_BUSY: tuple[Status, ...] = ("starting", "running", "restarting", "stopping")


class _Step:
    """One transition being worked out: the state so far and the effects asked for."""

    def __init__(self, state: t.State):
        self.s = state
        self.out: list[t.Effect] = []

    def set(self, **changes: Any) -> None:
        self.s = replace(self.s, **changes)

    def emit(self, *effects: t.Effect) -> None:
        self.out.extend(effects)

    def refuse(self, kind: t.RefusalKind, what: str) -> None:
        self.out = [t.Refuse(kind, f"Instance '{self.s.name}' {what}")]

    # ---- the moves that several messages share ----

    def set_status(self, status: Status) -> None:
        self.set(status=status)
        self.emit(t.SetStatus(status))
        if status != "running" and self.s.idle_armed:
            self.set(idle_armed=False)
            self.emit(t.CancelTimer("idle"))

    def cancel_timer(self) -> None:
        if self.s.timer is not None:
            self.emit(t.CancelTimer(self.s.timer))
            self.set(timer=None)

    def launch(self, *, retry: bool) -> None:
        self.cancel_timer()
        self.emit(t.CancelWatchers(), t.Launch(retry))
        self.set(retrying=retry)

    def fail(self, reason: str, *, model_missing: bool = False) -> None:
        self.set(last_error=reason, process=False)
        self.emit(t.Log("error", reason))
        self.set_status("failed")
        self.emit(t.FailWaiters(f"Instance '{self.s.name}' failed: {reason}", log_tail=True,
                                model_missing=model_missing),
                  t.Alert("error", f"Instance '{self.s.name}' failed: {reason}"))

    def crashed(self, reason: str) -> None:
        self.emit(t.Count("crashed"))
        policy, count = self.s.policy, self.s.restart_count
        if not policy.auto_restart or count >= policy.max_restarts:
            tried = f"; gave up after {count} restarts" if policy.auto_restart else ""
            self.fail(f"crashed: {reason}{tried}")
            return
        count += 1
        self.set(restart_count=count, last_error=f"crashed: {reason}")
        delay = self.schedule_restart()
        self.emit(t.Log("warn", f"restart {count}/{policy.max_restarts} in {delay:g} s"))
        self.set_status("restarting")
        self.emit(t.Alert("warning", f"Instance '{self.s.name}' crashed ({reason}); restart "
                                     f"{count} of {policy.max_restarts} in {delay:g} s"))

    def schedule_restart(self) -> float:
        policy = self.s.policy
        delay = policy.restart_delay * float(2 ** max(self.s.restart_count - 1, 0))
        self.emit(t.ArmTimer("restart", delay))
        self.set(timer="restart")
        return delay

    def begin_stop(self, status: Status, *, force: bool, timeout: float) -> None:
        self.emit(t.CancelWatchers())
        self.set_status(status)
        if force or timeout <= 0:
            self.emit(t.Signal("SIGKILL", "info", "killing pid {pid}"))
            return
        self.emit(t.Signal("SIGTERM", "info",
                           f"stopping pid {{pid}} (SIGTERM, {timeout:g} s grace)", timeout))
        self.cancel_timer()
        self.emit(t.ArmTimer("kill", timeout))
        self.set(timer="kill")

    def kill_now(self, outcome: t.Outcome, reason: str) -> None:
        """SIGKILL the group. The exit notice, not this message, moves the status on, so the
        next process is never launched before this one is reaped."""
        if self.s.process:
            self.set(after_kill=(outcome, reason))
            self.emit(t.Signal("SIGKILL", "warn", f"killing pid {{pid}}: {reason}"),
                      t.CancelWatchers())

    def became_idle(self) -> None:
        """The last request ended (or the instance became ready with none): start counting.
        A timer already set stays: when it fires it looks at the time since the last request
        and waits longer if need be, so a busy instance does not set one per request."""
        self.emit(t.CapacityChanged())
        if not self.s.idle_armed and self.s.status == "running":
            self.arm_idle(self.s.policy.idle_minutes * 60)

    def arm_idle(self, seconds: float) -> None:
        if seconds > 0:
            self.emit(t.ArmTimer("idle", seconds))
            self.set(idle_armed=True)


# ---- requests ----

def _start(step: _Step, message: t.Start) -> None:
    if step.s.status in _BUSY:
        step.refuse("already_running", f"is already {step.s.status}")
        return
    if message.wait:
        step.emit(t.WaitReady(lease=False))
    step.set(restart_count=0)
    step.launch(retry=False)


def _acquire(step: _Step, message: t.Acquire) -> None:
    status = step.s.status
    if status == "running" and step.s.process:
        step.emit(t.GrantLease())
    elif status in ("stopped", "failed") or step.s.closing:
        step.refuse("not_running", f"is {status}")
    elif status == "stopping":
        # An idle stop (or an eviction) racing a new request: the caller waits for the exit
        # and starts it again through the capacity limits, instead of hanging.
        step.refuse("stopping", "is stopping")
    else:
        step.emit(t.WaitReady(lease=True))


def _stop(step: _Step, message: t.Stop) -> None:
    status = step.s.status
    if status in ("stopped", "failed"):
        step.refuse("not_running", "is not running")
        return
    if message.if_idle and (status != "running" or message.inflight):
        step.refuse("busy", "is busy")
        return
    step.set(restart_after_stop=False, after_kill=None)  # the user's stop decides the exit
    if not step.s.process:  # restarting: waiting out the backoff, nothing runs
        step.cancel_timer()
        step.set_status("stopped")
        step.emit(t.FailWaiters(f"Instance '{step.s.name}' was stopped", log_tail=False))
        return
    timeout = step.s.policy.stop_timeout if message.timeout is None else message.timeout
    step.begin_stop("stopping", force=message.force, timeout=timeout)


def _restart(step: _Step, message: t.Restart) -> None:
    step.set(restart_count=0)
    if not step.s.process:
        step.cancel_timer()
        step.launch(retry=False)
        return
    step.set(restart_after_stop=True, after_kill=None)
    if step.s.status == "stopping":  # already on its way down: start again once it is
        step.set_status("restarting")
    elif step.s.status != "restarting":
        step.begin_stop("restarting", force=False, timeout=step.s.policy.stop_timeout)


def _delete(step: _Step, message: t.Delete) -> None:
    if step.s.status not in ("stopped", "failed"):
        step.refuse("running", f"is {step.s.status}; stop it before deleting it")
        return
    step.set(closed=True)
    step.emit(t.DeleteLogs(), t.Close())


def _update(step: _Step, message: t.Update) -> None:
    step.emit(t.Persist())
    if not step.s.process:
        step.emit(t.Answer(False))
    elif message.restart:
        _restart(step, t.Restart())
        step.emit(t.Answer(False))
    else:
        step.emit(t.Answer(True))  # applies at the next start


def _shutdown(step: _Step, message: t.Shutdown) -> None:
    if not message.stop or not step.s.process:
        if message.stop and step.s.status == "restarting":
            step.cancel_timer()
            step.set_status("stopped")
        step.set(closed=True)  # a process, if any, stays recorded for the next llamactl
        step.emit(t.Close())
        return
    # A kill under way (failed load or health checks) becomes a stop: its exit ends the owner.
    step.set(closing=True, restart_after_stop=False, after_kill=None)
    step.begin_stop("stopping", force=False, timeout=step.s.policy.stop_timeout)


# ---- what the runner reports back ----

def _boot(step: _Step, message: t.Boot) -> None:
    status = step.s.status
    if step.s.process:  # only a new owner boots
        return
    if status == "restarting" and not message.recorded_pid:
        step.schedule_restart()  # llamactl went down during a backoff: carry on
    elif status in _BUSY:
        step.emit(t.TryAdopt())


def _launched(step: _Step, message: t.Launched) -> None:
    step.set(process=True, last_error=None)
    started = "placing on a node" if message.pid is None else f"started pid {message.pid}"
    step.emit(t.Log("info", started),
              t.Count("relaunched" if step.s.retrying else "launched"))
    step.set_status("starting")
    step.emit(t.WatchExit(), t.WatchReadiness())


def _placed(step: _Step, message: t.Placed) -> None:
    if step.s.status == "starting" and step.s.process:
        step.emit(t.Log("info", f"started pid {message.pid} on node {message.node}"),
                  t.Persist())  # the pid and node, for adoption


def _launch_failed(step: _Step, message: t.LaunchFailed) -> None:
    step.fail(f"start failed: {message.reason}")


def _adopted(step: _Step, message: t.Adopted) -> None:
    step.set(process=True)
    step.emit(t.Log("info", f"adopted pid {message.pid}"), t.WatchExit())
    if step.s.status == "running":
        step.emit(t.WatchLiveness())
    elif step.s.status == "stopping":
        step.begin_stop("stopping", force=False, timeout=step.s.policy.stop_timeout)
    else:
        step.set_status("starting")
        step.emit(t.WatchReadiness())


def _adopt_failed(step: _Step, message: t.AdoptFailed) -> None:
    step.emit(t.Log("warn", f"process pid {message.pid} from before is gone: stopped"))
    step.set_status("stopped")


def _exited(step: _Step, message: t.Exited) -> None:
    if not step.s.process:  # not ours to report: nothing was running
        return
    step.set(process=False)
    step.emit(t.CancelWatchers())
    step.cancel_timer()
    exit_line = f"pid {message.pid} {message.what}"
    after_kill, status = step.s.after_kill, step.s.status
    step.set(after_kill=None)
    if after_kill is not None:
        step.emit(t.Log("info", exit_line))
        outcome, reason = after_kill
        if outcome in ("fail", "model"):
            step.fail(reason, model_missing=outcome == "model")
        else:
            step.crashed(reason)
    elif status == "stopping":
        step.emit(t.Log("info", exit_line))
        step.set_status("stopped")
        step.emit(t.FailWaiters(f"Instance '{step.s.name}' was stopped", log_tail=False))
        if step.s.closing:
            step.set(closed=True)
            step.emit(t.Close())
    elif status == "restarting" and step.s.restart_after_stop:
        step.emit(t.Log("info", exit_line))
        step.set(restart_after_stop=False)
        step.launch(retry=False)
    elif status == "starting" and not step.s.retrying:
        step.emit(t.Log("error", f"{exit_line} while loading"))
        cause = f": {message.cause}" if message.cause else ""
        step.fail(f"start failed: process {message.what} before it was ready{cause}")
    else:
        step.emit(t.Log("error", f"{exit_line} unexpectedly"))
        step.crashed(f"process {message.what}")


def _ready(step: _Step, message: t.Ready) -> None:
    if step.s.status != "starting":
        return
    step.set_status("running")
    step.set(retrying=False)
    step.emit(t.Count("ready"), t.SampleStats(), t.WatchLiveness(), t.ResolveWaiters())
    if message.inflight == 0:
        step.became_idle()


def _load_failed(step: _Step, message: t.LoadFailed) -> None:
    step.kill_now("model" if message.model_missing else "fail",
                  f"start failed: {message.reason}")


def _unhealthy(step: _Step, message: t.Unhealthy) -> None:
    step.kill_now("crash", message.reason)


def _kill_timer(step: _Step, message: t.KillTimer) -> None:
    if step.s.timer != "kill":  # cancelled since it fired
        return
    step.set(timer=None)
    if step.s.process:
        step.emit(t.Signal("SIGKILL", "warn", "pid {pid} did not stop in time: SIGKILL"))


def _restart_timer(step: _Step, message: t.RestartTimer) -> None:
    if step.s.timer != "restart" or step.s.process:  # cancelled since it fired
        return
    step.set(timer=None)
    step.launch(retry=True)


def _stable(step: _Step, message: t.Stable) -> None:
    step.set(restart_count=0)
    step.emit(t.Persist())


def _idle_timer(step: _Step, message: t.IdleTimer) -> None:
    if not step.s.idle_armed:  # cancelled since it fired
        return
    step.set(idle_armed=False)
    limit = step.s.policy.idle_minutes * 60
    # Decided here: a request in flight keeps the instance up (its end sets the timer again),
    # and one that arrives during the stop starts it again.
    if step.s.status != "running" or message.inflight or limit <= 0:
        return
    if message.idle_for < limit - 0.05:
        step.arm_idle(limit - message.idle_for)
        return
    step.emit(t.Log("info", f"idle for {limit / 60:g} min: stopping"))
    step.begin_stop("stopping", force=False, timeout=step.s.policy.stop_timeout)


def _idle(step: _Step, message: t.Idle) -> None:
    step.became_idle()


def _pull_ended(step: _Step, message: t.PullEnded) -> None:
    """Its link to the pull is gone from the record; a pull that failed is the instance's
    last error, unless it has been started since (by hand, on a file put there)."""
    if message.error is not None and not step.s.process and step.s.status in ("stopped",
                                                                               "failed"):
        step.set(last_error=message.error)
        step.emit(t.Log("error", message.error))
    step.emit(t.Persist())


_HANDLERS: dict[type[Any], Callable[[_Step, Any], None]] = {
    t.Start: _start, t.Acquire: _acquire, t.Stop: _stop, t.Restart: _restart,
    t.Delete: _delete, t.Update: _update, t.Shutdown: _shutdown, t.Boot: _boot,
    t.Launched: _launched, t.Placed: _placed, t.LaunchFailed: _launch_failed, t.Adopted: _adopted,
    t.AdoptFailed: _adopt_failed, t.Exited: _exited, t.Ready: _ready,
    t.LoadFailed: _load_failed, t.Unhealthy: _unhealthy, t.KillTimer: _kill_timer,
    t.RestartTimer: _restart_timer, t.Stable: _stable, t.IdleTimer: _idle_timer,
    t.Idle: _idle, t.PullEnded: _pull_ended,
}


def transition(state: t.State, message: t.Message) -> tuple[t.State, list[t.Effect]]:
    """The next state and the effects, in order. A refused request changes nothing: the
    state comes back as it was with a single Refuse effect."""
    step = _Step(state)
    _HANDLERS[type(message)](step, message)
    if step.out and isinstance(step.out[0], t.Refuse):
        return state, step.out
    return step.s, step.out
