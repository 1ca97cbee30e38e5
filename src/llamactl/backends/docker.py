"""Any backend in a Docker container: ``InDocker`` wraps a ``Backend`` so that an instance
runs as ``docker run ... <image> <the backend's own flags>``; the supervisor sees one more
backend and knows none by name.

The command line::

    docker run --rm --init --name llamactl-<instance> --label llamactl.instance=<instance>
      -p 127.0.0.1:<port>:<port> -v <model dir>:<model dir>:ro -e NAME... <docker.args>
      <docker.image> <the backend's argv minus its command, listening on 0.0.0.0>

The image's entrypoint is the server (llama.cpp's ``:server`` image runs llama-server, vLLM's
its OpenAI API server), so the container gets the backend's flags and nothing else. Inside it
the server listens on every address, since docker forwards the published port to the
container's own interface; outside, the port is published on loopback only, as a server run
on this host listens (the gateway is the way in). Every variable of the container (the
backend's ``docker.environment``, the instance's ``environment``, its key) goes as ``-e NAME``
with the value in the docker command's own environment: never on a command line, which any
local user can read.

The docker command stands for the container (it runs attached, so it exits when the container
does and its output is the container's log), but signalling it stops nothing: ``Container``
gives the commands that stop, remove, inspect and follow a container by its name
(supervisor/container.py runs them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from llamactl.backends.base import (
    OWN_ENV_PREFIX,
    Backend,
    LogLine,
    Machine,
    MemoryEstimate,
    ModelAbilities,
    find_program,
)
from llamactl.backends.command_import import CommandSyntax
from llamactl.backends.option_table import OptionTable
from llamactl.config import BackendsConfig, BackendSettings, DockerConfig
from llamactl.errors import ValidationFailed
from llamactl.instances.models import InstanceRecord, InstanceSpec, OptionValue

LABEL = "llamactl.instance"  # every container llamactl runs carries it: <instance name>
NAME_PREFIX = "llamactl-"


def container_name(instance: str) -> str:
    return NAME_PREFIX + instance


def docker_settings(backend: str, settings: BackendsConfig) -> DockerConfig:
    return settings.section(backend).docker


def runs_in_docker(record: InstanceRecord, settings: BackendsConfig) -> bool:
    """The instance's ``docker`` field, or when null its backend's ``docker.enabled``."""
    spec = record.spec
    if spec.docker is not None:
        return spec.docker
    return docker_settings(spec.backend, settings).enabled


def check_docker(backend: str, docker: bool | None, settings: BackendsConfig) -> None:
    """ValidationFailed when the instance would run in Docker and its backend has no image
    (mlx_lm by default: MLX needs macOS's Metal, which no container reaches)."""
    config = docker_settings(backend, settings)
    wanted = config.enabled if docker is None else docker
    if wanted and not config.image:
        raise ValidationFailed(
            f"backend {backend} cannot run in Docker: backends.{backend}.docker.image is not "
            "set", f"docker: {backend} has no Docker image")


def docker_command(settings: BackendsConfig) -> list[str]:
    """The docker program as an argv prefix, resolved (BackendNotFound when missing)."""
    command = settings.docker_command
    argv = [command] if isinstance(command, str) else list(command)
    return find_program(argv, "backends.docker_command")


def docker_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The docker command's own environment: llamactl's minus its ``LLAMACTL_*`` settings."""
    inherited = os.environ if base is None else base
    return {name: value for name, value in inherited.items()
            if not name.upper().startswith(OWN_ENV_PREFIX)}


@dataclass(frozen=True)
class Container:
    """One instance's container, by name, through the docker command."""

    docker: list[str]  # the docker argv prefix, resolved
    name: str

    def stop(self, grace: float) -> list[str]:
        """SIGTERM in the container, SIGKILL after ``grace`` seconds (whole seconds)."""
        return [*self.docker, "stop", "-t", str(max(0, math.ceil(grace))), self.name]

    def remove(self) -> list[str]:
        return [*self.docker, "rm", "-f", self.name]

    def inspect_running(self) -> list[str]:
        return [*self.docker, "inspect", "--format", "{{.State.Running}}", self.name]

    def follow_logs(self, since: int) -> list[str]:
        """Its output from ``since`` (Unix time) on, until it stops."""
        return [*self.docker, "logs", "--follow", "--since", str(since), self.name]


def list_labelled(docker: list[str]) -> list[str]:
    """The names of every container (running or not) that carries llamactl's label."""
    return [*docker, "ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}"]


def model_mounts(model_path: str) -> list[str]:
    """``-v dir:dir:ro`` for the model's directory (the directory itself for a directory
    model), and for the directory of its target when it is a symlink (a link's target outside
    the mount would not exist in the container). Nothing for a hub id: the server fetches it."""
    if not os.path.isabs(model_path):
        return []
    folders = []
    for path in (model_path, os.path.realpath(model_path)):
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        if folder not in folders:
            folders.append(folder)
    return [word for folder in folders for word in ("-v", f"{folder}:{folder}:ro")]


class InDocker:
    """A backend run in its Docker image: its answers, but the docker command line."""

    def __init__(self, inner: Backend, settings: BackendsConfig):
        self.inner = inner
        self.settings = settings
        self.config = docker_settings(inner.name, settings)
        self.name: str = inner.name
        self.table: OptionTable = inner.table
        self.syntax: CommandSyntax = inner.syntax
        self.health_paths: tuple[str, ...] = inner.health_paths
        self.model_files_only: bool = inner.model_files_only
        self.sleep_mode: str = inner.sleep_mode
        self.settings_model: type[BackendSettings] = inner.settings_model
        self.settings_description: str = inner.settings_description
        self.unreadable_model: str | None = inner.unreadable_model

    def command(self, settings: BackendsConfig) -> list[str]:
        return docker_command(settings)

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        spec = record.spec
        port = str(spec.port)
        variables = [word for name in self._variables(record) for word in ("-e", name)]
        return [
            *prefix, "run", "--rm", "--init", "--name", container_name(spec.name),
            "--label", f"{LABEL}={spec.name}", "-p", f"127.0.0.1:{port}:{port}",
            *model_mounts(spec.model_path), *variables, *self.config.args,
            self.config.image or "", *self.inner.container_args(record),
        ]

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        """The docker command's environment: llamactl's (minus its own settings), with the
        values of the container's variables, which its command line names without values."""
        env = docker_environment(base)
        env.update(self.config.environment)
        env.update(self.inner.env(record, {}))  # the instance's variables and its key
        return env

    def _variables(self, record: InstanceRecord) -> list[str]:
        names = dict.fromkeys([*self.config.environment, *self.inner.env(record, {})])
        return list(names)

    def container(self, record: InstanceRecord) -> Container | None:
        return Container(docker_command(self.settings), container_name(record.spec.name))

    def container_args(self, record: InstanceRecord) -> list[str]:
        return self.inner.container_args(record)

    def validate_options(self, options: Mapping[str, object]) -> dict[str, OptionValue]:
        return self.inner.validate_options(options)

    def check_extra_args(self, extra_args: list[str]) -> None:
        self.inner.check_extra_args(extra_args)

    def model_problem(self, model_path: str) -> str | None:
        return self.inner.model_problem(model_path)

    def slots(self, argv: list[str] | None) -> int | None:
        return self.inner.slots(argv)

    def served_model(self, record: InstanceRecord) -> str | None:
        return self.inner.served_model(record)

    def parse_log_line(self, line: str) -> LogLine | None:
        return self.inner.parse_log_line(line)

    def memory(self, spec: InstanceSpec, machine: Machine) -> MemoryEstimate | None:
        return self.inner.memory(spec, machine)

    def abilities(self, spec: InstanceSpec, machine: Machine) -> ModelAbilities:
        return self.inner.abilities(spec, machine)
