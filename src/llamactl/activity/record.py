"""One request on record: its fields, as the contract names them, and their SQLite row.

Built by whoever served the request (the /v1 exchange, the operator proxy) when its answer
ended, never before; handed to the ledger (ledger.py), which writes it off the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

PrincipalKind = Literal["user", "key", "anonymous"]

# The table's columns after ``seq``, in the order of ``Record.row``.
COLUMNS = (
    "id", "time", "kind", "method", "endpoint", "model", "instance", "node", "principal_kind",
    "principal_name", "status", "error_code", "stream", "cancelled", "prompt_tokens",
    "completion_tokens", "cached_tokens", "draft_tokens", "draft_accepted", "queue_ms",
    "ttft_ms", "duration_ms", "prompt_tps", "generation_tps", "client", "user_agent",
)
# The record's fields as the API answers them (principal folded into one object).
FIELDS = (
    "id", "time", "kind", "method", "endpoint", "model", "instance", "node", "principal",
    "status", "error_code", "stream", "cancelled", "prompt_tokens", "completion_tokens",
    "cached_tokens", "draft_tokens", "draft_accepted", "queue_ms", "ttft_ms", "duration_ms",
    "prompt_tps", "generation_tps", "client", "user_agent",
)
_BOOLEANS = frozenset({"stream", "cancelled"})


_last_second: tuple[int, str] = (-1, "")  # records come thousands a second: one strftime each


def rfc3339(epoch: float) -> str:
    """Microseconds, always: the text sorts as the time does (the ``time`` index)."""
    global _last_second
    seconds = int(epoch)
    micro = round((epoch - seconds) * 1_000_000)
    if micro == 1_000_000:
        seconds, micro = seconds + 1, 0
    cached, prefix = _last_second  # one tuple: read whole from either thread
    if cached != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, prefix)
    return f"{prefix}.{micro:06d}Z"


@dataclass(slots=True)
class Usage:
    """What an answer said of its work: ``None`` where it said nothing."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    draft_tokens: int | None = None
    draft_accepted: int | None = None
    prompt_tps: float | None = None
    generation_tps: float | None = None


@dataclass(slots=True)
class Record:
    id: str
    started: float  # time.time() at the request's arrival
    kind: Literal["v1", "proxy"]
    method: str
    endpoint: str
    principal_kind: PrincipalKind
    principal_name: str | None
    status: int
    model: str | None = None
    instance: str | None = None
    node: str | None = None
    error_code: str | None = None
    stream: bool = False
    cancelled: bool = False
    usage: Usage = field(default_factory=Usage)
    queue_ms: float | None = None
    ttft_ms: float | None = None  # these three unrounded until row()
    duration_ms: float | None = None
    client: str | None = None
    user_agent: str | None = None

    def row(self) -> tuple[Any, ...]:
        """Made on the store's writer thread (ledger.py): the times are rounded to the
        microsecond here, not on the request's path."""
        u = self.usage
        return (self.id, rfc3339(self.started), self.kind, self.method, self.endpoint,
                self.model, self.instance, self.node, self.principal_kind, self.principal_name,
                self.status, self.error_code, int(self.stream), int(self.cancelled),
                u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.draft_tokens,
                u.draft_accepted, _ms(self.queue_ms), _ms(self.ttft_ms), _ms(self.duration_ms),
                u.prompt_tps, u.generation_tps, self.client, self.user_agent)

    def to_json(self) -> dict[str, Any]:
        return from_row(self.row())


def from_row(row: tuple[Any, ...] | Any) -> dict[str, Any]:
    """A row of ``COLUMNS`` as the API's record."""
    values = dict(zip(COLUMNS, row, strict=True))
    document: dict[str, Any] = {}
    for name in FIELDS:
        if name == "principal":
            document[name] = {"kind": values["principal_kind"], "name": values["principal_name"]}
        elif name in _BOOLEANS:
            document[name] = bool(values[name])
        else:
            document[name] = values[name]
    return document


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def elapsed_ms(since: float, until: float | None = None) -> float:
    """Milliseconds between two ``time.perf_counter()`` readings, to the microsecond."""
    return round(((until if until is not None else time.perf_counter()) - since) * 1000, 3)
