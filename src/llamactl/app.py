"""``create_app(settings)``: the FastAPI application, its services and their lifespan.

Services are built when the app starts (not at import), from the settings passed in, and torn
down when it stops: instances are stopped, or left running for adoption when
``instances.stop_on_shutdown`` is false.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import httpx
from fastapi import APIRouter, FastAPI

from llamactl.api.deps import Services
from llamactl.api.errors import install_error_handlers
from llamactl.api.middleware import JsonBodies
from llamactl.api.routes import instances, proxy
from llamactl.backends.llama_cpp import resolve_command
from llamactl.config import Settings
from llamactl.errors import StartupError
from llamactl.events import EventHub
from llamactl.store.database import open_database
from llamactl.store.instances import InstanceRepository
from llamactl.supervisor.context import OwnerContext
from llamactl.supervisor.manager import InstanceManager

log = logging.getLogger(__name__)

DISTRIBUTION = "llamactl-server"


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


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connection = prepare_data_dir(settings)
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)
        events = EventHub()
        context = OwnerContext(
            config=settings.instances,
            backend_command=lambda: resolve_command(settings.backends.llama_cpp),
            logs_dir=settings.logs_dir,
            repository=InstanceRepository(connection),
            events=events,
            http=http,
        )
        manager = InstanceManager(context, reserved_ports=[settings.server.port])
        manager.boot()
        app.state.services = Services(settings=settings, manager=manager)
        try:
            yield
        finally:
            await manager.shutdown(stop_instances=settings.instances.stop_on_shutdown)
            await http.aclose()
            connection.close()

    app = FastAPI(
        title="llamactl",
        version=package_version(),
        description="Create, run, watch and front llama.cpp model servers.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    app.add_middleware(JsonBodies)
    api = APIRouter(prefix="/api")
    api.include_router(instances.router)
    api.include_router(proxy.router)
    app.include_router(api)
    return app
