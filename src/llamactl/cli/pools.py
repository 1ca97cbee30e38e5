"""``llamactl pools``: the replica pools (issue 32), their members and waiting requests,
through the API like ``llamactl instances``."""

from __future__ import annotations

import click

from llamactl.cli.common import ClientCommand, with_client
from llamactl.cli.output import OUTPUT_OPTION, echoed_as_data
from llamactl.client import Client, Pool

HEADER = (f"{'POOL':<20} {'MEMBER':<20} {'STATUS':<11} {'IN FLIGHT':>9} {'SLOTS':>5} "
          f"{'SLEEPING':<8} NODE")


def pool_lines(pool: Pool) -> list[str]:
    """The pool's line (min_running, waiting), then one line per member."""
    lines = [f"{pool.name:<20} {'':<20} {'':<11} {'':>9} {'':>5} {'':<8} "
             f"min_running={pool.min_running} waiting={pool.waiting}"]
    lines += [f"{'':<20} {m.name:<20} {m.status:<11} {m.in_flight:>9} {m.slots:>5} "
              f"{'yes' if m.sleeping else 'no':<8} {m.node or '-'}" for m in pool.members]
    return lines


@click.command(cls=ClientCommand)
@OUTPUT_OPTION
@with_client
def pools(client: Client, output: str) -> None:
    """Replica pools: their members, their load and the requests waiting.

    \b
    Examples:
      llamactl pools
      llamactl pools -o json
    """
    found = client.list_pools()
    if echoed_as_data([pool.model_dump(mode="json") for pool in found], output):
        return
    if not found:
        click.echo("No pools: give instances the same pool (llamactl instances create "
                   "--set pool=NAME) to make one.")
        return
    click.echo(HEADER)
    for pool in found:
        for line in pool_lines(pool):
            click.echo(line)
