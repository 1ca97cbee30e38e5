"""How the commands print: ``-o/--output`` (after the command or before it), JSON for
programs, aligned tables for people. Imported by the root group, so it imports no pydantic
and no HTTP client: ``llamactl --help`` stays cheap."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ROOT_OUTPUT = "llamactl.output"  # where ``llamactl -o json ...`` leaves its choice
ROOT_URL = "llamactl.url"  # ``llamactl --url URL ...``
ROOT_TOKEN = "llamactl.token-option"  # noqa: S105 - where ``llamactl --token T`` is kept


def output_option(human: str = "table",
                  help: str = "for people; json for programs.") -> Callable[[F], F]:
    """``-o/--output [HUMAN|json]`` on a command. Left out, it follows the one given before
    the command (``llamactl -o json instances list``), else HUMAN."""

    def resolve(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
        if value is not None:
            return value
        return "json" if ctx.find_root().meta.get(ROOT_OUTPUT) == "json" else human

    return click.option("-o", "--output", type=click.Choice([human, "json"]), default=None,
                        callback=resolve, help=f"{human} (default) {help}")


OUTPUT_OPTION = output_option()


def as_json(value: Any) -> Any:
    """A client model (pydantic: it has ``model_dump``) or a list of them, as plain JSON."""
    if isinstance(value, list):
        return [as_json(item) for item in value]
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(as_json(value), indent=2))


def echoed_as_json(value: Any, output: str) -> bool:
    """The skeleton every reading command shares: with ``-o json`` print ``value`` as JSON
    and say so (the caller returns); else print nothing (the caller prints for people)."""
    if output != "json":
        return False
    echo_json(value)
    return True


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())
