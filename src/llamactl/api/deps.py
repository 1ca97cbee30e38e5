"""Dependencies the routes declare: the services built by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from llamactl.api.middleware import Limits
from llamactl.config import Settings
from llamactl.security.service import AuthService
from llamactl.supervisor.manager import InstanceManager


@dataclass
class Services:
    settings: Settings
    manager: InstanceManager
    auth: AuthService
    limits: Limits | None = None  # None: rate limiting is off


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_manager(request: Request) -> InstanceManager:
    return get_services(request).manager


def get_settings(request: Request) -> Settings:
    return get_services(request).settings


ManagerDep = Annotated[InstanceManager, Depends(get_manager)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
