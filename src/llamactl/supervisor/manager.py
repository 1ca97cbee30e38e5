"""The registry of instances: create, update, delete, batch, adoption at boot, shutdown.

The manager checks what spans instances (names, ports) under one lock and hands everything that
touches a process to that instance's owner task.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from llamactl.backends import backend_named
from llamactl.backends.base import check_model_file
from llamactl.backends.docker import check_docker
from llamactl.config import PoolsConfig
from llamactl.errors import (
    InstanceAlreadyRunning,
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InstanceRunning,
    LlamactlError,
    NoFreePort,
    PortConflict,
    StartFailed,
    ValidationFailed,
)
from llamactl.instances.changes import InstanceChanges, NewInstance
from llamactl.instances.model_paths import check_model_path
from llamactl.instances.models import InstanceRecord, InstanceSpec, OptionValue, RuntimeState
from llamactl.library.pull_jobs import PullJob
from llamactl.security.file_options import check_new_options
from llamactl.supervisor import logs
from llamactl.supervisor import messages as m
from llamactl.supervisor import pending_models as pending
from llamactl.supervisor.admission import CapacityKeeper
from llamactl.supervisor.container import remove_stray_containers
from llamactl.supervisor.context import Lifecycle, OwnerContext
from llamactl.supervisor.leases import Lease
from llamactl.supervisor.names import NameBook
from llamactl.supervisor.owner import InstanceOwner, InstanceStopping
from llamactl.supervisor.pools import PoolKeeper
from llamactl.supervisor.ports import pick_port
from llamactl.supervisor.sleep import sample_sleep
from llamactl.supervisor.waking import Waker

log = logging.getLogger(__name__)

# An instance that stops between being started and being leased is started again, this often.
ACQUIRE_ATTEMPTS = 4
# How long shutdown waits for the owners beyond the stop timeout (after which each process has
# had its SIGKILL) before it gives up on them: a bug must not hang llamactl's exit.
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


class InstanceManager:
    def __init__(self, context: OwnerContext, *, reserved_ports: Iterable[int] = (),
                 pools: PoolsConfig | None = None):
        self._ctx = context
        self._owners: dict[str, InstanceOwner] = {}
        self._lock = asyncio.Lock()
        self._reserved_ports = set(reserved_ports)  # llamactl's own port
        self._sampler: asyncio.Task[None] | None = None
        self.waker = Waker()  # issue 32: vLLM's sleep, which llamactl drives
        self._capacity = CapacityKeeper(context.config, self._owners, context.estimator)
        context.on_capacity_change = self._capacity.changed
        self.pools = PoolKeeper(  # issue 32: replica pools
            self._owners, pools or PoolsConfig(),
            lambda owner, wait: self._capacity.start_within_limits(
                owner, wait_for_room=wait, join=True),
            on_demand=lambda owner: Lifecycle.of(owner.record, context.config).on_demand_start)
        context.on_status_change = self.pools.status_changed
        context.pool_nodes = self.pools.nodes_besides

    @property
    def context(self) -> OwnerContext:
        return self._ctx

    # ---- life of the manager ----

    async def boot(self) -> None:
        """Load every instance, start the owner tasks, and wait until each has adopted or
        reset its recorded process (its first message)."""
        adopted: list[asyncio.Future[object]] = []
        for record in self._ctx.repository.load_all():
            owner = InstanceOwner(record, self._ctx)
            adopted.append(owner.adopt())
            self._owners[record.name] = owner
            owner.run()
        await asyncio.gather(*adopted)
        self.pools.refresh()
        self._sampler = asyncio.create_task(self._sample_forever(), name="stats-sampler")

    def remove_stray_containers(self) -> list[str]:
        """After boot's adoptions: the containers that no instance runs in, removed."""
        return remove_stray_containers(
            self._ctx.backends, [(o.record, o.pid is not None) for o in self._owners.values()])

    async def shutdown(self, *, stop_instances: bool) -> None:
        await self.pools.close()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        self.waker.close()
        store = self._ctx.repository.writer
        if not stop_instances and not store.available:
            # The next llamactl adopts what the database lists; it may not list these.
            log.warning("the database cannot be written (%s): stopping every instance instead "
                        "of leaving it running for the next llamactl", store.error)
            stop_instances = True
        owners = list(self._owners.values())
        tasks = [asyncio.create_task(owner.shutdown(stop=stop_instances),
                                     name=f"shutdown:{owner.name}") for owner in owners]
        bound = self._ctx.config.stop_timeout + SHUTDOWN_GRACE_SECONDS
        if tasks:
            await asyncio.wait(tasks, timeout=bound)
        for owner, task in zip(owners, tasks, strict=True):
            if not task.done():
                task.cancel()
                log.error("shutting down %s took over %g s: ending it", owner.name, bound)
                await owner.abandon(kill=stop_instances)
            elif task.cancelled() or task.exception() is not None:
                error = "cancelled" if task.cancelled() else task.exception()
                log.error("shutting down %s failed: %s", owner.name, error)
                await owner.abandon(kill=stop_instances)

    async def _sample_forever(self) -> None:
        config = self._ctx.config
        while True:
            await asyncio.sleep(config.stats_interval)
            running = []
            if not self._ctx.host.local:  # Ray: measured on the nodes (issue 18)
                await asyncio.gather(*(o.sample_node_stats() for o in list(self._owners.values())))
            await sample_sleep(list(self._owners.values()), self.waker)  # issue 32
            for owner in list(self._owners.values()):
                owner.stats.sample()
                if owner.pid is not None:
                    running.append((owner.log_path, owner.record.runtime.started_at))
            # Rotation copies up to log_max_bytes: on a thread, not the event loop.
            await asyncio.to_thread(_rotate_logs, running, config.log_max_bytes,
                                    config.log_backups)

    def memory_status(self) -> dict[str, dict[str, int | None]]:
        return self._capacity.memory_status()

    def owners(self) -> list[InstanceOwner]:
        return [self._owners[name] for name in sorted(self._owners)]

    def owner(self, name: str) -> InstanceOwner:
        owner = self._owners.get(name)
        if owner is None or owner.closed:
            raise InstanceNotFound(name)
        return owner

    # ---- create, update, delete ----

    async def create(self, body: NewInstance, *, admin: bool = False,
                     pull: PullJob | None = None) -> InstanceOwner:
        """``admin``: the caller may name files outside instances.model_dirs. ``pull``: the
        model file is on its way from the Hub (issue 33), not checked until it is there."""
        backend = backend_named(body.backend)
        options = backend.validate_options(body.options)
        check_new_options(backend.table, options, self._ctx.file_policy, admin=admin)
        backend.check_extra_args(body.extra_args or [])
        if pull is None:
            check_model_path(body.model_path, backend.model_files_only,
                             self._ctx.config.model_dirs)
            await asyncio.to_thread(check_model_file, backend, body.model_path)  # its header
        check_docker(body.backend, body.docker, self._ctx.backends)
        async with self._lock:
            if body.name in self._owners:
                raise InstanceExists(body.name)
            names = NameBook(self._owners, self.pools.config.entries)
            names.check_names([body.name, *(body.aliases or [])], exclude=None)
            names.check_pool(body.pool, [body.name, *(body.aliases or [])], exclude=None)
            port = self._claim_port(body.port, exclude=None)
            spec = InstanceSpec(
                name=body.name, model_path=body.model_path, port=port, backend=body.backend,
                options=options, auto_restart=body.auto_restart, max_restarts=body.max_restarts,
                restart_delay=body.restart_delay, on_demand_start=body.on_demand_start,
                idle_timeout=body.idle_timeout, group=body.group,
                environment=dict(body.environment or {}), extra_args=list(body.extra_args or []),
                aliases=list(body.aliases or []),
                resources=dict(body.resources or {}),  # ray: issue 18
                docker=body.docker, pool=body.pool, sleep_after=body.sleep_after,
            )
            record = InstanceRecord(spec, RuntimeState(pull_id=pending.pull_id_of(pull)))
            await self._ctx.repository.insert(record)  # StorageUnavailable: nothing created
            owner = InstanceOwner(record, self._ctx)
            pending.wait_on(owner, pull)
            self._owners[spec.name] = owner
            owner.run()
            self.pools.refresh()
            return owner

    async def update(self, name: str, body: InstanceChanges, *, restart: bool,
                     admin: bool = False) -> bool:
        """Apply the update; True when the instance runs on its old settings until restarted."""
        owner = self.owner(name)
        options = await self._checked_changes(owner.record, body, admin=admin)
        async with self._lock:
            if body.port is not None and body.port != owner.record.spec.port:
                self._claim_port(body.port, exclude=name)
            names = NameBook(self._owners, self.pools.config.entries)
            if body.aliases:
                names.check_names(body.aliases, exclude=name)
            if "pool" in body.given:
                aliases = owner.record.spec.aliases if body.aliases is None else body.aliases
                names.check_pool(body.pool, [name, *aliases], exclude=name)
            apply = body.applier(options)
            # Written first, from a copy: when the database refuses it, nothing changed.
            updated = copy.deepcopy(owner.record)
            apply(updated)
            await self._ctx.repository.save_now(updated)
            try:
                return await owner.update(m.Update(apply=apply, restart=restart))
            finally:
                self.pools.refresh()

    async def _checked_changes(self, record: InstanceRecord, body: InstanceChanges, *,
                               admin: bool) -> dict[str, OptionValue]:
        """The options the instance will have; ValidationFailed (changing nothing) when a
        change is refused. Another backend judges the options, arguments and model path it
        would be given."""
        given = body.given
        backend = backend_named(body.backend or record.spec.backend)
        if "name" in given and body.name != record.name:
            raise ValidationFailed("an instance cannot be renamed", "name: cannot change")
        for key in ("model_path", "port", "backend"):
            if key in given and getattr(body, key) is None:
                raise ValidationFailed(f"{key} cannot be null", f"{key}: cannot be null")
        options = dict(record.spec.options)
        for key, value in (body.options or {}).items():
            if value is None:
                options.pop(key, None)
            else:
                options[key] = value
        new_backend = "backend" in given
        if "options" in given or new_backend:
            options = backend.validate_options(options)
            set_now = options if new_backend else {k: v for k, v in options.items()
                                                    if k in (body.options or {})}
            check_new_options(backend.table, set_now, self._ctx.file_policy, admin=admin)
        if body.extra_args is not None or new_backend:
            backend.check_extra_args(record.spec.extra_args if body.extra_args is None
                                     else body.extra_args)
        if body.model_path is not None or new_backend:
            path = body.model_path or record.spec.model_path
            check_model_path(path, backend.model_files_only, self._ctx.config.model_dirs)
            await asyncio.to_thread(check_model_file, backend, path)
        if "docker" in given or new_backend:
            check_docker(backend.name, body.docker if "docker" in given
                         else record.spec.docker, self._ctx.backends)
        return options

    async def delete(self, name: str) -> None:
        owner = self.owner(name)
        if owner.status not in ("stopped", "failed"):
            raise InstanceRunning(
                f"Instance '{name}' is {owner.status}; stop it before deleting it")
        await self._ctx.repository.delete(name)  # StorageUnavailable: nothing deleted
        try:
            await owner.delete()
        except LlamactlError:
            self._ctx.repository.save(owner.record)  # started meanwhile: its row stays
            raise
        async with self._lock:
            if self._owners.get(name) is owner:
                del self._owners[name]
            self.pools.refresh()

    def resolve_model(self, model: str) -> InstanceOwner | None:
        """The instance a /v1 request's ``model`` names: its name or one of its aliases."""
        owner = self._owners.get(model)
        if owner is not None:
            return owner
        for candidate in self._owners.values():
            if model in candidate.record.spec.aliases:
                return candidate
        return None

    def _claim_port(self, port: int | None, *, exclude: str | None) -> int:
        taken: dict[int, str] = {}
        for other, owner in self._owners.items():
            if other != exclude:
                # Both the configured port and the one a running process still holds.
                taken[owner.record.spec.port] = taken[owner.port] = other
        if port is None:
            low, high = self._ctx.config.port_range
            chosen = pick_port(low, high, set(taken) | self._reserved_ports)
            if chosen is None:
                raise NoFreePort(
                    f"no free port left in instances.port_range {low}-{high}",
                    "give the instance an explicit port or widen the range",
                )
            return chosen
        if port in self._reserved_ports:
            raise PortConflict(f"port {port} is llamactl's own port")
        if port in taken:
            raise PortConflict(f"port {port} is used by instance '{taken[port]}'")
        return port

    # ---- lifecycle ----

    async def start(self, name: str, *, wait: bool = False) -> None:
        """A manual start, within the same limits as an on-demand one. With ``wait`` it also
        waits for room in the queue when every instance in its scope is busy."""
        owner = self.owner(name)
        if owner.status not in ("stopped", "failed"):
            raise InstanceAlreadyRunning(f"Instance '{name}' is already {owner.status}")
        pending.refuse_while_pulling(owner)
        await self._capacity.start_within_limits(owner, wait_for_room=wait, join=False)
        if wait:
            await owner.wait_ready()

    async def acquire(self, name: str, priority: int = 0) -> Lease:
        """A lease for one request: now, after an on-demand start (or one under way), or
        after room is made or found; where it waits, the higher ``priority`` goes first."""
        owner = self.owner(name)
        await pending.wait_for_model(owner)  # issue 33: created from a model still being pulled
        for _ in range(ACQUIRE_ATTEMPTS):
            lease = owner.lease_if_running()
            if lease is not None:
                return lease
            try:
                return await owner.acquire(priority)
            except InstanceStopping:
                await owner.wait_stopped()
            except InstanceNotRunning:
                if not Lifecycle.of(owner.record, self._ctx.config).on_demand_start:
                    raise InstanceNotRunning(
                        f"Instance '{name}' is {owner.status} and on_demand_start is off"
                    ) from None
            await self._capacity.start_within_limits(owner, wait_for_room=True, join=True,
                                                     priority=priority)
        raise StartFailed(f"Instance '{name}' stopped again each time it was started")

    async def stop(self, name: str, *, force: bool = False, timeout: float | None = None) -> None:
        await self.owner(name).stop(force=force, timeout=timeout)

    async def restart(self, name: str) -> None:
        await self.owner(name).restart()

    async def start_all(self) -> BatchResult:
        async def start(owner: InstanceOwner) -> None:
            pending.refuse_while_pulling(owner)  # failed in the batch: its model is not there yet
            await self._capacity.start_within_limits(owner, wait_for_room=False, join=False)

        return await self._batch(start, wanted=("stopped", "failed"))

    async def stop_all(self) -> BatchResult:
        return await self._batch(
            lambda o: o.stop(), wanted=("starting", "running", "restarting")
        )

    async def _batch(
        self, action: Callable[[InstanceOwner], Awaitable[None]], wanted: tuple[str, ...]
    ) -> BatchResult:
        result = BatchResult()
        targets: list[InstanceOwner] = []
        for owner in self.owners():
            if owner.status in wanted:
                targets.append(owner)
            else:
                result.skipped.append(owner.name)
        outcomes = await asyncio.gather(*(action(o) for o in targets), return_exceptions=True)
        for owner, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, LlamactlError):
                result.failed.append({"name": owner.name, "error": outcome.message})
            elif isinstance(outcome, BaseException):
                log.error("batch action on %s failed: %r", owner.name, outcome)
                result.failed.append({"name": owner.name, "error": "internal error"})
            elif owner.status == "failed":  # the launch itself failed (binary, model, port)
                error = owner.record.runtime.last_error or "failed"
                result.failed.append({"name": owner.name, "error": error})
            else:
                result.done.append(owner.name)
        return result


def _rotate_logs(
    logs_of_running: list[tuple[Path, datetime | None]], max_bytes: int, backups: int
) -> None:
    for path, started in logs_of_running:
        with contextlib.suppress(OSError):
            logs.rotate_if_needed(path, max_bytes, backups, started)
