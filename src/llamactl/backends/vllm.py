"""vLLM's OpenAI-compatible server (``vllm serve``): everything llamactl knows about it.

The command line: ``<command> serve <model_path> --host 127.0.0.1 --port <port>
--served-model-name <instance>`` (unless the option ``served_model_name`` names it), then the
options as flags, then ``extra_args``. The key goes in ``VLLM_API_KEY``, never on the command
line. vLLM listens only once the model is loaded, so ``GET /health`` answering 200 is
readiness. Its log lines read ``INFO 11-28 03:04:05 [file.py:12] message`` (newer versions put
``(APIServer pid=N)`` in front), in local time without a year. ``model_path`` is a file or
directory on this host, or a Hugging Face repo id (``org/name``) that vLLM downloads itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import Field

from llamactl.backends.base import (
    Level,
    LogLine,
    Machine,
    MemoryEstimate,
    ModelAbilities,
    TableBackend,
    backend_environment,
    flag_value,
    listen_everywhere,
)
from llamactl.backends.command_import import CommandSyntax
from llamactl.backends.option_table import OptionTable, placed
from llamactl.backends.option_table import bool_option as _bool
from llamactl.backends.option_table import choice_option as _choice
from llamactl.backends.option_table import float_option as _float
from llamactl.backends.option_table import int_option as _int
from llamactl.backends.option_table import path_option as _path
from llamactl.backends.option_table import str_option as _str
from llamactl.config import BackendSettings, DockerConfig
from llamactl.instances.models import InstanceRecord, InstanceSpec

API_KEY_ENV = "VLLM_API_KEY"
SLEEP_ROUTES_ENV = "VLLM_SERVER_DEV_MODE"  # sleep_after: /sleep and /wake_up are dev routes
# An async server that batches many sequences: with no --max-num-seqs on its command line,
# the gateway keeps this many connections to it (vLLM's own default is higher still).
DEFAULT_SLOTS = 64
# vLLM's own default for --gpu-memory-utilization: the share of each GPU it takes at start.
GPU_UTILIZATION = 0.9


class VllmDockerConfig(DockerConfig):
    image: str | None = Field(default="vllm/vllm-openai:latest", description=(
        "The image to run; its entrypoint must be vLLM's OpenAI API server, which is given "
        "'--model <model_path>' and llamactl's flags. null: never in Docker."))


class VllmBackendConfig(BackendSettings):
    """How llamactl runs vLLM's OpenAI-compatible server (``vllm serve``)."""

    command: str | list[str] = Field(default="vllm", description=(
        "The vllm command: a name on PATH, a path, or an argv prefix; llamactl adds "
        "'serve <model>' and its flags."))
    docker: VllmDockerConfig = Field(
        default_factory=VllmDockerConfig,
        description="Running vLLM in Docker: the image's entrypoint is vLLM's API server.")

TABLE = OptionTable(
    options=placed((
        _int("tensor_parallel_size", "--tensor-parallel-size", "GPUs to shard each layer over",
             minimum=1),
        _int("pipeline_parallel_size", "--pipeline-parallel-size", "pipeline stages",
             minimum=1),
        _float("gpu_memory_utilization", "--gpu-memory-utilization",
               "share of each GPU's memory vLLM may use (0-1)", minimum=0),
        _int("max_model_len", "--max-model-len", "context length", minimum=1),
        _int("max_num_seqs", "--max-num-seqs", "sequences batched at once", minimum=1),
        _choice("dtype", "--dtype", "weights' data type",
                "auto", "half", "float16", "bfloat16", "float", "float32"),
        _str("quantization", "--quantization", "quantization method (awq, gptq, fp8, ...)"),
        _choice("kv_cache_dtype", "--kv-cache-dtype", "KV cache data type",
                "auto", "fp8", "fp8_e5m2", "fp8_e4m3"),
        _bool("enforce_eager", "--enforce-eager", "no CUDA graphs"),
        _bool("trust_remote_code", "--trust-remote-code", "run the model repo's own code"),
        _path("download_dir", "--download-dir", "where Hugging Face models are downloaded",
              "dir"),
        _int("seed", "--seed", "random seed"),
        _bool("enable_prefix_caching", "--enable-prefix-caching", "reuse cached prefixes",
              "--no-enable-prefix-caching"),
        # vLLM opens the value as a file first, and takes it as the template if none is there.
        _path("chat_template", "--chat-template", "chat template file or string",
              "file_or_text"),
        _str("served_model_name", "--served-model-name",
             "the model's name in answers (default: the instance's name)"),
    ), {"performance": ("tensor_parallel_size", "pipeline_parallel_size",
                        "gpu_memory_utilization", "max_num_seqs", "dtype", "quantization",
                        "kv_cache_dtype", "enforce_eager", "enable_prefix_caching"),
        "context": ("max_model_len",), "sampling": ("seed",)},
        {"tensor_parallel_size": 1, "pipeline_parallel_size": 1, "gpu_memory_utilization": 0.9,
         "dtype": "auto", "kv_cache_dtype": "auto"}),
    reserved_flags=frozenset({"--host", "--port", "--api-key", "--model", "--uds"}),
)

