"""``llamactl serve``: settings, the refusals that exit with status 2, then the server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llamactl.errors import StartupError

if TYPE_CHECKING:
    from llamactl.config import Settings


@click.command()
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
    import llamactl.backends  # noqa: F401  (registers the backends' config sections)
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
        _require_parts(settings)
        # The data dir's lock, then the port, then the database: a second server, or one whose
        # port is taken, exits here having adopted, started and stopped nothing.
        prepared = prepare_to_serve(settings)
    except StartupError as exc:
        click.echo(f"llamactl: error: {exc.message}", err=True)
        sys.exit(2)
    where = loaded.config_path if loaded.config_file_exists else "none (built-in defaults)"
    click.echo(f"llamactl: config file: {where}", err=True)
    click.echo(f"llamactl: data dir: {settings.data_dir}", err=True)
    base = f"http://{settings.server.host}:{settings.server.port}"
    click.echo(f"llamactl: listening on {base}/api", err=True)
    click.echo(f"llamactl: dashboard at {base}/ (OpenAI-compatible API at {base}/v1)", err=True)
    run_server(settings, prepared, log_level, loaded.config_path)


def _require_parts(settings: Settings) -> None:
    """StartupError naming what to install when a part these settings need is missing: its
    absence is said, not a feature quietly off."""
    from llamactl.backends.llama_cpp.memory import require_gguf

    require_gguf()  # a dependency: only a broken install lacks it
    if settings.cluster.engine == "ray":  # issue 18: the [ray] extra must be installed
        from llamactl.cluster.settings import require_ray

        require_ray()


def _refuse_insecure(settings: Settings, config_path: Path) -> None:
    from llamactl.config import startup_problem

    problem = startup_problem(settings)
    if problem is not None:
        raise StartupError(
            f"{problem}. Add the first admin with\n"
            f"  llamactl users add admin --role admin --config {config_path}\n"
            "or listen on 127.0.0.1 (the default)."
        )
