"""ASGI middleware counting HTTP requests by method, route template and status.

The label is the route's template (``/api/instances/{name}``), never the raw path, so the
number of series stays bounded whatever clients send; no route at all is ``unmatched``.
The router records the route it picked in the scope (``scope["route"]``), so this middleware
must sit inside any middleware that copies the scope (``JsonBodies`` does): app.py adds it
first. An included router's route carries its own path without the router prefixes
(``/instances/{name}``): the prefix is the part of the request path before what the route's
pattern matches.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.api.paths import INSTANCE_PARAMETER
from llamactl.monitoring.metrics import LlamactlMetrics

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: LlamactlMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what an exception that escapes the app becomes

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.http_request(scope["method"], route_template(scope), status)


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or pattern is None:
        return UNMATCHED
    path: str = scope["path"]
    template = template.replace(INSTANCE_PARAMETER, "{name}")  # the label as it always was
    # Shortest prefix first: "/api" + "/instances/{name}" for "/api/instances/x".
    for index, char in enumerate(path):
        if char == "/" and pattern.match(path[index:]):
            return path[:index] + template
    return template
