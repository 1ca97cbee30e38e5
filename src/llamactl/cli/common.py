"""What the client commands (``instances``, ``system``, ``config``, ``login``) share: the
``--url``/``--token`` options, the stored login token, output as tables or JSON, a spinner for
long waits, and one place where client errors become a message and an exit status.

Built on ``llamactl.client`` only: these commands talk to a llamactl server over HTTP, like
any other client, and work against a remote one.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import click

from llamactl.atomic_file import atomic_write
from llamactl.cli.output import ROOT_TOKEN, ROOT_URL
from llamactl.client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    Client,
    ConflictError,
    LlamactlError,
    NotFoundError,
)
from llamactl.client._base import normalize_base_url

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_FILE_MODE = 0o600
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_PERIOD = 0.1

F = TypeVar("F", bound=Callable[..., Any])

# Exit statuses scripts can test (documented in docs/cli.md); 2 is click's usage error.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNREACHABLE = 5


def exit_status(exc: LlamactlError) -> int:
    """The exit status for a client error (a timeout counts as unreachable)."""
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, ConflictError):
        return EXIT_CONFLICT
    if isinstance(exc, APIConnectionError):
        return EXIT_UNREACHABLE
    return EXIT_ERROR


def fail(message: str, details: str | None = None, status: int = 1) -> NoReturn:
    click.echo(f"llamactl: error: {message}", err=True)
    for line in (details or "").splitlines():
        click.echo(f"  {line}", err=True)
    sys.exit(status)


def report(exc: LlamactlError, *, had_token: bool) -> NoReturn:
    """The contract's message and code, the details below, and a hint where one helps."""
    if isinstance(exc, APIError):
        details = exc.details if isinstance(exc.details, str) else (
            json.dumps(exc.details) if exc.details is not None else None)
        if isinstance(exc, AuthenticationError) and not had_token:
            details = "\n".join(filter(None, [details, "log in first: llamactl login"]))
        fail(f"{exc.message} ({exc.code})", details, status=exit_status(exc))
    fail(exc.message, status=exit_status(exc))


class ClientCommand(click.Command):
    """A command whose client errors end it with a message and an exit status
    (``exit_status``), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LlamactlError as exc:
            report(exc, had_token=bool(ctx.meta.get("llamactl.token")))


class ClientGroup(click.Group):
    command_class = ClientCommand


# -- the stored token ------------------------------------------------------------------------


def token_file() -> Path:
    """``$XDG_CONFIG_HOME/llamactl/token.json`` (``~/.config/...`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llamactl" / "token.json"


def _read_tokens() -> dict[str, Any]:
    try:
        document = json.loads(token_file().read_text())
    except (OSError, ValueError):
        return {}
    tokens = document.get("tokens") if isinstance(document, dict) else None
    return tokens if isinstance(tokens, dict) else {}


def token_key(base_url: str) -> str:
    """The key a server's token is saved under: ``localhost`` and ``127.0.0.1`` are one
    server, and so are ``host``, ``host:80`` (http) and ``host/api``."""
    parts = urlsplit(normalize_base_url(base_url))
    host = "127.0.0.1" if parts.hostname in ("localhost", "::1") else (parts.hostname or "")
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    netloc = host if port == default_port else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}"


def stored_token(base_url: str) -> str | None:
    tokens = _read_tokens()
    entry = tokens.get(token_key(base_url), tokens.get(base_url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) else None


def store_token(base_url: str, token: str | None, expires_at: str | None = None) -> Path:
    """Save (or with None, forget) the token for a server, atomically and with mode 0600, so
    no other user can read it at any moment and a crash never leaves half a file."""
    tokens = _read_tokens()
    tokens.pop(base_url, None)  # saved under the URL as typed by earlier releases
    if token is None:
        tokens.pop(token_key(base_url), None)
    else:
        tokens[token_key(base_url)] = {"token": token, "expires_at": expires_at}
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps({"tokens": tokens}, indent=2), mode=TOKEN_FILE_MODE)
    return path


# -- the client options ----------------------------------------------------------------------


def with_client(command: F) -> F:
    """Adds ``--url`` and ``--token`` and hands the command a ``Client`` as its first
    argument; a token the client refreshed on the way is saved for next time."""

    @click.option("--url", default=None, help="The llamactl server (default: the root's "
                  "--url, else $LLAMACTL_URL, else http://127.0.0.1:8080).")
    @click.option("--token", default=None, help="A JWT (default: the root's --token, else "
                  "$LLAMACTL_TOKEN, else the one 'llamactl login' saved for this URL).")
    @functools.wraps(command)
    def wrapper(*args: Any, url: str | None, token: str | None, **kwargs: Any) -> Any:
        root = click.get_current_context().find_root().meta
        # The command's own option, then the root's, then the environment.
        url = url or root.get(ROOT_URL) or os.environ.get("LLAMACTL_URL") or DEFAULT_URL
        token = token or root.get(ROOT_TOKEN) or os.environ.get("LLAMACTL_TOKEN") or None
        with open_client(url, token) as client:
            return command(client, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def open_client(url: str, token: str | None) -> Iterator[Client]:
    try:
        client = Client(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    saved = stored_token(client.base_url)
    client.token = token or saved
    click.get_current_context().meta["llamactl.token"] = client.token
    try:
        yield client
    finally:
        if saved is not None and token is None and client.token not in (None, saved):
            store_token(client.base_url, client.token)  # refreshed on the way
        client.close()


def parse_value(text: str) -> Any:
    """JSON when it parses (``4``, ``true``, ``null``, ``["a"]``), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=what)
        parsed[key.strip()] = parse_value(value)
    return parsed


def humanize_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def format_time(moment: datetime | None) -> str:
    """RFC 3339 in UTC with a ``Z``, as the API writes it."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def humanize_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# -- waiting ---------------------------------------------------------------------------------


@contextlib.contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner with the time waited, on stderr when it is a terminal (a log or a pipe
    gets nothing: carriage returns would only garble it)."""
    if not sys.stderr.isatty():
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def spin() -> None:
        for frame in itertools.cycle(SPINNER_FRAMES):
            elapsed = humanize_seconds(time.monotonic() - started)
            sys.stderr.write(f"\r{frame} {message} ({elapsed})")
            sys.stderr.flush()
            if done.wait(SPINNER_PERIOD):
                break
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()

    thread = threading.Thread(target=spin, name="llamactl-spinner", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
