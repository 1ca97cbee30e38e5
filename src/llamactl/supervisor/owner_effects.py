"""How the owner carries out the lifecycle's effects: spawn, signal, timers, watchers, persist,
publish, answer. The decisions are all in ``supervisor/lifecycle.py``; nothing here chooses a
status. The owner (supervisor/owner.py) holds an ``EffectRunner``, which owns the process,
timers, watchers and waiters it works on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from llamactl.backends import backend_for, backend_named
from llamactl.backends.base import Backend, BackendNotFound
from llamactl.errors import ModelNotFound, StartFailed
from llamactl.instances.models import InstanceRecord, utc_now
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor import logs
from llamactl.supervisor import messages as m
from llamactl.supervisor.container import ContainerProcess, adopt_process
from llamactl.supervisor.context import OwnerContext
from llamactl.supervisor.host import BackendProcess, PlacementError, SpawnRequest
from llamactl.supervisor.launching import REFUSALS, LaunchError, check_launchable, launched_record
from llamactl.supervisor.leases import Lease, LeaseBook
from llamactl.supervisor.process import SpawnError, describe_exit
from llamactl.supervisor.stats import ProcessStats
from llamactl.supervisor.watchers import watch_liveness, watch_readiness

log = logging.getLogger(__name__)

FAILURE_LOG_LINES = 20
_TIMER_NOTICES: dict[t.TimerKind, type[t.KillTimer | t.RestartTimer | t.IdleTimer]] = {
    "kill": t.KillTimer, "restart": t.RestartTimer, "idle": t.IdleTimer,
}
_TIMER_OF: dict[type[t.Message], t.TimerKind] = {v: k for k, v in _TIMER_NOTICES.items()}


class EffectRunner:
    """Carries out the lifecycle's effects for one owner. It owns what they touch: the process
    and its generation, the watcher and timer tasks, the waiters for "running" and "stopped".
    The owner (supervisor/owner.py) owns the record, the inbox and the decisions; the runner
    reports what happened (Launched, Adopted, ...) back through ``report``, the owner's
    ``_apply``, and posts what its tasks notice through ``post``, into the inbox."""

    def __init__(self, record: InstanceRecord, context: OwnerContext, stats: ProcessStats,
                 leases: LeaseBook, post: Callable[[m.Noticed], None],
                 report: Callable[[t.Message], object]):
        self.record, self.ctx, self.stats, self.leases = record, context, stats, leases
        self._post, self._report = post, report
        self.process: BackendProcess | None = None
        self.generation = 0
        self.exit_watcher: asyncio.Task[None] | None = None
        self.watchers: list[asyncio.Task[None]] = []  # readiness or liveness of this process
        self.timers: dict[t.TimerKind, asyncio.Task[None]] = {}
        # Waiting for "running": (waiter, a request's, not start?wait's; priority, issue 32)
        self.ready_waiters: list[tuple[asyncio.Future[Any], bool, int]] = []
        self.stopped_waiters: list[asyncio.Future[None]] = []
        self.current: m.Message | None = None  # the inbox message being handled
        self.answer: bool | None = None
        self._slots: tuple[list[str] | None, int | None] = (None, None)  # argv, its slots

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def log_path(self) -> Path:
        return self.ctx.log_path(self.name)

    @property
    def port(self) -> int:
        """Where the instance listens: its running process's port, else its configured one."""
        return self.record.runtime.serving_port or self.record.spec.port

    @property
    def backend_host(self) -> str:
        """The host its backend listens on: the node's address on Ray, else loopback. The
        gateway, proxy, health and metrics scrapers read this one field (issue 18)."""
        node = self.record.runtime.node
        return node["address"] if node else "127.0.0.1"

    def take_lease(self) -> Lease:
        return self.leases.take(self.port, self.record.api_key, self.slots(), self.backend_host)

    def slots(self) -> int | None:
        command = self.record.runtime.command
        if self._slots[0] is not command:  # launched or adopted since: read its --parallel
            self._slots = (command, backend_named(self.record.spec.backend).slots(command))
        return self._slots[1]

    # ---- the facts of a message, that the runner holds ----

    def facts(self, message: t.Message) -> t.Message:
        """What only the owner knows when it handles the message: requests in flight, the
        process reaped or placed, a timer that has fired."""
        if isinstance(message, t.Stop):
            return replace(message, inflight=self.leases.inflight)
        if isinstance(message, t.Exited):
            return self._reaped(message.what)
        if isinstance(message, t.Ready):
            return t.Ready(inflight=self.leases.inflight)
        if isinstance(message, t.Placed):
            return self._placed()
        fired = _TIMER_OF.get(type(message))
        if fired is not None:
            self.timers.pop(fired, None)
        if isinstance(message, t.IdleTimer):
            return t.IdleTimer(inflight=self.leases.inflight, idle_for=self.leases.idle_for())
        return message

    def _placed(self) -> t.Placed:
        """A backend on a Ray node runs now: record its pid and node (for adoption)."""
        handle, runtime = self.process, self.record.runtime
        if handle is not None and self.record.runtime.status == "starting":
            runtime.pid, runtime.pid_start_time, runtime.command = (
                handle.pid, handle.start_time, handle.command)
            runtime.node = handle.node
        node = handle.node if handle is not None and handle.node else {}
        return t.Placed(pid=handle.pid if handle else None, node=node.get("id", "?"))

    def _reaped(self, what: str) -> t.Exited:
        handle, self.process, self.exit_watcher = self.process, None, None
        runtime = self.record.runtime
        runtime.pid = runtime.pid_start_time = runtime.serving_port = None
        runtime.started_at = runtime.node = None
        self.stats.reset(None)
        lines = self._backend().parse_log_line  # a failed start's cause, in last_error
        cause = logs.first_error_of_run(self.log_path, line_format=lines) if (
            runtime.status == "starting") else None
        return t.Exited(pid=handle.pid if handle else None, what=what, cause=cause)


    # ---- carrying out one effect ----

    def do(self, effect: t.Effect) -> None:
        if isinstance(effect, t.Refuse):
            raise REFUSALS[effect.kind](effect.message)
        if isinstance(effect, t.Answer):
            self.answer = effect.value
            return
        _EFFECTS[type(effect)](self, effect)

    def _launch(self, effect: t.Launch) -> None:
        self.generation += 1
        runtime, config, host = self.record.runtime, self.ctx.config, self.ctx.host
        try:
            backend = self._backend()
            container, launched = backend.container(self.record), self.record
            if container is not None and not host.local:
                raise LaunchError("an instance in Docker runs on this host, not on Ray nodes")
            if host.local:  # on a Ray node, the node checks (cluster/actor.py)
                check_launchable(self.record, self.ctx.file_policy, backend)
                if container is None:  # a folder of this host's data dir
                    launched = launched_record(self.record, self.ctx.file_policy, backend)
            argv = backend.argv(backend.command(self.ctx.backends), launched)
            logs.rotate_if_needed(self.log_path, config.log_max_bytes, config.log_backups,
                                  None, live=False)
            self._own_log("info", f"starting: {' '.join(argv)}")
            spec = self.record.spec
            memory = None if host.local else self.ctx.estimator.estimate(spec)  # Ray's request
            request = SpawnRequest(
                self.name, argv, backend.env(self.record), self.log_path, spec.resources,
                spec.model_path, spec.port, memory, self.ctx.pool_nodes(self.name))
            handle = ContainerProcess.spawn(request, container) if container else host.spawn(
                request)
        except (BackendNotFound, LaunchError, SpawnError) as exc:
            self._report(t.LaunchFailed(str(exc)))
            return
        self.process = handle
        self.stats.reset(handle.pid if host.local else None)
        runtime.pid, runtime.pid_start_time, runtime.command = (
            handle.pid, handle.start_time, handle.command)
        runtime.started_at = utc_now()
        runtime.serving_port = self.record.spec.port
        runtime.node = handle.node
        self._report(t.Launched(handle.pid))

    def _try_adopt(self, effect: t.TryAdopt) -> None:
        runtime = self.record.runtime
        handle = None
        if runtime.pid and runtime.pid_start_time is not None and runtime.command:
            handle = adopt_process(self.ctx.host, self._backend(), self.record, self.log_path,
                                   (runtime.pid, runtime.pid_start_time, runtime.command))
        if handle is None:
            pid = runtime.pid
            runtime.pid = runtime.pid_start_time = runtime.serving_port = None
            runtime.started_at = runtime.node = None
            self._report(t.AdoptFailed(pid))
            return
        self.generation += 1
        self.process = handle
        self.stats.reset(handle.pid if self.ctx.host.local else None)
        runtime.node = handle.node
        if isinstance(handle, ContainerProcess):  # its docker command may be a new one
            runtime.pid, runtime.pid_start_time, runtime.command = (
                handle.pid, handle.start_time, handle.command)
        self._report(t.Adopted(runtime.pid))

    def _signal(self, effect: t.Signal) -> None:
        if self.process is None:
            return
        self._own_log(effect.level, effect.text.replace("{pid}", str(self.process.pid)))
        self.process.signal_group(getattr(signal, effect.signal), effect.grace)

    def _set_status(self, effect: t.SetStatus) -> None:
        runtime = self.record.runtime
        previous, runtime.status = runtime.status, effect.status
        self._persist(None)
        if previous != effect.status:
            self.ctx.events.status_changed(self.name, effect.status, previous)
            self.ctx.on_status_change(self.name, effect.status)
        if effect.status in ("stopped", "failed"):
            waiters, self.stopped_waiters = self.stopped_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self.ctx.on_capacity_change()

    def _persist(self, effect: t.Persist | None) -> None:
        self.ctx.repository.save(self.record)

    def _count(self, effect: t.Count) -> None:
        metrics = self.ctx.metrics
        if effect.what in ("launched", "relaunched"):
            metrics.launched(self.name, retry=effect.what == "relaunched")
        elif effect.what == "crashed":
            metrics.crashed(self.name)
        else:
            metrics.ready(self.name, self.record.runtime.started_at)

    def _wait_ready(self, effect: t.WaitReady) -> None:
        request = self.current
        if isinstance(request, m.Acquire) and effect.lease:
            self.ready_waiters.append((request.lease, True, request.priority))
        elif isinstance(request, m.Start) and request.ready is not None:
            self.ready_waiters.append((request.ready, False, 0))

    def _grant_lease(self, effect: t.GrantLease) -> None:
        if isinstance(self.current, m.Acquire):
            self.current.lease.set_result(self.take_lease())

    def _fail_waiters(self, effect: t.FailWaiters) -> None:
        tail = self._last_log_lines() if effect.log_tail else None
        details = "\n".join(tail) if tail is not None else None
        error = ModelNotFound(effect.message) if effect.model_missing else None
        self._resolve_ready(error or StartFailed(effect.message, details))

    def _delete_logs(self, effect: t.DeleteLogs) -> None:
        # The manager deleted the row first (it may be refused): here only memory and files.
        for path in logs.log_files(self.log_path, self.ctx.config.log_backups):
            with contextlib.suppress(OSError):
                path.unlink()

    # ---- waiters ----

    def start_failed(self, reason: str) -> StartFailed:
        return StartFailed(f"Instance '{self.name}' failed: {reason}",
                           "\n".join(self._last_log_lines()))

    def _last_log_lines(self) -> list[str]:
        backend = backend_named(self.record.spec.backend)
        return logs.last_messages(self.log_path, FAILURE_LOG_LINES,
                                  line_format=backend.parse_log_line)

    def _resolve_ready(self, error: Exception | None) -> None:
        waiters, self.ready_waiters = self.ready_waiters, []
        waiters.sort(key=lambda entry: -entry[2])  # woken in order, they send in order
        for waiter, wants_lease, _ in waiters:
            if waiter.done():
                continue
            if error is not None:
                waiter.set_exception(error)
            elif wants_lease:
                waiter.set_result(self.take_lease())
            else:
                waiter.set_result(None)

    def close(self, error: Exception) -> None:
        """The owner ends: its tasks are cancelled and every waiter answered."""
        self.cancel_watchers()
        self.cancel_timers()
        if self.exit_watcher is not None:
            self.exit_watcher.cancel()
        self._resolve_ready(error)
        for waiter in self.stopped_waiters:  # gone is as stopped as it gets
            if not waiter.done():
                waiter.set_result(None)
        self.stopped_waiters = []

    def _own_log(self, level: logs.Level, message: str) -> None:
        try:
            logs.write_own_line(self.log_path, level, message)
        except OSError as exc:
            log.warning("cannot write the log of %s: %s", self.name, exc)

    # ---- watcher and timer tasks: owned by this owner, cancelled by it ----

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(coroutine, name=f"owner:{self.name}:helper")

    def _watch_exit(self, effect: t.WatchExit) -> None:
        handle, generation = self.process, self.generation
        if handle is None:
            return

        async def wait_exit() -> None:
            code = await handle.wait()
            self._post(m.Noticed(generation, t.Exited(handle.pid, describe_exit(code))))

        self.exit_watcher = self._spawn(wait_exit())

    def _watch_readiness(self, effect: t.WatchReadiness) -> None:
        handle, generation = self.process, self.generation
        if handle is None:
            return
        load_timeout, paths = self.ctx.config.load_timeout, self._backend().health_paths
        resources = dict(handle.resources)  # with the memory its estimate asks for

        async def placed_then_ready() -> None:
            if handle.pid is None:  # a Ray node: placement first, within the load timeout
                try:
                    await asyncio.wait_for(handle.placed(), load_timeout)
                except (PlacementError, TimeoutError) as exc:
                    self._post(m.Noticed(generation, t.LoadFailed(str(exc) or (
                        f"not placed after {load_timeout:g} s: no node has {resources}"),
                        model_missing=getattr(exc, "model_missing", False))))
                    return
                self._post(m.Noticed(generation, t.Placed(pid=None, node="?")))
            await watch_readiness(self._post, generation, self.port, self.log_path,
                                  load_timeout, paths, host=handle.address)

        self.watchers.append(self._spawn(placed_then_ready()))

    def _watch_liveness(self, effect: t.WatchLiveness) -> None:
        self.watchers.append(self._spawn(watch_liveness(
            self._post, self.generation, self.port,
            self.ctx.config.health_interval, self.ctx.config.health_failures,
            self.ctx.stable_after, self._backend().health_paths, host=self.backend_host,
        )))

    def _backend(self) -> Backend:
        return backend_for(self.record, self.ctx.backends)

    def cancel_watchers(self, effect: t.CancelWatchers | None = None) -> None:
        for watcher in self.watchers:
            watcher.cancel()
        self.watchers = []

    def _arm_timer(self, effect: t.ArmTimer) -> None:
        self._cancel_timer(t.CancelTimer(effect.kind))
        notice = m.Noticed(self.generation, _TIMER_NOTICES[effect.kind]())
        self.timers[effect.kind] = self._spawn(self._after(effect.seconds, notice))

    async def _after(self, delay: float, notice: m.Noticed) -> None:
        await asyncio.sleep(delay)
        self._post(notice)

    def _cancel_timer(self, effect: t.CancelTimer) -> None:
        timer = self.timers.pop(effect.kind, None)
        if timer is not None:
            timer.cancel()

    def cancel_timers(self) -> None:
        for kind in list(self.timers):
            self._cancel_timer(t.CancelTimer(kind))


