"""How the commands print: ``-o/--output table|json|yaml`` (after the command or before it),
the same three words on every command; ``table`` is for people (aligned columns, or ``key
value`` lines for one thing), ``json`` and ``yaml`` for programs. Colour only on a terminal,
and never when ``NO_COLOR`` is set. Imported by the root group, so it imports no pydantic, no
yaml and no HTTP client: ``llamactl --help`` stays cheap."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ROOT_OUTPUT = "llamactl.output"  # where ``llamactl -o json ...`` leaves its choice
ROOT_URL = "llamactl.url"  # ``llamactl --url URL ...``
ROOT_TOKEN = "llamactl.token-option"  # noqa: S105 - where ``llamactl --token T`` is kept
OUTPUTS = ("table", "json", "yaml")
OUTPUT_HELP = "table (default) for people; json or yaml for programs."


def output_option(help: str = OUTPUT_HELP) -> Callable[[F], F]:
    """``-o/--output table|json|yaml`` on a command. Left out, it follows the one given
    before the command (``llamactl -o json instances list``), else table."""

    def resolve(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
        if value is not None:
            return value
        root: str | None = ctx.find_root().meta.get(ROOT_OUTPUT)
        return root or "table"

    return click.option("-o", "--output", type=click.Choice(OUTPUTS), default=None,
                        callback=resolve, help=help)


OUTPUT_OPTION = output_option()


def as_json(value: Any) -> Any:
    """A client model (pydantic: it has ``model_dump``) or a list of them, as plain JSON."""
    if isinstance(value, list):
        return [as_json(item) for item in value]
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(as_json(value), indent=2))


def echo_yaml(value: Any) -> None:
    import yaml  # here: only -o yaml pays for it

    click.echo(yaml.safe_dump(as_json(value), sort_keys=False, allow_unicode=True).rstrip())


def echo_data(value: Any, output: str) -> None:
    """``value`` as JSON (``-o json``) or YAML (anything else)."""
    if output == "json":
        echo_json(value)
    else:
        echo_yaml(value)


def echoed_as_data(value: Any, output: str) -> bool:
    """The skeleton every reading command shares: with ``-o json`` or ``-o yaml`` print
    ``value`` so and say so (the caller returns); else print nothing (the caller prints the
    table for people)."""
    if output == "table":
        return False
    echo_data(value, output)
    return True


def echo_line(value: Any, output: str, text: str) -> None:
    """One item of a stream (a log entry, an event): ``text`` for people, a JSON object a
    line with ``-o json``, a YAML document (after ``---``) with ``-o yaml``."""
    if output == "json":
        click.echo(json.dumps(as_json(value)))
    elif output == "yaml":
        click.echo("---")
        echo_yaml(value)
    else:
        click.echo(text)


def colour_on(stream: TextIO | None = None) -> bool:
    """Colour for ``stream`` (stdout by default): a terminal, and no ``NO_COLOR`` (any
    non-empty value turns colour off, as https://no-color.org says)."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


STATUS_COLOURS = {"running": "green", "failed": "red", "starting": "yellow",
                  "restarting": "yellow", "stopping": "yellow", "healthy": "green",
                  "unhealthy": "red", "error": "red", "warn": "yellow"}


def coloured(text: str, word: str | None = None, stream: TextIO | None = None) -> str:
    """``text`` in the colour of ``word`` (a status, a level; ``text`` itself by default)
    when colour is on; else ``text`` unchanged."""
    colour = STATUS_COLOURS.get(word if word is not None else text.strip())
    if colour is None or not colour_on(stream):
        return text
    return click.style(text, fg=colour)


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               status_column: int | None = None) -> None:
    """Aligned columns; the cells of ``status_column`` coloured by their value (padded
    first, so that the escape codes do not shift the columns)."""
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if status_column is not None and index > 0:
            padded[status_column] = coloured(padded[status_column], row[status_column])
        click.echo("  ".join(padded).rstrip())
