"""``llamactl activity`` and ``llamactl usage``: the requests on record (issue 30), through
the API like ``llamactl instances``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from llamactl.cli.common import ClientCommand, fail, with_client
from llamactl.cli.output import OUTPUT_OPTION, echo_json, echoed_as_data
from llamactl.client import ActivityRecord, Client

FOLLOW_SECONDS = 1.0
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str | None) -> datetime | None:
    """``30m``, ``2h``, ``7d`` (ago), or an RFC 3339 time."""
    if value is None:
        return None
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = relative.groups()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {value!r}: give 30m, 2h, 7d or an RFC 3339 time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_line(record: ActivityRecord) -> str:
    who = record.principal.kind if record.principal.name is None else (
        f"{record.principal.kind}:{record.principal.name}")
    tokens = "-" if record.completion_tokens is None else (
        f"{record.prompt_tokens or 0}+{record.completion_tokens}")
    ttft = "-" if record.ttft_ms is None else f"{record.ttft_ms:.0f}ms"
    took = "-" if record.duration_ms is None else f"{record.duration_ms:.0f}ms"
    status = f"{record.status}" + (f" {record.error_code}" if record.error_code else "")
    return (f"{record.time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}  {who:<18} "
            f"{(record.instance or record.model or '-'):<16} {record.endpoint:<24} "
            f"{status:<22} {tokens:>10} {ttft:>8} {took:>8}")


HEADER = (f"{'TIME':<20}  {'PRINCIPAL':<18} {'INSTANCE':<16} {'ENDPOINT':<24} "
          f"{'STATUS':<22} {'TOKENS':>10} {'TTFT':>8} {'DURATION':>8}")


@click.command(cls=ClientCommand)
@click.option("--instance", default=None, help="Only this instance's requests.")
@click.option("--key", default=None, help="Only this API key's requests.")
@click.option("--user", default=None, help="Only this user's requests.")
@click.option("--since", default=None, help="30m, 2h, 7d, or an RFC 3339 time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Then print each new request as it ends.")
@OUTPUT_OPTION
@with_client
def activity(client: Client, instance: str | None, key: str | None, user: str | None,
             since: str | None, limit: int, follow: bool, output: str) -> None:
    """The requests on record, newest last.

    \b
    Examples:
      llamactl activity --instance qwen --since 1h
      llamactl activity --key my-app -f
      llamactl activity -o json --since 2026-01-31T00:00:00Z
    """
    filters: dict[str, Any] = {"instance": instance, "key": key, "user": user,
                               "since": parse_since(since)}
    page = client.list_activity(limit=limit, **filters)
    records = list(reversed(page.items))
    if not follow and echoed_as_data(records, output):
        return
    if output == "table":
        click.echo(HEADER)
    _print(records, output)
    seen = {record.id for record in records}
    while follow:
        time.sleep(FOLLOW_SECONDS)
        fresh = [r for r in reversed(client.list_activity(limit=100, **filters).items)
                 if r.id not in seen]
        seen.update(r.id for r in fresh)
        _print(fresh, output)


def _print(records: list[ActivityRecord], output: str) -> None:
    for record in records:
        if output == "table":
            click.echo(record_line(record))
        else:
            echo_json(record.model_dump(mode="json"))


@click.command(cls=ClientCommand)
@click.option("--by", type=click.Choice(["key", "user", "instance", "model"]), default="key",
              show_default=True, help="What to group by.")
@click.option("--since", default=None, help="30m, 2h, 7d, or an RFC 3339 time.")
@OUTPUT_OPTION
@with_client
def usage(client: Client, by: str, since: str | None, output: str) -> None:
    """Requests, errors, tokens and speeds per key, user, instance or model.

    \b
    Examples:
      llamactl usage --by model --since 1d
      llamactl usage --by key -o json
    """
    groups = client.activity_summary(by, since=parse_since(since))
    if echoed_as_data(groups, output):
        return
    click.echo(f"{by.upper():<24} {'REQUESTS':>9} {'ERRORS':>7} {'PROMPT':>10} "
               f"{'COMPLETION':>11} {'TTFT P50':>9} {'P95':>9} {'TOK/S':>7}")
    for group in groups:
        click.echo(f"{group.group or '-':<24} {group.requests:>9} {group.errors:>7} "
                   f"{group.prompt_tokens:>10} {group.completion_tokens:>11} "
                   f"{_ms(group.ttft_ms_p50):>9} {_ms(group.duration_ms_p95):>9} "
                   f"{group.generation_tps_mean or 0:>7.1f}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"
