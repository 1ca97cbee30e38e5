"""The request ledger's answers (issue 30): records, pages, summaries and quota usage, held
as the server documents them (tests/test_client_types.py), like every model in _models.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from llamactl.client._models import _Model

__all__ = ["ActivityGroup", "ActivityPage", "ActivityPrincipal", "ActivityRecord", "QuotaUsage"]


class ActivityPrincipal(_Model):
    kind: Literal["user", "key", "anonymous"]
    name: str | None


class ActivityRecord(_Model):
    """One ``/v1`` or proxy request on record (``list_activity``, ``request_completed``)."""

    id: str
    time: datetime
    kind: Literal["v1", "proxy"]
    method: str
    endpoint: str
    model: str | None
    instance: str | None
    node: str | None
    principal: ActivityPrincipal
    status: int
    error_code: str | None
    stream: bool
    cancelled: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    draft_tokens: int | None
    draft_accepted: int | None
    queue_ms: float | None
    ttft_ms: float | None
    duration_ms: float | None
    prompt_tps: float | None
    generation_tps: float | None
    client: str | None
    user_agent: str | None


class ActivityPage(_Model):
    items: list[ActivityRecord]
    next: str | None = Field(description="pass as before= for the next page; None: the last")


class ActivityGroup(_Model):
    group: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    ttft_ms_p50: float | None
    duration_ms_p50: float | None
    duration_ms_p95: float | None
    generation_tps_mean: float | None


class QuotaUsage(_Model):
    """A key's or user's quotas: each window's limit, what it holds, when it frees."""

    limits: dict[str, int | None]
    used: dict[str, int]
    resets: dict[str, datetime]
