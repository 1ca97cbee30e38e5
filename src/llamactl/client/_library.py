"""The model library (issue 33) in the clients: its answers, its calls, and the methods
``Client`` and ``AsyncClient`` gain from it (mixed in, each sending with its own ``_call``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from llamactl.client._base import Call
from llamactl.client._models import Instance, MemoryEstimate

T = TypeVar("T")
MODELS = "/api/models"
FINISHED = ("done", "failed", "cancelled")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class ModelSplit(_Model):
    part: int
    count: int


class ModelSource(_Model):
    repo: str
    file: str
    revision: str
    sha256: str | None = None


class LibraryModel(_Model):
    """A model on disk, as ``GET /api/models`` lists it."""

    id: str
    path: str
    size: int
    architecture: str | None
    parameters: int | None
    quantization: str | None
    context_length: int | None
    chat_template: bool
    split: ModelSplit | None
    mmproj: bool = Field(description="a multimodal projector, not a model on its own")
    source: ModelSource | None
    memory_estimate: MemoryEstimate | None
    instances: list[str]
    error: str | None
    deletable: bool = Field(description=(
        "the file is inside models.dir: the only files delete_model may remove"))


PullStatus = Literal["queued", "downloading", "verifying", "done", "failed", "cancelled"]


class PullFile(_Model):
    file: str
    path: str
    bytes_done: int
    bytes_total: int
    status: PullStatus


class PullJob(_Model):
    """A pull from the Hub: ``status`` queued, downloading, verifying, done, failed or
    cancelled; ``model`` the new model's id once done."""

    id: str
    source: str
    repo: str
    revision: str
    status: PullStatus
    bytes_done: int
    bytes_total: int
    files: list[PullFile]
    model: str | None
    error: str | None
    created_at: str

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def list_library() -> Call[list[LibraryModel]]:
    return Call("GET", MODELS,
                lambda body: [LibraryModel.model_validate(item) for item in body["models"]])


def pull_model(source: str | None = None, *, repo: str | None = None,
               file: str | None = None, revision: str | None = None,
               with_mmproj: bool = False) -> Call[PullJob]:
    body: dict[str, Any] = {"source": source} if source is not None else {
        "repo": repo, **({"file": file} if file else {})}
    if revision:
        body["revision"] = revision
    if with_mmproj:
        body["with_mmproj"] = True
    return Call("POST", f"{MODELS}/pull", PullJob.model_validate, body=body)


def get_pull(pull_id: str) -> Call[PullJob]:
    return Call("GET", f"{MODELS}/pulls/{quote(pull_id, safe='')}", PullJob.model_validate)


def list_pulls() -> Call[list[PullJob]]:
    return Call("GET", f"{MODELS}/pulls",
                lambda body: [PullJob.model_validate(item) for item in body["pulls"]])


def cancel_pull(pull_id: str) -> Call[PullJob]:
    return Call("DELETE", f"{MODELS}/pulls/{quote(pull_id, safe='')}", PullJob.model_validate)


def create_from_model(name: str, model: str, fields: dict[str, Any]) -> Call[Instance]:
    return Call("POST", "/api/instances",
                lambda answer: Instance.model_validate(answer["instance"]),
                body={**fields, "name": name, "model": model})


def delete_model(model_id: str) -> Call[None]:
    return Call("DELETE", f"{MODELS}/{quote(model_id, safe='/')}", lambda body: None)


class LibraryMethods:
    """``Client``'s methods of the model library."""

    if TYPE_CHECKING:
        def _call(self, call: Call[T]) -> T: ...

    def list_library(self) -> list[LibraryModel]:
        """``GET /api/models``: the GGUF models on disk (``list_models`` is ``/v1``'s)."""
        return self._call(list_library())

    def pull_model(self, source: str | None = None, *, repo: str | None = None,
                   file: str | None = None, revision: str | None = None,
                   with_mmproj: bool = False) -> PullJob:
        """Start a pull: ``source`` ``"<user>/<repo>[:<quant>]"``, or ``repo`` and ``file``."""
        return self._call(pull_model(source, repo=repo, file=file, revision=revision,
                                     with_mmproj=with_mmproj))

    def get_pull(self, pull_id: str) -> PullJob:
        return self._call(get_pull(pull_id))

    def list_pulls(self) -> list[PullJob]:
        return self._call(list_pulls())

    def cancel_pull(self, pull_id: str) -> PullJob:
        return self._call(cancel_pull(pull_id))

    def delete_model(self, model_id: str) -> None:
        self._call(delete_model(model_id))

    def create_instance_from_model(self, name: str, model: str, **fields: Any) -> Instance:
        """Create an instance of a library model (its id) or of ``"<user>/<repo>:<quant>"``,
        which the server pulls first when it is not on disk (the instance's ``pull``)."""
        return self._call(create_from_model(name, model, fields))


class AsyncLibraryMethods:
    """``AsyncClient``'s methods of the model library."""

    if TYPE_CHECKING:
        async def _call(self, call: Call[T]) -> T: ...

    async def list_library(self) -> list[LibraryModel]:
        return await self._call(list_library())

    async def pull_model(self, source: str | None = None, *, repo: str | None = None,
                         file: str | None = None, revision: str | None = None,
                         with_mmproj: bool = False) -> PullJob:
        return await self._call(pull_model(source, repo=repo, file=file, revision=revision,
                                           with_mmproj=with_mmproj))

    async def get_pull(self, pull_id: str) -> PullJob:
        return await self._call(get_pull(pull_id))

    async def list_pulls(self) -> list[PullJob]:
        return await self._call(list_pulls())

    async def cancel_pull(self, pull_id: str) -> PullJob:
        return await self._call(cancel_pull(pull_id))

    async def delete_model(self, model_id: str) -> None:
        await self._call(delete_model(model_id))

    async def create_instance_from_model(self, name: str, model: str,
                                         **fields: Any) -> Instance:
        return await self._call(create_from_model(name, model, fields))
