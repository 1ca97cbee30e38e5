"""Answer and request models of ``/api/models`` (issue 33): they document the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llamactl.api.schemas import MemoryEstimateBody


class ModelSplit(BaseModel):
    part: int = Field(description="the part the path names (1: the first)")
    count: int = Field(description="parts of the model")


class ModelSource(BaseModel):
    repo: str = Field(examples=["ggml-org/gemma-3-270m-it-GGUF"])
    file: str = Field(examples=["gemma-3-270m-it-Q8_0.gguf"])
    revision: str = Field(description="the commit it was pulled at")
    sha256: str | None = None


class ModelEntryBody(BaseModel):
    id: str = Field(description="the path under its folder; how routes and instances name it",
                    examples=["ggml-org/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf"])
    path: str = Field(description="absolute; a split model's first part")
    size: int = Field(description="bytes, every part of a split model")
    architecture: str | None
    parameters: int | None = Field(description="weights, counted from the tensor table")
    quantization: str | None = Field(examples=["Q4_K_M"])
    context_length: int | None = Field(description="the context it was trained for")
    chat_template: bool
    split: ModelSplit | None
    mmproj: bool = Field(description="a multimodal projector, not a model on its own")
    source: ModelSource | None = Field(description="where it was pulled from; null: not pulled")
    memory_estimate: MemoryEstimateBody | None = Field(description=(
        "at the model's defaults (its training context); null for projectors and errors"))
    instances: list[str] = Field(description="instances whose model_path is this model")
    error: str | None = Field(description="why the file cannot be used; null when it can")
    deletable: bool = Field(description=(
        "true when the file is inside models.dir, the library's own folder: the only files "
        "DELETE /api/models/{id} removes (others, under instances.model_dirs, are refused "
        "with 403)"))


class ModelList(BaseModel):
    models: list[ModelEntryBody]


PullStatus = Literal["queued", "downloading", "verifying", "done", "failed", "cancelled"]


class PullFile(BaseModel):
    file: str
    path: str
    bytes_done: int
    bytes_total: int
    status: PullStatus


class PullJobBody(BaseModel):
    id: str
    source: str = Field(description="what was asked for", examples=["user/repo:Q4_K_M"])
    repo: str
    revision: str
    status: PullStatus
    bytes_done: int
    bytes_total: int
    files: list[PullFile]
    model: str | None = Field(description="the model's id once it is on disk")
    error: str | None
    created_at: str


class PullList(BaseModel):
    pulls: list[PullJobBody]


class PullRequest(BaseModel):
    """``source`` (``<user>/<repo>[:<quant>]``), or ``repo`` with ``file`` and ``revision``."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(default=None, min_length=3, max_length=300,
                               examples=["ggml-org/gemma-3-270m-it-GGUF:Q8_0"])
    repo: str | None = Field(default=None, min_length=3, max_length=200)
    file: str | None = Field(default=None, min_length=1, max_length=500)
    revision: str | None = Field(default=None, min_length=1, max_length=200)
    with_mmproj: bool = Field(default=False, description="also pull the repo's projector")
