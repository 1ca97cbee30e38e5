"""``llamactl instances ...``: manage instances on a running llamactl through its API."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from llamactl.cli.common import (
    EXIT_ERROR,
    ClientGroup,
    humanize_seconds,
    parse_pairs,
    spinner,
    with_client,
)
from llamactl.cli.completion import complete_instance_names
from llamactl.cli.instance_logs import instance_health, instance_logs
from llamactl.cli.instance_view import echo_instance
from llamactl.cli.output import (
    OUTPUT_OPTION,
    coloured,
    echo_table,
    echoed_as_data,
)
from llamactl.client import (
    BatchResult,
    Client,
    InstanceChanges,
    InstanceFields,
    OperationResult,
)

# A file on this machine: the shell completes its path.
MODEL_FILE = click.Path(dir_okay=False)
OPTION_HELP = ("A llama-server option as KEY=VALUE, repeatable (--option context_size=4096 "
               "--option flash_attn=on); VALUE is JSON when it parses, else a string.")
SET_HELP = ("Another instance field as KEY=VALUE, repeatable (--set auto_restart=false "
            "--set idle_timeout=30 --set 'extra_args=[\"--mlock\"]').")


@click.group(cls=ClientGroup)
def instances() -> None:
    """Create, start, stop and watch instances on a llamactl server.

    Every command takes --url (env LLAMACTL_URL, default http://127.0.0.1:8080) and uses
    the token 'llamactl login' saved for that URL.

    \b
    Examples:
      llamactl instances create qwen --model ~/models/qwen2.5-0.5b.gguf --port 8081
      llamactl instances start qwen --wait
      llamactl instances list
      llamactl instances logs qwen -f
      llamactl instances stop qwen
      llamactl instances delete qwen
    """


@instances.command("list")
@OUTPUT_OPTION
@click.option("-q", "--quiet", is_flag=True, help="Names only, one a line (for scripts).")
@with_client
def list_instances(client: Client, output: str, quiet: bool) -> None:
    """List instances.

    \b
    Examples:
      llamactl instances list
      llamactl instances list -q | xargs -n1 llamactl instances stop --no-wait
      llamactl instances list --output json | jq -r '.[].name'
    """
    found = client.list_instances()
    if quiet:
        for instance in found:
            click.echo(instance.name)
        return
    if echoed_as_data(found, output):
        return
    # LAST ERROR: why a failed instance failed, e.g. llama-server's "invalid magic" (issue 27).
    echo_table(["NAME", "STATUS", "PORT", "PID", "UPTIME", "MODEL", "LAST ERROR"], [
        [i.name, i.status, i.port, i.pid or "-",
         humanize_seconds(i.stats.uptime) if i.pid else "-", i.model_path,
         i.last_error if i.status == "failed" and i.last_error else "-"]
        for i in found
    ], status_column=1)


@instances.command("get")
@click.argument("name", shell_complete=complete_instance_names)
@OUTPUT_OPTION
@with_client
def get_instance(client: Client, name: str, output: str) -> None:
    """Show one instance: settings, status, pid and resource use.

    \b
    Examples:
      llamactl instances get qwen
      llamactl instances get qwen -o json
    """
    instance = client.get_instance(name)
    if not echoed_as_data(instance, output):
        echo_instance(instance)


@instances.command("create")
@click.argument("name")
@click.option("--model", "model_path", required=True, type=MODEL_FILE,
              help="Path of the GGUF model file.")
@click.option("--port", type=click.IntRange(1024, 65535),
              help="Port for llama-server (default: a free one from instances.port_range).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help=OPTION_HELP)
@click.option("--set", "fields", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@OUTPUT_OPTION
@with_client
def create_instance(client: Client, name: str, model_path: str, port: int | None,
                    options: tuple[str, ...], fields: tuple[str, ...], output: str) -> None:
    """Create a (stopped) instance.

    \b
    Examples:
      llamactl instances create qwen --model ~/models/qwen.gguf
      llamactl instances create llama8b --model /models/llama-8b.gguf --port 8081 \\
          --option context_size=8192 --option gpu_layers=99 --set idle_timeout=30
    """
    extra: dict[str, Any] = parse_pairs(fields, "--set")
    if options:
        extra["options"] = parse_pairs(options, "--option")
    if port is not None:
        extra["port"] = port
    instance = client.create_instance(name, model_path, **cast(InstanceFields, extra))
    if not echoed_as_data(instance, output):
        click.echo(f"created {instance.name} on port {instance.port} (stopped)")


@instances.command("import")
@click.argument("name", shell_complete=complete_instance_names)
@click.argument("command", nargs=-1, required=True)
@click.option("--backend", default="llama_cpp", show_default=True,
              help="Whose command line it is: a backend the server lists (GET /api/backends).")
@OUTPUT_OPTION
@with_client
def import_instance(client: Client, name: str, command: tuple[str, ...], backend: str,
                    output: str) -> None:
    """Create a (stopped) instance from a command line you already run.

    \b
    Examples:
      llamactl instances import qwen -- llama-server -m ~/models/qwen.gguf -c 8192 -ngl 99
      llamactl instances import big --backend vllm -- vllm serve Qwen/Qwen2.5-7B-Instruct
    """
    words = list(command)
    imported = client.parse_command(shlex.join(words), backend)
    fields = imported.instance.model_dump()
    model_path = fields.pop("model_path")
    for word in imported.ignored:
        click.echo(f"ignored (llamactl sets it or cannot use it): {word}", err=True)
    instance = client.create_instance(name, model_path, **cast(InstanceFields, fields))
    if not echoed_as_data(instance, output):
        click.echo(f"created {instance.name} on port {instance.port} (stopped)")


@instances.command("update")
@click.argument("name", shell_complete=complete_instance_names)
@click.option("--model", "model_path", type=MODEL_FILE, help="A new model file.")
@click.option("--port", type=click.IntRange(1024, 65535), help="A new port.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help=OPTION_HELP + " KEY=null removes an option.")
@click.option("--set", "fields", multiple=True, metavar="KEY=VALUE",
              help=SET_HELP + " KEY=null returns a field to the config's default.")
@click.option("--restart", is_flag=True, help="Restart a running instance to apply it now.")
@OUTPUT_OPTION
@with_client
def update_instance(client: Client, name: str, model_path: str | None, port: int | None,
                    options: tuple[str, ...], fields: tuple[str, ...], restart: bool,
                    output: str) -> None:
    """Change an instance's settings (options are merged key by key).

    \b
    Examples:
      llamactl instances update qwen --option threads=8 --option context_size=4096
      llamactl instances update qwen --option flash_attn=null --restart
      llamactl instances update qwen --model ~/models/qwen-q8.gguf --set auto_restart=false
    """
    changes: dict[str, Any] = parse_pairs(fields, "--set")
    if options:
        changes["options"] = parse_pairs(options, "--option")
    if model_path is not None:
        changes["model_path"] = model_path
    if port is not None:
        changes["port"] = port
    if not changes:
        raise click.UsageError("nothing to change: give --model, --port, --option or --set")
    result = client.update_instance(name, restart=restart, **cast(InstanceChanges, changes))
    if echoed_as_data(result, output):
        return
    click.echo(f"updated {name}")
    if result.restart_required:
        click.echo(f"{name} is running on its old settings: "
                   f"llamactl instances restart {name} applies them")


@instances.command("delete")
@click.argument("name", shell_complete=complete_instance_names)
@OUTPUT_OPTION
@with_client
def delete_instance(client: Client, name: str, output: str) -> None:
    """Delete a stopped instance (its logs go with it).

    \b
    Examples:
      llamactl instances delete qwen
    """
    client.delete_instance(name)
    if not echoed_as_data({"name": name, "deleted": True}, output):
        click.echo(f"deleted {name}")


F = TypeVar("F", bound=Callable[..., Any])

# start, stop and restart wait the same way: by default, --no-wait to return at once.
WAIT_OPTION = click.option("--wait/--no-wait", default=True, show_default=True,
                           help="Return once it is done (running, or stopped), or fail with "
                                "the reason.")


def _timeout_option(default: str) -> Callable[[F], F]:
    return click.option("--timeout", type=click.FloatRange(min=0),
                        help=f"While waiting: give up after this many seconds ({default}).")


@instances.command("start")
@click.argument("name", shell_complete=complete_instance_names)
@WAIT_OPTION
@_timeout_option("default 600")
@OUTPUT_OPTION
@with_client
def start_instance(client: Client, name: str, wait: bool, timeout: float | None,
                   output: str) -> None:
    """Start an instance and wait until its model is loaded (--no-wait: return at once).

    \b
    Examples:
      llamactl instances start qwen
      llamactl instances start qwen --timeout 300
      llamactl instances start qwen --no-wait
    """
    with spinner(f"starting {name}") if wait else contextlib.nullcontext():
        result = client.start_instance(name, wait=wait, timeout=timeout)
    _echo_status(name, result, output)


@instances.command("stop")
@click.argument("name", shell_complete=complete_instance_names)
@click.option("--force", is_flag=True, help="SIGKILL at once instead of SIGTERM first.")
@click.option("--grace", type=click.FloatRange(min=0),
              help="Seconds between SIGTERM and SIGKILL (default: the server's stop_timeout).")
@WAIT_OPTION
@_timeout_option("default: the grace period + 30, at least 120")
@OUTPUT_OPTION
@with_client
def stop_instance(client: Client, name: str, force: bool, grace: float | None,
                  wait: bool, timeout: float | None, output: str) -> None:
    """Stop an instance and wait until it has stopped (--no-wait: return at once).

    \b
    Examples:
      llamactl instances stop qwen
      llamactl instances stop qwen --grace 5
      llamactl instances stop qwen --force --no-wait
    """
    with spinner(f"stopping {name}") if wait else contextlib.nullcontext():
        result = client.stop_instance(name, force=force, grace=grace, wait=wait,
                                      timeout=timeout)
    _echo_status(name, result, output)


@instances.command("restart")
@click.argument("name", shell_complete=complete_instance_names)
@WAIT_OPTION
@_timeout_option("default 600")
@OUTPUT_OPTION
@with_client
def restart_instance(client: Client, name: str, wait: bool, timeout: float | None,
                     output: str) -> None:
    """Restart an instance (stop, then start; a stopped one is just started) and wait until
    it serves again (--no-wait: return at once).

    \b
    Examples:
      llamactl instances restart qwen
      llamactl instances restart qwen --no-wait
    """
    with spinner(f"restarting {name}") if wait else contextlib.nullcontext():
        result = client.restart_instance(name, wait=wait, timeout=timeout)
    _echo_status(name, result, output)


def _echo_status(name: str, result: OperationResult, output: str) -> None:
    if not echoed_as_data({"name": name, **result.model_dump(mode="json")}, output):
        click.echo(f"{name} is {coloured(result.status)}")


instances.add_command(instance_health)
instances.add_command(instance_logs)


def _echo_batch(result: BatchResult, done: list[str], verb: str, output: str) -> None:
    """The result; then, when any instance failed, exit 1 so that a script notices."""
    if not echoed_as_data(result, output):
        click.echo(f"{verb}: {', '.join(done) or '-'}")
        click.echo(f"skipped: {', '.join(result.skipped) or '-'}")
        for failure in result.failed:
            click.echo(f"failed: {failure.name}: {failure.error}")
    if result.failed:
        sys.exit(EXIT_ERROR)


@instances.command("start-all")
@OUTPUT_OPTION
@with_client
def start_all(client: Client, output: str) -> None:
    """Start every stopped or failed instance.

    \b
    Examples:
      llamactl instances start-all
    """
    result = client.start_all()
    _echo_batch(result, result.started, "started", output)


@instances.command("stop-all")
@OUTPUT_OPTION
@with_client
def stop_all(client: Client, output: str) -> None:
    """Stop every running instance.

    \b
    Examples:
      llamactl instances stop-all
    """
    result = client.stop_all()
    _echo_batch(result, result.stopped, "stopping", output)
