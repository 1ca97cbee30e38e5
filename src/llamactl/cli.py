"""The ``llamactl`` command. ``llamactl serve`` runs the API server."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import FrameType

import click

from llamactl.cli_admin import keys, users
from llamactl.cli_instances import instances
from llamactl.cli_system import config, login, logout, system
from llamactl.config import Settings, load_settings, startup_problem
from llamactl.errors import StartupError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llamactl-server", prog_name="llamactl")
def main() -> None:
    """llamactl: create, run, watch and front llama.cpp model servers."""


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
    try:
        loaded = load_settings(
            config_path=config_path,
            overrides={"server.host": host, "server.port": port,
                       "data_dir": str(data_dir) if data_dir else None},
        )
        settings = loaded.settings
        _refuse_insecure(settings, loaded.config_path)
        _check_data_dir(settings)
    except StartupError as exc:
        click.echo(f"llamactl: error: {exc.message}", err=True)
        sys.exit(2)
    where = loaded.config_path if loaded.config_file_exists else "none (built-in defaults)"
    click.echo(f"llamactl: config file: {where}", err=True)
    click.echo(f"llamactl: data dir: {settings.data_dir}", err=True)
    click.echo(f"llamactl: listening on http://{settings.server.host}:{settings.server.port}/api",
               err=True)
    _run(settings, log_level, loaded.config_path)


def _refuse_insecure(settings: Settings, config_path: Path) -> None:
    problem = startup_problem(settings)
    if problem is not None:
        raise StartupError(
            f"{problem}. Add the first admin with\n"
            f"  llamactl users add admin --role admin --config {config_path}\n"
            "or listen on 127.0.0.1 (the default)."
        )


main.add_command(users)
main.add_command(keys)
# Client commands: they talk to a running llamactl over its API.
main.add_command(instances)
main.add_command(system)
main.add_command(config)
main.add_command(login)
main.add_command(logout)


def _check_data_dir(settings: Settings) -> None:
    from llamactl.app import prepare_data_dir

    prepare_data_dir(settings).close()


def _run(settings: Settings, log_level: str, config_path: Path) -> None:
    import uvicorn

    from llamactl.app import begin_shutdown, create_app, server_config

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: health checks every few seconds would drown the log.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    app = create_app(settings, config_path=config_path)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            begin_shutdown(app)
            super().handle_exit(sig, frame)

    Server(server_config(app, settings.server.host, settings.server.port,
                         log_level=log_level)).run()
