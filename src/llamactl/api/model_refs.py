"""An instance created from a model rather than a path (issue 33): ``"model"`` is a model's
id in the library (GET /api/models), or ``<user>/<repo>[:<quant>]``: the library's pulled
file of that repo and quant when there is one, else a pull from the Hub, which the instance
then waits for (supervisor/pending_models.py)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from llamactl.api.deps import Services
from llamactl.api.schemas import ErrorBody
from llamactl.errors import ModelInvalid, ModelNotFound, ValidationFailed
from llamactl.library.catalog import ModelEntry
from llamactl.library.hub import SHORTHAND, PullSource, pick_model_file
from llamactl.library.pull_jobs import PullJob

# A create with "model" may pull it first (the answers of POST /api/models/pull).
MODEL_PULL_ERRORS: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorBody, "description": "HUB_UNAVAILABLE: \"model\" is to be pulled and "
                                             "the Hub did not answer"},
    507: {"model": ErrorBody, "description": "INSUFFICIENT_STORAGE: \"model\" is to be pulled "
                                             "and would not fit"}}


async def model_path_for(model: str, services: Services) -> tuple[str, PullJob | None]:
    """The file an instance of ``model`` loads, and the pull it waits for (None: on disk)."""
    entries = await asyncio.to_thread(partial(services.library.catalog.scan, fresh=True))
    entry = next((entry for entry in entries if entry.id == model), None)
    shorthand = SHORTHAND.match(model)
    if entry is None and shorthand is not None:
        entry = _pulled(entries, shorthand["repo"], shorthand["tag"])
    if entry is not None:
        return _usable(entry), None
    if shorthand is None:
        raise ModelNotFound(f"No model '{model}' in the library",
                            "model: a model id (GET /api/models) or <user>/<repo>[:<quant>]")
    job = await services.library.pulls.start(PullSource.parse(model, None, None, None))
    resolved = job.resolved
    return str(services.library.dir / resolved.repo / resolved.model_file), job


def _pulled(entries: list[ModelEntry], repo: str, tag: str | None) -> ModelEntry | None:
    """The library's file of ``repo`` that a pull of ``repo:tag`` would pick."""
    mine = {entry.source["file"]: entry for entry in entries
            if entry.source is not None and entry.source.get("repo") == repo
            and not entry.info.mmproj}
    chosen = pick_model_file(sorted(mine), tag)
    return mine[chosen] if chosen is not None else None


def _usable(entry: ModelEntry) -> str:
    if entry.info.mmproj:
        raise ValidationFailed(f"'{entry.id}' is a multimodal projector, not a model",
                               "model: pick a model; its projector goes in options.mmproj")
    if entry.error is not None:
        raise ModelInvalid(f"Model '{entry.id}' cannot be loaded", entry.error)
    return str(entry.path)


def check_one_model(model_path: str | None, model: str | None) -> None:
    if (model_path is None) == (model is None):
        raise ValidationFailed("Give model_path or model (not both)",
                               "model_path: a file; or model: an id or <user>/<repo>:<quant>")
