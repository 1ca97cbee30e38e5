"""From an instance record to the argv and environment that launch its llama-server."""

from __future__ import annotations

from collections.abc import Mapping

from llamactl.backends.base import backend_environment
from llamactl.backends.llama_cpp.options import options_to_args
from llamactl.instances.models import InstanceRecord

# llama-server reads its API key from this variable when --api-key is not given. The key goes
# in the environment, not in argv, because any local user can read another's command line.
API_KEY_ENV = "LLAMA_API_KEY"

# Flags every launch carries: loopback only (the gateway is the way in), the endpoints
# llamactl reads, and the log prefix that gives each line its time and level.
FIXED_FLAGS = ("--metrics", "--slots", "--log-prefix", "--log-timestamps")


def build_argv(prefix: list[str], record: InstanceRecord) -> list[str]:
    spec = record.spec
    # Unless the user names it otherwise, the model is called by its instance's name in
    # llama-server's answers ("model": ...), as the /v1 gateway's clients asked for it.
    alias = [] if "alias" in spec.options else ["--alias", spec.name]
    return [
        *prefix,
        "--model", spec.model_path,
        "--host", "127.0.0.1",
        "--port", str(spec.port),
        *FIXED_FLAGS,
        *alias,
        *sleep_flags(spec.sleep_after),
        *options_to_args(spec.options),
        *spec.extra_args,
    ]


def sleep_flags(sleep_after: float | None) -> list[str]:
    """llama-server unloads its model after this long idle (build 11434 has the flag)."""
    return [] if sleep_after is None else ["--sleep-idle-seconds",
                                           str(max(1, round(sleep_after)))]


def build_env(record: InstanceRecord, base: Mapping[str, str] | None = None) -> dict[str, str]:
    return backend_environment(record, API_KEY_ENV, base)


def slots_in(argv: list[str] | None) -> int | None:
    """The slot count (``--parallel``/``-np``) a launched llama-server was given, if any: the
    gateway keeps that many connections to it (the last one wins, as in llama-server)."""
    slots = None
    for flag, value in zip(argv or [], (argv or [])[1:], strict=False):
        if flag in ("--parallel", "-np"):
            try:
                slots = int(value)
            except ValueError:
                slots = None
    return slots if slots is None or slots > 0 else None
