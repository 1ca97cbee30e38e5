"""``llamactl system ...``, ``llamactl config ...``, ``llamactl login`` and ``logout``: the
server-wide commands, through the API like ``llamactl instances``."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click
import yaml

from llamactl.cli.common import (
    DEFAULT_URL,
    ClientCommand,
    ClientGroup,
    fail,
    format_time,
    humanize_bytes,
    humanize_seconds,
    parse_pairs,
    store_token,
    with_client,
)
from llamactl.cli.output import (
    OUTPUT_OPTION,
    ROOT_TOKEN,
    ROOT_URL,
    echo_data,
    echoed_as_data,
    output_option,
)
from llamactl.client import Client, InstanceCounts


@click.group(cls=ClientGroup)
def system() -> None:
    """Status and facts of the llamactl server.

    \b
    Examples:
      llamactl system status
      llamactl system info -o json
    """


def counts_line(counts: InstanceCounts) -> str:
    """``3 (1 running, 1 stopped, 1 failed)``: failed always shown, since it is what one
    looks for; the passing states only when some instance is in them."""
    parts = [f"{counts.running} running", f"{counts.stopped} stopped", f"{counts.failed} failed"]
    parts += [f"{n} {state}" for n, state in ((counts.starting, "starting"),
                                              (counts.stopping, "stopping"),
                                              (counts.restarting, "restarting")) if n]
    return f"{counts.total} ({', '.join(parts)})"


@system.command("status")
@OUTPUT_OPTION
@with_client
def system_status(client: Client, output: str) -> None:
    """Version, uptime, instance counts and resource use.

    \b
    Examples:
      llamactl system status
      llamactl system status -o json
    """
    status = client.system_status()
    if echoed_as_data(status, output):
        return
    counts, resources = status.instances, status.resources
    click.echo(f"version    {status.version}")
    click.echo(f"uptime     {humanize_seconds(status.uptime)}")
    click.echo(f"instances  {counts_line(counts)}")
    click.echo(f"cpu        {resources.cpu_usage:.1f}%")
    click.echo(f"memory     {humanize_bytes(resources.memory_usage)} of "
               f"{humanize_bytes(resources.memory_total)}")
    click.echo(f"disk       {resources.disk_usage:.1f}%")
    for line in memory_lines(status.memory) + node_lines(status.nodes):
        click.echo(line)


def _ram_vram(pair: Any) -> str:
    """'RAM 1.0 GiB, VRAM 0 B'; a None side (not limited) left out."""
    parts = [f"{label} {humanize_bytes(value)}" for label, value in
             (("RAM", pair.ram), ("VRAM", pair.vram)) if value is not None]
    return ", ".join(parts)


def memory_lines(memory: Any) -> list[str]:
    """What instances claim against instances.memory_budget, and the budget when set."""
    if memory is None:
        return []
    lines = [f"claimed    {_ram_vram(memory.claimed)}"]
    budget = _ram_vram(memory.budget)
    if budget:
        lines += [f"budget     {budget}", f"free       {_ram_vram(memory.free)}"]
    return lines


def node_lines(nodes: Any) -> list[str]:
    """One line per Ray node (cluster.engine: ray): address, alive, its instances."""
    return [f"node       {node.address} {'alive' if node.alive else 'dead'} {node.id[:12]}: "
            f"{', '.join(node.instances) or 'no instances'}" for node in nodes or []]


@system.command("info")
@OUTPUT_OPTION
@with_client
def system_info(client: Client, output: str) -> None:
    """Host name, OS, architecture, CPUs, memory and llamactl's version.

    \b
    Examples:
      llamactl system info
      llamactl system info -o json
    """
    info = client.system_info()
    if echoed_as_data(info, output):
        return
    for key, value in (("hostname", info.hostname), ("os", info.os), ("arch", info.arch),
                       ("cpus", info.cpu_count), ("memory", humanize_bytes(info.memory_total)),
                       ("version", info.version), ("build_time", format_time(info.build_time))):
        click.echo(f"{key:<11}{value}")


@click.group(cls=ClientGroup)
def config() -> None:
    """Read and change the server's configuration (changing it needs an admin).

    \b
    Examples:
      llamactl config get
      llamactl config get instances.port_range
      llamactl config set rate_limit.regular_per_minute=200 instances.idle_timeout=30
      llamactl config set --file changes.yaml
    """


def _pick(document: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(document, dict) or part not in document:
            fail(f"no key {key!r} in the configuration")
        document = document[part]
    return document


# A configuration is a nested document, not a table: for people (-o table, the default) it
# is shown as YAML too, a scalar as itself.
CONFIG_OUTPUT_HELP = "table (default, a document shown as YAML) or yaml for people; json."


def _echo_document(value: Any, output: str) -> None:
    if output == "json" or isinstance(value, dict | list):
        echo_data(value, output)
    else:  # a scalar: YAML would add a "..." document end
        click.echo(value if isinstance(value, str) else json.dumps(value))


@config.command("get")
@click.argument("key", required=False)
@output_option(CONFIG_OUTPUT_HELP)
@with_client
def config_get(client: Client, key: str | None, output: str) -> None:
    """Show the effective configuration, or one dotted KEY of it (secrets as ***).

    \b
    Examples:
      llamactl config get
      llamactl config get rate_limit
      llamactl config get instances.port_range -o json
    """
    document = client.get_config()
    _echo_document(_pick(document, key) if key else document, output)


def _nest(pairs: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    document: dict[str, Any] = {}
    for dotted, value in pairs.items():
        *parents, last = dotted.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise click.BadParameter(f"{dotted!r} conflicts with another pair")
        node[last] = value
    return document


def _merge(into: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    for key, value in document.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _load_document(text: str, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)  # YAML is a superset of JSON: both are accepted
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"not YAML or JSON: {exc}", param_hint=where) from None
    if not isinstance(document, dict):
        raise click.BadParameter("the document must be a mapping", param_hint=where)
    return document


_PAIR = re.compile(r"^[A-Za-z0-9_.-]+=")


@config.command("set")
@click.argument("changes", nargs=-1)
@click.option("-f", "--file", "file", type=click.File("r"),
              help="A YAML or JSON document of changes ('-' reads standard input).")
@output_option(CONFIG_OUTPUT_HELP)
@click.option("--show", is_flag=True, help="Print the configuration as it now is.")
@with_client
def config_set(client: Client, changes: tuple[str, ...], file: Any, output: str,
               show: bool) -> None:
    """Merge changes into the config file: dotted KEY=VALUE pairs (VALUE is JSON when it
    parses, else a string), or YAML/JSON documents. Most changes apply when llamactl is
    restarted.

    \b
    Examples:
      llamactl config set rate_limit.enabled=false
      llamactl config set 'instances.port_range=[9000, 9099]'
      llamactl config set '{"auth": {"token_ttl": 3600}}'
      echo 'instances: {idle_timeout: 30}' | llamactl config set -f -
    """
    document: dict[str, Any] = {}
    if file is not None:
        _merge(document, _load_document(file.read(), "--file"))
    pairs = [c for c in changes if _PAIR.match(c)]
    for text in changes:
        if text not in pairs:
            _merge(document, _load_document(text, "CHANGES"))
    _merge(document, _nest(parse_pairs(pairs, "KEY=VALUE")))
    if not document:
        raise click.UsageError("nothing to change: give KEY=VALUE pairs, a document or --file")
    result = client.update_config(document)
    click.echo(result.message, err=show)
    if result.restart_required:
        click.echo("restart llamactl for the change to take effect", err=True)
    if show:
        _echo_document(result.config, output)


URL_HELP = ("The llamactl server (default: the root's --url, else $LLAMACTL_URL, else "
            "http://127.0.0.1:8080).")


@click.command(cls=ClientCommand)
@click.option("--url", default=None, help=URL_HELP)
@click.option("--token", default=None, help="Save this token (say, one made elsewhere) "
              "instead of logging in with a password; it is checked first.")
@click.option("-u", "--username", help="Asked for when not given.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@OUTPUT_OPTION
def login(url: str | None, token: str | None, username: str | None, password_stdin: bool,
          output: str) -> None:
    """Log in and save the token for later commands (in ~/.config/llamactl/token.json, or
    under $XDG_CONFIG_HOME, readable by you only).

    \b
    Examples:
      llamactl login
      llamactl login --url http://gpu-box:8080 -u admin
      echo "$PASSWORD" | llamactl login -u ci --password-stdin
      llamactl login --token "$TOKEN"
    """
    token = token or click.get_current_context().find_root().meta.get(ROOT_TOKEN)
    with _client(url) as client:
        if token:
            client.token = token
            client.system_info()  # a token the server refuses is an error, not saved
            token = client.token or token  # refreshed on the way, maybe
            username, expires_at = username or "the token's user", None
        else:
            username = username or click.prompt("Username")
            password = (sys.stdin.readline().rstrip("\n") if password_stdin
                        else click.prompt("Password", hide_input=True))
            got = client.login(username, password)
            token, expires_at = got.token, got.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = store_token(client.base_url, token, expires_at)
    if echoed_as_data({"url": client.base_url, "username": username, "expires_at": expires_at,
                       "token_file": str(path)}, output):
        return
    until = f"valid until {expires_at}, " if expires_at else ""
    click.echo(f"logged in to {client.base_url} as {username}; token saved in {path} "
               f"({until}refreshed as it is used)")


@click.command(cls=ClientCommand)
@click.option("--url", default=None, help=URL_HELP)
@OUTPUT_OPTION
def logout(url: str | None, output: str) -> None:
    """Forget the token saved for a server.

    \b
    Examples:
      llamactl logout
      llamactl logout --url http://gpu-box:8080
    """
    with _client(url) as client:
        store_token(client.base_url, None)
    if not echoed_as_data({"url": client.base_url, "logged_out": True}, output):
        click.echo(f"logged out of {client.base_url}")


def _client(url: str | None) -> Client:
    """A client without the saved token (login replaces it, logout forgets it)."""
    root = click.get_current_context().find_root().meta
    url = url or root.get(ROOT_URL) or os.environ.get("LLAMACTL_URL") or DEFAULT_URL
    try:
        client = Client(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    client.token = None  # not $LLAMACTL_TOKEN either, which Client() reads
    return client
