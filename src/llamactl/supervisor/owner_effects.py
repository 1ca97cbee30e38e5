"""How the owner carries out the lifecycle's effects: spawn, signal, timers, watchers, persist,
publish, answer. The decisions are all in ``supervisor/lifecycle.py``; nothing here chooses a
status. A mixin of ``InstanceOwner`` (supervisor/owner.py), which holds the state it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from llamactl.backends import backend_for, backend_named
from llamactl.backends.base import Backend, BackendNotFound
from llamactl.config import InstancesConfig
from llamactl.errors import (
    Conflict,
    InstanceAlreadyRunning,
    InstanceNotRunning,
    InstanceRunning,
    LlamactlError,
    ModelNotFound,
    StartFailed,
)
from llamactl.instances.models import InstanceRecord, utc_now
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor import logs
from llamactl.supervisor import messages as m
from llamactl.supervisor.container import ContainerProcess, adopt_process
from llamactl.supervisor.context import Lifecycle, OwnerContext
from llamactl.supervisor.host import BackendProcess, PlacementError, SpawnRequest
from llamactl.supervisor.launch_checks import LaunchError, check_launchable, launched_record
from llamactl.supervisor.leases import Lease, LeaseBook
from llamactl.supervisor.process import SpawnError
from llamactl.supervisor.stats import ProcessStats
from llamactl.supervisor.watchers import watch_liveness, watch_readiness

log = logging.getLogger(__name__)

FAILURE_LOG_LINES = 20


class InstanceStopping(InstanceNotRunning):
    """Not running yet again: wait until stopped, then start it anew."""


_REFUSALS: dict[t.RefusalKind, Callable[[str], LlamactlError]] = {
    "already_running": InstanceAlreadyRunning,
    "not_running": InstanceNotRunning,
    "stopping": InstanceStopping,
    "busy": lambda message: Conflict(message, code="INSTANCE_BUSY"),
    "running": InstanceRunning,
}
_TIMER_NOTICES: dict[t.TimerKind, type[m.Notice]] = {
    "kill": m.KillTimer, "restart": m.RestartTimer, "idle": m.IdleTimer,
}


def policy_of(record: InstanceRecord, config: InstancesConfig) -> t.Policy:
    life = Lifecycle.of(record, config)
    return t.Policy(auto_restart=life.auto_restart, max_restarts=life.max_restarts,
                    restart_delay=life.restart_delay, stop_timeout=config.stop_timeout,
                    idle_minutes=life.idle_timeout)


class OwnerEffects:
    # Held by InstanceOwner; declared here for the effects that use them.
    record: InstanceRecord
    stats: ProcessStats
    leases: LeaseBook
    _ctx: OwnerContext
    _life: t.State
    _answer: bool | None
    _current: m.Message | None
    _process: BackendProcess | None
    _generation: int
    _exit_watcher: asyncio.Task[None] | None
    _watchers: list[asyncio.Task[None]]
    _timers: dict[t.TimerKind, asyncio.Task[None]]
    _ready_waiters: list[tuple[asyncio.Future[Any], bool]]
    _stopped_waiters: list[asyncio.Future[None]]
    _inbox: asyncio.Queue[m.Message]

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def backend_host(self) -> str:
        raise NotImplementedError

    def _apply(self, message: t.Message) -> bool | None:
        raise NotImplementedError

    def _take_lease(self) -> Lease:
        raise NotImplementedError

    def _post(self, notice: m.Notice) -> None:
        raise NotImplementedError

    # ---- carrying out one effect ----

    def _do(self, effect: t.Effect) -> None:
        if isinstance(effect, t.Refuse):
            raise _REFUSALS[effect.kind](effect.message)
        if isinstance(effect, t.Answer):
            self._answer = effect.value
            return
        _EFFECTS[type(effect)](self, effect)

    def _launch(self, effect: t.Launch) -> None:
        self._generation += 1
        runtime, config, host = self.record.runtime, self._ctx.config, self._ctx.host
        try:
            backend = self._backend()
            container, launched = backend.container(self.record), self.record
            if container is not None and not host.local:
                raise LaunchError("an instance in Docker runs on this host, not on Ray nodes")
            if host.local:  # on a Ray node, the node checks (cluster/actor.py)
                check_launchable(self.record, self._ctx.file_policy, backend)
                if container is None:  # a folder of this host's data dir
                    launched = launched_record(self.record, self._ctx.file_policy, backend)
            argv = backend.argv(backend.command(self._ctx.backends), launched)
            logs.rotate_if_needed(self.log_path, config.log_max_bytes, config.log_backups,
                                  None, live=False)
            self._own_log("info", f"starting: {' '.join(argv)}")
            spec = self.record.spec
            memory = None if host.local else self._ctx.estimator.estimate(spec)  # Ray's request
            request = SpawnRequest(
                self.name, argv, backend.env(self.record), self.log_path, spec.resources,
                spec.model_path, spec.port, memory)
            handle = ContainerProcess.spawn(request, container) if container else host.spawn(
                request)
        except (BackendNotFound, LaunchError, SpawnError) as exc:
            self._apply(t.LaunchFailed(str(exc)))
            return
        self._process = handle
        self.stats.reset(handle.pid if host.local else None)
        runtime.pid, runtime.pid_start_time, runtime.command = (
            handle.pid, handle.start_time, handle.command)
        runtime.started_at = utc_now()
        runtime.serving_port = self.record.spec.port
        runtime.node = handle.node
        self._apply(t.Launched(handle.pid))

    def _try_adopt(self, effect: t.TryAdopt) -> None:
        runtime = self.record.runtime
        handle = None
        if runtime.pid and runtime.pid_start_time is not None and runtime.command:
            handle = adopt_process(self._ctx.host, self._backend(), self.record, self.log_path,
                                   (runtime.pid, runtime.pid_start_time, runtime.command))
        if handle is None:
            pid = runtime.pid
            runtime.pid = runtime.pid_start_time = runtime.serving_port = None
            runtime.started_at = runtime.node = None
            self._apply(t.AdoptFailed(pid))
            return
        self._generation += 1
        self._process = handle
        self.stats.reset(handle.pid if self._ctx.host.local else None)
        runtime.node = handle.node
        if isinstance(handle, ContainerProcess):  # its docker command may be a new one
            runtime.pid, runtime.pid_start_time, runtime.command = (
                handle.pid, handle.start_time, handle.command)
        self._apply(t.Adopted(runtime.pid))

    def _signal(self, effect: t.Signal) -> None:
        if self._process is None:
            return
        self._own_log(effect.level, effect.text.replace("{pid}", str(self._process.pid)))
        self._process.signal_group(getattr(signal, effect.signal), effect.grace)

    def _set_status(self, effect: t.SetStatus) -> None:
        runtime = self.record.runtime
        previous, runtime.status = runtime.status, effect.status
        self._persist(None)
        if previous != effect.status:
            self._ctx.events.status_changed(self.name, effect.status, previous)
        if effect.status in ("stopped", "failed"):
            waiters, self._stopped_waiters = self._stopped_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._ctx.on_capacity_change()

    def _persist(self, effect: t.Persist | None) -> None:
        self._ctx.repository.save(self.record)

    def _count(self, effect: t.Count) -> None:
        metrics = self._ctx.metrics
        if effect.what in ("launched", "relaunched"):
            metrics.launched(self.name, retry=effect.what == "relaunched")
        elif effect.what == "crashed":
            metrics.crashed(self.name)
        else:
            metrics.ready(self.name, self.record.runtime.started_at)

    def _wait_ready(self, effect: t.WaitReady) -> None:
        request = self._current
        if isinstance(request, m.Acquire) and effect.lease:
            self._ready_waiters.append((request.lease, True))
        elif isinstance(request, m.Start) and request.ready is not None:
            self._ready_waiters.append((request.ready, False))

    def _grant_lease(self, effect: t.GrantLease) -> None:
        if isinstance(self._current, m.Acquire):
            self._current.lease.set_result(self._take_lease())

    def _fail_waiters(self, effect: t.FailWaiters) -> None:
        tail = self._last_log_lines() if effect.log_tail else None
        details = "\n".join(tail) if tail is not None else None
        error = ModelNotFound(effect.message) if effect.model_missing else None
        self._resolve_ready(error or StartFailed(effect.message, details))

    def _delete_logs(self, effect: t.DeleteLogs) -> None:
        # The manager deleted the row first (it may be refused): here only memory and files.
        for path in logs.log_files(self.log_path, self._ctx.config.log_backups):
            with contextlib.suppress(OSError):
                path.unlink()

    # ---- waiters ----

    def _start_failed(self, reason: str) -> StartFailed:
        return StartFailed(f"Instance '{self.name}' failed: {reason}",
                           "\n".join(self._last_log_lines()))

    def _last_log_lines(self) -> list[str]:
        backend = backend_named(self.record.spec.backend)
        return logs.last_messages(self.log_path, FAILURE_LOG_LINES,
                                  line_format=backend.parse_log_line)

    def _resolve_ready(self, error: Exception | None) -> None:
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter, wants_lease in waiters:
            if waiter.done():
                continue
            if error is not None:
                waiter.set_exception(error)
            elif wants_lease:
                waiter.set_result(self._take_lease())
            else:
                waiter.set_result(None)

    def _fail_pending(self, error: Exception) -> None:
        self._resolve_ready(error)
        for waiter in self._stopped_waiters:  # gone is as stopped as it gets
            if not waiter.done():
                waiter.set_result(None)
        self._stopped_waiters = []
        while not self._inbox.empty():
            message = self._inbox.get_nowait()
            if isinstance(message, m.Request) and not message.reply.done():
                message.reply.set_exception(error)

    def _own_log(self, level: logs.Level, message: str) -> None:
        try:
            logs.write_own_line(self.log_path, level, message)
        except OSError as exc:
            log.warning("cannot write the log of %s: %s", self.name, exc)

    # ---- watcher and timer tasks: owned by this owner, cancelled by it ----

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(coroutine, name=f"owner:{self.name}:helper")

    def _watch_exit(self, effect: t.WatchExit) -> None:
        handle, generation = self._process, self._generation
        if handle is None:
            return

        async def wait_exit() -> None:
            code = await handle.wait()
            self._post(m.Exited(generation, code))

        self._exit_watcher = self._spawn(wait_exit())

    def _watch_readiness(self, effect: t.WatchReadiness) -> None:
        handle, generation = self._process, self._generation
        if handle is None:
            return
        load_timeout, paths = self._ctx.config.load_timeout, self._backend().health_paths
        resources = dict(handle.resources)  # with the memory its estimate asks for

        async def placed_then_ready() -> None:
            if handle.pid is None:  # a Ray node: placement first, within the load timeout
                try:
                    await asyncio.wait_for(handle.placed(), load_timeout)
                except (PlacementError, TimeoutError) as exc:
                    self._post(m.LoadFailed(generation, str(exc) or (
                        f"not placed after {load_timeout:g} s: no node has {resources}"),
                        model_missing=getattr(exc, "model_missing", False)))
                    return
                self._post(m.Placed(generation))
            await watch_readiness(self._post, generation, self.port, self.log_path,
                                  load_timeout, paths, host=handle.address)

        self._watchers.append(self._spawn(placed_then_ready()))

    def _watch_liveness(self, effect: t.WatchLiveness) -> None:
        self._watchers.append(self._spawn(watch_liveness(
            self._post, self._generation, self.port,
            self._ctx.config.health_interval, self._ctx.config.health_failures,
            self._ctx.stable_after, self._backend().health_paths, host=self.backend_host,
        )))

    def _backend(self) -> Backend:
        return backend_for(self.record, self._ctx.backends)

    def _cancel_watchers(self, effect: t.CancelWatchers | None = None) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        self._watchers = []

    def _arm_timer(self, effect: t.ArmTimer) -> None:
        self._cancel_timer(t.CancelTimer(effect.kind))
        notice = _TIMER_NOTICES[effect.kind](self._generation)
        self._timers[effect.kind] = self._spawn(self._after(effect.seconds, notice))

    async def _after(self, delay: float, notice: m.Notice) -> None:
        await asyncio.sleep(delay)
        self._post(notice)

    def _cancel_timer(self, effect: t.CancelTimer) -> None:
        timer = self._timers.pop(effect.kind, None)
        if timer is not None:
            timer.cancel()

    def _cancel_timers(self) -> None:
        for kind in list(self._timers):
            self._cancel_timer(t.CancelTimer(kind))


def _noop(owner: OwnerEffects, effect: Any) -> None:
    pass


_EFFECTS: dict[type[Any], Callable[[Any, Any], None]] = {
    t.Launch: OwnerEffects._launch,
    t.TryAdopt: OwnerEffects._try_adopt,
    t.Signal: OwnerEffects._signal,
    t.ArmTimer: OwnerEffects._arm_timer,
    t.CancelTimer: OwnerEffects._cancel_timer,
    t.WatchExit: OwnerEffects._watch_exit,
    t.WatchReadiness: OwnerEffects._watch_readiness,
    t.WatchLiveness: OwnerEffects._watch_liveness,
    t.CancelWatchers: OwnerEffects._cancel_watchers,
    t.SetStatus: OwnerEffects._set_status,
    t.Persist: OwnerEffects._persist,
    t.Log: lambda owner, effect: owner._own_log(effect.level, effect.text),
    t.Alert: lambda owner, effect: owner._ctx.events.alert(effect.level, effect.text,
                                                           owner.name),
    t.Count: OwnerEffects._count,
    t.SampleStats: lambda owner, effect: owner.stats.sample(),
    t.WaitReady: OwnerEffects._wait_ready,
    t.ResolveWaiters: lambda owner, effect: owner._resolve_ready(None),
    t.FailWaiters: OwnerEffects._fail_waiters,
    t.GrantLease: OwnerEffects._grant_lease,
    t.CapacityChanged: lambda owner, effect: owner._ctx.on_capacity_change(),
    t.DeleteLogs: OwnerEffects._delete_logs,
    t.Close: _noop,  # the state says closed; the loop ends after this message
}
