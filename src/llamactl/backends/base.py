"""What every backend answers, so that the supervisor, the gateway and the API know none by name.

One module (or package) per backend under ``backends/`` implements ``Backend``; the registry in
``backends/__init__.py`` finds it by the instance's ``backend`` field.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar

from llamactl.backends.command_import import CommandSyntax
from llamactl.backends.option_table import OptionTable
from llamactl.config import BackendsConfig, BackendSettings
from llamactl.errors import ModelInvalid
from llamactl.instances.models import InstanceRecord, InstanceSpec, OptionValue

if TYPE_CHECKING:
    from llamactl.backends.docker import Container

Level = Literal["debug", "info", "warn", "error"]
T = TypeVar("T")


class BackendNotFound(Exception):
    """The backend's program cannot be found: the message says where it was looked for."""


class LogLine(NamedTuple):
    level: Level
    message: str
    since_start: timedelta | None = None  # the line's time, from the process start, if given
    at: datetime | None = None  # or its time of day, if it gives that instead


@dataclass(frozen=True)
class MemoryEstimate:
    ram: int | None  # None: cannot be known (vLLM's host memory)
    vram: int | None  # None: cannot be known

    def as_json(self) -> dict[str, int | None]:
        return {"ram": self.ram, "vram": self.vram}


# What an instance may be asked to do through /v1 (issue 31), in the order answers list them.
CAPABILITIES = ("completion", "chat", "embedding", "rerank", "vision", "audio", "tools")


@dataclass(frozen=True)
class ModelAbilities:
    """What an instance can do: ``/v1/models`` and the instance's JSON say it, and the gateway
    refuses a route that needs a capability not in ``capabilities`` (unless not ``known``)."""

    context_length: int | None  # tokens; None: cannot be known
    capabilities: tuple[str, ...]
    known: bool = True  # False: a guess the backend cannot check; nothing is refused by it


def ordered(capabilities: set[str]) -> tuple[str, ...]:
    return tuple(name for name in CAPABILITIES if name in capabilities)


class Machine(Protocol):
    """What a backend's memory estimate may ask of this machine (supervisor/memory.py's
    ``MemoryEstimator`` answers)."""

    @property
    def gpus(self) -> tuple[int, ...]:
        """Each GPU's memory in bytes; () when none can be read."""

    def read_file(self, path: Path, reader: Callable[[Path], T]) -> T | None:
        """``reader(path)`` once per version of the file (its size and mtime); None when the
        file is missing or the reader fails (a corrupt or foreign file: unknown, not fatal)."""


class Backend(Protocol):
    name: str
    # Its section of the config, backends.<name>, and that section's line in the reference.
    settings_model: type[BackendSettings]
    settings_description: str
    # POST /api/backends/<name>/estimate's 400 when ``memory`` cannot read the model file;
    # None: the backend does not estimate from a model file (that route answers 404).
    unreadable_model: str | None
    table: OptionTable  # its options: llamactl's names, types and the flags they become
    syntax: CommandSyntax  # how its command lines read, to import one
    # GET paths that tell readiness and health, in order: a 404 moves on to the next.
    health_paths: tuple[str, ...]
    # True: model_path is a file on this host. False: also a directory, or a hub id
    # (org/name) that the backend fetches itself.
    model_files_only: bool
    # How an instance with sleep_after sleeps (issue 32): "self", the server sleeps when idle
    # and wakes on a request by itself (llama-server's --sleep-idle-seconds); "driven",
    # llamactl sends it to sleep and wakes it before relaying (vLLM's sleep mode); "none".
    sleep_mode: str

    def command(self, settings: BackendsConfig) -> list[str]:
        """The argv prefix that runs the backend's server (BackendNotFound if missing)."""

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, OptionValue]:
        """The options, checked against the backend's table (ValidationFailed naming a key)."""

    def check_extra_args(self, extra_args: list[str]) -> None:
        """ValidationFailed when an argument sets what llamactl sets itself."""

    def model_problem(self, model_path: str) -> str | None:
        """Why the (existing, allowed) model file cannot be the backend's model, or None: a
        look at its header, at create and update (400 MODEL_INVALID)."""

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        """The whole command line of an instance: the prefix, llamactl's flags, its own."""

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        """The backend's environment: llamactl's minus its own variables, the instance's,
        and the instance's key."""

    def slots(self, argv: list[str] | None) -> int | None:
        """How many requests a launched server serves at once, if its command line says."""

    def served_model(self, record: InstanceRecord) -> str | None:
        """The ``model`` a /v1 request must name for this server (the gateway rewrites the
        body's, which may be an alias); None: the server takes any."""

    def parse_log_line(self, line: str) -> LogLine | None:
        """A line in the backend's own log format, or None for a line without its prefix."""

    def container_args(self, record: InstanceRecord) -> list[str]:
        """The server's arguments in the backend's Docker image, whose entrypoint is the
        server: its own flags, listening on every address of the container."""

    def container(self, record: InstanceRecord) -> Container | None:
        """The container the instance runs in (backends/docker.py), or None: on this host."""

    def memory(self, spec: InstanceSpec, machine: Machine) -> MemoryEstimate | None:
        """The memory an instance of this spec will hold, or None where it cannot be known
        (capacity admits and evicts by it, issue 20)."""

    def abilities(self, spec: InstanceSpec, machine: Machine) -> ModelAbilities:
        """What an instance of this spec can do, from its options and its model's metadata
        as far as the backend can tell (issue 31)."""


