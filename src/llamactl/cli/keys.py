"""``llamactl keys ...``: inference API keys, in one of two places, said on every call.

- With ``--url`` (on the command or before it): on that server, through ``/api/keys`` (an
  admin's token: ``llamactl login`` first). This works against a remote server.
- Else: in the local data dir, straight in its SQLite file (``--config``, ``--data-dir``), so
  that keys can be made before any server runs; a server on that data dir sees them at once.

``$LLAMACTL_URL`` alone does not send these commands to a server: a key made in the wrong
place is worse than a usage error, so the server is named on the command line.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from llamactl.cli.local_options import CONFIG_OPTION, DATA_DIR_OPTION, fail_with
from llamactl.cli.output import OUTPUT_OPTION, ROOT_TOKEN, ROOT_URL, echo_data, echo_table

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def keys() -> None:
    """Manage inference API keys for the OpenAI-compatible /v1 gateway.

    With --url, on that server through its API (log in as an admin first); without, in the
    local data dir (--config, --data-dir). Each command says on stderr which it used.

    \b
    Examples:
      llamactl keys create my-app
      llamactl keys create ci --instances llama-8b,qwen --expires 2026-12-31
      llamactl keys list
      llamactl keys revoke my-app
      llamactl keys list --url http://gpu-box:8080
    """


def where_options(command: F) -> F:
    """``--url``/``--token`` (a server) and ``--config``/``--data-dir`` (local files)."""
    for option in reversed([
        click.option("--url", default=None, help="Act on this server through its API "
                     "(default: the root's --url; without either, on the local data dir)."),
        click.option("--token", default=None, help="With --url: a JWT (default: the root's "
                     "--token, else $LLAMACTL_TOKEN, else the one 'llamactl login' saved)."),
        CONFIG_OPTION, DATA_DIR_OPTION, OUTPUT_OPTION,
    ]):
        command = option(command)
    return command


class Place:
    """Where the keys are: a server (``url``) or the local data dir."""

    def __init__(self, url: str | None, token: str | None, config_path: Path | None,
                 data_dir: Path | None) -> None:
        root = click.get_current_context().find_root().meta
        self.url: str | None = url or root.get(ROOT_URL)
        self.token: str | None = token or root.get(ROOT_TOKEN) or os.environ.get(
            "LLAMACTL_TOKEN") or None
        if self.url and (config_path or data_dir):
            raise click.UsageError("give either --url (keys on a server) or --config/"
                                   "--data-dir (keys in a local data dir), not both")
        if self.token and not self.url:
            raise click.UsageError("--token needs --url: without it, keys are local")
        self.config_path, self.data_dir = config_path, data_dir

    def run(self, remote: Callable[[Any], Any], local: Callable[[Any], Any]) -> Any:
        """``remote(client)`` on the server, or ``local(store)`` in the data dir, after
        saying which on stderr."""
        if self.url:
            from llamactl.cli.common import open_client, report
            from llamactl.client import LlamactlError

            with open_client(self.url, self.token) as client:
                click.echo(f"keys: on the server at {client.base_url}", err=True)
                try:
                    return remote(client)
                except LlamactlError as exc:
                    report(exc, had_token=client.token is not None)
        try:  # the data dir's code is the server's: not there with llamactl-client alone
            local_keys = importlib.import_module("llamactl.cli.keys_local")
        except ImportError:
            fail_with("keys without --url are kept in a local data dir, which needs the "
                      "server: pip install llamactl-server (or give --url)")
        return local_keys.run_local(self.config_path, self.data_dir, local)


def _with_expired(info: dict[str, Any]) -> dict[str, Any]:
    expires = info.get("expires_at")
    expired = bool(expires) and datetime.fromisoformat(
        str(expires).replace("Z", "+00:00")) <= datetime.now(UTC)
    return {**info, "expired": expired}


@keys.command("create")
@click.argument("name")
@click.option("--instances", help="Comma-separated instances the key may use (default: all).")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Expiry, UTC (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS).")
@where_options
def keys_create(name: str, instances: str | None, expires: datetime | None, url: str | None,
                token: str | None, config_path: Path | None, data_dir: Path | None,
                output: str) -> None:
    """Create a key and print it (the only time it is shown)."""
    place = Place(url, token, config_path, data_dir)
    allowed = [i.strip() for i in instances.split(",") if i.strip()] if instances else None
    expires_at = expires.replace(tzinfo=UTC) if expires else None

    def remote(client: Any) -> tuple[str, dict[str, Any]]:
        created = client.create_key(name, instances=allowed, expires_at=expires_at)
        return created.key, created.info.model_dump(mode="json")

    def local(store: Any) -> tuple[str, dict[str, Any]]:
        key, plaintext = store.create(name, allowed, expires_at)
        return plaintext, key.to_json()

    plaintext, info = place.run(remote, local)
    if output != "table":
        echo_data({"key": plaintext, "info": _with_expired(info)}, output)
    else:
        click.echo(plaintext)
    click.echo("store it now: it is not shown again", err=True)


@keys.command("list")
@click.option("-q", "--quiet", is_flag=True, help="Names only, one a line (for scripts).")
@where_options
def keys_list(quiet: bool, url: str | None, token: str | None, config_path: Path | None,
              data_dir: Path | None, output: str) -> None:
    """List keys (never the keys themselves)."""
    place = Place(url, token, config_path, data_dir)
    found: list[dict[str, Any]] = place.run(
        lambda client: [key.model_dump(mode="json") for key in client.list_keys()],
        lambda store: [key.to_json() for key in store.list()])
    listed = [_with_expired(info) for info in found]
    if quiet:
        for info in listed:
            click.echo(info["name"])
    elif output != "table":
        echo_data(listed, output)
    elif not listed:
        click.echo("no keys", err=True)
    else:
        echo_table(["NAME", "PREFIX", "INSTANCES", "EXPIRES", "LAST USED"],
                   [[info["name"], f"{info['prefix']}…", _scope(info), _expiry(info),
                     _moment(info["last_used_at"]) or "never"] for info in listed])


def _scope(info: dict[str, Any]) -> str:
    return ",".join(info["instances"]) if info["instances"] is not None else "all"


def _expiry(info: dict[str, Any]) -> str:
    when = _moment(info["expires_at"])
    if when is None:
        return "never"
    return f"{when} (expired)" if info["expired"] else when


def _moment(value: Any) -> str | None:
    """An RFC 3339 instant as a person reads it, in UTC to the minute."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime(
        "%Y-%m-%d %H:%M UTC")


@keys.command("revoke")
@click.argument("name")
@where_options
def keys_revoke(name: str, url: str | None, token: str | None, config_path: Path | None,
                data_dir: Path | None, output: str) -> None:
    """Revoke a key; it stops working at once."""
    place = Place(url, token, config_path, data_dir)
    place.run(lambda client: client.revoke_key(name),
              lambda store: store.revoke(name))
    if output != "table":
        echo_data({"name": name, "revoked": True}, output)
    else:
        click.echo(f"revoked '{name}'")

