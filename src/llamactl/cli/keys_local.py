"""``llamactl keys`` without ``--url``: the keys in a local data dir's SQLite file. The
server's half of keys.py (it opens the data dir as the server does), loaded only when used."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import llamactl.backends  # noqa: F401  (registers the backends' config sections)
from llamactl.cli.local_options import fail_with
from llamactl.config import load_settings
from llamactl.errors import LlamactlError
from llamactl.security.keys import KeyStore
from llamactl.security.secret import load_secret
from llamactl.services import prepare_data_dir


def run_local(config_path: Path | None, data_dir: Path | None,
              local: Callable[[KeyStore], Any]) -> Any:
    """``local(store)`` on the data dir's key store, after saying which dir on stderr."""
    store, where = _key_store(config_path, data_dir)
    click.echo(f"keys: in the local data dir {where} (give --url for a server's)", err=True)
    try:
        return local(store)
    except LlamactlError as exc:
        fail_with(exc.message, status=3 if exc.status_code == 404 else (
            4 if exc.status_code == 409 else 1))


def _key_store(config_path: Path | None, data_dir: Path | None) -> tuple[KeyStore, Path]:
    try:
        overrides = {"data_dir": str(data_dir) if data_dir else None}
        settings = load_settings(config_path=config_path, overrides=overrides).settings
        connection = prepare_data_dir(settings)
        secret = load_secret(settings.auth.secret, settings.data_dir, os.environ)
        return KeyStore(connection, secret), Path(settings.data_dir)
    except LlamactlError as exc:
        fail_with(exc.message)