class TableBackend:
    """What the backends share: options checked against their table, and their program
    found from ``backends.<name>.command`` (llama.cpp overrides it with its packaged binary)."""

    name: str
    table: OptionTable
    unreadable_model: str | None = None
    sleep_mode: str = "none"

    def command(self, settings: BackendsConfig) -> list[str]:
        command = settings.section(self.name).command
        argv = [command] if isinstance(command, str) else list(command)
        return find_program(argv, f"backends.{self.name}.command")

    def validate_options(self, given: Mapping[str, Any]) -> dict[str, OptionValue]:
        return self.table.validate(given)

    def check_extra_args(self, extra_args: list[str]) -> None:
        self.table.check_extra_args(extra_args)

    def model_problem(self, model_path: str) -> str | None:
        return None  # a folder or a hub id: the backend's to judge when it starts

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        raise NotImplementedError

    def container_args(self, record: InstanceRecord) -> list[str]:
        return listen_everywhere(self.argv([], record))

    def container(self, record: InstanceRecord) -> Container | None:
        return None  # run on this host; backends/docker.py's InDocker answers otherwise

    def memory(self, spec: InstanceSpec, machine: Machine) -> MemoryEstimate | None:
        return None  # not known: capacity counts the instance, not its memory

    def abilities(self, spec: InstanceSpec, machine: Machine) -> ModelAbilities:
        # What an OpenAI-compatible server serves unless told otherwise; only a guess.
        return ModelAbilities(None, ("completion", "chat"), known=False)


def check_model_file(backend: Backend, model_path: str) -> None:
    """400 MODEL_INVALID for a model file the backend cannot open (issue 27: an empty, text or
    truncated file was accepted, and failed at start with the cause buried in the log)."""
    problem = backend.model_problem(model_path)
    if problem is not None:
        raise ModelInvalid(f"model_path is not a model {backend.name} can load: {problem}",
                           f"model_path: {problem}")


def listen_everywhere(argv: list[str]) -> list[str]:
    """The argv with ``--host 127.0.0.1`` made ``--host 0.0.0.0``: in a container, docker
    forwards the published port to the container's interface, not to its loopback."""
    words = list(argv)
    for index, word in enumerate(words[:-1]):
        if word == "--host" and words[index + 1] == "127.0.0.1":
            words[index + 1] = "0.0.0.0"  # inside the container only
    return words


def find_program(argv: list[str], setting: str) -> list[str]:
    """The argv prefix with its program resolved to a path (a name on PATH, or a path)."""
    executable = which(argv[0])
    if executable is None:
        raise BackendNotFound(f"'{argv[0]}' not found: put it on PATH or set {setting} in the "
                              "config to its path (or an argv prefix)")
    return [executable, *argv[1:]]


def which(name: str) -> str | None:
    if os.sep in name:
        path = Path(name).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


# llamactl's own settings and secrets (LLAMACTL_AUTH_SECRET signs every token) never reach a
# backend: it runs whatever model and arguments it is given, and may be anyone's code.
OWN_ENV_PREFIX = "LLAMACTL_"


def backend_environment(record: InstanceRecord, key_variable: str | None,
                        base: Mapping[str, str] | None = None) -> dict[str, str]:
    """llamactl's environment minus every ``LLAMACTL_*`` variable, plus the instance's
    ``environment``, plus its key in the backend's variable (never on its command line,
    which any local user can read)."""
    inherited = os.environ if base is None else base
    env = {name: value for name, value in inherited.items()
           if not name.upper().startswith(OWN_ENV_PREFIX)}
    env.update(record.spec.environment)
    if key_variable is not None:
        env[key_variable] = record.api_key
    return env


def flag_value(argv: list[str] | None, *flags: str) -> str | None:
    """The value of the last of ``flags`` in ``argv`` (``--flag value`` or ``--flag=value``)."""
    found = None
    words = argv or []
    for index, word in enumerate(words):
        name, equals, value = word.partition("=")
        if name in flags:
            found = value if equals else (words[index + 1] if index + 1 < len(words) else None)
    return found
