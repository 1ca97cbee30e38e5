"""The parts of llamactl's front door (gateway/http_protocol.py) that are not the connection
itself: its limits and the answers it refuses with, what a /v1 target is, and one /v1
request as an Exchange's ``Front``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Protocol

import httptools

from llamactl.gateway.edge import status_line
from llamactl.gateway.exchange import Exchange
from llamactl.gateway.routing import body_too_large
from llamactl.gateway.service import Gateway

MAX_HEAD_BYTES = 64 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _refusal(status: int, code: str, message: str, extra: bytes = b"") -> bytes:
    body = json.dumps({"error": message, "code": code}).encode()
    return (status_line(status) + b"content-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\nx-content-type-options: nosniff\r\n%b\r\n%b"
            % (len(body), extra, body))


TOO_MANY_CONNECTIONS = _refusal(503, "TOO_MANY_CONNECTIONS",
                                "Too many connections: try again later", b"retry-after: 1\r\n")
HEAD_TOO_LARGE = _refusal(431, "HEADERS_TOO_LARGE", "The request's head is over 64 KiB")
BAD_REQUEST = _refusal(400, "BAD_REQUEST", "Invalid HTTP request")


@dataclass(frozen=True)
class FrontLimits:
    header_timeout: float  # seconds for a request head to arrive whole
    max_connections: int


class Connection(Protocol):
    transport: asyncio.Transport

    def request_finished(self, request: V1Request, reusable: bool) -> None: ...

    def hold_reading(self, held: bool) -> None: ...


def started_gateway(app: Any) -> Gateway | None:
    """The app's /v1 gateway, once its lifespan has started it."""
    services = getattr(app.state, "services", None)
    gateway: Gateway | None = getattr(services, "gateway", None)
    return gateway


def v1_target(url: bytes) -> tuple[bytes, bytes] | None:
    """The target to send on and its raw path, for a target under /v1; None for any other."""
    if url.startswith(b"/v1"):
        raw_path = url.partition(b"?")[0]
        target = url
    elif url.startswith(b"http"):  # absolute-form, as a proxy may send it
        parsed = httptools.parse_url(url)
        raw_path, query = parsed.path or b"", parsed.query
        target = raw_path + b"?" + query if query else raw_path
    else:
        return None
    return (target, raw_path) if raw_path == b"/v1" or raw_path.startswith(b"/v1/") else None


class V1Request:
    """One /v1 request on a connection: its body as read, and the client's side of its
    exchange (gateway.exchange.Front)."""

    __slots__ = ("body", "complete", "exchange", "expect_continue", "keep_alive", "protocol",
                 "size", "too_large", "transport", "upload")
    exchange: Exchange

    def __init__(self, protocol: Connection, keep_alive: bool, expect_continue: bool,
                 upload: bool = False):
        self.protocol = protocol
        self.transport = protocol.transport
        self.keep_alive = keep_alive  # a shutdown sets it false
        self.expect_continue = expect_continue
        self.body: list[bytes] = []
        self.size = 0
        self.complete = False
        self.too_large = False
        self.upload = upload  # multipart/form-data: its body streams (gateway/upload.py)

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def begin_body(self) -> None:
        """Its exchange has been admitted: give it the body read so far, as its kind needs
        (a JSON body whole, a form upload's as it streams)."""
        exchange = self.exchange
        if self.too_large:
            exchange.fail(body_too_large(), reusable=False)
        elif self.upload:
            held, self.body = self.body, []
            exchange.begin_upload(held, ended=self.complete)
        elif self.complete:
            exchange.start(b"".join(self.body))
        if self.expect_continue and not self.complete and not exchange.finished:
            self.transport.write(_CONTINUE)

    def body_complete(self) -> None:
        """The body's last byte has been read (its exchange begun, the body within limits)."""
        if self.upload:
            self.exchange.upload_end()
        else:
            self.exchange.start(b"".join(self.body))

    def finish(self, *, reusable: bool) -> None:
        self.protocol.request_finished(self, reusable)

    def hold_reading(self, held: bool) -> None:
        self.protocol.hold_reading(held)
