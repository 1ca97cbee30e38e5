"""Options and failure of the commands that act on this machine's files (``users``, and
``keys`` without ``--url``). Shipped with llamactl-client, so that ``keys`` is there for
``--url`` even where the server is not installed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (env LLAMACTL_CONFIG; default ~/.config/llamactl/config.yaml).",
)
DATA_DIR_OPTION = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                               help="Data dir (env LLAMACTL_DATA_DIR).")


def fail_with(message: str, status: int = 1) -> NoReturn:
    click.echo(f"llamactl: error: {message}", err=True)
    sys.exit(status)