_LINE = re.compile(
    r"^(?:\(\S+ pid=\d+\) )?(DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? (?:\[[^\]]*\] ?)?(.*)$")
_LEVELS: dict[str, Level] = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn",
                             "ERROR": "error", "CRITICAL": "error"}


def local_time(month: int, day: int, hour: int, minute: int, second: int,
               now: datetime | None = None) -> datetime | None:
    """A time of the current year (of the previous one when it would be in the future)."""
    now = now or datetime.now().astimezone()
    try:
        moment = now.replace(month=month, day=day, hour=hour, minute=minute, second=second,
                             microsecond=0)
    except ValueError:
        return None
    if (moment - now).days > 1:
        moment = moment.replace(year=now.year - 1)
    return moment


class Vllm(TableBackend):
    name: str = "vllm"
    table: OptionTable = TABLE
    syntax: CommandSyntax = CommandSyntax(
        programs=frozenset({"vllm"}), subcommand="serve", positional_model=True,
        model_flags=frozenset({"--model"}), short_flags={"-tp": "--tensor-parallel-size",
                                                          "-pp": "--pipeline-parallel-size"})
    health_paths: tuple[str, ...] = ("/health",)
    model_files_only: bool = False
    # --enable-sleep-mode, and the dev-mode routes POST /sleep and /wake_up (supervisor/waking.py)
    sleep_mode: str = "driven"
    settings_model: type[BackendSettings] = VllmBackendConfig
    settings_description: str = "vLLM (backend: vllm)."

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        spec = record.spec
        name = [] if "served_model_name" in spec.options else [
            "--served-model-name", spec.name]
        sleep = [] if spec.sleep_after is None else ["--enable-sleep-mode"]
        return [*prefix, "serve", spec.model_path, "--host", "127.0.0.1",
                "--port", str(spec.port), *name, *sleep, *TABLE.to_args(spec.options),
                *spec.extra_args]

    def container_args(self, record: InstanceRecord) -> list[str]:
        # The image's entrypoint is vLLM's API server (``vllm serve`` in newer images), which
        # takes the model as --model in both; "serve" is the command's, not the server's.
        _serve, model, *flags = self.argv([], record)
        return listen_everywhere(["--model", model, *flags])

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        env = backend_environment(record, API_KEY_ENV, base)
        if record.spec.sleep_after is not None:
            env[SLEEP_ROUTES_ENV] = "1"  # vLLM serves /sleep and /wake_up only in dev mode
        return env

    def slots(self, argv: list[str] | None) -> int | None:
        value = flag_value(argv, "--max-num-seqs")
        return int(value) if value and value.isdigit() else DEFAULT_SLOTS

    def served_model(self, record: InstanceRecord) -> str | None:
        name = record.spec.options.get("served_model_name")
        return name if isinstance(name, str) else record.spec.name

    def parse_log_line(self, line: str) -> LogLine | None:
        match = _LINE.match(line)
        if match is None:
            return None
        level, month, day, hour, minute, second, message = match.groups()
        at = local_time(int(month), int(day), int(hour), int(minute), int(second))
        return LogLine(_LEVELS[level], message, at=at)

    def memory(self, spec: InstanceSpec, machine: Machine) -> MemoryEstimate | None:
        """vLLM takes gpu_memory_utilization of each GPU it runs on (tensor x pipeline
        parallel of them) whatever the model: that is its VRAM claim. Its RAM cannot be known
        from the model reference (often a hub id): null."""
        if not machine.gpus:
            return None
        share = _number(spec.options.get("gpu_memory_utilization"), GPU_UTILIZATION)
        devices = int(_number(spec.options.get("tensor_parallel_size"), 1)
                      * _number(spec.options.get("pipeline_parallel_size"), 1))
        return MemoryEstimate(ram=None, vram=int(share * sum(machine.gpus[:max(devices, 1)])))

    def abilities(self, spec: InstanceSpec, machine: Machine) -> ModelAbilities:
        """Its context is max_model_len when set; what it serves (generation, pooling) is
        the model's config on the hub's or the disk's side: a guess, never a refusal."""
        length = spec.options.get("max_model_len")
        context = length if isinstance(length, int) and not isinstance(length, bool) else None
        return ModelAbilities(context, ("completion", "chat"), known=False)


def _number(value: object, default: float) -> float:
    """An option's value as validated by the option table (a number), else the default."""
    return float(value) if isinstance(value, int | float) else default


VLLM = Vllm()
