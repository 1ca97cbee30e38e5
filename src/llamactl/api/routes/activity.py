"""``/api/activity``: the requests on record (issue 30): a page, a summary, an export.

Admins and operators see every record; a viewer sees only the requests made with its own
token, whatever its filters ask. Bad filters are 400 ``VALIDATION_ERROR`` naming the
parameter. The export streams page after page (``EXPORT_PAGE`` records each), so that its
memory stays flat however many records it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from llamactl.activity.queries import (
    CSV_HEADER,
    ActivityFilter,
    GroupBy,
    export_page,
    page,
    summary,
)
from llamactl.api.auth import PrincipalDep
from llamactl.api.deps import ServicesDep
from llamactl.api.system_schemas import error_responses
from llamactl.errors import StorageUnavailable
from llamactl.security.service import Principal
from llamactl.store.writer import StoreWriter

router = APIRouter(prefix="/activity", tags=["activity"],
                   responses=error_responses(400, 401, 403, 429, 500))
EXPORT_PAGE = 5000
FILTERS = ("instance", "model", "user", "key", "status", "since", "until", "limit", "before")
_FILTER_DOC = {
    "instance": "only this instance's records", "model": "only this model, as requested",
    "user": "only this user's requests", "key": "only this API key's requests",
    "status": "a status code (429) or a class (4xx)",
    "since": "RFC 3339: records that started then or later",
    "until": "RFC 3339: records that started before then",
    "limit": "records per page, 1 to 1000 (default 100)",
    "before": "the next cursor of the previous page",
}


class ActivityPrincipal(BaseModel):
    kind: Literal["user", "key", "anonymous"]
    name: str | None


class ActivityRecord(BaseModel):
    id: str = Field(description="the request's X-Request-ID")
    time: str = Field(description="when the request arrived (RFC 3339, UTC)",
                      json_schema_extra={"format": "date-time"})
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
    cancelled: bool = Field(description="the client left before the answer ended")
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    draft_tokens: int | None
    draft_accepted: int | None
    queue_ms: float | None = Field(description="waiting for a start, capacity or a slot")
    ttft_ms: float | None = Field(description="from arrival to the first byte of the body")
    duration_ms: float | None
    prompt_tps: float | None
    generation_tps: float | None
    client: str | None
    user_agent: str | None


class ActivityPage(BaseModel):
    items: list[ActivityRecord]
    next: str | None = Field(description="pass as before= for the next page; null: the last")


class ActivityGroup(BaseModel):
    group: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    ttft_ms_p50: float | None
    duration_ms_p50: float | None
    duration_ms_p95: float | None
    generation_tps_mean: float | None


class ActivitySummary(BaseModel):
    groups: list[ActivityGroup]


def activity_filter(request: Request, principal: Principal) -> ActivityFilter:
    params = {name: request.query_params.get(name) for name in FILTERS}
    query = ActivityFilter.parse(params)
    if principal.role == "viewer":
        return query.only_user(principal.name)
    return query


def _writer(services: ServicesDep) -> StoreWriter:
    ledger = services.ledger
    if ledger is None:
        raise StorageUnavailable("The activity ledger is not running")
    return ledger.writer


Text = Annotated[str | None, Query()]


@router.get("", response_model=ActivityPage, summary="List the requests on record",
            description="Newest first. " + "; ".join(f"`{k}`: {v}" for k, v in
                                                    _FILTER_DOC.items()) + ".")
async def list_activity(request: Request, services: ServicesDep, principal: PrincipalDep,
                        instance: Text = None, model: Text = None, user: Text = None,
                        key: Text = None, status: Text = None, since: Text = None,
                        until: Text = None, limit: Text = None,
                        before: Text = None) -> JSONResponse:
    query = activity_filter(request, principal)
    result = await _writer(services).read(lambda db: page(db, query))
    return JSONResponse(result)


@router.get("/summary", response_model=ActivitySummary,
            summary="Requests, errors, tokens and speeds by key, user, instance or model")
async def activity_summary(request: Request, services: ServicesDep, principal: PrincipalDep,
                           by: GroupBy = "key", since: Text = None, until: Text = None,
                           instance: Text = None, model: Text = None,
                           user: Text = None, key: Text = None) -> JSONResponse:
    query = activity_filter(request, principal)
    result = await _writer(services).read(lambda db: summary(db, by, query))
    return JSONResponse(result)


@router.get("/export", summary="Export the requests on record (CSV or JSON Lines)",
            description="The same filters as the list (`limit` and `before` aside); streamed. "
                        "CSV has a header row; JSON Lines one record per line.",
            responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}})
async def export_activity(request: Request, services: ServicesDep, principal: PrincipalDep,
                          format: Literal["csv", "jsonl"] = "jsonl", instance: Text = None,
                          model: Text = None, user: Text = None, key: Text = None,
                          status: Text = None, since: Text = None,
                          until: Text = None) -> StreamingResponse:
    query = activity_filter(request, principal)
    writer = _writer(services)
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        _export(writer, query, format), media_type=media,
        headers={"Content-Disposition": f'attachment; filename="activity.{format}"'})


async def _export(writer: StoreWriter, query: ActivityFilter,
                  format: str) -> AsyncIterator[bytes]:
    query = replace(query, limit=EXPORT_PAGE, before=None)
    if format == "csv":
        yield CSV_HEADER
    # The next page is read (on the writer's thread) while this one is sent: the two overlap,
    # and no more than two pages are held at once.
    pending = asyncio.ensure_future(writer.read(partial(export_page, query=query,
                                                        format=format)))
    try:
        while True:
            chunk, below = await pending
            if below is not None:
                query = replace(query, before=below)
                pending = asyncio.ensure_future(writer.read(partial(export_page, query=query,
                                                                    format=format)))
            yield chunk
            if below is None:
                return
    finally:
        pending.cancel()  # the client left: the read ahead is not wanted
        if pending.done() and not pending.cancelled():
            pending.exception()  # retrieved: a failed read ahead is no one's error now