def _noop(runner: EffectRunner, effect: Any) -> None:
    pass


_EFFECTS: dict[type[Any], Callable[[EffectRunner, Any], None]] = {
    t.Launch: EffectRunner._launch,
    t.TryAdopt: EffectRunner._try_adopt,
    t.Signal: EffectRunner._signal,
    t.ArmTimer: EffectRunner._arm_timer,
    t.CancelTimer: EffectRunner._cancel_timer,
    t.WatchExit: EffectRunner._watch_exit,
    t.WatchReadiness: EffectRunner._watch_readiness,
    t.WatchLiveness: EffectRunner._watch_liveness,
    t.CancelWatchers: EffectRunner.cancel_watchers,
    t.SetStatus: EffectRunner._set_status,
    t.Persist: EffectRunner._persist,
    t.Log: lambda runner, effect: runner._own_log(effect.level, effect.text),
    t.Alert: lambda runner, effect: runner.ctx.events.alert(effect.level, effect.text,
                                                             runner.name),
    t.Count: EffectRunner._count,
    t.SampleStats: lambda runner, effect: runner.stats.sample(),
    t.WaitReady: EffectRunner._wait_ready,
    t.ResolveWaiters: lambda runner, effect: runner._resolve_ready(None),
    t.FailWaiters: EffectRunner._fail_waiters,
    t.GrantLease: EffectRunner._grant_lease,
    t.CapacityChanged: lambda runner, effect: runner.ctx.on_capacity_change(),
    t.DeleteLogs: EffectRunner._delete_logs,
    t.Close: _noop,  # the state says closed; the loop ends after this message
}
