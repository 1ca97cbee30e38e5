"""``create_app(settings)``: the FastAPI application: its middleware, its routes, and a
lifespan that runs its services (services.py) while it serves.

Services are built when the app starts (not at import), from the settings passed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from llamactl.api.audit_trail import AuditTrail
from llamactl.api.auth import authorize
from llamactl.api.compression import CompressFixedBodies
from llamactl.api.docs_page import install_docs_page
from llamactl.api.errors import install_error_handlers
from llamactl.api.head_checks import HeadChecks
from llamactl.api.middleware import HeadAsGet, JsonBodies, RateLimits
from llamactl.api.openapi import install_openapi
from llamactl.api.request_guard import RequestGuard, SecurityHeaders
from llamactl.api.request_id import RequestIds
from llamactl.api.request_metrics import RequestMetrics
from llamactl.api.routes import activity as activity_routes
from llamactl.api.routes import audit as audit_routes
from llamactl.api.routes import auth as auth_routes
from llamactl.api.routes import backends as backends_routes
from llamactl.api.routes import config as config_routes
from llamactl.api.routes import estimate as estimate_routes
from llamactl.api.routes import events as events_routes
from llamactl.api.routes import history as history_routes
from llamactl.api.routes import instances, keys, pools, proxy, session, system, ws
from llamactl.api.routes import metrics as metrics_routes
from llamactl.api.routes import models as models_routes
from llamactl.config import ServerConfig, Settings
from llamactl.dashboard.page import install_dashboard
from llamactl.gateway.front_parts import FrontLimits
from llamactl.gateway.http_protocol import front_protocol
from llamactl.gateway.outside import GatewayOutside
from llamactl.monitoring.metrics import LlamactlMetrics
from llamactl.security.origin import OriginPolicy
from llamactl.services import origin_policy, running_services
from llamactl.version import package_version


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
    metrics = LlamactlMetrics(package_version())  # this app's own registry
    policy = origin_policy(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()
        app.state.closing = asyncio.Event()
        async with running_services(settings, config_path, metrics, policy) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="llamactl",
        version=package_version(),
        description="Create, run, watch and front llama.cpp model servers.",
        lifespan=lifespan,
        docs_url=None,  # our own /docs, from the package (api/docs_page.py)
        redoc_url=None,  # FastAPI's would load ReDoc from a CDN
        openapi_url="/openapi.json",
    )
    # Read by server_config: uvicorn believes X-Forwarded-* from these peers only.
    app.state.trusted_proxies = list(settings.server.trusted_proxies)
    app.state.server_settings = settings.server  # the front door's limits (server_config)
    install_error_handlers(app)
    public_paths = install_routes(app)
    install_middleware(app, settings, metrics, policy, public_paths)
    install_openapi(app)
    install_docs_page(app)
    install_dashboard(app)
    return app


def install_middleware(app: FastAPI, settings: Settings, metrics: LlamactlMetrics,
                       policy: OriginPolicy, public_paths: set[str]) -> None:
    """Innermost first: each one added wraps those before it."""
    # Innermost: it must see the scope the router writes the route into.
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(AuditTrail)  # issue 30: it too needs the route and the principal
    app.add_middleware(JsonBodies)
    # Inside the rate limits (a refused stranger still counts against its address), outside
    # everything that reads a body: credentials and sizes are judged on the head alone.
    app.add_middleware(HeadChecks, max_body_size=settings.server.max_body_size,
                       public_paths=public_paths)
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
    app.add_middleware(RequestIds)  # on every answer, refusals included
    # Outside all: it compresses the final answer (fixed bodies only, never a stream).
    app.add_middleware(CompressFixedBodies)
    # Outermost: every other part sees a HEAD as the GET it answers like.
    app.add_middleware(HeadAsGet)


def install_routes(app: FastAPI) -> set[str]:
    """Mount the routes; the paths of the ``/api`` routes that need no token."""
    public = APIRouter(prefix="/api")
    public.include_router(auth_routes.public)
    # Every route below needs a token when auth is on: the dependency sits on the router.
    api = APIRouter(prefix="/api", dependencies=[Depends(authorize)])
    for routes in (instances, proxy, auth_routes, session, keys, system, config_routes, ws,
                   events_routes, backends_routes, estimate_routes, activity_routes,
                   audit_routes, models_routes, pools, history_routes):
        api.include_router(routes.router)
    app.include_router(public)
    app.include_router(api)
    app.include_router(metrics_routes.router)  # /metrics, at the root where Prometheus looks
    return {public.prefix + route.path for route in auth_routes.public.routes
            if isinstance(route, APIRoute)}


def server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How uvicorn serves ``app``: every connection through llamactl's front door
    (gateway/http_protocol.py), which serves /v1 itself and hands the rest to uvicorn.
    ``llamactl serve`` and the tests' in-process server both use this.

    uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise, which let any
    local client pick the address its failed logins count against: forwarded headers count
    only from ``server.trusted_proxies``, and not at all when it is empty."""
    server: ServerConfig = app.state.server_settings
    limits = FrontLimits(header_timeout=server.header_timeout,
                         max_connections=server.max_connections)
    proxies: list[str] = getattr(app.state, "trusted_proxies", [])
    return uvicorn.Config(
        app, host=host, port=port, http=front_protocol(app, limits), access_log=False,
        timeout_graceful_shutdown=5, proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or [], **options,
    )
