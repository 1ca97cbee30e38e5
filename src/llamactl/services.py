"""The running services of one app: built when it starts, torn down when it stops.

In start order: the database and the store's writer thread, the event hub, the host (this
machine or Ray), the owners of the instances (adopting what an earlier llamactl left running),
API keys and users, the activity ledger, monitoring, the audit log and the /v1 gateway; each
registers how it stops, and they stop in the reverse order: the ledger's last batch is
handed to the writer, instances are stopped (or left running for adoption when
``instances.stop_on_shutdown`` is false), the last writes are flushed, connections closed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx

from llamactl.activity.audit import AuditLog
from llamactl.activity.ledger import Ledger
from llamactl.api.deps import Services
from llamactl.api.middleware import Limits
from llamactl.atomic_file import remove_leftovers
from llamactl.config import InstancesConfig, Settings, is_loopback
from llamactl.config.editor import ConfigEditor
from llamactl.errors import StartupError
from llamactl.events import EventHub
from llamactl.gateway.pool import new_backend_pool
from llamactl.gateway.service import Gateway
from llamactl.library.service import ModelLibrary
from llamactl.monitoring.host import build_time
from llamactl.monitoring.metrics import LlamactlMetrics
from llamactl.monitoring.service import Monitoring
from llamactl.security import passwords
from llamactl.security.key_cache import CachedKeys
from llamactl.security.keys import KeyStore
from llamactl.security.origin import OriginPolicy
from llamactl.security.ratelimit import FixedWindowLimiter
from llamactl.security.secret import load_secret
from llamactl.security.service import AuthService
from llamactl.security.users import UserDirectory
from llamactl.store.database import open_database
from llamactl.store.instances import InstanceRepository
from llamactl.store.writer import StoreWriter
from llamactl.supervisor.context import OwnerContext
from llamactl.supervisor.host import LocalHost, ProcessHost
from llamactl.supervisor.manager import InstanceManager
from llamactl.supervisor.pending_models import link_pulls
from llamactl.version import DISTRIBUTION, package_version

log = logging.getLogger(__name__)

# At shutdown, how long the last writes may take (SQLite's busy timeout is 5 s).
WRITER_CLOSE_SECONDS = 8.0


@asynccontextmanager
async def running_services(settings: Settings, config_path: Path | None,
                           metrics: LlamactlMetrics, policy: OriginPolicy,
                           ) -> AsyncIterator[Services]:
    """Every service of the app, started; stopped in reverse order on the way out."""
    async with AsyncExitStack() as stack:
        connection = prepare_data_dir(settings)
        stack.callback(connection.close)
        http = shared_http_client()
        stack.push_async_callback(http.aclose)
        events = EventHub()
        writer = StoreWriter(connection, events)  # every statement after boot runs on it
        stack.push_async_callback(writer.close, timeout=WRITER_CLOSE_SECONDS)
        host = build_host(settings)  # issue 18: this machine, or a Ray cluster
        stack.callback(host.close)
        manager = InstanceManager(
            OwnerContext(config=instances_config(settings),
                         backends=settings.backends,
                         logs_dir=settings.logs_dir,
                         data_dir=settings.data_dir, config_path=config_path,
                         repository=InstanceRepository(connection, writer),
                         events=events, metrics=metrics, host=host),
            reserved_ports=[settings.server.port], pools=settings.pools)
        auth = build_auth(settings, connection, writer, config_path)
        await _boot(manager, host, config_path)
        writer.start()
        manager.pools.start()  # min_running: its starts are written, so after the writer
        auth.keys.start()
        stack.push_async_callback(auth.keys.stop)
        ledger = _ledger(settings, writer, events, metrics, auth)
        stack.push_async_callback(ledger.stop)  # before the writer closes: its last batch
        stack.push_async_callback(manager.shutdown,
                                  stop_instances=settings.instances.stop_on_shutdown)
        services = await stack.enter_async_context(
            _front(settings, config_path, metrics, policy, manager, auth, events, http,
                   ledger))
        yield services


async def _boot(manager: InstanceManager, host: ProcessHost, config_path: Path | None) -> None:
    """Adopt what the last llamactl left running, and clear what nothing owns any more."""
    if config_path is not None:
        for leftover in remove_leftovers(config_path):
            log.warning("removed %s: left by a config write that was interrupted", leftover)
    await manager.boot()
    for stray in manager.remove_stray_containers():
        log.warning("removed container %s: labelled llamactl.instance, but no instance "
                    "runs in it", stray)
    for stray in host.end_strays():  # Ray: actors no instance adopted (issue 18)
        log.warning("ended Ray actor %s: no instance adopted it", stray)


def _ledger(settings: Settings, writer: StoreWriter, events: EventHub,
            metrics: LlamactlMetrics, auth: AuthService) -> Ledger:
    """The requests on record (issue 30), started, with what reads each record as it lands."""
    ledger = Ledger(settings.activity, writer, events)
    ledger.observers.append(metrics.request_completed)
    ledger.observers.append(auth.quotas.observe)
    ledger.on_dropped = metrics.activity_dropped
    ledger.start()
    return ledger


@asynccontextmanager
async def _front(settings: Settings, config_path: Path | None, metrics: LlamactlMetrics,
                 policy: OriginPolicy, manager: InstanceManager, auth: AuthService,
                 events: EventHub, http: httpx.AsyncClient, ledger: Ledger,
                 ) -> AsyncIterator[Services]:
    """What faces the outside: monitoring, the /v1 gateway, the rate limits, the metrics."""
    monitoring = Monitoring(settings, events, manager, version=package_version(),
                            build_time=build_time(DISTRIBUTION))
    monitoring.start()
    gateway = Gateway(manager, auth, new_backend_pool(), settings.server.cors_origins,
                      origin_policy=policy, max_wait=settings.gateway.max_wait)
    gateway.ledger = ledger
    metrics.track_instances(lambda: [owner.status for owner in manager.owners()])
    metrics.track_gateway(lambda: gateway.answered,
                          lambda: [(o.name, o.leases.inflight) for o in manager.owners()],
                          lambda: gateway.waiting)
    metrics.track_pools(lambda: [
        (pool, manager.pools.waiting(pool), [o.status for o in manager.pools.members(pool)])
        for pool in sorted(manager.pools.names())])
    limits = build_limits(settings, auth)
    library = ModelLibrary(settings, events, ledger.writer)
    if limits is not None:
        limits.on_refused = metrics.record_rate_limited
    try:
        # Issue 33: the pulls the last llamactl left unfinished, and the instances that
        # wait for them.
        link_pulls(manager.owners(), await library.pulls.resume())
        yield Services(settings=settings, manager=manager, auth=auth, limits=limits,
                       gateway=gateway, library=library, events=events,
                       monitoring=monitoring,
                       metrics=metrics, http=http, ledger=ledger,
                       audit=AuditLog(ledger.writer),
                       config_editor=ConfigEditor(settings, config_path))
    finally:
        await library.close()
        await monitoring.stop()
        await gateway.close()


def instances_config(settings: Settings) -> InstancesConfig:
    """instances.model_dirs, when set, with the library's folder (issue 33): the models
    llamactl pulled may be loaded wherever the user's own must live."""
    config = settings.instances
    if config.model_dirs and settings.models_dir not in config.model_dirs:
        return config.model_copy(
            update={"model_dirs": [*config.model_dirs, settings.models_dir]})
    return config


