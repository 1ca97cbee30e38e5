"""``/api/instances/{name}/proxy/{path}``: llama-server's native endpoints, for operators.

The backend listens on loopback and wants the instance's API key; this route adds it, so the
only way to a model is through llamactl. Answers are relayed chunk by chunk (token streams
included); a client that goes away closes the upstream request.

A proxied request holds a lease on the instance, as a ``/v1`` request does, from before it is
sent until its answer has ended: an idle stop or an eviction waits for it instead of killing
its stream, and an instance used only through the proxy is not idle. The headers that cross,
the backend's key and the 502 follow the same rules as ``/v1`` (gateway/edge.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from llamactl.api.deps import ServicesDep
from llamactl.api.paths import INSTANCE_PARAMETER
from llamactl.errors import InstanceNotRunning, LlamactlError, ValidationFailed
from llamactl.gateway import edge
from llamactl.security.roles import role_route
from llamactl.supervisor.leases import Lease

log = logging.getLogger(__name__)
router = APIRouter(tags=["instances"])

PROXY_TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=60.0, pool=10.0)
# Starlette frames the answer itself (chunked, or its own length)
_FRAMING = frozenset({b"content-length"})


class UpstreamUnavailable(LlamactlError):
    status_code = 502
    code = "UPSTREAM_UNAVAILABLE"


async def proxy(name: str, path: str, request: Request,
                services: ServicesDep) -> StreamingResponse:
    owner = services.manager.owner(name)
    lease = owner.lease_if_running()
    if lease is None:
        raise InstanceNotRunning(f"Instance '{name}' is {owner.status}, not running")
    try:
        upstream = await _send(request, lease, name, services.http)
    except BaseException:
        lease.release()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:  # the backend went away mid-answer: end the stream
            log.warning("instance %s ended its proxied answer early: %s", name, exc)
        finally:
            lease.release()

    async def finish() -> None:
        await upstream.aclose()
        lease.release()  # also when the stream never started (a client gone at once)

    event_stream = edge.is_event_stream(upstream.headers.get("content-type", "").encode())
    headers = [(k, v) for k, v in upstream.headers.raw
               if edge.answer_header_kept(k.lower(), event_stream) and k.lower() not in _FRAMING]
    if event_stream:
        headers += edge.SSE_HEADERS
    answer = StreamingResponse(body(), status_code=upstream.status_code,
                               background=BackgroundTask(finish))
    answer.raw_headers = [(k.lower(), v) for k, v in headers]
    return answer


async def _send(request: Request, lease: Lease, name: str,
                client: httpx.AsyncClient) -> httpx.Response:
    headers = edge.request_headers(request.headers.raw)
    headers += [edge.ACCEPT_IDENTITY,
                (b"authorization", edge.backend_authorization(lease.api_key))]
    try:
        upstream_request = client.build_request(
            request.method, f"http://{lease.host}:{lease.port}/{_raw_rest(request)}",
            params=request.query_params, headers=headers, content=await request.body(),
            timeout=PROXY_TIMEOUT,
        )
    except httpx.InvalidURL as exc:
        raise ValidationFailed(f"Invalid path for the instance: {exc}") from None
    try:
        return await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(edge.not_answering(name, str(exc) or type(exc).__name__),
                                  str(exc)) from None


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
