"""MLX's OpenAI-compatible server (``mlx_lm.server``, Apple silicon): what llamactl knows.

The command line: ``<command> --model <model_path> --host 127.0.0.1 --port <port>``, then the
options as flags, then ``extra_args``. ``mlx_lm.server`` takes no API key: it stays on
loopback, where only llamactl reaches it (the gateway's and the proxy's key checks are the
door). Ready when ``GET /health`` answers 200, or, for versions without it, ``GET /v1/models``.
Its log lines read ``2025-01-02 03:04:05,678 - INFO - message`` (Python's logging, local
time); request lines from its HTTP server carry no level. ``model_path`` is a local model
directory or a Hugging Face repo id (``mlx-community/...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import Field

from llamactl.backends.base import Level, LogLine, TableBackend, backend_environment
from llamactl.backends.command_import import CommandSyntax
from llamactl.backends.option_table import OptionTable, placed
from llamactl.backends.option_table import bool_option as _bool
from llamactl.backends.option_table import choice_option as _choice
from llamactl.backends.option_table import float_option as _float
from llamactl.backends.option_table import int_option as _int
from llamactl.backends.option_table import path_option as _path
from llamactl.backends.option_table import str_option as _str
from llamactl.config import BackendSettings, DockerConfig
from llamactl.instances.models import InstanceRecord

TABLE = OptionTable(
    options=placed((
        _int("max_tokens", "--max-tokens", "default answer length, in tokens", minimum=1),
        _float("temp", "--temp", "default sampling temperature", minimum=0),
        _float("top_p", "--top-p", "default nucleus sampling", minimum=0),
        _bool("trust_remote_code", "--trust-remote-code", "run the tokenizer repo's own code"),
        _str("chat_template", "--chat-template", "chat template to use instead of the model's"),
        _bool("use_default_chat_template", "--use-default-chat-template",
              "the tokenizer's default chat template"),
        _path("adapter_path", "--adapter-path", "LoRA adapter weights", "dir"),
        # A local folder, or a hub id that mlx_lm fetches (admins only: it is not a path
        # inside instances.model_dirs).
        _path("draft_model", "--draft-model", "a smaller model for speculative decoding",
              "dir"),
        _int("num_draft_tokens", "--num-draft-tokens", "tokens drafted per step", minimum=1),
        _choice("log_level", "--log-level", "log level",
                "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    ), {"sampling": ("max_tokens", "temp", "top_p"),
        "speculative": ("draft_model", "num_draft_tokens")}, {}),
    reserved_flags=frozenset({"--model", "--host", "--port"}),
)

class MlxLmBackendConfig(BackendSettings):
    """How llamactl runs MLX's OpenAI-compatible server (``mlx_lm.server``)."""

    command: str | list[str] = Field(default="mlx_lm.server", description=(
        "The mlx_lm.server command: a name on PATH, a path, or an argv prefix "
        "(such as [python, -m, mlx_lm.server])."))
    docker: DockerConfig = Field(default_factory=DockerConfig, description=(
        "No image by default: MLX runs on Apple silicon's GPU through macOS's Metal, which no "
        "container reaches, so Docker is refused unless an image is set here."))


_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,\d+)? - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - (.*)$")
_LEVELS: dict[str, Level] = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn",
                             "ERROR": "error", "CRITICAL": "error"}


class MlxLm(TableBackend):
    name: str = "mlx_lm"
    table: OptionTable = TABLE
    # ``mlx_lm.server ...`` or ``python -m mlx_lm.server ...``
    syntax: CommandSyntax = CommandSyntax(programs=frozenset({"mlx_lm.server"}),
                                          model_flags=frozenset({"--model"}))
    health_paths: tuple[str, ...] = ("/health", "/v1/models")
    model_files_only: bool = False
    settings_model: type[BackendSettings] = MlxLmBackendConfig
    settings_description: str = "MLX on Apple silicon (backend: mlx_lm)."

    def argv(self, prefix: list[str], record: InstanceRecord) -> list[str]:
        spec = record.spec
        return [*prefix, "--model", spec.model_path, "--host", "127.0.0.1",
                "--port", str(spec.port), *TABLE.to_args(spec.options), *spec.extra_args]

    def env(self, record: InstanceRecord, base: Mapping[str, str] | None = None
            ) -> dict[str, str]:
        return backend_environment(record, None, base)  # no key to give it

    def slots(self, argv: list[str] | None) -> int | None:
        return None  # one request at a time: the gateway's default few connections

    def served_model(self, record: InstanceRecord) -> str | None:
        # mlx_lm.server loads whatever model a request names: naming the one it was started
        # with keeps it on that one.
        return record.spec.model_path

    def parse_log_line(self, line: str) -> LogLine | None:
        match = _LINE.match(line)
        if match is None:
            return None
        stamp, level, message = match.groups()
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").astimezone()
        return LogLine(_LEVELS[level], message, at=at)


MLX_LM = MlxLm()
