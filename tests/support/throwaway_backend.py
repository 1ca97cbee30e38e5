"""A backend that exists only in this module: registering it must be all it takes for the
config, the API, the CLI and the estimate route to know it (issue 28, "a backend is one
module"). It is never launched; its estimate is the model file's size, read once per version."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pydantic import Field

from llamactl.backends import register_backend, unregister_backend
from llamactl.backends.base import (
    LogLine,
    Machine,
    MemoryEstimate,
    TableBackend,
    backend_environment,
)
from llamactl.backends.command_import import CommandSyntax
from llamactl.backends.option_table import OptionTable, int_option
from llamactl.config import BackendSettings, DockerConfig
from llamactl.instances.models import InstanceRecord, InstanceSpec

NAME = "throwaway"
TABLE = OptionTable(options=(int_option("workers", "--workers", "worker count", minimum=1),),
                    reserved_flags=frozenset({"--model", "--port"}))


class ThrowawayBackendConfig(BackendSettings):
    """How llamactl would run the throwaway server."""

    command: str | list[str] = Field(default="throwaway-server", description=(
        "The throwaway server to run."))
    docker: DockerConfig = Field(default_factory=DockerConfig, description="Never in Docker.")


def file_size(path: Path) -> int:
    if not path.is_file():
        raise IsADirectoryError(path)  # a model directory: not sized
    return path.stat().st_size


class Throwaway(TableBackend):
    name: str = NAME
    table: OptionTable = TABLE
    syntax: CommandSyntax = CommandSyntax(programs=frozenset({"throwaway-server"}),
                                          model_flags=frozenset({"--model"}))
    health_paths: tuple[str, ...] = ("/health",)
    model_files_only: bool = False
    settings_model: type[BackendSettings] = ThrowawayBackendConfig
    settings_description: str = "A backend the tests register and remove again."
    unreadable_model: str | None = "model_path is not a file the throwaway backend can size"

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        spec = record.spec
        return [*prefix, "--model", spec.model_path, "--port", str(spec.port),
                *TABLE.to_args(spec.options), *spec.extra_args]

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        return backend_environment(record, None, base)

    def slots(self, argv: list[str] | None) -> int | None:
        return None

    def served_model(self, record: InstanceRecord) -> str | None:
        return None

    def parse_log_line(self, line: str) -> LogLine | None:
        return None

    def memory(self, spec: InstanceSpec, machine: Machine) -> MemoryEstimate | None:
        size = machine.read_file(Path(spec.model_path), file_size)
        workers = spec.options.get("workers", 1)
        return None if size is None else MemoryEstimate(
            ram=size * (workers if isinstance(workers, int) else 1), vram=None)


@contextmanager
def registered() -> Iterator[Throwaway]:
    """The throwaway backend, registered for the block and removed after it."""
    backend = Throwaway()
    register_backend(backend)
    try:
        yield backend
    finally:
        unregister_backend(NAME)
