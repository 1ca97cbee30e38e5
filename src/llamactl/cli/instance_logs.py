"""``llamactl instances health`` and ``llamactl instances logs``: what an instance says about
itself (the group is in instances.py)."""

from __future__ import annotations

import click

from llamactl.cli.common import ClientCommand, with_client
from llamactl.cli.completion import complete_instance_names
from llamactl.cli.output import OUTPUT_OPTION, coloured, echo_line, echoed_as_data
from llamactl.client import Client, LogEntry

LEVELS = click.Choice(["debug", "info", "warn", "error"])


@click.command("health", cls=ClientCommand)
@click.argument("name", shell_complete=complete_instance_names)
@OUTPUT_OPTION
@with_client
def instance_health(client: Client, name: str, output: str) -> None:
    """Check an instance's process, port and health endpoint.

    \b
    Examples:
      llamactl instances health qwen
      llamactl instances health qwen -o json
    """
    health = client.instance_health(name)
    if echoed_as_data(health, output):
        return
    checks = health.checks
    click.echo(f"{name}: {health.status} (process {checks.process}, port {checks.port}, "
               f"response {checks.response})")


@click.command("logs", cls=ClientCommand)
@click.argument("name", shell_complete=complete_instance_names)
@click.option("-n", "--lines", type=click.IntRange(0, 100_000), default=100,
              show_default=True, help="How many of the last entries to show.")
@click.option("--level", type=LEVELS, help="Minimum level (warn = warnings and errors).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries (Ctrl-C ends).")
@OUTPUT_OPTION
@with_client
def instance_logs(client: Client, name: str, lines: int, level: str | None, follow: bool,
                  output: str) -> None:
    """Show an instance's log, levels parsed from llama.cpp's output.

    \b
    Examples:
      llamactl instances logs qwen -n 20
      llamactl instances logs qwen --level warn
      llamactl instances logs qwen -f
      llamactl instances logs qwen -f -o json | jq -r .message

    With -o json each entry is one JSON object a line; with -o yaml one document each.
    """
    def show(entry: LogEntry) -> None:
        stamp = entry.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        level = coloured(f"{entry.level.upper():5}", entry.level)
        echo_line(entry, output, f"{stamp} {level} {entry.message}")

    if not follow:
        for entry in client.instance_logs(name, lines=lines, level=level):
            show(entry)
        return
    try:
        with client.follow_logs(name, lines=lines, level=level) as stream:
            # On stderr, once connected (as `llamactl events` does): a script can wait for it.
            click.echo(f"following the logs of {name} at {client.base_url}; Ctrl-C ends",
                       err=True)
            for entry in stream:
                show(entry)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops following: not an error
