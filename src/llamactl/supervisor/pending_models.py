"""Instances created from a model that is still being pulled (issue 33): ``POST
/api/instances`` with ``"model": "<user>/<repo>:<quant>"`` not yet on disk. The instance is
``stopped`` with its pull until the file is there; a manual start is refused meanwhile, and
an on-demand request waits for the pull, then for the start.

The pull is kept on the owner (``owner.pull``), in memory: after a restart of llamactl the
instance is an ordinary one whose model file may not be there yet (pulling the same source
again resumes the download).
"""

from __future__ import annotations

from typing import Any

from llamactl.errors import Conflict, StartFailed
from llamactl.library.pulls import PullJob
from llamactl.supervisor.owner import InstanceOwner


class ModelPulling(Conflict):
    code = "MODEL_PULLING"


def pull_of(owner: InstanceOwner) -> PullJob | None:
    """The pull the instance still waits for; None once its model is on disk."""
    job = owner.pull
    if job is not None and job.status == "done":
        owner.pull = job = None
    return job


async def wait_for_model(owner: InstanceOwner) -> None:
    """Return once the instance's model is on disk; StartFailed when its pull did not end
    well."""
    job = pull_of(owner)
    if job is None:
        return
    await job.finished.wait()
    if job.status != "done":
        raise StartFailed(f"Instance '{owner.name}' has no model: its pull {job.id} is "
                          f"{job.status}", job.error or "pull its model again")
    owner.pull = None


def refuse_while_pulling(owner: InstanceOwner) -> None:
    """A start while the model is on its way is refused; after a failed pull the instance is
    an ordinary one (its start fails on the missing file, saying so)."""
    job = pull_of(owner)
    if job is not None and job.finished.is_set():
        owner.pull = None
    elif job is not None:
        progress = job.as_json()
        raise ModelPulling(
            f"Instance '{owner.name}' waits for its model: pull {job.id} is {job.status}",
            f"{progress['bytes_done']} of {progress['bytes_total']} bytes; GET "
            f"/api/models/pulls/{job.id}")


def pull_json(owner: InstanceOwner) -> dict[str, Any] | None:
    """The instance's ``pull`` field: its pull's id and progress, or null."""
    job = pull_of(owner)
    if job is None:
        return None
    progress = job.as_json()
    return {key: progress[key] for key in ("id", "status", "bytes_done", "bytes_total",
                                           "error")}
