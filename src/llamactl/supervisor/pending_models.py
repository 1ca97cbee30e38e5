"""Instances created from a model that is still being pulled (issue 33): ``POST
/api/instances`` with ``"model": "<user>/<repo>:<quant>"`` not yet on disk. The instance is
``stopped`` with its pull until the file is there; a manual start is refused meanwhile, and
an on-demand request waits for the pull, then for the start.

The pull is kept on the owner (``owner.pull``) and its id on the instance's record
(``pull_id``): when llamactl starts again (after a SIGTERM, a kill -9, a power loss), the pull
is resumed with the same id (library/pulls.py) and the instance linked to it again, so that
it waits for it as it did. When the pull ends, the link leaves the record; a pull that failed
(the Hub refused it, its hash differed) is the instance's ``last_error``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llamactl.errors import Conflict, StartFailed
from llamactl.library.pull_jobs import PullJob
from llamactl.supervisor.owner import InstanceOwner


class ModelPulling(Conflict):
    code = "MODEL_PULLING"


def wait_on(owner: InstanceOwner, job: PullJob | None) -> None:
    """Link the instance to the pull of its model, if any (its record says so already)."""
    if job is None:
        return
    owner.pull = job
    owner.record.runtime.pull_id = job.id
    if job.finished_at is not None:  # ended before the link was made
        owner.pull_ended(_failure(job))
    else:
        job.on_finish.append(lambda ended: owner.pull_ended(_failure(ended)))


def pull_id_of(job: PullJob | None) -> str | None:
    return job.id if job is not None else None


def link_pulls(owners: Iterable[InstanceOwner], resumed: dict[str, PullJob]) -> None:
    """At start: an instance that waited for a pull waits for it again (the library resumed
    it, same id); a link to a pull that had ended is dropped."""
    for owner in owners:
        pull_id = owner.record.runtime.pull_id
        job = resumed.get(pull_id) if pull_id is not None else None
        if job is not None:
            wait_on(owner, job)
        elif pull_id is not None:
            owner.pull_ended(None)


def _failure(job: PullJob) -> str | None:
    if job.status == "done":
        return None
    if job.status == "cancelled":
        return f"the pull of its model ({job.id}) was cancelled"
    return f"the pull of its model ({job.id}) failed: {job.error or job.status}"


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
