"""The owner task of one instance: the only code that changes its status or touches its process.

Public operations put a request in the owner's inbox and await the answer; watchers (exit,
readiness, liveness, timers) post notices into the same inbox. One message at a time, so ten
concurrent starts, a stop during a start or a delete during a stop all end in one consistent
state with at most one process. Nothing outside decides an action from a snapshot of the status
(llama-swap's issue #946: that raced with idle unloads and hung requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from llamactl.backends.llama_cpp import BackendNotFound
from llamactl.errors import (
    Conflict,
    InstanceAlreadyRunning,
    InstanceNotFound,
    InstanceNotRunning,
    InstanceRunning,
    LlamactlError,
    ModelNotFound,
    StartFailed,
)
from llamactl.instances.model_paths import outside_model_dirs
from llamactl.instances.models import InstanceRecord, Status, utc_now
from llamactl.supervisor import logs
from llamactl.supervisor import messages as m
from llamactl.supervisor.command import build_argv, build_env, slots_in
from llamactl.supervisor.context import Lifecycle, OwnerContext
from llamactl.supervisor.host import BackendProcess, PlacementError, SpawnRequest
from llamactl.supervisor.leases import Lease, LeaseBook
from llamactl.supervisor.ports import port_is_free
from llamactl.supervisor.process import SpawnError, describe_exit
from llamactl.supervisor.stats import ProcessStats
from llamactl.supervisor.watchers import watch_liveness, watch_readiness

log = logging.getLogger(__name__)

FAILURE_LOG_LINES = 20
NODE_STATS_TIMEOUT = 2.0  # seconds for a Ray node to answer for its backend


class LaunchError(Exception):
    pass


class InstanceStopping(InstanceNotRunning):
    """Not running yet again: wait until stopped, then start it anew."""


class InstanceOwner:
    def __init__(self, record: InstanceRecord, context: OwnerContext):
        self.record = record
        self.stats = ProcessStats()
        self._ctx = context
        self._inbox: asyncio.Queue[m.Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._process: BackendProcess | None = None
        self._generation = 0
        self._exit_watcher: asyncio.Task[None] | None = None
        self._watchers: list[asyncio.Task[None]] = []  # readiness or liveness of this process
        # What the exit of a process we killed on purpose means: a failed start or a crash.
        self._after_kill: tuple[str, str] | None = None
        self._timer: asyncio.Task[None] | None = None  # kill timer or restart backoff
        # Waiting for "running": start?wait=true (None) and requests wanting a lease (Lease).
        self._ready_waiters: list[tuple[asyncio.Future[Any], bool]] = []
        self._stopped_waiters: list[asyncio.Future[None]] = []
        self.leases = LeaseBook(on_idle=self._became_idle)
        self._slots: tuple[list[str] | None, int | None] = (None, None)  # argv, its slots
        self._idle_timer: asyncio.Task[None] | None = None
        self._restart_after_stop = False
        self._retrying = False  # the current launch is an automatic restart after a crash
        self._closing: m.Shutdown | None = None
        self.closed = False
        # The API's view of the settled part of this instance's JSON, keyed by updated_at
        # (api/views.py): kept here so that it lives and dies with the instance.
        self.view_cache: tuple[datetime, dict[str, Any]] | None = None

    # ---- public operations: each is one request to the owner task ----

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def status(self) -> Status:
        return self.record.runtime.status

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

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

    @property
    def log_path(self) -> Path:
        return self._ctx.log_path(self.name)

    async def start(self, *, wait: bool = False) -> None:
        # A process llamactl cannot record could not be adopted after a crash of llamactl:
        # no start while the database cannot be written (StorageUnavailable, nothing spawned).
        await self._ctx.repository.save_now(self.record)
        ready = asyncio.get_running_loop().create_future() if wait else None
        await self._call(m.Start(ready=ready))
        if ready is not None:
            await ready

    async def stop(
        self, *, force: bool = False, timeout: float | None = None, if_idle: bool = False
    ) -> None:
        await self._call(m.Stop(force=force, timeout=timeout, if_idle=if_idle))

    def lease_if_running(self) -> Lease | None:
        """The gateway's fast path: a lease at once when running, without a round trip."""
        if self.status == "running" and self._process is not None and not self.closed:
            return self._take_lease()
        return None

    async def sample_node_stats(self) -> None:
        """On a Ray node, its actor measures the backend there (issue 18); locally a no-op."""
        handle = self._process
        if handle is None or self._ctx.host.local:
            return
        try:
            measured = await asyncio.wait_for(handle.node_stats(), NODE_STATS_TIMEOUT)
        except Exception as exc:  # a lost node or a busy actor: keep the last sample
            log.debug("stats of %s from its node: %s", self.name, exc)
            return
        if measured is not None and handle is self._process:
            self.stats.memory_usage = int(measured["memory_usage"])
            self.stats.cpu_usage = float(measured["cpu_usage"])

    def _take_lease(self) -> Lease:
        command = self.record.runtime.command
        if self._slots[0] is not command:  # launched or adopted since: read its --parallel
            self._slots = (command, slots_in(command))
        return self.leases.take(self.port, self.record.api_key, self._slots[1],
                                self.backend_host)

    async def acquire(self) -> Lease:
        """A lease, waiting for a start in progress; InstanceNotRunning when nothing runs."""
        request = m.Acquire()
        await self._call(request)
        lease = await request.lease
        assert isinstance(lease, Lease)
        return lease

    async def wait_ready(self) -> None:
        """Until running; StartFailed if the start fails or is stopped."""
        if self.closed:  # shut down or deleted: nothing will resolve a waiter
            raise self._start_failed("llamactl is shutting down or the instance was deleted")
        if self.status == "running":
            return
        if self.status in ("stopped", "failed"):
            raise self._start_failed(self.record.runtime.last_error or self.status)
        waiter = asyncio.get_running_loop().create_future()
        self._ready_waiters.append((waiter, False))
        await waiter

    async def wait_stopped(self) -> None:
        """Until the instance is stopped or failed (at once if it is)."""
        if self.status in ("stopped", "failed") or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._stopped_waiters.append(waiter)
        await waiter

    async def restart(self) -> None:
        await self._ctx.repository.save_now(self.record)  # as start(): it spawns a process
        await self._call(m.Restart())

    async def delete(self) -> None:
        await self._call(m.Delete())

    async def update(self, request: m.Update) -> bool:
        """Apply a change to the record; True when a restart is needed for it to take effect."""
        return bool(await self._call(request))

    async def shutdown(self, *, stop: bool) -> None:
        """Stop the process (or leave it for adoption) and end the owner task."""
        if self._task is None or self._task.done():
            return
        with contextlib.suppress(InstanceNotFound):
            await self._call(m.Shutdown(stop=stop))
        await self._task

    def run(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"owner:{self.name}")

    async def cancel(self) -> None:
        """Last resort at shutdown: end the task and its watchers without touching the process."""
        self._cancel_watchers()
        self._cancel_timer()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def abandon(self, *, kill: bool) -> None:
        """Shutdown's last resort for an owner that did not end in time: SIGKILL its process
        group (unless left for adoption), then end the task."""
        if kill and self._process is not None:
            log.error("killing pid %d of %s at shutdown", self._process.pid, self.name)
            self._process.signal_group(signal.SIGKILL)
        await self.cancel()

    async def _call(self, request: m.Request) -> object:
        if self.closed:
            raise InstanceNotFound(self.name)
        self._inbox.put_nowait(request)
        return await request.reply

    def _post(self, notice: m.Notice) -> None:
        self._inbox.put_nowait(notice)

    # ---- the loop ----

    async def _loop(self) -> None:
        try:
            while not self.closed:
                message = await self._inbox.get()
                try:
                    result = self._handle(message)
                except LlamactlError as exc:
                    _answer_error(message, exc)
                except Exception as exc:
                    log.exception("owner of %s failed handling %s", self.name, message)
                    _answer_error(message, exc)
                else:
                    if isinstance(message, m.Request) and not message.reply.done():
                        message.reply.set_result(result)
        finally:
            self.closed = True
            self._cancel_watchers()
            self._cancel_timer()
            self._cancel_idle_timer()
            if self._exit_watcher is not None:
                self._exit_watcher.cancel()
            self._fail_pending(InstanceNotFound(self.name))

    def _handle(self, message: m.Message) -> object:
        if isinstance(message, m.Notice):
            if message.generation == self._generation:
                self._on_notice(message)
            return None
        handler = {
            m.Start: self._on_start,
            m.Stop: self._on_stop,
            m.Acquire: self._on_acquire,
            m.Restart: self._on_restart,
            m.Delete: self._on_delete,
            m.Update: self._on_update,
            m.Shutdown: self._on_shutdown,
        }[type(message)]
        return handler(message)  # type: ignore[operator]

    def _on_notice(self, notice: m.Notice) -> None:
        if isinstance(notice, m.Exited):
            self._on_exited(notice.code)
        elif isinstance(notice, m.Ready):
            self._on_ready()
        elif isinstance(notice, m.Placed):
            self._on_placed()
        elif isinstance(notice, m.LoadFailed):
            outcome = "model" if notice.model_missing else "fail"  # model: on a Ray node
            self._kill_now(outcome, f"start failed: {notice.reason}")
        elif isinstance(notice, m.Unhealthy):
            self._kill_now("crash", notice.reason)
        elif isinstance(notice, m.KillTimer):
            if self._process is not None:
                self._own_log("warn", f"pid {self._process.pid} did not stop in time: SIGKILL")
                self._process.signal_group(signal.SIGKILL)
        elif isinstance(notice, m.RestartTimer):
            self._launch(retry=True)
        elif isinstance(notice, m.Stable):
            self.record.runtime.restart_count = 0
            self._persist()
        elif isinstance(notice, m.IdleTimer):
            self._on_idle_timer()

    # ---- requests ----

    def _on_start(self, request: m.Start) -> None:
        if self.status in ("starting", "running", "restarting", "stopping"):
            raise InstanceAlreadyRunning(f"Instance '{self.name}' is already {self.status}")
        if request.ready is not None:
            self._ready_waiters.append((request.ready, False))
        self.record.runtime.restart_count = 0
        self._launch(retry=False)

    def _on_acquire(self, request: m.Acquire) -> None:
        status = self.status
        if status == "running" and self._process is not None:
            request.lease.set_result(self._take_lease())
            return
        if status in ("stopped", "failed") or self._closing is not None:
            raise InstanceNotRunning(f"Instance '{self.name}' is {status}")
        if status == "stopping":
            # An idle stop (or an eviction) racing a new request: the caller waits for the
            # exit and starts it again through the capacity limits, instead of hanging.
            raise InstanceStopping(f"Instance '{self.name}' is stopping")
        self._ready_waiters.append((request.lease, True))

    def _on_stop(self, request: m.Stop) -> None:
        status = self.status
        if status in ("stopped", "failed"):
            raise InstanceNotRunning(f"Instance '{self.name}' is not running")
        if request.if_idle and (status != "running" or self.leases.inflight):
            raise Conflict(f"Instance '{self.name}' is busy", code="INSTANCE_BUSY")
        self._restart_after_stop = False
        self._after_kill = None  # the user's stop decides what the exit means
        if self._process is None:  # restarting: waiting out the backoff, nothing runs
            self._cancel_timer()
            self._set_status("stopped")
            self._resolve_ready(StartFailed(f"Instance '{self.name}' was stopped"))
            return
        timeout = self._ctx.config.stop_timeout if request.timeout is None else request.timeout
        self._begin_stop("stopping", force=request.force, timeout=timeout)

    def _on_restart(self, request: m.Restart) -> None:
        self.record.runtime.restart_count = 0
        if self._process is None:
            self._cancel_timer()
            self._launch(retry=False)
            return
        self._restart_after_stop = True
        self._after_kill = None
        if self.status == "stopping":  # already on its way down: start again once it is
            self._set_status("restarting")
        elif self.status != "restarting":
            self._begin_stop("restarting", force=False, timeout=self._ctx.config.stop_timeout)

    def _on_delete(self, request: m.Delete) -> None:
        if self.status not in ("stopped", "failed"):
            raise InstanceRunning(
                f"Instance '{self.name}' is {self.status}; stop it before deleting it"
            )
        # The manager deleted the row first (it may be refused): here only memory and files.
        for path in logs.log_files(self.log_path, self._ctx.config.log_backups):
            with contextlib.suppress(OSError):
                path.unlink()
        self.closed = True

    def _on_update(self, request: m.Update) -> bool:
        request.apply(self.record)
        self.record.updated_at = utc_now()
        self._persist()
        if self._process is None:
            return False
        if request.restart:
            self._on_restart(m.Restart())
            return False
        return True

    def _on_shutdown(self, request: m.Shutdown) -> None:
        if not request.stop or self._process is None:
            if request.stop and self.status == "restarting":
                self._cancel_timer()
                self._set_status("stopped")
            self.closed = True  # the process, if any, stays recorded for the next llamactl
            return
        self._closing = request
        self._restart_after_stop = False
        self._after_kill = None  # a kill under way (failed load or health): now a stop
        self._begin_stop("stopping", force=False, timeout=self._ctx.config.stop_timeout)

    # ---- transitions ----

    def _launch(self, *, retry: bool) -> None:
        self._generation += 1
        self._cancel_timer()
        self._cancel_watchers()
        self._retrying = retry
        path = self.log_path
        runtime = self.record.runtime
        try:
            argv = build_argv(self._ctx.backend_command(), self.record)
            if self._ctx.host.local:  # on a Ray node the node checks (cluster/actor.py)
                _check_launchable(self.record, self._ctx.config.model_dirs)
            logs.rotate_if_needed(path, self._ctx.config.log_max_bytes,
                                  self._ctx.config.log_backups, None, live=False)
            self._own_log("info", f"starting: {' '.join(argv)}")
            handle = self._ctx.host.spawn(SpawnRequest(
                self.name, argv, build_env(self.record), path, self.record.spec.resources,
                self.record.spec.model_path))
        except (BackendNotFound, LaunchError, SpawnError) as exc:
            self._fail(f"start failed: {exc}")
            return
        self._process = handle
        self.stats.reset(handle.pid if self._ctx.host.local else None)
        runtime.pid, runtime.pid_start_time, runtime.command = (
            handle.pid, handle.start_time, handle.command)
        runtime.started_at = utc_now()
        runtime.serving_port = self.record.spec.port
        runtime.last_error = None
        runtime.node = handle.node
        self._own_log("info", f"started pid {handle.pid}" if handle.pid else "placing on a node")
        self._ctx.metrics.launched(self.name, retry=retry)
        self._set_status("starting")
        self._watch_exit(handle)
        self._watch_readiness()

    def adopt(self) -> None:
        """At boot, before the loop runs: take back a recorded process, or reset the status."""
        runtime = self.record.runtime
        if runtime.status == "restarting" and runtime.pid is None:
            self._schedule_restart()  # llamactl went down during a backoff: carry on
            return
        if runtime.status not in ("starting", "running", "stopping", "restarting"):
            return
        handle = None
        if runtime.pid and runtime.pid_start_time is not None and runtime.command:
            handle = self._ctx.host.adopt(
                self.name, runtime.pid, runtime.pid_start_time, runtime.command)
        if handle is None:
            self._own_log("warn", f"process pid {runtime.pid} from before is gone: stopped")
            runtime.pid = runtime.pid_start_time = runtime.serving_port = None
            runtime.started_at = None
            self._set_status("stopped")
            return
        self._generation += 1
        self._process = handle
        self.stats.reset(handle.pid if self._ctx.host.local else None)
        runtime.node = handle.node
        self._own_log("info", f"adopted pid {handle.pid}")
        self._watch_exit(handle)
        if runtime.status == "running":
            self._watch_liveness()
        elif runtime.status == "stopping":
            self._begin_stop("stopping", force=False, timeout=self._ctx.config.stop_timeout)
        else:
            self._set_status("starting")
            self._watch_readiness()

    def _on_placed(self) -> None:
        """A backend on a Ray node runs now: record its pid and node (for adoption)."""
        handle, runtime = self._process, self.record.runtime
        if handle is None or self.status != "starting":
            return
        runtime.pid, runtime.pid_start_time, runtime.command = (
            handle.pid, handle.start_time, handle.command)
        runtime.node = handle.node
        self._own_log("info", f"started pid {handle.pid} on node {handle.node}")
        self._persist()

    def _on_ready(self) -> None:
        if self.status != "starting":
            return
        self._set_status("running")
        self._ctx.metrics.ready(self.name, self.record.runtime.started_at)
        self._retrying = False
        self.stats.sample()
        self._watch_liveness()
        self._resolve_ready(None)
        if self.leases.inflight == 0:
            self._became_idle()

    def _on_exited(self, code: int | None) -> None:
        handle = self._process
        self._process = None
        self._exit_watcher = None
        self._cancel_watchers()
        self._cancel_timer()
        runtime = self.record.runtime
        runtime.pid = runtime.pid_start_time = runtime.serving_port = None
        runtime.started_at = runtime.node = None
        self.stats.reset(None)
        what = describe_exit(code)
        pid = handle.pid if handle else "?"
        status = self.status
        after_kill, self._after_kill = self._after_kill, None
        if after_kill is not None:
            outcome, reason = after_kill
            self._own_log("info", f"pid {pid} {what}")
            if outcome == "model":  # the node has no such model file (issue 18)
                self._fail(reason, ModelNotFound(f"Instance '{self.name}' failed: {reason}"))
            elif outcome == "fail":
                self._fail(reason)
            else:
                self._crashed(reason)
        elif status == "stopping":
            self._own_log("info", f"pid {pid} {what}")
            self._set_status("stopped")
            self._resolve_ready(StartFailed(f"Instance '{self.name}' was stopped"))
            if self._closing is not None:
                self.closed = True
        elif status == "restarting" and self._restart_after_stop:
            self._own_log("info", f"pid {pid} {what}")
            self._restart_after_stop = False
            self._launch(retry=False)
        elif status == "starting" and not self._retrying:
            self._own_log("error", f"pid {pid} {what} while loading")
            self._fail(f"start failed: process {what} before it was ready")
        else:
            self._own_log("error", f"pid {pid} {what} unexpectedly")
            self._crashed(f"process {what}")

    def _crashed(self, reason: str) -> None:
        self._ctx.metrics.crashed(self.name)
        runtime = self.record.runtime
        life = Lifecycle.of(self.record, self._ctx.config)
        if not life.auto_restart or runtime.restart_count >= life.max_restarts:
            tried = f"; gave up after {runtime.restart_count} restarts" if life.auto_restart else ""
            self._fail(f"crashed: {reason}{tried}")
            return
        runtime.restart_count += 1
        runtime.last_error = f"crashed: {reason}"
        delay = self._schedule_restart()
        self._own_log("warn", f"restart {runtime.restart_count}/{life.max_restarts} in {delay:g} s")
        self._set_status("restarting")
        self._ctx.events.alert(
            "warning",
            f"Instance '{self.name}' crashed ({reason}); restart {runtime.restart_count} of "
            f"{life.max_restarts} in {delay:g} s",
            self.name,
        )

    def _schedule_restart(self) -> float:
        runtime = self.record.runtime
        life = Lifecycle.of(self.record, self._ctx.config)
        delay = life.restart_delay * float(2 ** max(runtime.restart_count - 1, 0))
        generation = self._generation
        self._timer = self._spawn(self._after(delay, m.RestartTimer(generation)))
        return delay

    def _fail(self, reason: str, error: Exception | None = None) -> None:
        runtime = self.record.runtime
        runtime.last_error = reason
        runtime.pid = runtime.pid_start_time = runtime.serving_port = None
        self._own_log("error", reason)
        tail = logs.last_messages(self.log_path, FAILURE_LOG_LINES)
        self._set_status("failed")
        self._resolve_ready(error or self._start_failed(reason, tail))
        self._ctx.events.alert("error", f"Instance '{self.name}' failed: {reason}", self.name)

    def _start_failed(self, reason: str, tail: list[str] | None = None) -> StartFailed:
        lines = logs.last_messages(self.log_path, FAILURE_LOG_LINES) if tail is None else tail
        return StartFailed(f"Instance '{self.name}' failed: {reason}", "\n".join(lines))

    def _begin_stop(self, status: Status, *, force: bool, timeout: float) -> None:
        assert self._process is not None
        self._cancel_watchers()
        self._set_status(status)
        if force or timeout <= 0:
            self._own_log("info", f"killing pid {self._process.pid}")
            self._process.signal_group(signal.SIGKILL)
            return
        self._own_log("info", f"stopping pid {self._process.pid} (SIGTERM, {timeout:g} s grace)")
        self._process.signal_group(signal.SIGTERM)
        self._cancel_timer()
        self._timer = self._spawn(self._after(timeout, m.KillTimer(self._generation)))

    def _kill_now(self, outcome: str, reason: str) -> None:
        """SIGKILL the group. The exit notice, not this call, moves the status on, so the next
        process is never launched before this one is reaped."""
        if self._process is not None:
            self._after_kill = (outcome, reason)
            self._own_log("warn", f"killing pid {self._process.pid}: {reason}")
            self._process.signal_group(signal.SIGKILL)
            self._cancel_watchers()

    def _set_status(self, status: Status) -> None:
        previous = self.record.runtime.status
        self.record.runtime.status = status
        self._persist()
        if previous != status:
            self._ctx.events.status_changed(self.name, status, previous)
        if status != "running":
            self._cancel_idle_timer()
        if status in ("stopped", "failed"):
            waiters, self._stopped_waiters = self._stopped_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._ctx.on_capacity_change()

    # ---- idleness ----

    def _became_idle(self) -> None:
        """The last request ended (or the instance became ready with none): start counting.
        A timer already set stays: when it fires it looks at the time since the last request
        and waits longer if need be, so a busy instance does not set one per request."""
        self._ctx.on_capacity_change()
        if self._idle_timer is not None or self.status != "running":
            return
        self._arm_idle_timer(self._idle_minutes() * 60)

    def _arm_idle_timer(self, seconds: float) -> None:
        if seconds > 0:
            self._idle_timer = self._spawn(self._after(seconds, m.IdleTimer(self._generation)))

    def _idle_minutes(self) -> float:
        return Lifecycle.of(self.record, self._ctx.config).idle_timeout

    def _on_idle_timer(self) -> None:
        self._idle_timer = None
        limit = self._idle_minutes() * 60
        # Decided here, in the owner: a request in flight keeps the instance up (its end sets
        # the timer again), and one that arrives during the stop restarts it.
        if self.status != "running" or self.leases.inflight or limit <= 0:
            return
        idle = self.leases.idle_for()
        if idle < limit - 0.05:
            self._arm_idle_timer(limit - idle)
            return
        self._own_log("info", f"idle for {limit / 60:g} min: stopping")
        self._begin_stop("stopping", force=False, timeout=self._ctx.config.stop_timeout)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _persist(self) -> None:
        self._ctx.repository.save(self.record)

    def _own_log(self, level: logs.Level, message: str) -> None:
        try:
            logs.write_own_line(self.log_path, level, message)
        except OSError as exc:
            log.warning("cannot write the log of %s: %s", self.name, exc)

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
            _answer_error(self._inbox.get_nowait(), error)

    # ---- watcher tasks: owned by this owner, cancelled by it ----

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(coroutine, name=f"owner:{self.name}:helper")

    def _watch_exit(self, handle: BackendProcess) -> None:
        generation = self._generation

        async def wait_exit() -> None:
            code = await handle.wait()
            self._post(m.Exited(generation, code))

        self._exit_watcher = self._spawn(wait_exit())

    def _watch_readiness(self) -> None:
        assert self._process is not None
        handle, generation = self._process, self._generation
        load_timeout = self._ctx.config.load_timeout

        async def placed_then_ready() -> None:
            if handle.pid is None:  # a Ray node: placement first, within the load timeout
                try:
                    await asyncio.wait_for(handle.placed(), load_timeout)
                except (PlacementError, TimeoutError) as exc:
                    self._post(m.LoadFailed(generation, str(exc) or (
                        f"not placed after {load_timeout:g} s: no node has "
                        f"{self.record.spec.resources}"),
                        model_missing=getattr(exc, "model_missing", False)))
                    return
                self._post(m.Placed(generation))
            await watch_readiness(self._post, generation, self.port, self.log_path,
                                  load_timeout, host=handle.address)

        self._watchers.append(self._spawn(placed_then_ready()))

    def _watch_liveness(self) -> None:
        self._watchers.append(self._spawn(watch_liveness(
            self._post, self._generation, self.port,
            self._ctx.config.health_interval, self._ctx.config.health_failures,
            self._ctx.stable_after, host=self.backend_host,
        )))

    async def _after(self, delay: float, notice: m.Notice) -> None:
        await asyncio.sleep(delay)
        self._post(notice)

    def _cancel_watchers(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        self._watchers = []

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _check_launchable(record: InstanceRecord, model_dirs: list[Path]) -> None:
    path = record.spec.model_path
    outside = outside_model_dirs(path, model_dirs)  # a symlink retargeted since, or config
    if outside is not None:
        raise LaunchError(outside)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise LaunchError(f"model file {path} is missing or not readable")
    if not port_is_free(record.spec.port):
        raise LaunchError(f"port {record.spec.port} is in use by another process")


def _answer_error(message: m.Message, error: BaseException) -> None:
    if isinstance(message, m.Request) and not message.reply.done():
        message.reply.set_exception(error)
