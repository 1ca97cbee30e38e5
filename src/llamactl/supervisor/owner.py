"""The owner task of one instance: the only code that changes its status or touches its process.

Public operations put a request in the owner's inbox and await the answer; watchers (exit,
readiness, liveness, timers) post notices into the same inbox. One message at a time, so ten
concurrent starts, a stop during a start or a delete during a stop all end in one consistent
state with at most one process. Nothing outside decides an action from a snapshot of the status
(llama-swap's issue #946: that raced with idle unloads and hung requests).

What to do with each message is decided by ``supervisor/lifecycle.py``'s pure ``transition``;
this module is its runner: it turns inbox messages into the lifecycle's messages and carries out
the effects (spawn, signal, timers, watchers, persist, publish) in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from llamactl.backends import backend_named
from llamactl.errors import InstanceNotFound, LlamactlError
from llamactl.instances.models import InstanceRecord, Status, utc_now
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor import logs
from llamactl.supervisor import messages as m
from llamactl.supervisor.context import OwnerContext
from llamactl.supervisor.host import BackendProcess
from llamactl.supervisor.launch_checks import LaunchError
from llamactl.supervisor.leases import Lease, LeaseBook
from llamactl.supervisor.lifecycle import transition
from llamactl.supervisor.memory import MemoryEstimator
from llamactl.supervisor.owner_effects import (
    InstanceStopping,
    OwnerEffects,
    policy_of,
)
from llamactl.supervisor.process import describe_exit
from llamactl.supervisor.stats import ProcessStats

__all__ = ["InstanceOwner", "InstanceStopping", "LaunchError"]

log = logging.getLogger(__name__)

NODE_STATS_TIMEOUT = 2.0  # seconds for a Ray node to answer for its backend


class InstanceOwner(OwnerEffects):
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
        self._timers: dict[t.TimerKind, asyncio.Task[None]] = {}
        # Waiting for "running": start?wait=true (False) and requests wanting a lease (True).
        self._ready_waiters: list[tuple[asyncio.Future[Any], bool]] = []
        self._stopped_waiters: list[asyncio.Future[None]] = []
        self.leases = LeaseBook(on_idle=self._became_idle)
        self._slots: tuple[list[str] | None, int | None] = (None, None)  # argv, its slots
        runtime = record.runtime
        self._life = t.State(name=record.name, status=runtime.status,
                             restart_count=runtime.restart_count, last_error=runtime.last_error)
        self._current: m.Message | None = None  # the inbox message being handled
        self._answer: bool | None = None

    # ---- public operations: each is one request to the owner task ----

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def status(self) -> Status:
        return self.record.runtime.status

    @property
    def closed(self) -> bool:
        return self._life.closed

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

    @property
    def estimator(self) -> MemoryEstimator:
        """The app's memory estimates (issue 20): what this instance's spec would hold."""
        return self._ctx.estimator

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

    def _take_lease(self) -> Lease:
        command = self.record.runtime.command
        if self._slots[0] is not command:  # launched or adopted since: read its --parallel
            self._slots = (command, backend_named(self.record.spec.backend).slots(command))
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

    def adopt(self) -> None:
        """At boot, before the loop runs: take back a recorded process, or reset the status."""
        self._apply(t.Boot(recorded_pid=self.record.runtime.pid is not None))

    async def cancel(self) -> None:
        """Last resort at shutdown: end the task and its watchers without touching the process."""
        self._cancel_watchers()
        self._cancel_timers()
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
            self._life = replace(self._life, closed=True)
            self._cancel_watchers()
            self._cancel_timers()
            if self._exit_watcher is not None:
                self._exit_watcher.cancel()
            self._fail_pending(InstanceNotFound(self.name))

    def _handle(self, message: m.Message) -> object:
        if isinstance(message, m.Notice) and message.generation != self._generation:
            return None  # about a process that has since been replaced
        self._current = message
        try:
            return self._apply(self._translate(message))
        finally:
            self._current = None

    def _translate(self, message: m.Message) -> t.Message:
        """The inbox's message in the lifecycle's words, with the facts it needs."""
        if isinstance(message, m.Exited):
            return self._reaped(message.code)
        if isinstance(message, m.Start):
            return t.Start(wait=message.ready is not None)
        if isinstance(message, m.Stop):
            return t.Stop(force=message.force, timeout=message.timeout,
                          if_idle=message.if_idle, inflight=self.leases.inflight)
        if isinstance(message, m.Update):
            message.apply(self.record)
            self.record.updated_at = utc_now()
            return t.Update(restart=message.restart)
        if isinstance(message, m.Shutdown):
            return t.Shutdown(stop=message.stop)
        if isinstance(message, m.Ready):
            return t.Ready(inflight=self.leases.inflight)
        if isinstance(message, m.LoadFailed):
            return t.LoadFailed(message.reason, model_missing=message.model_missing)
        if isinstance(message, m.Unhealthy):
            return t.Unhealthy(message.reason)
        if isinstance(message, m.Placed):
            return self._placed()
        if isinstance(message, (m.KillTimer, m.RestartTimer, m.IdleTimer)):
            self._timers.pop(_TIMER_OF[type(message)], None)  # it has fired
        if isinstance(message, m.IdleTimer):
            return t.IdleTimer(inflight=self.leases.inflight, idle_for=self.leases.idle_for())
        return _PLAIN[type(message)]()

    def _placed(self) -> t.Placed:
        """A backend on a Ray node runs now: record its pid and node (for adoption)."""
        handle, runtime = self._process, self.record.runtime
        if handle is not None and self.status == "starting":
            runtime.pid, runtime.pid_start_time, runtime.command = (
                handle.pid, handle.start_time, handle.command)
            runtime.node = handle.node
        node = handle.node if handle is not None and handle.node else {}
        return t.Placed(pid=handle.pid if handle else None, node=node.get("id", "?"))

    def _reaped(self, code: int | None) -> t.Exited:
        handle, self._process, self._exit_watcher = self._process, None, None
        runtime = self.record.runtime
        runtime.pid = runtime.pid_start_time = runtime.serving_port = None
        runtime.started_at = runtime.node = None
        self.stats.reset(None)
        cause = None
        if self.status == "starting":  # what made it fail, for last_error
            line_format = backend_named(self.record.spec.backend).parse_log_line
            cause = logs.first_error_of_run(self.log_path, line_format=line_format)
        return t.Exited(pid=handle.pid if handle else None, what=describe_exit(code),
                        cause=cause)

    def _apply(self, message: t.Message) -> bool | None:
        """Decide (the pure transition), record, then carry out the effects in order. Launch
        and TryAdopt report back through a nested _apply, on the state decided here."""
        life = replace(self._life, policy=policy_of(self.record, self._ctx.config))
        self._life, effects = transition(life, message)
        runtime = self.record.runtime
        runtime.restart_count, runtime.last_error = (
            self._life.restart_count, self._life.last_error)
        for effect in effects:
            self._do(effect)
        answer, self._answer = self._answer, None
        return answer

    def _became_idle(self) -> None:
        """The lease book's callback: the last request in flight ended."""
        if not self.closed:
            self._apply(t.Idle())


_PLAIN: dict[type[m.Message], Callable[[], t.Message]] = {
    m.Acquire: t.Acquire, m.Restart: t.Restart, m.Delete: t.Delete, m.KillTimer: t.KillTimer,
    m.RestartTimer: t.RestartTimer, m.Stable: t.Stable,
}
_TIMER_OF: dict[type[m.Notice], t.TimerKind] = {
    m.KillTimer: "kill", m.RestartTimer: "restart", m.IdleTimer: "idle",
}


def _answer_error(message: m.Message, error: BaseException) -> None:
    if isinstance(message, m.Request) and not message.reply.done():
        message.reply.set_exception(error)
