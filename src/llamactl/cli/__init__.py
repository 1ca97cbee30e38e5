"""The ``llamactl`` command: the root group. ``serve`` (serve.py) runs the API server;
``instances``, ``system``, ``config``, ``login``, ``logout`` (instances.py, system.py),
``events`` and ``complete`` (watch.py) are clients of a running server; ``users`` (admin.py)
works on the config file, ``keys`` (keys.py) on the data dir or, with ``--url``, a server.
common.py holds what the client commands share, output.py how they print.

Every call pays for what it imports before it does anything, ``--help`` included: so the
subcommands' modules (the HTTP client, the server, argon2) are imported only when that
subcommand runs (``bench/cli_startup.py`` measures it).

The command belongs to the ``llamactl-client`` distribution; ``serve`` and ``users`` come with
``llamactl-server`` (clients/python/split.py), and are offered only where it is installed:
elsewhere, calling one says to install it (as ``keys`` does without ``--url``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from llamactl._version import __version__
from llamactl.cli.output import OUTPUTS, ROOT_OUTPUT, ROOT_TOKEN, ROOT_URL

# name -> (module:attribute, one-line help for ``llamactl --help``), in the order shown.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("llamactl.cli.serve:serve", "Run the API server."),
    "instances": ("llamactl.cli.instances:instances",
                  "Create, start, stop and watch instances on a llamactl server."),
    "system": ("llamactl.cli.system:system", "Status and facts of the llamactl server."),
    "config": ("llamactl.cli.system:config",
               "Read and change the server's configuration (changing it needs an admin)."),
    "login": ("llamactl.cli.system:login", "Log in and save the token for later commands."),
    "logout": ("llamactl.cli.system:logout", "Forget the token saved for a server."),
    "pools": ("llamactl.cli.pools:pools",
              "Replica pools: their members, their load and the requests waiting."),
    "events": ("llamactl.cli.watch:events",
               "Follow the server's events: status changes, stats and alerts."),
    "activity": ("llamactl.cli.activity:activity",
                 "The requests on record, newest last."),
    "usage": ("llamactl.cli.activity:usage",
              "Requests, errors, tokens and speeds per key, user, instance or model."),
    "models": ("llamactl.cli.models:models",
               "The models on the server's disk, and pulling more from the Hugging Face Hub."),
    "run": ("llamactl.cli.models:run",
            "Chat with a model: pull it if needed, create and start an instance of it."),
    "complete": ("llamactl.cli.watch:complete",
                 "Complete a prompt with an instance through the /v1 gateway, streaming it."),
    "users": ("llamactl.cli.admin:users",
              "Manage API users (kept in the config file, passwords as argon2 hashes)."),
    "keys": ("llamactl.cli.keys:keys",
             "Manage inference API keys for the OpenAI-compatible /v1 gateway."),
    "completion": ("llamactl.cli.completion:completion",
                   "Print the shell completion script for bash, zsh or fish."),
}


# The subcommands whose modules are the server's (llamactl-server), not the client's.
SERVER_SUBCOMMANDS = frozenset({"serve", "users"})
SERVER_MISSING = ("llamactl {name} is part of the server, which is not installed here: "
                  "pip install llamactl-server")


def _available(name: str) -> bool:
    """Whether the subcommand's module is installed (found without importing it)."""
    if name not in SERVER_SUBCOMMANDS:
        return True
    module = SUBCOMMANDS[name][0].partition(":")[0]
    return importlib.util.find_spec(module) is not None


def _server_missing(name: str) -> click.Command:
    """A stand-in for a server subcommand where llamactl-server is not installed."""

    @click.command(name, context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True, "help_option_names": []})
    def missing() -> None:
        click.echo(f"llamactl: error: {SERVER_MISSING.format(name=name)}", err=True)
        sys.exit(1)

    return missing


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are used, not to list them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *filter(_available, SUBCOMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        if not _available(cmd_name):
            return _server_missing(cmd_name)
        module, _, attribute = SUBCOMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str()) for name, command in self.commands.items()]
        rows += [(name, summary) for name, (_, summary) in SUBCOMMANDS.items()
                 if _available(name)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llamactl")
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default=None,
              help="Output for every command below: table for people, json or yaml for "
                   "programs (a command's own -o wins).")
@click.option("--url", default=None, help="The llamactl server, for every command below "
              "(a command's own --url wins; else $LLAMACTL_URL, else http://127.0.0.1:8080).")
@click.option("--token", default=None, help="A JWT for every command below (a command's own "
              "--token wins; else $LLAMACTL_TOKEN, else the one 'llamactl login' saved).")
@click.pass_context
def main(ctx: click.Context, output: str | None, url: str | None, token: str | None) -> None:
    """llamactl: create, run, watch and front llama.cpp model servers."""
    ctx.meta[ROOT_OUTPUT] = output
    ctx.meta[ROOT_URL] = url
    ctx.meta[ROOT_TOKEN] = token

