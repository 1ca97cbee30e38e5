"""``/api/instances/{name}/proxy/{path}``: llama-server's native endpoints, for operators.

The backend listens on loopback and wants the instance's API key; this route adds it, so the
only way to a model is through llamactl. Requests go through the /v1 gateway's upstream client
(gateway/pool.py), in its operator lane: a connection of their own per backend, so that
``/slots`` or ``/metrics`` of a busy instance answer at once rather than after the generations
they watch. Answers are relayed chunk by chunk (token streams included); a client that goes
away closes the upstream connection, which stops the backend's work.

A proxied request holds a lease on the instance, as a ``/v1`` request does, from before it is
sent until its answer has ended: an idle stop or an eviction waits for it instead of killing
its stream, and an instance used only through the proxy is not idle. The headers that cross,
the backend's key and the 502 follow the same rules as ``/v1`` (gateway/edge.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from llamactl.api.auth import PrincipalDep
from llamactl.api.deps import Services, ServicesDep
from llamactl.api.paths import INSTANCE_PARAMETER
from llamactl.errors import (
    InstanceNotRunning,
    LlamactlError,
    UpstreamUnavailable,
    ValidationFailed,
)
from llamactl.gateway import edge
from llamactl.gateway.activity_tap import RequestTap
from llamactl.gateway.upstream_call import Head, UpstreamCall, UpstreamError
from llamactl.security.roles import role_route
from llamactl.security.service import Principal
from llamactl.supervisor.leases import Lease

log = logging.getLogger(__name__)
router = APIRouter(tags=["instances"])

# Starlette frames the answer itself (chunked, or its own length)
_FRAMING = frozenset({b"content-length"})
CLIENT_GONE = 499


async def proxy(name: str, path: str, request: Request, services: ServicesDep,
                principal: PrincipalDep) -> Response:
    record = ProxyRecord(services, request, principal, name)
    try:
        return await _proxy(name, request, services, record)
    except LlamactlError as error:
        record.end(error.status_code, error.code)
        raise


class ProxyRecord:
    """The request on record (issue 30), ended once: when its answer ends or is refused."""

    def __init__(self, services: Services, request: Request, principal: Principal,
                 name: str):
        ledger = services.ledger
        self.tap = (RequestTap(ledger, "proxy")
                    if ledger is not None and ledger.enabled else None)
        if self.tap is not None:
            self.tap.instance = name
        self._request, self._principal = request, principal

    def end(self, status: int, error_code: str | None = None, *,
            cancelled: bool = False) -> None:
        tap, self.tap = self.tap, None
        if tap is None:
            return
        request = self._request
        tap.end(getattr(request.state, "request_id", ""), request.method, request.url.path,
                self._principal, status, error_code, cancelled,
                request.client.host if request.client else None, request.headers.raw)


async def _proxy(name: str, request: Request, services: Services,
                 record: ProxyRecord) -> Response:
    owner = services.manager.owner(name)
    lease = owner.lease_if_running()
    if lease is None:
        raise InstanceNotRunning(f"Instance '{name}' is {owner.status}, not running")
    try:
        call = UpstreamCall(services.gateway.pool, lease.port,
                            await _request_bytes(request, lease), lane="operator",
                            host=lease.host)
        try:
            head = await _answer_unless_gone(call, request)
        except UpstreamError as exc:
            raise UpstreamUnavailable(edge.not_answering(name, str(exc)), str(exc)) from None
    except BaseException:
        lease.release()
        raise
    if head is None:  # nginx's code for a client that closed before its answer
        lease.release()
        record.end(CLIENT_GONE, cancelled=True)
        return Response(status_code=CLIENT_GONE)
    status, raw_headers, event_stream = head
    if record.tap is not None:
        record.tap.leased(lease.host)
        record.tap.head(raw_headers, event_stream)

    def finish() -> None:
        call.close()
        lease.release()  # also when the stream never started (a client gone at once)
        record.end(status, cancelled=True)  # if the relay has not ended it

    headers = [(k, v) for k, v in raw_headers
               if edge.answer_header_kept(k, event_stream) and k not in _FRAMING]
    if event_stream:
        headers += edge.SSE_HEADERS
    answer = StreamingResponse(_relay(call, lease, record, status), status_code=status,
                               background=BackgroundTask(finish))
    answer.raw_headers = list(headers)
    return answer


async def _answer_unless_gone(call: UpstreamCall, request: Request) -> Head | None:
    """The answer's head, or None when the client goes first: a request queued for the
    operator lane's connection is then never sent, and its lease is given back at once
    (uvicorn does not cancel a route whose client has gone; it only says so to receive())."""
    answer = asyncio.ensure_future(call.answer())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((answer, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not answer.done():
            answer.cancel()  # closes the call: the pool forgets the waiter
    if answer.done() and not answer.cancelled():
        return answer.result()
    return None


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (its body has been read: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _relay(call: UpstreamCall, lease: Lease, record: ProxyRecord,
                 status: int) -> AsyncIterator[bytes]:
    ended = False
    try:
        async for chunk in call.body():
            if record.tap is not None:
                record.tap.body(chunk)
            yield chunk
        ended = True
    finally:
        call.close()  # a client gone mid-answer: dropping the connection stops the work
        lease.release()
        record.end(status, cancelled=not ended)


async def _request_bytes(request: Request, lease: Lease) -> bytes:
    """The request as the backend gets it, with the edge's headers and the backend's key."""
    target = b"/" + _raw_rest(request)
    query: bytes = request.scope.get("query_string", b"")
    if query:
        target += b"?" + query
    if any(byte <= 0x20 or byte == 0x7F for byte in target):
        raise ValidationFailed("Invalid path for the instance: it holds a control character")
    body = await request.body()
    head = [b"%s %s HTTP/1.1" % (request.method.encode(), target),
            b"host: %s:%d" % (lease.host.encode(), lease.port)]
    head += [name + b": " + value for name, value in edge.request_headers(request.headers.raw)]
    head += [b"%s: %s" % edge.ACCEPT_IDENTITY,
             b"authorization: " + edge.backend_authorization(lease.api_key),
             b"content-length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _raw_rest(request: Request) -> bytes:
    """The path after ``/proxy/`` as the client encoded it: decoded, a ``%09`` would become a
    tab that no request line may hold, and a ``%2F`` a new segment."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    # /api/instances/{name}/proxy/{rest}: a name holds no slash
    return raw.split(b"/", 5)[5] if raw.count(b"/") >= 5 else b""


for _method in ("GET", "POST", "PUT", "DELETE"):
    router.add_api_route(
        f"/instances/{INSTANCE_PARAMETER}/proxy/{{path:path}}", proxy, methods=[_method],
        operation_id=f"proxy_{_method.lower()}",
        summary="Call a native llama-server endpoint of a running instance",
        openapi_extra=role_route("operator"),
    )
