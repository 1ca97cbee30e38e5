"""``/api/ws``: the event feed. The work is in ``api/event_stream.py``."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from llamactl.api.auth import PrincipalDep
from llamactl.api.deps import services_of
from llamactl.api.event_stream import EventStream

router = APIRouter(tags=["events"])


@router.websocket("/ws")
async def events(websocket: WebSocket, principal: PrincipalDep) -> None:
    services = services_of(websocket)
    stream = EventStream(websocket, services.events, services.settings.events, services.metrics)
    if principal.role == "viewer":  # issue 30: a viewer sees only its own requests' records
        stream.only_user = principal.name
    await stream.serve()
