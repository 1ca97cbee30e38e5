"""How the command line shows one instance: ``instances get`` and the commands that answer
with an instance print it as aligned ``key  value`` lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from llamactl.cli.common import format_time, humanize_bytes, humanize_seconds
from llamactl.cli.output import coloured

if TYPE_CHECKING:
    from llamactl.client import Instance


def echo_instance(instance: Instance) -> None:
    rows: list[tuple[str, Any]] = [
        ("name", instance.name), ("status", coloured(instance.status)),
        ("model_path", instance.model_path), ("port", instance.port),
        ("pid", instance.pid if instance.pid is not None else "-"),
        ("options", inline(instance.options)),
        ("memory", humanize_bytes(instance.stats.memory_usage)),
        ("cpu", f"{instance.stats.cpu_usage:.1f}%"),
        ("uptime", humanize_seconds(instance.stats.uptime)),
        ("restart_count", instance.restart_count),
        ("last_error", instance.last_error or "-"),
        ("created_at", format_time(instance.created_at)),
        ("updated_at", format_time(instance.updated_at)),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


def inline(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
