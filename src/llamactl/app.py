"""``create_app(settings)``: the FastAPI application, its services and their lifespan.

Services are built when the app starts (not at import), from the settings passed in, and torn
down when it stops: instances are stopped, or left running for adoption when
``instances.stop_on_shutdown`` is false.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from llamactl.api.auth import authorize
from llamactl.api.deps import Services
from llamactl.api.docs_page import install_docs_page
from llamactl.api.errors import install_error_handlers
from llamactl.api.middleware import JsonBodies, Limits, RateLimits
from llamactl.api.openapi import install_openapi
from llamactl.api.request_guard import RequestGuard, SecurityHeaders
from llamactl.api.request_metrics import RequestMetrics
from llamactl.api.routes import auth as auth_routes
from llamactl.api.routes import config as config_routes
from llamactl.api.routes import events as events_routes
from llamactl.api.routes import instances, keys, proxy, system, ws
from llamactl.api.routes import metrics as metrics_routes
from llamactl.backends.llama_cpp import resolve_command
from llamactl.config import Settings, is_loopback
from llamactl.config.editor import ConfigEditor
from llamactl.errors import StartupError
from llamactl.events import EventHub
from llamactl.gateway.exchange import Gateway
from llamactl.gateway.http_protocol import gateway_protocol
from llamactl.gateway.outside import GatewayOutside
from llamactl.gateway.pool import new_backend_pool
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
from llamactl.supervisor.manager import InstanceManager

log = logging.getLogger(__name__)

DISTRIBUTION = "llamactl-server"
# At shutdown, how long the last writes may take (SQLite's busy timeout is 5 s).
WRITER_CLOSE_SECONDS = 8.0


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0.0.0+unknown"


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
    return AuthService(
        enabled=settings.auth_enabled,
        secret=secret,
        users=UserDirectory(settings.auth.users, config_path),
        token_ttl=settings.auth.token_ttl,
        keys=keys,
        login_limiter=FixedWindowLimiter(settings.rate_limit.login_failures_per_minute),
    )


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


def begin_shutdown(app: FastAPI) -> None:
    """Shutdown has begun: end endless streams (event feeds, followed logs) now. uvicorn waits
    for open responses before it runs the lifespan's shutdown, so this cannot wait for it.
    Safe to call from a signal handler: the work is handed to the event loop."""
    loop: asyncio.AbstractEventLoop | None = getattr(app.state, "loop", None)
    if loop is None or loop.is_closed():
        return

    def close_streams() -> None:
        app.state.closing.set()
        services = getattr(app.state, "services", None)
        if services is not None:
            services.events.close()

    loop.call_soon_threadsafe(close_streams)


def create_app(settings: Settings, *, config_path: Path | None = None) -> FastAPI:
    """The app. ``config_path`` is the config file (it may not exist yet): users are read
    from it as it changes, and ``PUT /api/config`` writes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()
        app.state.closing = asyncio.Event()
        connection = prepare_data_dir(settings)
        # Health probes reuse connections: httpx's default keep-alive expiry (5 s) equals the
        # probe interval, so every probe used to open a new connection (bench/lifecycle.py).
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(5.0), trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None,
                                keepalive_expiry=120.0),
        )
        events = EventHub()
        writer = StoreWriter(connection, events)  # every statement after boot runs on it
        context = OwnerContext(
            config=settings.instances,
            backend_command=lambda: resolve_command(settings.backends.llama_cpp),
            logs_dir=settings.logs_dir,
            repository=InstanceRepository(connection, writer),
            events=events,
            http=http,
            metrics=metrics,
        )
        manager = InstanceManager(context, reserved_ports=[settings.server.port])
        auth = build_auth(settings, connection, writer, config_path)
        manager.boot()
        writer.start()
        auth.keys.start()
        metrics.track_instances(lambda: [owner.status for owner in manager.owners()])
        monitoring = Monitoring(settings, events, manager, version=package_version(),
                                build_time=build_time(DISTRIBUTION))
        monitoring.start()
        gateway = Gateway(manager, auth, new_backend_pool(), settings.server.cors_origins,
                          origin_policy=policy)
        metrics.track_gateway(
            lambda: gateway.answered,
            lambda: [(o.name, o.leases.inflight) for o in manager.owners()])
        app.state.services = Services(
            settings=settings, manager=manager, auth=auth, limits=build_limits(settings, auth),
            gateway=gateway,
            events=events, monitoring=monitoring, metrics=metrics,
            config_editor=ConfigEditor(settings, config_path),
        )
        if app.state.services.limits is not None:
            app.state.services.limits.on_refused = metrics.record_rate_limited
        try:
            yield
        finally:
            await monitoring.stop()
            await gateway.close()
            await manager.shutdown(stop_instances=settings.instances.stop_on_shutdown)
            await auth.keys.stop()
            await writer.close(timeout=WRITER_CLOSE_SECONDS)
            await http.aclose()
            connection.close()

    metrics = LlamactlMetrics(package_version())  # this app's own registry
    policy = origin_policy(settings)
    app = FastAPI(
        title="llamactl",
        version=package_version(),
        description="Create, run, watch and front llama.cpp model servers.",
        lifespan=lifespan,
        docs_url=None,  # our own /docs, from the package (api/docs_page.py)
        redoc_url=None,  # FastAPI's would load ReDoc from a CDN
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    # First added, so innermost: it must see the scope the router writes the route into.
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(JsonBodies)
    app.add_middleware(RateLimits)
    app.add_middleware(GatewayOutside)  # /v1 is served before ASGI: gateway/http_protocol.py
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.server.cors_origins,
            allow_methods=["*"], allow_headers=["*"],
            expose_headers=["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                            "Retry-After"],
        )
    # Outermost: a cross-site or rebound request is refused before anything else runs, and
    # every answer, refusals included, gets the security headers.
    app.add_middleware(RequestGuard, policy=policy)
    app.add_middleware(SecurityHeaders)
    public = APIRouter(prefix="/api")
    public.include_router(auth_routes.public)
    # Every route below needs a token when auth is on: the dependency sits on the router.
    api = APIRouter(prefix="/api", dependencies=[Depends(authorize)])
    api.include_router(instances.router)
    api.include_router(proxy.router)
    api.include_router(auth_routes.router)
    api.include_router(keys.router)
    api.include_router(system.router)
    api.include_router(config_routes.router)
    api.include_router(ws.router)
    api.include_router(events_routes.router)
    app.include_router(public)
    app.include_router(api)
    app.include_router(metrics_routes.router)  # /metrics, at the root where Prometheus looks
    install_openapi(app)
    install_docs_page(app)
    return app


def server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How uvicorn serves ``app``: /v1 in the HTTP layer (gateway/http_protocol.py), the rest
    through ASGI. ``llamactl serve`` and the tests' in-process server both use this."""
    return uvicorn.Config(
        app, host=host, port=port, http=gateway_protocol(app), access_log=False,
        timeout_graceful_shutdown=5, **options,
    )
