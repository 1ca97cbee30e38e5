"""``llamactl completion bash|zsh|fish``: the shell's completion script, from click's own
completion support (which completes commands, options and choices)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

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
