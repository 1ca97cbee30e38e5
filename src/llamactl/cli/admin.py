"""``llamactl users ...`` and ``llamactl keys ...``: work on the config file and the data dir
directly, so the first admin can be added before any server runs. A running server sees
user changes at once (it re-reads the file) and key changes at once (they are in SQLite)."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from llamactl.config import LoadedSettings, Settings, load_settings
from llamactl.config.file import update_config_file
from llamactl.errors import LlamactlError
from llamactl.security.passwords import hash_password
from llamactl.security.roles import ROLES

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (env LLAMACTL_CONFIG; default ~/.config/llamactl/config.yaml).",
)
MIN_PASSWORD_LENGTH = 8


def _loaded(config_path: Path | None) -> LoadedSettings:
    try:
        if config_path is not None and not config_path.exists():
            # `users add` may be what creates the file.
            return LoadedSettings(settings=Settings(), config_path=config_path,
                                  config_file_exists=False)
        return load_settings(config_path=config_path)
    except LlamactlError as exc:
        _fail(exc.message)


def _fail(message: str) -> NoReturn:
    click.echo(f"llamactl: error: {message}", err=True)
    sys.exit(1)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            _fail("the passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        _fail(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _users(document: dict[str, Any]) -> list[dict[str, Any]]:
    auth = document.setdefault("auth", {})
    users: list[dict[str, Any]] = auth.setdefault("users", [])
    return users


@click.group()
def users() -> None:
    """Manage API users (kept in the config file, passwords as argon2 hashes).

    \b
    Examples:
      llamactl users add admin --role admin
      echo "$PASSWORD" | llamactl users add ci --role operator --password-stdin
      llamactl users list
    """


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@CONFIG_OPTION
def users_add(username: str, role: str, password_stdin: bool, config_path: Path | None) -> None:
    """Add a user; the password is asked for without echo."""
    loaded = _loaded(config_path)
    if any(u.username == username for u in loaded.settings.auth.users):
        _fail(f"user '{username}' already exists (use 'llamactl users passwd')")
    entry = {"username": username, "password_hash": hash_password(_read_password(password_stdin)),
             "role": role}
    _update(loaded, lambda doc: _users(doc).append(entry))
    click.echo(f"added {role} '{username}' to {loaded.config_path}")


@users.command("list")
@CONFIG_OPTION
def users_list(config_path: Path | None) -> None:
    """List users and their roles."""
    for user in _loaded(config_path).settings.auth.users:
        click.echo(f"{user.username}\t{user.role}")


@users.command("remove")
@click.argument("username")
@CONFIG_OPTION
def users_remove(username: str, config_path: Path | None) -> None:
    """Remove a user; their tokens stop working at once."""
    loaded = _loaded(config_path)
    if not any(u.username == username for u in loaded.settings.auth.users):
        _fail(f"no user '{username}'")

    def remove(doc: dict[str, Any]) -> None:
        doc["auth"]["users"] = [u for u in _users(doc) if u.get("username") != username]

    _update(loaded, remove)
    click.echo(f"removed '{username}'")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@CONFIG_OPTION
def users_passwd(username: str, password_stdin: bool, config_path: Path | None) -> None:
    """Set a user's password; their old tokens stop working."""
    loaded = _loaded(config_path)
    if not any(u.username == username for u in loaded.settings.auth.users):
        _fail(f"no user '{username}'")
    new_hash = hash_password(_read_password(password_stdin))

    def change(doc: dict[str, Any]) -> None:
        for user in _users(doc):
            if user.get("username") == username:
                user["password_hash"] = new_hash

    _update(loaded, change)
    click.echo(f"password of '{username}' changed")


def _update(loaded: LoadedSettings, change: Any) -> None:
    try:
        update_config_file(loaded.config_path, change)
    except LlamactlError as exc:
        _fail(f"{exc.message}: {exc.details}")
    except OSError as exc:
        _fail(f"cannot write {loaded.config_path}: {exc.strerror}")


DATA_DIR_OPTION = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                               help="Data dir (env LLAMACTL_DATA_DIR).")


@click.group()
def keys() -> None:
    """Manage inference API keys for the OpenAI-compatible /v1 gateway.

    \b
    Examples:
      llamactl keys create my-app
      llamactl keys create ci --instances llama-8b,qwen --expires 2026-12-31
      llamactl keys list
      llamactl keys revoke my-app
    """


def _key_store(config_path: Path | None, data_dir: Path | None) -> Any:
    import os

    from llamactl.security.keys import KeyStore
    from llamactl.security.secret import load_secret
    from llamactl.services import prepare_data_dir

    try:
        overrides = {"data_dir": str(data_dir) if data_dir else None}
        settings = load_settings(config_path=config_path, overrides=overrides).settings
        connection = prepare_data_dir(settings)
        return KeyStore(connection, load_secret(settings.auth.secret, settings.data_dir,
                                                os.environ))
    except LlamactlError as exc:
        _fail(exc.message)


@keys.command("create")
@click.argument("name")
@click.option("--instances", help="Comma-separated instances the key may use (default: all).")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Expiry, UTC (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS).")
@CONFIG_OPTION
@DATA_DIR_OPTION
def keys_create(name: str, instances: str | None, expires: datetime | None,
                config_path: Path | None, data_dir: Path | None) -> None:
    """Create a key and print it (the only time it is shown)."""
    allowed = [i.strip() for i in instances.split(",") if i.strip()] if instances else None
    store = _key_store(config_path, data_dir)
    try:
        _, plaintext = store.create(name, allowed, expires.replace(tzinfo=UTC) if expires else None)
    except LlamactlError as exc:
        _fail(exc.message)
    click.echo(plaintext)
    click.echo("store it now: it is not shown again", err=True)


@keys.command("list")
@CONFIG_OPTION
@DATA_DIR_OPTION
def keys_list(config_path: Path | None, data_dir: Path | None) -> None:
    """List keys (never the keys themselves)."""
    for key in _key_store(config_path, data_dir).list():
        info = key.to_json()
        scope = ",".join(key.instances) if key.instances is not None else "*"
        expiry = "expired" if key.expired() else "expires"
        click.echo(f"{key.name}\t{key.prefix}…\t{scope}\t{expiry}={info['expires_at']}\t"
                   f"last_used={info['last_used_at']}")


@keys.command("revoke")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
def keys_revoke(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Revoke a key; it stops working at once."""
    try:
        _key_store(config_path, data_dir).revoke(name)
    except LlamactlError as exc:
        _fail(exc.message)
    click.echo(f"revoked '{name}'")
