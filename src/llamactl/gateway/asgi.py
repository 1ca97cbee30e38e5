"""``/v1`` as a pure ASGI layer in front of the FastAPI app.

The hot path of every inference request goes through here, so it skips FastAPI's routing and
dependency machinery: authenticate, find the instance by ``model``, take a lease (starting the
instance on demand), relay the request with the backend's key, and relay the answer chunk by
chunk as it arrives. A client that goes away cancels the upstream request, which frees the
backend's slot; an upstream that dies mid-answer ends the answer cleanly and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamactl.errors import LlamactlError
from llamactl.gateway.errors import GatewayError, from_domain, model_not_found
from llamactl.security.keys import KEY_PREFIX
from llamactl.security.service import ANONYMOUS, Principal
from llamactl.supervisor.leases import Lease
from llamactl.supervisor.owner import InstanceOwner

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
STALE_CONNECTION_RETRIES = 1
_DROP_REQUEST = {b"host", b"authorization", b"content-length", b"connection", b"keep-alive",
                 b"transfer-encoding", b"te", b"upgrade", b"accept-encoding",
                 b"proxy-authorization"}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                  "proxy-authenticate"}


class Gateway:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        tracked = _TrackedSend(send)
        try:
            await self._handle(scope["app"].state.services, scope, receive, tracked)
        except GatewayError as error:
            if not tracked.started:
                await _send_error(tracked, error)

    async def _handle(self, services: Any, scope: Scope, receive: Receive, send: Send) -> None:
        principal = _authenticate(services.auth, scope)
        manager = services.manager
        if scope["method"] == "GET" and scope["path"].rstrip("/") == "/v1/models":
            await _send_json(send, 200, _model_list(manager.owners(), principal))
            return
        if scope["method"] == "GET" and scope["path"].startswith("/v1/models/"):
            wanted = scope["path"][len("/v1/models/"):]
            found = [m for m in _model_list(manager.owners(), principal)["data"]
                     if m["id"] == wanted]
            if not found:
                raise model_not_found(wanted)
            await _send_json(send, 200, found[0])
            return
        body = await _read_body(receive)
        model = _model_of(body)
        owner: InstanceOwner | None = manager.resolve_model(model)
        if owner is None:
            raise model_not_found(model)
        if principal.key is not None and not principal.key.allows(owner.name):
            raise GatewayError(403, f"This API key may not use the model '{model}'",
                               "permission_error", "model_not_allowed")
        try:
            lease: Lease = await manager.acquire(owner.name)
        except LlamactlError as error:
            raise from_domain(error) from None
        try:
            await _relay_until_disconnect(services.upstream, owner.name, lease, scope, body,
                                          receive, send)
        finally:
            lease.release()


class _TrackedSend:
    """``send`` that remembers whether the answer has started (then no error page fits)."""

    def __init__(self, send: Send):
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _authenticate(auth: Any, scope: Scope) -> Principal:
    if not auth.enabled:
        return ANONYMOUS
    token = _bearer(scope)
    if token is None:
        raise GatewayError(401, "Missing API key: send Authorization: Bearer <key or token>",
                           "authentication_error", "invalid_api_key")
    if token.startswith(KEY_PREFIX):
        principal: Principal | None = auth.principal_for_key(token)
        if principal is None:
            raise GatewayError(401, "Invalid API key", "authentication_error", "invalid_api_key")
        return principal
    try:
        user: Principal = auth.principal_for_token(token)
    except LlamactlError as error:
        raise from_domain(error) from None
    return user


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


def _model_list(owners: list[InstanceOwner], principal: Principal) -> dict[str, Any]:
    key = principal.key
    return {"object": "list", "data": [
        {"id": o.name, "object": "model", "created": int(o.record.created_at.timestamp()),
         "owned_by": "llamactl", "status": o.status, "aliases": o.record.spec.aliases}
        for o in owners if key is None or key.allows(o.name)
    ]}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError(499, "client went away", "invalid_request_error", "disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise GatewayError(413, "Request body too large", "invalid_request_error",
                               "body_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _model_of(body: bytes) -> str:
    try:
        document = json.loads(body) if body else None
    except ValueError:
        raise GatewayError(400, "The request body is not valid JSON", "invalid_request_error",
                           "invalid_json") from None
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "You must provide a model parameter", "invalid_request_error",
                           "model_required")
    return model


async def _relay_until_disconnect(
    session: aiohttp.ClientSession, name: str, lease: Lease, scope: Scope, body: bytes,
    receive: Receive, send: Send,
) -> None:
    relay = asyncio.ensure_future(_relay(session, name, lease, scope, body, send))
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({relay, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relay, watcher):
            if not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if relay.done() and not relay.cancelled():
            relay.result()  # a GatewayError before the answer started goes to the client
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await relay  # the client left: closing the upstream answer cancels it


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _relay(
    session: aiohttp.ClientSession, name: str, lease: Lease, scope: Scope, body: bytes,
    send: Send,
) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"http://127.0.0.1:{lease.port}{scope['path']}" + (f"?{query}" if query else "")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
               if k not in _DROP_REQUEST}
    headers["Authorization"] = f"Bearer {lease.api_key}"
    for attempt in range(1 + STALE_CONNECTION_RETRIES):
        upstream_cm = session.request(scope["method"], url, data=body, headers=headers)
        try:
            upstream = await upstream_cm.__aenter__()
            break
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError):
            # A pooled keep-alive connection the backend closed as we reused it: the request
            # never reached it, so sending it again on a fresh connection is safe.
            if attempt == STALE_CONNECTION_RETRIES:
                raise GatewayError(502, f"Instance '{name}' closed the connection",
                                   "server_error", "upstream_unavailable") from None
        except aiohttp.ClientError as exc:
            raise GatewayError(502, f"Instance '{name}' did not answer: {exc}",
                               "server_error", "upstream_unavailable") from None
    try:
        await send({"type": "http.response.start", "status": upstream.status,
                    "headers": _response_headers(upstream)})
        try:
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("instance %s ended its answer early: %s", name, exc)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await upstream_cm.__aexit__(None, None, None)


def _response_headers(upstream: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in upstream.headers.items()
               if k.lower() not in _DROP_RESPONSE and not k.lower().startswith("access-control")]
    if upstream.headers.get("content-type", "").startswith("text/event-stream"):
        headers = [(k, v) for k, v in headers if k not in (b"cache-control", b"x-accel-buffering")]
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
    return headers


async def _send_json(send: Send, status: int, document: dict[str, Any]) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: GatewayError) -> None:
    body = error.body()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
