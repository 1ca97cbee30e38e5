"""``/api/instances/{name}/proxy/{path}``: llama-server's native endpoints, for operators.

The backend listens on loopback and wants the instance's API key; this route adds it, so the
only way to a model is through llamactl. Answers are relayed chunk by chunk (token streams
included); a client that goes away closes the upstream request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from llamactl.api.deps import ManagerDep
from llamactl.api.paths import INSTANCE_PARAMETER
from llamactl.errors import InstanceNotRunning, LlamactlError, ValidationFailed
from llamactl.security.roles import role_route

router = APIRouter(tags=["instances"])

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length", "host",
               "authorization", "content-encoding"}
PROXY_TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=60.0, pool=10.0)


class UpstreamUnavailable(LlamactlError):
    status_code = 502
    code = "UPSTREAM_UNAVAILABLE"


async def proxy(name: str, path: str, request: Request, manager: ManagerDep) -> StreamingResponse:
    owner = manager.owner(name)
    if owner.status != "running":
        raise InstanceNotRunning(f"Instance '{name}' is {owner.status}, not running")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers["authorization"] = f"Bearer {owner.record.api_key}"
    client = manager.context.http
    try:
        upstream_request = client.build_request(
            request.method, f"http://127.0.0.1:{owner.port}/{_raw_rest(request)}",
            params=request.query_params, headers=headers, content=await request.body(),
            timeout=PROXY_TIMEOUT,
        )
    except httpx.InvalidURL as exc:
        raise ValidationFailed(f"Invalid path for the instance: {exc}") from None
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"Instance '{name}' did not answer", str(exc)) from None

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return  # the backend went away mid-answer: end the stream, do not raise

    answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
    if upstream.headers.get("content-type", "").startswith("text/event-stream"):
        answer_headers["X-Accel-Buffering"] = "no"
        answer_headers["Cache-Control"] = "no-cache"
    return StreamingResponse(body(), status_code=upstream.status_code, headers=answer_headers,
                             background=BackgroundTask(upstream.aclose))


def _raw_rest(request: Request) -> str:
    """The path after ``/proxy/`` as the client encoded it: decoded, a ``%09`` became a tab
    that no URL may hold (a 500, found by schemathesis), and a ``%2F`` a new segment."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    # /api/instances/{name}/proxy/{rest}: a name holds no slash
    return raw.split(b"/", 5)[5].decode("ascii", "replace") if raw.count(b"/") >= 5 else ""


for _method in ("GET", "POST", "PUT", "DELETE"):
    router.add_api_route(
        f"/instances/{INSTANCE_PARAMETER}/proxy/{{path:path}}", proxy, methods=[_method],
        operation_id=f"proxy_{_method.lower()}",
        summary="Call a native llama-server endpoint of a running instance",
        openapi_extra=role_route("operator"),
    )
