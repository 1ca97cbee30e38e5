"""The ``llamactl`` command. ``llamactl serve`` runs the API server.

Every call pays for what it imports before it does anything, ``--help`` included: so the
subcommands' modules (the HTTP client, the server, argon2) are imported only when that
subcommand runs (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llamactl.errors import StartupError

if TYPE_CHECKING:
    from llamactl.config import Settings

# name -> (module:attribute, one-line help for ``llamactl --help``), in the order shown.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "instances": ("llamactl.cli_instances:instances",
                  "Create, start, stop and watch instances on a llamactl server."),
    "system": ("llamactl.cli_system:system", "Status and facts of the llamactl server."),
    "config": ("llamactl.cli_system:config",
               "Read and change the server's configuration (changing it needs an admin)."),
    "login": ("llamactl.cli_system:login", "Log in and save the token for later commands."),
    "logout": ("llamactl.cli_system:logout", "Forget the token saved for a server."),
    "users": ("llamactl.cli_admin:users",
              "Manage API users (kept in the config file, passwords as argon2 hashes)."),
    "keys": ("llamactl.cli_admin:keys",
             "Manage inference API keys for the OpenAI-compatible /v1 gateway."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are used, not to list them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *SUBCOMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = SUBCOMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str()) for name, command in self.commands.items()]
        rows += [(name, summary) for name, (_, summary) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llamactl-server", prog_name="llamactl")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default=None,
              help="Output for every command below: json for programs (a command's own -o "
                   "wins).")
@click.pass_context
def main(ctx: click.Context, output: str | None) -> None:
    """llamactl: create, run, watch and front llama.cpp model servers."""
    from llamactl.cli_common import ROOT_OUTPUT

    ctx.meta[ROOT_OUTPUT] = output


@main.command()
@click.option("--host", help="Address to listen on (env LLAMACTL_HOST; default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port to listen on (env LLAMACTL_PORT; default 8080).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config file (env LLAMACTL_CONFIG; "
                   "default ~/.config/llamactl/config.yaml).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Database, logs and secrets (env LLAMACTL_DATA_DIR; "
                   "default ~/.local/share/llamactl).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str | None, port: int | None, config_path: Path | None,
          data_dir: Path | None, log_level: str) -> None:
    """Run the API server.

    \b
    Examples:
      llamactl serve
      llamactl serve --port 9000 --data-dir /srv/llamactl
      LLAMACTL_CONFIG=/etc/llamactl.yaml llamactl serve
    """
    from llamactl.config import load_settings
    from llamactl.serving import prepare_to_serve, run_server

    try:
        loaded = load_settings(
            config_path=config_path,
            overrides={"server.host": host, "server.port": port,
                       "data_dir": str(data_dir) if data_dir else None},
        )
        settings = loaded.settings
        _refuse_insecure(settings, loaded.config_path)
        # The data dir's lock, then the port, then the database: a second server, or one whose
        # port is taken, exits here having adopted, started and stopped nothing.
        prepared = prepare_to_serve(settings)
    except StartupError as exc:
        click.echo(f"llamactl: error: {exc.message}", err=True)
        sys.exit(2)
    where = loaded.config_path if loaded.config_file_exists else "none (built-in defaults)"
    click.echo(f"llamactl: config file: {where}", err=True)
    click.echo(f"llamactl: data dir: {settings.data_dir}", err=True)
    click.echo(f"llamactl: listening on http://{settings.server.host}:{settings.server.port}/api",
               err=True)
    run_server(settings, prepared, log_level, loaded.config_path)


def _refuse_insecure(settings: Settings, config_path: Path) -> None:
    from llamactl.config import startup_problem

    problem = startup_problem(settings)
    if problem is not None:
        raise StartupError(
            f"{problem}. Add the first admin with\n"
            f"  llamactl users add admin --role admin --config {config_path}\n"
            "or listen on 127.0.0.1 (the default)."
        )
