"""Everything llamactl knows about llama.cpp's ``llama-server``: finding the binary
(binary.py), the option table (options.py), the command line and environment (command.py),
its log lines (log_lines.py), its settings (settings.py) and its memory from the GGUF header
(memory.py), behind the ``Backend`` interface (backends/base.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from llamactl.backends.base import LogLine, Machine, MemoryEstimate, ModelAbilities, TableBackend
from llamactl.backends.command_import import CommandSyntax
from llamactl.backends.llama_cpp import command, log_lines, options
from llamactl.backends.llama_cpp.abilities import llama_cpp_abilities
from llamactl.backends.llama_cpp.binary import packaged_binary, resolve_command
from llamactl.backends.llama_cpp.gguf_header import gguf_problem
from llamactl.backends.llama_cpp.help_table import FLAGS as HELP_FLAGS
from llamactl.backends.llama_cpp.legacy_flags import OLD_SWITCHES, legacy_flag
from llamactl.backends.llama_cpp.memory import estimate_llama_cpp, read_model_facts
from llamactl.backends.llama_cpp.settings import LlamaCppBackendConfig
from llamactl.backends.option_table import OptionTable
from llamactl.config import BackendsConfig, BackendSettings
from llamactl.instances.models import InstanceRecord, InstanceSpec

__all__ = ["LLAMA_CPP", "LlamaCpp", "packaged_binary"]


# llama-server's short flags and other spellings, for imported command lines.
SHORT_FLAGS = {
    "-m": "--model", "-c": "--ctx-size", "-ngl": "--n-gpu-layers", "--gpu-layers": "--n-gpu-layers",
    "-t": "--threads", "-tb": "--threads-batch", "-b": "--batch-size", "-ub": "--ubatch-size",
    "-np": "--parallel", "-cb": "--cont-batching", "-nocb": "--no-cont-batching",
    "-n": "--n-predict", "-fa": "--flash-attn", "-ctk": "--cache-type-k",
    "-ctv": "--cache-type-v", "-mg": "--main-gpu", "-sm": "--split-mode",
    "-ts": "--tensor-split", "-ncmoe": "--n-cpu-moe", "-cmoe": "--cpu-moe", "-dev": "--device",
    "-kvu": "--kv-unified", "-a": "--alias", "-s": "--seed", "-to": "--timeout",
    "-md": "--spec-draft-model", "-ngld": "--spec-draft-ngl", "-v": "--verbose",
    "-lv": "--log-verbosity", "-hf": "--hf-repo", "-mu": "--model-url",
    "--temperature": "--temp", "--ctx_size": "--ctx-size",
}


class LlamaCpp(TableBackend):
    name: str = "llama_cpp"
    table: OptionTable = options.TABLE
    syntax: CommandSyntax = CommandSyntax(
        programs=frozenset({"llama-server", "server", "llama-cpp-server"}),
        model_flags=frozenset({"--model"}), short_flags=SHORT_FLAGS, env_prefix="LLAMA_ARG_",
        switches=OLD_SWITCHES, help_flags=HELP_FLAGS, legacy=legacy_flag)
    health_paths: tuple[str, ...] = ("/health",)  # 503 while loading, 200 once ready
    model_files_only: bool = True
    sleep_mode: str = "self"  # --sleep-idle-seconds; /props says is_sleeping
    settings_model: type[BackendSettings] = LlamaCppBackendConfig
    settings_description: str = "llama.cpp's llama-server."
    unreadable_model: str | None = "model_path is not a GGUF file llamactl can read"

    def command(self, settings: BackendsConfig) -> list[str]:
        return resolve_command(settings.section(self.name))

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        return command.build_argv(prefix, record)

    def model_problem(self, model_path: str) -> str | None:
        return gguf_problem(model_path)

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        return command.build_env(record, base)

    def slots(self, argv: list[str] | None) -> int | None:
        return command.slots_in(argv)

    def served_model(self, record: InstanceRecord) -> str | None:
        return None  # one model per server: llama-server answers whatever the request names

    def parse_log_line(self, line: str) -> LogLine | None:
        return log_lines.parse_log_line(line)

    def memory(self, spec: InstanceSpec, machine: Machine) -> MemoryEstimate | None:
        facts = machine.read_file(Path(spec.model_path), read_model_facts)
        if facts is None:
            return None
        return estimate_llama_cpp(facts, spec.options, has_gpu=bool(machine.gpus))

    def abilities(self, spec: InstanceSpec, machine: Machine) -> ModelAbilities:
        return llama_cpp_abilities(spec, machine)


LLAMA_CPP = LlamaCpp()
