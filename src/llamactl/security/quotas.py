"""Quotas per API key and per user (issue 30): how much each has used, and whether one more
request may go.

Usage is kept in memory, per principal: the requests and tokens of the last 60 s (a sliding
window of timestamps), and token totals for the current UTC day and month. It is rebuilt from
the ledger (the ``activity`` table) when llamactl starts, so that a restart forgets nothing,
then kept up to date by the ledger's observer (``observe``) as each request ends. A request
counts against ``requests_per_minute`` when it is admitted; its tokens count when its answer
has ended, so a request in flight may finish over a token limit.
"""

from __future__ import annotations

import collections
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llamactl.activity.record import Record, rfc3339

WINDOW_SECONDS = 60.0
WINDOWS = ("requests_per_minute", "tokens_per_minute", "tokens_per_day", "tokens_per_month")
Who = tuple[str, str]  # ("key" | "user", name)


@dataclass
class _Usage:
    requests: collections.deque[float] = field(default_factory=collections.deque)
    tokens: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    day: str = ""
    day_tokens: int = 0
    month: str = ""
    month_tokens: int = 0

    def trim(self, now: float) -> None:
        horizon = now - WINDOW_SECONDS
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.tokens.popleft()
        day, month = _day(now), _day(now)[:7]
        if self.day != day:
            self.day, self.day_tokens = day, 0
        if self.month != month:
            self.month, self.month_tokens = month, 0

    def add_tokens(self, moment: float, tokens: int) -> None:
        self.trim(time.time())
        if moment > time.time() - WINDOW_SECONDS:
            self.tokens.append((moment, tokens))
        if _day(moment) == self.day:
            self.day_tokens += tokens
        if _day(moment)[:7] == self.month:
            self.month_tokens += tokens


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


class QuotaBook:
    def __init__(self) -> None:
        self._usage: dict[Who, _Usage] = {}

    def load(self, db: sqlite3.Connection) -> None:
        """At boot (before the writer thread starts): this month's usage from the ledger."""
        now = time.time()
        month_start = datetime.fromtimestamp(now, UTC).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0)
        day_start = datetime.fromtimestamp(now, UTC).replace(
            hour=0, minute=0, second=0, microsecond=0)
        minute_ago = rfc3339(now - WINDOW_SECONDS)
        rows = db.execute(
            "SELECT principal_kind, principal_name, time >= ?, "
            "SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)) "
            "FROM activity WHERE time >= ? AND principal_kind IN ('key', 'user') "
            "GROUP BY 1, 2, 3", (rfc3339(day_start.timestamp()),
                                 rfc3339(month_start.timestamp())))
        for kind, name, today, tokens in rows:
            usage = self._of((kind, name), now)
            usage.month_tokens += tokens or 0
            if today:
                usage.day_tokens += tokens or 0
        recent_rows = db.execute(
            "SELECT principal_kind, principal_name, time, "
            "COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) FROM activity "
            "WHERE time >= ? AND principal_kind IN ('key', 'user') ORDER BY seq", (minute_ago,))
        for kind, name, moment, tokens in recent_rows:
            epoch = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
            usage = self._of((kind, name), now)
            usage.requests.append(epoch)
            usage.tokens.append((epoch, tokens))

    def _of(self, who: Who, now: float) -> _Usage:
        usage = self._usage.get(who)
        if usage is None:
            usage = self._usage[who] = _Usage()
        usage.trim(now)
        return usage

    def observe(self, record: Record) -> None:
        """The ledger's observer: a request has ended."""
        if record.principal_kind == "anonymous" or record.principal_name is None:
            return
        tokens = (record.usage.prompt_tokens or 0) + (record.usage.completion_tokens or 0)
        if tokens:
            self._of((record.principal_kind, record.principal_name), time.time()).add_tokens(
                record.started, tokens)

    def admit(self, who: Who, limits: dict[str, Any] | None) -> float | None:
        """None: the request may go (and counts); else the seconds until it could."""
        now = time.time()
        usage = self._of(who, now)
        if limits:
            wait = _retry_after(usage, limits, now)
            if wait is not None:
                return wait
        usage.requests.append(now)
        return None

    def report(self, who: Who, limits: dict[str, Any] | None) -> dict[str, Any]:
        """``{"limits", "used", "resets"}`` for the usage routes."""
        now = time.time()
        usage = self._of(who, now)
        used = _used(usage)
        resets = {
            "requests_per_minute": _rfc(usage.requests[0] + WINDOW_SECONDS
                                        if usage.requests else now),
            "tokens_per_minute": _rfc(usage.tokens[0][0] + WINDOW_SECONDS
                                      if usage.tokens else now),
            "tokens_per_day": _rfc(_next_day(now)), "tokens_per_month": _rfc(_next_month(now)),
        }
        return {"limits": {name: (limits or {}).get(name) for name in WINDOWS},
                "used": used, "resets": resets}


def _used(usage: _Usage) -> dict[str, int]:
    return {"requests_per_minute": len(usage.requests),
            "tokens_per_minute": sum(tokens for _, tokens in usage.tokens),
            "tokens_per_day": usage.day_tokens, "tokens_per_month": usage.month_tokens}


def _retry_after(usage: _Usage, limits: dict[str, Any], now: float) -> float | None:
    used = _used(usage)
    waits: list[float] = []
    rpm = limits.get("requests_per_minute")
    if rpm is not None and used["requests_per_minute"] >= rpm:
        waits.append(usage.requests[len(usage.requests) - rpm] + WINDOW_SECONDS - now)
    tpm = limits.get("tokens_per_minute")
    if tpm is not None and used["tokens_per_minute"] >= tpm:
        waits.append(_tokens_free(usage, tpm) + WINDOW_SECONDS - now)
    if (limits.get("tokens_per_day") or 0) and used["tokens_per_day"] >= limits["tokens_per_day"]:
        waits.append(_next_day(now) - now)
    month = limits.get("tokens_per_month")
    if month is not None and used["tokens_per_month"] >= month:
        waits.append(_next_month(now) - now)
    return max(waits) if waits else None


def _tokens_free(usage: _Usage, limit: int) -> float:
    """When enough of the window's tokens have left it for the total to fall under ``limit``."""
    total = sum(tokens for _, tokens in usage.tokens)
    for moment, tokens in usage.tokens:
        total -= tokens
        if total < limit:
            return moment
    return time.time()


def _next_day(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()


def _next_month(now: float) -> float:
    first = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0,
                                                      microsecond=0)
    return (first + timedelta(days=32)).replace(day=1).timestamp()


def _rfc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
