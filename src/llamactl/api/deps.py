"""Dependencies the routes declare: the services built by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from llamactl.activity.audit import AuditLog
from llamactl.activity.ledger import Ledger
from llamactl.api.middleware import Limits
from llamactl.config import Settings
from llamactl.config.editor import ConfigEditor
from llamactl.events import EventHub
from llamactl.gateway.service import Gateway
from llamactl.library.service import ModelLibrary
from llamactl.monitoring.metrics import LlamactlMetrics
from llamactl.monitoring.service import Monitoring
from llamactl.security.service import AuthService
from llamactl.supervisor.manager import InstanceManager


@dataclass
class Services:
    settings: Settings
    manager: InstanceManager
    auth: AuthService
    events: EventHub  # the one hub: owners publish, WebSocket clients subscribe
    monitoring: Monitoring  # host samples, uptime, versions; periodic stats and alerts
    metrics: LlamactlMetrics  # this app's Prometheus registry
    config_editor: ConfigEditor  # GET/PUT /api/config
    http: httpx.AsyncClient  # to the backends' /metrics and health (short requests)
    gateway: Gateway  # /v1 (served by the front door, gateway/http_protocol.py) and its pool
    library: ModelLibrary  # issue 33: the models on disk and the pulls from the Hub
    limits: Limits | None = None  # None: rate limiting is off
    ledger: Ledger | None = None  # issue 30: the requests on record (activity/)
    audit: AuditLog | None = None  # issue 30: who changed what (api/audit_trail.py)


# async, though they only read an attribute: FastAPI runs a plain ``def`` dependency in its
# thread pool, and three thread hops a request were most of a small /api answer's time.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_manager(request: Request) -> InstanceManager:
    services: Services = request.app.state.services
    return services.manager


async def get_settings(request: Request) -> Settings:
    services: Services = request.app.state.services
    return services.settings


def services_of(connection: HTTPConnection) -> Services:
    """The services, from a request or a WebSocket."""
    services: Services = connection.app.state.services
    return services


ManagerDep = Annotated[InstanceManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
