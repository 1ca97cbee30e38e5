"""``llamactl events`` and ``llamactl complete``: watching a server and trying a model, the
two things one does in the first minutes with a new instance."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from llamactl.cli.common import ClientCommand, fail, humanize_bytes, with_client
from llamactl.cli.completion import complete_instance_names
from llamactl.cli.output import OUTPUT_OPTION, coloured, echo_data, echo_line
from llamactl.client import APIError, Client
from llamactl.client._event_models import AnyEvent

EVENT_TYPES = ("instance_status_changed", "instance_stats_updated", "system_alert")


@click.command(cls=ClientCommand)
@click.argument("names", nargs=-1)
@click.option("--type", "types", multiple=True, type=click.Choice(EVENT_TYPES),
              help="Only events of this type (repeatable; default: all).")
@OUTPUT_OPTION
@with_client
def events(client: Client, names: tuple[str, ...], types: tuple[str, ...],
           output: str) -> None:
    """Follow the server's events: status changes, stats and alerts.

    With NAMEs, only those instances' events (and alerts about no instance). Reconnects
    when the connection drops; Ctrl-C ends. With -o json each event is one JSON object a
    line, with -o yaml one document each.

    \b
    Examples:
      llamactl events
      llamactl events qwen llama8b --type instance_status_changed
      llamactl events -o json | jq -r 'select(.type == "system_alert") | .data.message'
    """
    try:
        # The server filters by instance (their events, and alerts about no instance).
        with client.events(list(names) or None) as stream:
            # On stderr, once connected: a script can wait for it before it acts.
            about = f" of {', '.join(names)}" if names else ""
            click.echo(f"following the events{about} at {client.base_url}; Ctrl-C ends",
                       err=True)
            for event in stream:
                if not types or event.type in types:
                    echo_line(event, output, _event_text(event))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops following: not an error


def _event_text(event: AnyEvent) -> str:
    stamp = event.timestamp.strftime("%Y-%m-%d %H:%M:%S")
    data = event.data if isinstance(event.data, dict) else event.data.model_dump(mode="json")
    if event.type == "instance_status_changed":
        status = str(data.get("status"))
        what = f"{data.get('name')} {data.get('previous_status')} -> {coloured(status, status)}"
    elif event.type == "instance_stats_updated":
        stats = data.get("stats") or {}
        what = (f"{data.get('name')} cpu {float(stats.get('cpu_usage', 0)):.1f}% memory "
                f"{humanize_bytes(float(stats.get('memory_usage', 0)))}")
    elif event.type == "system_alert":
        level = str(data.get("level", "info"))
        about = f" ({data['instance']})" if data.get("instance") else ""
        what = f"{coloured(level, level)}: {data.get('message')}{about}"
    else:
        what = json.dumps(data)
    return f"{stamp} {event.type:<24} {what}"


@click.command(cls=ClientCommand)
@click.argument("name", shell_complete=complete_instance_names)
@click.argument("prompt")
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True,
              help="The most tokens to generate.")
@click.option("--temperature", type=click.FloatRange(min=0), help="Sampling temperature.")
@click.option("--api-key", envvar="LLAMACTL_API_KEY", default=None,
              help="An inference key (llk_...; env LLAMACTL_API_KEY) instead of the token.")
@OUTPUT_OPTION
@with_client
def complete(client: Client, name: str, prompt: str, max_tokens: int,
             temperature: float | None, api_key: str | None, output: str) -> None:
    """Complete a prompt with an instance through the /v1 gateway, streaming it.

    NAME is the instance (the model, to /v1); PROMPT '-' reads standard input. The text is
    printed as it comes; with -o json or yaml, the whole answer once it is done.

    \b
    Examples:
      llamactl complete qwen "The capital of France is"
      llamactl complete qwen "Once upon a time" --max-tokens 200 --temperature 0.8
      echo "2 + 2 =" | llamactl complete qwen - -o json | jq -r '.choices[0].text'
    """
    if prompt == "-":
        prompt = sys.stdin.read()
    body: dict[str, Any] = {"model": name, "prompt": prompt, "max_tokens": max_tokens,
                            "stream": output == "table"}
    if temperature is not None:
        body["temperature"] = temperature
    from llamactl.client._base import Call  # the client has no /v1 completion method

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    call = Call("POST", "/v1/completions", lambda answer: answer, body=body,
                authenticated=api_key is None, extra_headers=headers)
    try:
        if output != "table":
            echo_data(client._call(call), output)
            return
        for text in _streamed_texts(client, call):
            click.echo(text, nl=False)
        click.echo()
    except APIError as exc:
        _fail_openai(exc)
    except KeyboardInterrupt:
        click.echo()


def _streamed_texts(client: Client, call: Any) -> Iterator[str]:
    """The text of each chunk of a /v1 event stream, until ``[DONE]``."""
    response = client._open_stream(call)
    try:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[len("data:"):].strip()
            if payload == "[DONE]":
                return
            chunk = json.loads(payload)
            if "error" in chunk:
                error = chunk["error"]
                fail(str(error.get("message", error) if isinstance(error, dict) else error))
            for choice in chunk.get("choices", []):
                yield str(choice.get("text") or "")
    finally:
        response.close()


def _fail_openai(exc: APIError) -> None:
    """The gateway answers in OpenAI's envelope ({"error": {"message", "code"}}): its message
    and code, with the exit status of the HTTP status as everywhere."""
    from llamactl.cli.common import exit_status, report

    response = getattr(exc, "response", None)
    try:
        error = response.json().get("error") if response is not None else None
    except ValueError:
        error = None
    if not isinstance(error, dict) or "message" not in error:
        report(exc, had_token=True)
    code = error.get("code") or error.get("type") or exc.status_code
    fail(f"{error['message']} ({code})", status=exit_status(exc))
