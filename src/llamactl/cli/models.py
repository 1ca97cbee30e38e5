"""``llamactl models list|pull|rm`` and ``llamactl run`` (issue 33): the model library of a
running llamactl, through its API, as ``ollama list|pull|rm|run`` are for Ollama's."""

from __future__ import annotations

import json
import sys
import time

import click

from llamactl.cli.common import ClientCommand, ClientGroup, fail, humanize_bytes, with_client
from llamactl.cli.output import OUTPUT_OPTION, echo_table, echoed_as_data
from llamactl.client import APIError, Client, Instance, PullJob

POLL = 0.25  # seconds between two looks at a pull (the server's events come 4 a second)
BAR_WIDTH = 30


@click.group(cls=ClientGroup)
def models() -> None:
    """The models on the server's disk, and pulling more from the Hugging Face Hub.

    \b
    Examples:
      llamactl models list
      llamactl models pull ggml-org/gemma-3-270m-it-GGUF:Q8_0
      llamactl models rm ggml-org/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf
    """


@models.command("list")
@OUTPUT_OPTION
@click.option("-q", "--quiet", is_flag=True, help="Ids only, one a line (for scripts).")
@with_client
def list_models(client: Client, output: str, quiet: bool) -> None:
    """List the GGUF models on the server's disk (its library and instances.model_dirs).

    \b
    Examples:
      llamactl models list
      llamactl models list -q
      llamactl models list -o json | jq -r '.[] | select(.error) | .path'
    """
    found = client.list_library()
    if quiet:
        for model in found:
            click.echo(model.id)
        return
    if echoed_as_data(found, output):
        return
    rows = [[model.id, "projector" if model.mmproj else model.quantization or "-",
             humanize_bytes(model.size), model.architecture or "-",
             ",".join(model.instances) or "-", model.error or ""] for model in found]
    echo_table(["ID", "QUANT", "SIZE", "ARCH", "INSTANCES", "ERROR"], rows)


@models.command("pull")
@click.argument("source")
@click.option("--mmproj", is_flag=True, help="Also pull the repo's multimodal projector.")
@click.option("--no-wait", is_flag=True, help="Start the pull and print its job at once.")
@OUTPUT_OPTION
@with_client
def pull(client: Client, source: str, mmproj: bool, no_wait: bool, output: str) -> None:
    """Pull SOURCE, <user>/<repo>[:<quant>] (llama.cpp's -hf), from the Hugging Face Hub.

    A progress bar on a terminal, plain lines otherwise; Ctrl-C cancels the pull (its
    partial file stays: pulling again resumes it).

    \b
    Examples:
      llamactl models pull ggml-org/gemma-3-270m-it-GGUF:Q8_0
      llamactl models pull unsloth/gemma-3-4b-it-GGUF:Q4_K_M --mmproj
    """
    job = client.pull_model(source, with_mmproj=mmproj)
    if no_wait:
        _print_job(job, output)
        return
    job = follow_pull(client, job)
    _print_job(job, output)
    if job.status != "done":
        fail(f"pull {job.id} {job.status}", job.error)


@models.command("rm")
@click.argument("model_id")
@OUTPUT_OPTION
@with_client
def remove(client: Client, model_id: str, output: str) -> None:
    """Delete MODEL_ID (see 'models list') from the server's library (admin only).

    Refused while an instance uses it, and for files outside the library's folder.

    \b
    Examples:
      llamactl models rm ggml-org/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf
    """
    client.delete_model(model_id)
    if not echoed_as_data({"id": model_id, "deleted": True}, output):
        click.echo(f"Deleted {model_id}")


def follow_pull(client: Client, job: PullJob) -> PullJob:
    """Watch ``job`` to its end, showing progress; Ctrl-C cancels it."""
    terminal = sys.stderr.isatty()
    last_line = 0.0
    try:
        while not job.finished:
            now = time.monotonic()
            if terminal:
                click.echo("\r" + _bar(job), nl=False, err=True)
            elif now - last_line >= 5 or last_line == 0:
                click.echo(_plain(job), err=True)
                last_line = now
            time.sleep(POLL)
            job = client.get_pull(job.id)
    except KeyboardInterrupt:
        job = client.cancel_pull(job.id)
        click.echo("\ncancelled (the partial file stays: pull again to resume)", err=True)
        return job
    if terminal:
        click.echo("\r" + _bar(job), err=True)
    return job