def build_host(settings: Settings) -> ProcessHost:
    """Where backends run: this machine, or the Ray cluster of ``cluster`` (engine: ray)."""
    if settings.cluster.engine == "ray":
        from llamactl.cluster.ray_host import connect

        return connect(settings.cluster)
    return LocalHost()


def shared_http_client() -> httpx.AsyncClient:
    """The app's HTTP client to its backends (the operator proxy, their /metrics)."""
    # Connections kept 120 s: with httpx's default of 5 s, most requests of the proxy and of
    # the /metrics scrapes would open a new one.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(5.0), trust_env=False,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None,
                            keepalive_expiry=120.0),
    )


def prepare_data_dir(settings: Settings) -> sqlite3.Connection:
    """Create the data dir and open the database; StartupError says what is wrong."""
    connection = open_database(settings.database_path)
    try:
        settings.logs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        connection.close()
        raise StartupError(f"cannot create log dir {settings.logs_dir}: {exc.strerror}") from None
    return connection


def build_auth(
    settings: Settings, connection: sqlite3.Connection, writer: StoreWriter,
    config_path: Path | None,
) -> AuthService:
    secret = load_secret(settings.auth.secret, settings.data_dir, os.environ)
    if settings.auth_enabled:
        passwords.warm_up()
    keys = CachedKeys(KeyStore(connection, secret), writer)
    keys.load()
    service = AuthService(
        enabled=settings.auth_enabled,
        secret=secret,
        users=UserDirectory(settings.auth.users, config_path),
        token_ttl=settings.auth.token_ttl,
        keys=keys,
        login_limiter=FixedWindowLimiter(settings.rate_limit.login_failures_per_minute),
    )
    service.quotas.load(connection)  # usage survives a restart: it is on record
    return service


def build_limits(settings: Settings, auth: AuthService) -> Limits | None:
    config = settings.rate_limit
    if not settings.rate_limit_enabled:
        return None
    return Limits(FixedWindowLimiter(config.regular_per_minute),
                  FixedWindowLimiter(config.intensive_per_minute), auth.caller)


def origin_policy(settings: Settings) -> OriginPolicy:
    """The Origin and Host rules (security/origin.py) for this server's settings."""
    server = settings.server
    return OriginPolicy.build(loopback_listener=is_loopback(server.host),
                              allowed_hosts=server.allowed_hosts,
                              cors_origins=server.cors_origins)


