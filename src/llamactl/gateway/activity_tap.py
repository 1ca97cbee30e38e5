"""What a ``/v1`` exchange tells the ledger (activity/): the observer it calls as it goes.

The exchange (exchange.py) holds one ``RequestTap`` while the ledger is on and calls it at a
few points: the model and instance chosen, the lease taken, the answer's head, each piece of
its body (read as it passes, never held: activity/meter.py), and the end. The record is built
and handed over at the end only, when the answer's last byte went, the client left, or an
error was answered.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from llamactl.activity.ledger import Ledger
from llamactl.activity.meter import UsageMeter
from llamactl.activity.record import Record, Usage
from llamactl.security.service import Principal


class RequestTap:
    __slots__ = ("_arrived", "_first_byte", "_leased", "_ledger", "_started", "instance",
                 "kind", "meter", "model", "node")

    def __init__(self, ledger: Ledger, kind: Literal["v1", "proxy"] = "v1"):
        self._ledger = ledger
        self.kind = kind
        self._started = time.time()
        self._arrived = time.perf_counter()
        self._leased: float | None = None
        self._first_byte: float | None = None
        self.model: str | None = None
        self.instance: str | None = None
        self.node: str | None = None
        self.meter: UsageMeter | None = None

    def routed(self, model: str, instance: str) -> None:
        self.model, self.instance = model, instance

    def leased(self, host: str) -> None:
        self._leased = time.perf_counter()
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.node = host  # on Ray, the node's address is what names it here

    def head(self, headers: list[tuple[bytes, bytes]], event_stream: bool) -> None:
        json_body = False
        for name, value in headers:  # a loop, not any(genexpr): this runs per request
            if name == b"content-type":
                json_body = b"json" in value
                break
        self.meter = UsageMeter(event_stream=event_stream, json_body=json_body)

    def body(self, chunk: bytes) -> None:
        if self._first_byte is None:
            self._first_byte = time.perf_counter()
        if self.meter is not None:
            self.meter.feed(chunk)

    def end(self, request_id: str, method: str, path: str, principal: Principal,
            status: int, error_code: str | None, cancelled: bool, client: str | None,
            headers: list[tuple[bytes, bytes]]) -> None:
        # Per request, on the loop: the times stay unrounded here (Record.row rounds them,
        # on the store's writer thread), and the record is built positionally.
        meter = self.meter
        arrived = self._arrived
        leased, first_byte = self._leased, self._first_byte
        record = Record(
            request_id, self._started, self.kind, method, path, principal.kind,
            principal_name(principal), status, self.model, self.instance, self.node,
            error_code, meter is not None and meter.event_stream, cancelled,
            meter.usage() if meter is not None and not cancelled else Usage(),
            (leased - arrived) * 1000 if leased is not None else None,
            (first_byte - arrived) * 1000 if first_byte is not None else None,
            (time.perf_counter() - arrived) * 1000, client, header(headers, b"user-agent"))
        self._ledger.add(record)


def principal_name(principal: Principal) -> str | None:
    if principal.kind == "key":
        return principal.key.name if principal.key is not None else None
    return None if principal.kind == "anonymous" else principal.name


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")[:512]
    return None


def client_of(front: Any) -> str | None:
    """The client's address, as the front's connection knows it."""
    address = getattr(front, "client", None)
    if address is None:
        address = getattr(getattr(front, "protocol", None), "client", None)
    if isinstance(address, tuple | list) and address:
        return str(address[0])
    return address if isinstance(address, str) else None
