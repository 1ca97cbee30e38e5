"""``llamactl users ...``: works on the config file directly, so the first admin can be added
before any server runs; a running server sees the changes at once (it re-reads the file).
llamactl has no users API, so ``--url`` and ``--token`` are refused with the reason (they are
accepted by every command, and here they would otherwise mislead). ``keys`` is in keys.py.
"""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

import llamactl.backends  # noqa: F401  (registers the backends' config sections)
from llamactl.cli.local_options import CONFIG_OPTION, fail_with
from llamactl.cli.output import OUTPUT_OPTION, ROOT_TOKEN, ROOT_URL, echoed_as_data
from llamactl.config import LoadedSettings, Settings, load_settings
from llamactl.config.file import update_config_file
from llamactl.errors import LlamactlError
from llamactl.security.passwords import hash_password
from llamactl.security.roles import ROLES

MIN_PASSWORD_LENGTH = 8
F = TypeVar("F", bound=Callable[..., Any])


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
    fail_with(message)


def local_only(command: F) -> F:
    """``--url``, ``--token`` and ``-o`` as on every command; a server named is refused."""

    @click.option("--url", default=None, hidden=False,
                  help="Refused: users live in the config file of the server's machine.")
    @click.option("--token", default=None, help="Refused, as --url.")
    @OUTPUT_OPTION
    @functools.wraps(command)
    def wrapper(*args: Any, url: str | None, token: str | None, **kwargs: Any) -> Any:
        root = click.get_current_context().find_root().meta
        if url or token or root.get(ROOT_URL) or root.get(ROOT_TOKEN):
            raise click.UsageError(
                "users are kept in the config file on the server's machine and llamactl has "
                "no users API: run 'llamactl users ...' there, without --url/--token")
        return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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

    Always the local config file (--config, else $LLAMACTL_CONFIG, else
    ~/.config/llamactl/config.yaml): llamactl has no users API, so run these on the server's
    machine; --url is refused.

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
@local_only
def users_add(username: str, role: str, password_stdin: bool, config_path: Path | None,
              output: str) -> None:
    """Add a user; the password is asked for without echo."""
    loaded = _loaded(config_path)
    if any(u.username == username for u in loaded.settings.auth.users):
        _fail(f"user '{username}' already exists (use 'llamactl users passwd')")
    entry = {"username": username, "password_hash": hash_password(_read_password(password_stdin)),
             "role": role}
    _update(loaded, lambda doc: _users(doc).append(entry))
    if not echoed_as_data({"username": username, "role": role,
                           "config": str(loaded.config_path)}, output):
        click.echo(f"added {role} '{username}' to {loaded.config_path}")


@users.command("list")
@click.option("-q", "--quiet", is_flag=True, help="Names only, one a line (for scripts).")
@CONFIG_OPTION
@local_only
def users_list(quiet: bool, config_path: Path | None, output: str) -> None:
    """List users and their roles (of the local config file, named on stderr)."""
    loaded = _loaded(config_path)
    click.echo(f"users: in {loaded.config_path}", err=True)
    found = [{"username": u.username, "role": u.role} for u in loaded.settings.auth.users]
    if quiet:
        for user in found:
            click.echo(user["username"])
    elif not echoed_as_data(found, output):
        for user in found:
            click.echo(f"{user['username']}\t{user['role']}")


@users.command("remove")
@click.argument("username")
@CONFIG_OPTION
@local_only
def users_remove(username: str, config_path: Path | None, output: str) -> None:
    """Remove a user; their tokens stop working at once."""
    loaded = _loaded(config_path)
    if not any(u.username == username for u in loaded.settings.auth.users):
        _fail(f"no user '{username}'")

    def remove(doc: dict[str, Any]) -> None:
        doc["auth"]["users"] = [u for u in _users(doc) if u.get("username") != username]

    _update(loaded, remove)
    if not echoed_as_data({"username": username, "removed": True,
                           "config": str(loaded.config_path)}, output):
        click.echo(f"removed '{username}' from {loaded.config_path}")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@CONFIG_OPTION
@local_only
def users_passwd(username: str, password_stdin: bool, config_path: Path | None,
                 output: str) -> None:
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
    if not echoed_as_data({"username": username, "password_changed": True,
                           "config": str(loaded.config_path)}, output):
        click.echo(f"password of '{username}' changed in {loaded.config_path}")


def _update(loaded: LoadedSettings, change: Any) -> None:
    try:
        update_config_file(loaded.config_path, change)
    except LlamactlError as exc:
        _fail(f"{exc.message}: {exc.details}")
    except OSError as exc:
        _fail(f"cannot write {loaded.config_path}: {exc.strerror}")