def _bar(job: PullJob) -> str:
    share = job.bytes_done / job.bytes_total if job.bytes_total else 1.0
    filled = int(share * BAR_WIDTH)
    return (f"{job.status:<11} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:6.1%} "
            f"{humanize_bytes(job.bytes_done)} / {humanize_bytes(job.bytes_total)}")


def _plain(job: PullJob) -> str:
    return (f"{job.source}: {job.status} {humanize_bytes(job.bytes_done)} of "
            f"{humanize_bytes(job.bytes_total)}")


def _print_job(job: PullJob, output: str) -> None:
    if echoed_as_data(job, output):
        return
    click.echo(f"{job.id} {job.status}" + (f": {job.model}" if job.model else "")
               + (f" ({job.error})" if job.error else ""))


@click.command(cls=ClientCommand)
@click.argument("source")
@click.option("--name", default=None, help="The instance's name (default: from the repo).")
@click.option("--system", "system_prompt", default=None, help="A system prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@with_client
def run(client: Client, source: str, name: str | None, system_prompt: str | None,
        max_tokens: int) -> None:
    """Chat with a model: pull it if needed, create and start an instance of it.

    SOURCE is a model id (see 'models list') or <user>/<repo>[:<quant>], as 'ollama run'
    takes a model: the instance named after it is reused when it exists (--name to choose).

    \b
    Examples:
      llamactl run ggml-org/gemma-3-270m-it-GGUF:Q8_0
      echo "Why is the sky blue?" | llamactl run ggml-org/gemma-3-270m-it-GGUF:Q8_0
    """
    instance = _instance_for(client, source, name or _name_for(source))
    if instance.pull is not None:
        job = follow_pull(client, client.get_pull(instance.pull.id))
        if job.status != "done":
            fail(f"pull {job.id} {job.status}", job.error)
    if instance.status not in ("running", "starting"):
        client.start_instance(instance.name, wait=True)
    _chat(client, instance.name, system_prompt, max_tokens)


def _name_for(source: str) -> str:
    repo, _, tag = source.partition(":")
    base = repo.rsplit("/", 1)[-1].removesuffix(".gguf").removesuffix("-GGUF")
    name = f"{base}-{tag}" if tag else base
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in name)
    return cleaned.strip("-._")[:63] or "model"


def _instance_for(client: Client, source: str, name: str) -> Instance:
    try:
        return client.get_instance(name)
    except APIError as exc:
        if exc.status_code != 404:
            raise
    return client.create_instance_from_model(name, source)


def _chat(client: Client, name: str, system_prompt: str | None, max_tokens: int) -> None:
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(f"Chatting with {name}: an empty line or Ctrl-D ends it.", err=True)
    while True:
        try:
            prompt = input(">>> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        if not prompt.strip():
            if interactive:
                break
            continue
        messages.append({"role": "user", "content": prompt})
        messages.append({"role": "assistant", "content": _answer(client, name, messages,
                                                                  max_tokens)})


def _answer(client: Client, name: str, messages: list[dict[str, str]], max_tokens: int) -> str:
    from llamactl.client._base import Call  # the client has no /v1 chat method

    call = Call("POST", "/v1/chat/completions", lambda answer: answer,
                body={"model": name, "messages": messages, "max_tokens": max_tokens,
                      "stream": True})
    response = client._open_stream(call)
    parts: list[str] = []
    try:
        for line in response.iter_lines():
            payload = line.removeprefix("data:").strip()
            if not line.startswith("data:") or payload == "[DONE]":
                continue
            for choice in json.loads(payload).get("choices", []):
                text = (choice.get("delta") or {}).get("content") or ""
                parts.append(text)
                click.echo(text, nl=False)
    finally:
        response.close()
    click.echo()
    return "".join(parts)
