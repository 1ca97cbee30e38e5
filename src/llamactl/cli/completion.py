"""``llamactl completion bash|zsh|fish``: the shell's completion script, from click's own
completion support (which completes commands, options and choices), and the completions
that need the server (instance names)."""

from __future__ import annotations

import os

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")
# The environment variable click's completion scripts call the command back with.
COMPLETE_VAR = "_LLAMACTL_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    Examples:
      eval "$(llamactl completion bash)"          # in ~/.bashrc
      eval "$(llamactl completion zsh)"           # in ~/.zshrc
      llamactl completion fish > ~/.config/fish/completions/llamactl.fish
    """
    from llamactl.cli import main

    completer = get_completion_class(shell)
    if completer is None:  # click knows all three: only a future click could drop one
        raise click.UsageError(f"no completion for {shell}")
    click.echo(completer(main, {}, "llamactl", COMPLETE_VAR).source())


def _given(ctx: click.Context, name: str) -> str | None:
    """``--url``/``--token`` as typed so far on the command line, innermost first."""
    current: click.Context | None = ctx
    while current is not None:
        value = current.params.get(name)
        if isinstance(value, str) and value:
            return value
        current = current.parent
    return None


def complete_instance_names(ctx: click.Context, param: click.Parameter,
                            incomplete: str) -> list[CompletionItem]:
    """The server's instance names for a NAME argument, as kubectl completes pod names:
    one quick call with the URL and token the command would use; nothing when the server
    cannot be asked (completion never prints an error into the shell)."""
    from llamactl.cli.common import DEFAULT_URL, stored_token
    from llamactl.client import Client, LlamactlError

    url = _given(ctx, "url") or os.environ.get("LLAMACTL_URL") or DEFAULT_URL
    try:
        with Client(url, timeout=2.0, max_retries=0) as client:
            client.token = (_given(ctx, "token") or os.environ.get("LLAMACTL_TOKEN")
                            or stored_token(client.base_url))
            names = [instance.name for instance in client.list_instances()]
    except (LlamactlError, ValueError, OSError):
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]
