"""The owner task of one instance: the only code that changes its status or touches its process.

Public operations put a request in the owner's inbox and await the answer; watchers (exit,
readiness, liveness, timers) post notices into the same inbox. One message at a time, so ten
concurrent starts, a stop during a start or a delete during a stop all end in one consistent
state with at most one process. Nothing outside decides an action from a snapshot of the status
(llama-swap's issue #946: that raced with idle unloads and hung requests).

What to do with each message is decided by ``supervisor/lifecycle.py``'s pure ``transition``;
every transition goes through the inbox (boot's adoption and the lease book's idle too). The
inbox holds the lifecycle's own messages in envelopes (supervisor/messages.py); this module
opens them, decides, and hands the effects in order to its ``EffectRunner``
(supervisor/owner_effects.py), which owns the process, its watchers, timers and waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from llamactl.errors import InstanceNotFound, LlamactlError
from llamactl.instances.models import InstanceRecord, Status, utc_now
from llamactl.library.pull_jobs import PullJob
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor import messages as m
from llamactl.supervisor.context import OwnerContext
from llamactl.supervisor.launching import InstanceStopping, LaunchError, policy_of
from llamactl.supervisor.leases import Lease, LeaseBook
from llamactl.supervisor.lifecycle import transition
from llamactl.supervisor.memory import MemoryEstimator
from llamactl.supervisor.owner_effects import EffectRunner
from llamactl.supervisor.stats import ProcessStats

__all__ = ["InstanceOwner", "InstanceStopping", "LaunchError"]

log = logging.getLogger(__name__)

NODE_STATS_TIMEOUT = 2.0  # seconds for a Ray node to answer for its backend


class InstanceOwner:
    # Owners holding a pull (all of them, in this process): while any does, the instance list
    # is built afresh each time, since a pull's progress moves unseen (api/views.py).
    holding_pulls: ClassVar[int] = 0

    def __init__(self, record: InstanceRecord, context: OwnerContext):
        self.record = record
        self.stats = ProcessStats()
        self._pull: PullJob | None = None
        self._ctx = context
        self._inbox: asyncio.Queue[m.Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.leases = LeaseBook(on_idle=self._became_idle, name=record.name)
        self._effects = EffectRunner(record, context, self.stats, self.leases, self._post,
                                     self._apply)
        runtime = record.runtime
        self._life = t.State(name=record.name, status=runtime.status,
                             restart_count=runtime.restart_count, last_error=runtime.last_error)

    # ---- public operations: each is one request to the owner task ----

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def pull(self) -> PullJob | None:
        """Issue 33: the model's pull, while the instance waits for it (pending_models.py)."""
        return self._pull

    @pull.setter
    def pull(self, job: PullJob | None) -> None:
        InstanceOwner.holding_pulls += (job is not None) - (self._pull is not None)
        self._pull = job

    @property
    def status(self) -> Status:
        return self.record.runtime.status

    @property
    def closed(self) -> bool:
        return self._life.closed

    @property
    def pid(self) -> int | None:
        process = self._effects.process
        return process.pid if process else None

    @property
    def port(self) -> int:
        return self._effects.port  # where it listens, and on which host: the runner knows

    @property
    def slots(self) -> int | None:
        """Requests its running server serves at once, when its command line says."""
        return self._effects.slots()

    @property
    def backend_host(self) -> str:
        return self._effects.backend_host

    @property
    def log_path(self) -> Path:
        return self._effects.log_path

    @property
    def estimator(self) -> MemoryEstimator:
        """The app's memory estimates (issue 20): what this instance's spec would hold."""
        return self._ctx.estimator

    async def sample_node_stats(self) -> None:
        """On a Ray node, its actor measures the backend there (issue 18); locally a no-op."""
        handle = self._effects.process
        if handle is None or self._ctx.host.local:
            return
        try:
            measured = await asyncio.wait_for(handle.node_stats(), NODE_STATS_TIMEOUT)
        except Exception as exc:  # a lost node or a busy actor: keep the last sample
            log.debug("stats of %s from its node: %s", self.name, exc)
            return
        if measured is not None and handle is self._effects.process:
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
        await self._call(m.Told(message=t.Stop(force=force, timeout=timeout, if_idle=if_idle)))

    def pull_ended(self, error: str | None) -> None:
        """The pull it waited for ended (issue 33): the link leaves the record, and a failed
        pull becomes its last error (through the inbox, as every transition)."""
        self.record.runtime.pull_id = None
        if not self.closed:
            self._post(m.Noticed(self._effects.generation, t.PullEnded(error)))

    def lease_if_running(self) -> Lease | None:
        """The gateway's fast path: a lease at once when running, without a round trip."""
        if self.status == "running" and self._effects.process is not None and not self.closed:
            return self._effects.take_lease()
        return None

    async def acquire(self, priority: int = 0) -> Lease:
        """A lease, waiting for a start in progress; InstanceNotRunning when nothing runs."""
        request = m.Acquire(priority=priority)
        await self._call(request)
        lease = await request.lease
        assert isinstance(lease, Lease)
        return lease

    async def wait_ready(self) -> None:
        """Until running; StartFailed if the start fails or is stopped."""
        if self.closed:  # shut down or deleted: nothing will resolve a waiter
            raise self._effects.start_failed(
                "llamactl is shutting down or the instance was deleted")
        if self.status == "running":
            return
        if self.status in ("stopped", "failed"):
            raise self._effects.start_failed(self.record.runtime.last_error or self.status)
        waiter = asyncio.get_running_loop().create_future()
        self._effects.ready_waiters.append((waiter, False, 0))
        await waiter

    async def wait_stopped(self) -> None:
        """Until the instance is stopped or failed (at once if it is)."""
        if self.status in ("stopped", "failed") or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._effects.stopped_waiters.append(waiter)
        await waiter

    async def restart(self) -> None:
        await self._ctx.repository.save_now(self.record)  # as start(): it spawns a process
        await self._call(m.Told(message=t.Restart()))

    async def delete(self) -> None:
        await self._call(m.Told(message=t.Delete()))

    async def update(self, request: m.Update) -> bool:
        """Apply a change to the record; True when a restart is needed for it to take effect."""
        return bool(await self._call(request))

    async def shutdown(self, *, stop: bool) -> None:
        """Stop the process (or leave it for adoption) and end the owner task."""
        if self._task is None or self._task.done():
            return
        with contextlib.suppress(InstanceNotFound):
            await self._call(m.Told(message=t.Shutdown(stop=stop)))
        await self._task

    def run(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"owner:{self.name}")

    def adopt(self) -> asyncio.Future[object]:
        """At boot, before the loop runs: its first message takes back a recorded process, or
        resets the status; the future is done once it has."""
        request = m.Told(message=t.Boot(recorded_pid=self.record.runtime.pid is not None))
        self._inbox.put_nowait(request)
        return request.reply

    async def cancel(self) -> None:
        """Last resort at shutdown: end the task and its watchers without touching the process."""
        self._effects.cancel_watchers()
        self._effects.cancel_timers()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def abandon(self, *, kill: bool) -> None:
        """Shutdown's last resort for an owner that did not end in time: SIGKILL its process
        group (unless left for adoption), then end the task."""
        process = self._effects.process
        if kill and process is not None:
            log.error("killing pid %d of %s at shutdown", process.pid, self.name)
            process.signal_group(signal.SIGKILL)
        await self.cancel()

    async def _call(self, request: m.Request) -> object:
        if self.closed:
            raise InstanceNotFound(self.name)
        self._inbox.put_nowait(request)
        return await request.reply

    def _post(self, notice: m.Noticed) -> None:
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
            gone = InstanceNotFound(self.name)
            self._effects.close(gone)
            while not self._inbox.empty():
                _answer_error(self._inbox.get_nowait(), gone)

    def _handle(self, message: m.Message) -> object:
        if isinstance(message, m.Noticed) and message.generation != self._effects.generation:
            return None  # about a process that has since been replaced
        self._effects.current = message
        try:
            return self._apply(self._translate(message))
        finally:
            self._effects.current = None

    def _translate(self, message: m.Message) -> t.Message:
        """The lifecycle's message in the envelope, with the facts it needs."""
        if isinstance(message, (m.Told, m.Noticed)):
            return self._effects.facts(message.message)
        if isinstance(message, m.Start):
            return t.Start(wait=message.ready is not None)
        if isinstance(message, m.Update):
            message.apply(self.record)
            self.record.updated_at = utc_now()
            return t.Update(restart=message.restart)
        return t.Acquire()

    def _apply(self, message: t.Message) -> bool | None:
        """Decide (the pure transition), record, then carry out the effects in order. Launch
        and TryAdopt report back through a nested _apply, on the state decided here."""
        life = replace(self._life, policy=policy_of(self.record, self._ctx.config))
        self._life, effects = transition(life, message)
        runtime = self.record.runtime
        runtime.restart_count, runtime.last_error = (
            self._life.restart_count, self._life.last_error)
        for effect in effects:
            self._effects.do(effect)
        answer, self._effects.answer = self._effects.answer, None
        return answer

    def _became_idle(self) -> None:
        """The lease book's callback: the last request in flight ended (told through the
        inbox, as every transition is: the owner task decides, one message at a time)."""
        if not self.closed:
            self._post(m.Noticed(self._effects.generation, t.Idle()))


def _answer_error(message: m.Message, error: BaseException) -> None:
    if isinstance(message, m.Request) and not message.reply.done():
        message.reply.set_exception(error)
