"""One ``/v1`` request, from its last body byte to the end of its answer.

It runs from the callbacks of its two connections (the client's, gateway/http_protocol.py;
the backend's, gateway/pool.py): authenticate, find the instance (or pool member) by
``model``, take a lease, write the request with the backend's key, and relay the answer
piece by piece. A task exists only while a request waits (an on-demand start, capacity, a
pool's slot, a wake): so llamactl costs near a plain reverse proxy (bench/gateway.py). A
client that goes away drops the backend connection (llama-server stops generating); a
backend that dies mid-answer ends a chunked answer cleanly, closes a sized one, and is
logged; one that dies before answering a pool's request hands it on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from llamactl.backends import served_name
from llamactl.errors import LlamactlError
from llamactl.gateway import edge
from llamactl.gateway.activity_tap import client_of
from llamactl.gateway.capabilities import check_capability, check_pool_capability
from llamactl.gateway.errors import GatewayError, model_not_found, wait_failed
from llamactl.gateway.exchange_intake import RequestIntake
from llamactl.gateway.pool import BackendConnection, Framing
from llamactl.gateway.pool_route import PoolRoute
from llamactl.gateway.routing import (
    allowed_method,
    local_answer,
    method_not_allowed,
    model_of,
    with_model,
)
from llamactl.gateway.service import Front, Gateway
from llamactl.gateway.upload import Upload
from llamactl.request_ids import log_answer, request_id_from
from llamactl.security.service import ANONYMOUS, Principal
from llamactl.supervisor.leases import Lease
from llamactl.supervisor.owner import InstanceOwner

log = logging.getLogger(__name__)

STALE_CONNECTION_RETRIES = 1
_RESPONSE_DROP, _SSE_REPLACED = edge.RESPONSE_DROP, edge.SSE_REPLACED
_SSE_ADD = b"".join(name + b": " + value + b"\r\n" for name, value in edge.SSE_HEADERS)
_NOSNIFF = b"x-content-type-options: nosniff\r\n"  # on every answer, as on /api's


class Exchange(RequestIntake):
    # and RequestIntake's: "_admitting", "_principal", "_retries", "_task", "_upload"
    __slots__ = ("_answered", "_body", "_chunked", "_connection", "_failed_over", "_framing",
                 "_id_header", "_lease", "_name", "_out", "_pool", "_reusable", "_status",
                 "_tap", "finished", "front", "gateway", "headers", "http11", "method", "path",
                 "request_id", "scheme", "target")

    def __init__(self, gateway: Gateway, front: Front, method: str, target: bytes, path: str,
                 headers: list[tuple[bytes, bytes]], http11: bool, scheme: str = "http"):
        self.gateway, self.front, self.method, self.path = gateway, front, method, path
        self.target = target  # raw path and query, as the client sent them
        self.headers, self.http11, self.scheme = headers, http11, scheme
        self.finished = False
        # X-Request-ID on every answer and in its log line, as /api's (request_ids.py)
        self.request_id = request_id_from(headers)
        self._id_header = b"x-request-id: %b\r\n" % self.request_id.encode("ascii")
        self._principal: Principal = ANONYMOUS
        self._admitting: list[bytes] | None = None  # a key being looked up; the body held
        self._name = ""
        self._body = b""
        self._lease: Lease | None = None
        self._connection: BackendConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._retries = STALE_CONNECTION_RETRIES
        self._failed_over = False  # a pool's request sent to a member that died with it
        self._answered = False  # the answer's head went to the client
        self._framing = Framing.LENGTH
        self._chunked = False  # the answer goes to the client in chunks of our own
        self._reusable = True
        self._out: list[bytes] = []  # the answer read so far and not yet written
        self._status = 0  # the answer's, once known
        self._tap = gateway.tap()  # issue 30: the request on record, when it ends
        self._upload: Upload | None = None  # a form upload's body (exchange_intake.py)
        self._pool: PoolRoute | None = None  # issue 32: the model named a replica pool

    # the request: admit() and a form upload's steps are RequestIntake's
    def start(self, body: bytes) -> None:
        """The whole request has arrived."""
        if self._admitting is not None:  # routed once the key is known
            self._admitting.append(body)
            return
        try:
            self._route(body)
        except GatewayError as error:
            self.fail(error)
        except Exception:
            log.exception("gateway: %s %s failed (request_id=%s)", self.method, self.path,
                          self.request_id)
            self.fail(GatewayError(500, "Internal error", "server_error", "internal_error"))

    def _route(self, body: bytes) -> None:
        gateway = self.gateway
        principal = self._principal  # admit() found it from the head
        allowed = allowed_method(self.path)
        if self.method != allowed:
            raise method_not_allowed(allowed)
        if allowed == "GET":  # the model list is llamactl's to answer
            self._answer_json(200, local_answer(self.path, gateway.manager.owners(), principal,
                                                gateway.manager.pools))
            return
        model = model_of(body)
        if model in gateway.manager.pools:  # never an instance's name: issue 32
            self._route_pool(model, body)
            return
        owner = self._owner_for(model)
        served = served_name(owner.record)
        self._body = body if served is None or served == model else with_model(body, served)
        self._lease_or_wait(owner)

    def _owner_for(self, model: str) -> InstanceOwner:
        """The instance ``model`` names, if the caller may use it for this route."""
        principal = self._principal  # admit() found it from the head
        owner = self.gateway.manager.resolve_model(model)
        if self._tap is not None:
            self._tap.model, self._tap.instance = model, owner.name if owner else None
        if owner is None:
            raise model_not_found(model)
        if principal.key is not None and not principal.key.allows(owner.name):
            raise GatewayError(403, f"This API key may not use the model '{model}'",
                               "permission_error", "model_not_allowed")
        check_capability(self.path, owner)  # before any on-demand start (issue 31)
        self._name = owner.name
        return owner

    def _lease_or_wait(self, owner: InstanceOwner) -> None:
        lease = owner.lease_if_running()
        if lease is not None:
            self._leased(lease)
        else:
            self._task = self.gateway.spawn(self._acquire(owner.name))

    def _route_pool(self, pool: str, body: bytes) -> None:
        """A pool's name (issue 32): a member chosen now, or once one has a free slot."""
        gateway = self.gateway
        check_pool_capability(self.path, pool, gateway.manager.pools.members(pool))
        route = self._pool = PoolRoute.of(gateway.manager.pools, gateway.auth, self._principal,
                                          pool, self.headers, body)
        self._name, self._body = pool, body
        if self._tap is not None:
            self._tap.model = pool
        lease = route.take()
        if lease is not None:
            self._leased(lease)
        else:
            self._task = gateway.spawn(self._acquire(pool, route.acquire()))

    async def _acquire(self, name: str, waiting: Awaitable[Lease] | None = None) -> None:
        """Wait for the instance: started on demand, or room made for it within the limits;
        or for a pool's member. At most gateway.max_wait, then 503 timeout."""
        try:
            async with asyncio.timeout(self.gateway.max_wait):
                lease = await (waiting or self.gateway.acquire(name, self._principal))
        except asyncio.CancelledError:
            self._cancelled()
            raise
        except Exception as error:
            self._task = None
            if not isinstance(error, TimeoutError | LlamactlError):
                log.exception("gateway: waiting for instance %s failed", name)
            self.fail(wait_failed(error, self.gateway.max_wait))
            return
        self._task = None
        if self.finished:  # the client left meanwhile
            lease.release()
            return
        self._leased(lease)

    def _cancelled(self) -> None:
        self._task = None
        if not self.finished:  # not the client leaving: llamactl is stopping
            self.fail(GatewayError(503, "llamactl is shutting down", "server_error",
                                   "shutting_down"), reusable=False)

    def _leased(self, lease: Lease) -> None:
        if lease.instance in self.gateway.manager.waker.asleep:  # vLLM's sleep: issue 32
            self._task = self.gateway.spawn(self._acquire(lease.instance,
                                                          self.gateway.woken(lease)))
            return
        self._lease = lease
        if self._pool is not None:  # the member chosen: named in logs and on record
            self._name = lease.instance
            self._body = self._pool.body_for(lease, self._body, self._upload)
        if self._tap is not None:
            self._tap.instance = self._name
            self._tap.leased(lease.host)
        # An upload cannot be sent again: never on a kept connection the backend may close.
        self.gateway.pool.checkout(lease.port, self, slots=lease.slots, host=lease.host,
                                   fresh=self._upload is not None)

    def _request(self, lease: Lease) -> bytes:
        parts = edge.request_head(self.method, self.target, self.headers, lease.host,
                                  lease.port, lease.api_key)
        if self._upload is None:
            parts += (b"content-length: %d\r\n\r\n" % len(self._body), self._body)
        else:
            parts.append(self._upload.head_end_and_held())  # the rest follows as it comes
        return b"".join(parts)

    # the backend connection (pool.ConnectionWaiter)
    def on_connection(self, connection: BackendConnection) -> None:
        if self.finished or self._lease is None:
            self.gateway.pool.release(connection, reusable=True)
            return
        self._connection = connection
        connection.send(self, self._request(self._lease))
        if self._upload is not None:
            self._upload.connected(connection)

    def on_connect_failed(self, error: str) -> None:
        if self._pool is not None and self._lease is not None and not self.finished:
            self._fail_over(self._pool, self._lease)  # not sent: the member is gone
            return
        self.fail(GatewayError(502, edge.not_answering(self._name, error),
                               "server_error", "upstream_unavailable"))

    def _fail_over(self, pool: PoolRoute, lease: Lease) -> None:
        self._lease = None
        self._task = self.gateway.spawn(self._acquire(self._name, pool.failover(lease)))

    # the answer (pool.AnswerSink)
    def on_head(self, status: int, headers: list[tuple[bytes, bytes]], framing: str,
                event_stream: bool) -> None:
        if self.finished:
            return
        self._answered = True
        self._framing = framing
        self._status = status
        if self._tap is not None:
            self._tap.head(headers, event_stream)
        parts = [edge.status_line(status)]
        for name, value in headers:
            if not (name in _RESPONSE_DROP or name.startswith(b"access-control-")
                    or (event_stream and name in _SSE_REPLACED)):  # edge.answer_header_kept
                parts.append(name + b": " + value + b"\r\n")
        if event_stream:
            parts.append(_SSE_ADD)
        if framing in (Framing.CHUNKED, Framing.CLOSE):
            if self.http11:
                self._chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self._reusable = False  # HTTP/1.0: the end of the body is the connection's
        if not (self.front.keep_alive and self._reusable):
            parts.append(b"connection: close\r\n")
        parts.append(self.gateway.cors_headers(self.headers))
        parts.append(self._id_header + _NOSNIFF + b"\r\n")
        self._out.append(b"".join(parts))

    def on_body(self, chunk: bytes) -> None:
        if self.finished or not chunk:
            return
        if self._tap is not None:
            self._tap.body(chunk)
        if self._chunked:
            # One chunk out for each piece read: relayed as it arrives, never held back.
            self._out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            self._out.append(chunk)

    def flush(self) -> None:
        if self._out:
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            if not self.finished:
                self.front.write(data)

    def on_end(self) -> None:
        self._connection = None
        if self.finished:
            return
        if self._chunked:
            self._out.append(b"0\r\n\r\n")
        self.flush()
        self._complete(reusable=self._reusable)

    def on_lost(self, connection: BackendConnection, error: str) -> None:
        self._connection = None
        if self.finished:
            return
        if not self._answered:
            if connection.requests > 1 and self._retries > 0 and self._lease is not None:
                # A pooled keep-alive connection the backend closed as we reused it: the
                # request did not reach it, so sending it again on a new one is safe.
                self._retries -= 1
                self.gateway.pool.checkout(self._lease.port, self, slots=self._lease.slots,
                                           fresh=True, host=self._lease.host)
                return
            if (self._pool is not None and self._lease is not None and not self._failed_over
                    and self._upload is None):
                # A pool's member that closed before a byte of answer died with the request (a
                # crash; a lost node's backend): nothing reached the client, so another member
                # takes it, once (a request that kills each member it reaches goes no further).
                self._failed_over = True  # its own budget: a stale kept connection's retry
                self._fail_over(self._pool, self._lease)  # may have come first (node loss)
                return
            self.fail(GatewayError(502, edge.not_answering(self._name, "it closed the connection"),
                                   "server_error", "upstream_unavailable"))
            return
        if self._framing != Framing.CLOSE:
            log.warning("instance %s ended its answer early: %s (request_id=%s)", self._name,
                        error, self.request_id)
            if not self._chunked:  # a sized answer cut short: only closing can tell
                self.flush()
                self._complete(reusable=False)
                return
        self.on_end()

    # the client
    def client_gone(self) -> None:
        """The client closed its connection: stop waiting, and stop the backend's work."""
        if self.finished:
            return
        self.finished = True
        # nginx's code for a client that closed the connection before its answer
        self.gateway.count(self._name, self._status or 499)
        log_answer(self.method, self.path, self._status or 499, self.request_id)
        self._on_record(cancelled=True)
        if self._task is not None:
            self._task.cancel()
        if self._connection is not None:
            self._connection.abort()
            self._connection = None
        elif self._lease is not None:
            self.gateway.pool.cancel(self._lease.port, self, host=self._lease.host)
        self._release_lease()

    def pause_answer(self) -> None:
        if self._connection is not None:
            self._connection.pause_reading()

    def resume_answer(self) -> None:
        if self._connection is not None:
            self._connection.resume_reading()

    # endings
    def fail(self, error: GatewayError, *, reusable: bool = True) -> None:
        if self.finished:
            return
        if self._answered:  # the answer has begun: no error page fits any more
            self.flush()
            self._complete(reusable=False)
            return
        self._status = error.status
        body = error.body_for(self.path)  # Anthropic's envelope on its routes
        head = [edge.status_line(error.status),
                b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)]
        head += [b"%s: %s\r\n" % (name.lower().encode(), value.encode())
                 for name, value in error.headers.items()]
        if error.status == 401:
            head.append(b"www-authenticate: Bearer\r\n")
        if not (self.front.keep_alive and reusable):
            head.append(b"connection: close\r\n")
        head.append(self.gateway.cors_headers(self.headers))
        # A HEAD's answer has the headers of the GET's and no body (RFC 9110 9.3.2).
        self.front.write(b"".join(head) + self._id_header + _NOSNIFF + b"\r\n"
                         + (b"" if self.method == "HEAD" else body))
        self._complete(reusable=reusable, error_code=error.code)

    def _answer_json(self, status: int, document: dict[str, Any]) -> None:
        self._status = status
        self.front.write(edge.json_answer(status, document, self.front.keep_alive,
                                          self.gateway.cors_headers(self.headers)
                                          + self._id_header + _NOSNIFF))
        self._complete(reusable=True)

    def _complete(self, *, reusable: bool, error_code: str | None = None) -> None:
        self.finished = True
        self.gateway.count(self._name, self._status)
        log_answer(self.method, self.path, self._status, self.request_id)
        self._on_record(cancelled=False, error_code=error_code)
        if self._connection is not None:
            self._connection.abort()
            self._connection = None
        self._release_lease()
        if self._upload is not None:
            self._upload.release()
        self.front.finish(reusable=reusable)

    def _on_record(self, *, cancelled: bool, error_code: str | None = None) -> None:
        tap, self._tap = self._tap, None
        if tap is not None:
            tap.end(self.request_id, self.method, self.path, self._principal,
                    self._status or 499, error_code, cancelled, client_of(self.front),
                    self.headers)

    def _release_lease(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
